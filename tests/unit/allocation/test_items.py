"""R1, R2 and unknown items."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

from services.allocation.domain.decide import decide_all
from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import ItemUpserted, LicState, LineRefusal, UpsertItem
from tests.unit.allocation.builders import DAY, Book, D, allocate, item, lot, receive


def test_lot_tracking_marks_the_item_perishable() -> None:
    """R1: marking track_mfr_lot marks perishable too."""
    book = Book(item(track=True))
    assert book.state.item is not None and book.state.item.perishable


def test_lot_tracking_leaves_perishable_cleared_when_the_command_clears_it() -> None:
    """R1: ... unless the same command clears it."""
    book = Book(item(track=True, perishable=False))
    assert book.state.item is not None and not book.state.item.perishable


def test_an_update_that_leaves_perishable_out_keeps_a_cleared_flag() -> None:
    """R1: the flag follows the *marking* of lot tracking; an update repeating it (here only
    the cost changes) does not turn a cleared perishable flag back on."""
    book = Book(item(track=True, perishable=False))
    book.ok(item(track=True, cost="11"))
    assert book.state.item is not None and not book.state.item.perishable


def test_marking_lot_tracking_on_an_existing_item_marks_it_perishable() -> None:
    """R1: marking track_mfr_lot on an item that had it off marks perishable too."""
    book = Book(item(track=False, perishable=False))
    book.ok(item(track=True))
    assert book.state.item is not None and book.state.item.perishable


def test_upsert_answers_item_upserted_with_the_effective_flags() -> None:
    """R1: the event carries the perishable flag as decided."""
    (event,) = Book().ok(item(track=True, next_serial=None))
    assert isinstance(event, ItemUpserted) and event.perishable and event.track_mfr_lot


def test_tracking_flags_change_freely_before_any_record_refers_to_the_item() -> None:
    """R2: an unused item may still change its tracking flags."""
    book = Book(item(track=True))
    book.ok(item(track=False, serialized=True))
    assert book.state.item is not None and book.state.item.serialized


def test_tracking_flags_are_locked_once_stock_was_received() -> None:
    """R2: after a receipt, track_mfr_lot cannot change: TRACKING_LOCKED."""
    book = Book(item(), receive("PO-1/1", 5))
    rejection = book.refused(item(track=True), ReasonCode.TRACKING_LOCKED)
    assert "track_mfr_lot" in rejection.reason


def test_serialized_flag_is_locked_once_a_line_was_allocated() -> None:
    """R2: an allocation locks the serialized flag too."""
    book = Book(item(), receive("PO-1/1", 5), allocate("S-1", 1))
    book.refused(item(serialized=True), ReasonCode.TRACKING_LOCKED)


def test_a_shipment_line_refused_for_lack_of_stock_still_locks_the_flags() -> None:
    """R2: the refused line is still a sales order naming the item (shipping keeps it, and it
    can be picked again), so the tracking flags lock; a refused receipt records nothing and
    locks nothing."""
    book = Book(item())
    book.refused(receive("PO-1/1", 0), ReasonCode.INVALID_QUANTITY)
    assert book.state.item is not None and not book.state.item.locked
    book.refused(allocate("S-1", 1), ReasonCode.INSUFFICIENT_STOCK)
    assert book.state.item is not None and book.state.item.locked
    book.refused(item(serialized=True), ReasonCode.TRACKING_LOCKED)


_SPAN = LineRefusal(
    reason_code=ReasonCode.INVALID_SERIAL_SPAN,
    reason="span '10...8' runs backwards",
    offending="10...8",
)


def test_a_shipment_line_refused_by_shipping_itself_locks_the_flags_too() -> None:
    """R2: a line whose picks shipping refused (R5; or a vendor return naming nothing, R14) is
    kept as a sales order too, so its AllocateLine still comes, carrying shipping's problem:
    allocation answers exactly that problem, decides nothing, and the flags lock."""
    book = Book(item())
    rejection = book.refused(
        replace(allocate("S-1", 3), refusal=_SPAN), ReasonCode.INVALID_SERIAL_SPAN
    )
    assert (rejection.reason, rejection.offending, rejection.command_type) == (
        _SPAN.reason,
        "10...8",
        "AllocateLine",
    )
    assert (rejection.shipment_id, rejection.line_no) == ("S-1", 1)
    assert book.state.item is not None and book.state.item.locked
    book.refused(item(serialized=True), ReasonCode.TRACKING_LOCKED)


def test_a_line_refused_by_shipping_locks_the_flags_in_a_batch_too() -> None:
    """R2: `decide_all`, as the service decides a batch, locks as `decide` does."""
    refused = replace(allocate("S-1", 3), refusal=_SPAN)
    _, events = decide_all(LicState.empty("L"), [item(), refused, item(serialized=True)])
    assert [type(e).__name__ for e in events] == [
        "ItemUpserted",
        "CommandRejected",
        "CommandRejected",
    ]
    assert [getattr(e, "reason_code", None) for e in events[1:]] == [
        ReasonCode.INVALID_SERIAL_SPAN,
        ReasonCode.TRACKING_LOCKED,
    ]


def test_a_line_refused_by_shipping_is_answered_with_its_problem_and_changes_nothing() -> None:
    """The refusal comes before any rule: an allocation the line holds stands (no release),
    and an unknown item is answered with shipping's problem, not UNKNOWN_ITEM (no item: R2
    locks nothing)."""
    book = Book(item(), receive("PO-1/1", 5), allocate("S-1", 2))
    book.refused(replace(allocate("S-1", 3), refusal=_SPAN), ReasonCode.INVALID_SERIAL_SPAN)
    assert book.state.allocations[("S-1", 1)].quantity == 2
    Book().refused(replace(allocate("S-1", 3), refusal=_SPAN), ReasonCode.INVALID_SERIAL_SPAN)


def test_locked_item_still_accepts_other_changes() -> None:
    """R2: only the tracking flags are frozen; cost and perishable may change."""
    book = Book(item(track=True), receive("PO-1/1", 1, lots=[lot("A", 1, DAY)]))
    book.ok(item(track=True, perishable=False, cost="12.50"))
    assert book.state.item is not None and str(book.state.item.est_unit_cost) == "12.50"


def test_next_serial_is_kept_when_an_upsert_omits_it() -> None:
    """R6: an upsert without next_serial keeps the item's current Next Serial."""
    book = Book(item(serialized=True, next_serial="SN-0098"))
    book.ok(item(serialized=True))
    assert book.state.item is not None and book.state.item.next_serial == "SN-0098"


def test_commands_for_an_unknown_item_are_refused() -> None:
    """Commands other than UpsertItem need a known LIC: UNKNOWN_ITEM."""
    rejection = Book().refused(receive("PO-1/1", 1), ReasonCode.UNKNOWN_ITEM)
    assert rejection.lic == "L" and rejection.shipment_id == "PO-1" and rejection.line_no == 1


# -- upsert semantics: a field left out keeps the item's value -------------------------------


def _change(lic: str = "L", **fields: Any) -> UpsertItem:
    """An upsert naming only `fields`, as an ERP that sends just what changed."""
    return UpsertItem(message_id=f"change-{next(_changes)}", lic=lic, **fields)


_changes = itertools.count(1)


def test_an_upsert_that_leaves_fields_out_keeps_the_items_values() -> None:
    """R1/R2: a partial UpsertItem (only a new description) keeps the cost, unit, tracking
    flags, perishable flag and Next Serial; ItemUpserted carries the item's full values."""
    book = Book(item(track=True, serialized=True, perishable=False, next_serial="SN-7", cost="12"))
    (event,) = book.ok(_change(description="renamed"))
    assert isinstance(event, ItemUpserted)
    assert (event.description, event.uom, event.est_unit_cost) == ("renamed", "Each", D("12"))
    assert (event.track_mfr_lot, event.serialized, event.perishable) == (True, True, False)
    assert event.next_serial == "SN-7"
    assert book.state.item is not None and book.state.item.est_unit_cost == D("12")


def test_a_new_item_takes_the_defaults_for_the_fields_left_out() -> None:
    """A new item named only by its LIC: "", "Each", not tracked, not serialized, cost 0."""
    (event,) = Book().ok(_change())
    assert isinstance(event, ItemUpserted)
    assert (event.description, event.uom, event.est_unit_cost, event.next_serial) == (
        "",
        "Each",
        D("0"),
        None,
    )
    assert not (event.track_mfr_lot or event.serialized or event.perishable)


def test_a_receipt_after_a_partial_upsert_is_costed_at_the_kept_estimate() -> None:
    """The audit's case: an upsert of the description alone used to reset the cost to 0 and
    switch lot tracking off, so the next receipt line without a unit cost made a lot costed 0
    (and without manufacturer lots)."""
    book = Book(item(track=True, cost="7.50"), _change(description="new name"))
    book.refused(receive("PO-1/1", 2), ReasonCode.LOT_REQUIRED)
    book.ok(receive("PO-2/1", 2, lots=[lot("M-1", 2, DAY)]))
    assert book.state.lots["PO-2/1"].unit_cost == D("7.50")


def test_a_locked_item_accepts_an_upsert_that_leaves_the_tracking_flags_out() -> None:
    """R2: TRACKING_LOCKED only when a flag is given and differs; left out, it is kept."""
    book = Book(item(serialized=True, next_serial="1"), receive("PO-1/1", 1, generate=True))
    assert book.state.item is not None and book.state.item.locked
    book.ok(_change(est_unit_cost=D("3")))
    book.ok(_change(serialized=True, description="same flag repeated"))
    book.refused(_change(serialized=False), ReasonCode.TRACKING_LOCKED)
    book.refused(_change(track_mfr_lot=True), ReasonCode.TRACKING_LOCKED)
    assert book.state.item is not None and book.state.item.serialized
    assert book.state.item.next_serial == "00002"


def test_a_partial_upsert_marking_lot_tracking_marks_perishable() -> None:
    """R1: a message that gives only track_mfr_lot=true marks lot tracking: perishable too."""
    book = Book(item(cost="5"), _change(track_mfr_lot=True))
    assert book.state.item is not None
    assert (book.state.item.perishable, book.state.item.est_unit_cost) == (True, D("5"))


def test_an_upsert_that_leaves_the_gtin_out_keeps_it() -> None:
    """Receiving and shipping check scanned GTINs against the item's (R5): an UpsertItem that
    leaves `gtin` out must not wipe it, and ItemUpserted carries the item's GTIN every time."""
    book = Book(_change(gtin="09506000134352"))
    (event,) = book.ok(_change(description="renamed"))
    assert isinstance(event, ItemUpserted) and event.gtin == "09506000134352"
    assert book.state.item is not None and book.state.item.gtin == "09506000134352"
    (event,) = book.ok(_change(gtin="09506000134369"))
    assert isinstance(event, ItemUpserted) and event.gtin == "09506000134369"
