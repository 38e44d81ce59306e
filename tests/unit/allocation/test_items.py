"""R1, R2 and unknown items."""

from __future__ import annotations

from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import ItemUpserted
from tests.unit.allocation.builders import DAY, Book, allocate, item, lot, receive


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
