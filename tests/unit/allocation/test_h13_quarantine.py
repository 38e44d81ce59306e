"""Quarantine (a QA or recall hold): stock stays on hand, but no sale takes or ships it until
released; a vendor return may name it, counts and losses may take it (services/allocation/
domain/quarantine.py). R9 (picks), R8 (shipping), R11 (adjustments), R13 (returns)."""

from __future__ import annotations

from datetime import date

from services.allocation.domain.decide import decide_batch
from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import (
    LineAllocated,
    QuarantinedStock,
    StockQuarantined,
)
from tests.unit.allocation.builders import (
    Book,
    D,
    adjust,
    allocate,
    give_back,
    item,
    lot,
    pick,
    quarantine,
    receive,
    release,
    ship,
)

LATE = date(2024, 1, 1)
EARLY = date(2023, 12, 1)


def _lots() -> Book:
    """A perishable lot-tracked item: X expires first (FEFO takes it), Y later."""
    return Book(
        item(track=True),
        receive("PO-1/1", 5, lots=[lot("X", 5, EARLY)]),
        receive("PO-2/1", 5, lots=[lot("Y", 5, LATE)]),
    )


def _taken(events: tuple[object, ...]) -> list[tuple[str | None, str | None, object]]:
    allocated = [e for e in events if isinstance(e, LineAllocated)]
    return [(m.lot_id, m.mfr_lot, m.quantity) for m in allocated[-1].movements]


def test_quarantine_answers_with_the_stock_it_covers() -> None:
    book = _lots()
    book.ok(allocate("S-0", 2, lots=[pick("X", 2)]))
    (event,) = book.ok(quarantine("Q-1", mfr_lot="X", reason="failed QA"))
    assert isinstance(event, StockQuarantined)
    assert (event.quarantine_id, event.quarantined, event.reason) == ("Q-1", True, "failed QA")
    assert (event.mfr_lot, event.lot_id, event.office) == ("X", None, None)
    assert event.stock == (
        QuarantinedStock(lot_id="PO-1/1", office="AI", mfr_lot="X", on_hand=D(5), allocated=D(2)),
    )


def test_r9_automatic_sale_passes_over_a_quarantined_manufacturer_lot() -> None:
    book = _lots()
    book.ok(quarantine(mfr_lot="X"))
    events = book.ok(allocate("S-1", 3))
    assert _taken(events) == [("PO-2/1", "Y", D(3))]


def test_r9_automatic_sale_short_says_how_much_is_in_quarantine() -> None:
    book = _lots()
    book.ok(quarantine(mfr_lot="X"))
    refusal = book.refused(allocate("S-1", 8), ReasonCode.INSUFFICIENT_STOCK)
    assert "available 5" in refusal.reason
    assert "5 more in quarantine" in refusal.reason


def test_r9_sale_naming_a_quarantined_lot_is_refused_with_the_reason() -> None:
    book = _lots()
    book.ok(quarantine("Q-7", mfr_lot="X", reason="recall notice 42"))
    refusal = book.refused(allocate("S-1", 2, lots=[pick("X", 2)]), ReasonCode.INSUFFICIENT_STOCK)
    assert "in quarantine" in refusal.reason
    assert "Q-7" in refusal.reason and "recall notice 42" in refusal.reason


def test_quarantine_of_one_inventory_lot_leaves_the_others_of_the_same_mfr_lot() -> None:
    book = Book(
        item(track=True),
        receive("PO-1/1", 5, lots=[lot("X", 5, EARLY)]),
        receive("PO-2/1", 5, lots=[lot("X", 5, EARLY)]),
    )
    book.ok(quarantine(lot_id="PO-1/1"))
    events = book.ok(allocate("S-1", 4, lots=[pick("X", 4)]))
    assert _taken(events) == [("PO-2/1", "X", D(4))]
    book.refused(allocate("S-2", 2, lots=[pick("X", 2, "PO-1/1")]), ReasonCode.INSUFFICIENT_STOCK)


def test_quarantine_at_one_office_leaves_the_other_offices() -> None:
    book = Book(
        item(track=True),
        receive("PO-1/1", 5, lots=[lot("X", 5, EARLY)], office="AI"),
        receive("PO-2/1", 5, lots=[lot("X", 5, EARLY)], office="BE"),
    )
    book.ok(quarantine(mfr_lot="X", office="AI"))
    book.refused(allocate("S-1", 1), ReasonCode.INSUFFICIENT_STOCK)
    assert _taken(book.ok(allocate("S-2", 1, office="BE"))) == [("PO-2/1", "X", D(1))]


def test_plain_item_quarantines_by_inventory_lot() -> None:
    book = Book(item(), receive("PO-1/1", 5), receive("PO-2/1", 5))
    book.ok(quarantine(lot_id="PO-1/1"))
    assert _taken(book.ok(allocate("S-1", 3))) == [("PO-2/1", None, D(3))]


def test_r9_serial_in_quarantine_is_not_available_to_a_sale() -> None:
    book = Book(
        item(serialized=True),
        receive("PO-1/1", 2, serials=["A1", "A2"]),
        receive("PO-2/1", 1, serials=["B1"]),
    )
    book.ok(quarantine("Q-2", lot_id="PO-1/1", reason="damaged"))
    refusal = book.refused(allocate("S-1", 1, serials=["A1"]), ReasonCode.SERIAL_NOT_AVAILABLE)
    assert "quarantine" in refusal.reason and "damaged" in refusal.reason
    events = book.ok(allocate("S-2", 1))
    assert [m.serial for m in events[-1].movements] == ["B1"]  # type: ignore[union-attr]


def test_r14_vendor_return_may_name_quarantined_stock_but_never_takes_it_itself() -> None:
    book = _lots()
    book.ok(quarantine(mfr_lot="X"))
    returned = allocate("V-1", 5, kind="vendor_return", to="Vendor", lots=[pick("X", 5)])
    assert _taken(book.ok(returned)) == [("PO-1/1", "X", D(5))]
    book.ok(ship("V-1"))
    assert book.mfr("PO-1/1", "X") == (D(0), D(0), D(5))
    plain = Book(item(), receive("PO-1/1", 5))
    plain.ok(quarantine(lot_id="PO-1/1"))
    plain.refused(
        allocate("V-2", 1, kind="vendor_return", to="Vendor"), ReasonCode.INSUFFICIENT_STOCK
    )


def test_r8_sale_allocated_before_the_quarantine_does_not_ship() -> None:
    book = _lots()
    book.ok(allocate("S-1", 2))  # FEFO: X
    book.ok(quarantine("Q-3", mfr_lot="X", reason="recall"))
    refusal = book.refused(ship("S-1"), ReasonCode.SHIPMENT_INCOMPLETE)
    assert "S-1 line 1" in refusal.reason and "PO-1/1" in refusal.reason
    assert "X" in refusal.reason and "recall" in refusal.reason
    assert book.mfr("PO-1/1", "X") == (D(5), D(2), D(0))  # the allocation stands
    book.ok(release("S-1"))
    assert _taken(book.ok(allocate("S-1", 2))) == [("PO-2/1", "Y", D(2))]
    book.ok(ship("S-1"))


def test_r11_count_and_loss_may_take_quarantined_stock() -> None:
    book = _lots()
    book.ok(quarantine(mfr_lot="X"))
    book.ok(adjust("ADJ-1", "loss", -3, lots=[lot("X", 3)]))
    assert book.mfr("PO-1/1", "X") == (D(2), D(0), D(3))
    plain = Book(item(), receive("PO-1/1", 5))
    plain.ok(quarantine(lot_id="PO-1/1"))
    plain.ok(adjust("ADJ-2", "loss", -5))
    assert plain.lot("PO-1/1") == (D(0), D(0), D(5))


def test_r13_customer_return_into_a_quarantined_lot_stays_quarantined() -> None:
    book = _lots()
    book.ok(allocate("S-1", 2, lots=[pick("X", 2)]))
    book.ok(ship("S-1"))
    book.ok(quarantine(mfr_lot="X"))
    book.ok(give_back("R-1", 2, lots=[pick("X", 2)]))
    assert book.mfr("PO-1/1", "X") == (D(5), D(0), D(0))
    book.refused(allocate("S-2", 1, lots=[pick("X", 1)]), ReasonCode.INSUFFICIENT_STOCK)


def test_a_manufacturer_lot_received_after_its_recall_is_held_too() -> None:
    book = _lots()
    book.ok(quarantine(mfr_lot="X"))
    book.ok(receive("PO-3/1", 5, lots=[lot("X", 5, EARLY)]))
    refusal = book.refused(allocate("S-1", 6), ReasonCode.INSUFFICIENT_STOCK)
    assert "available 5, and 10 more in quarantine" in refusal.reason
    book.refused(allocate("S-2", 1, lots=[pick("X", 1, "PO-3/1")]), ReasonCode.INSUFFICIENT_STOCK)


def test_release_restores_the_fefo_choice() -> None:
    book = _lots()
    book.ok(quarantine(mfr_lot="X"))
    (event,) = book.ok(quarantine(mfr_lot="X", quarantined=False, reason="QA passed"))
    assert isinstance(event, StockQuarantined) and not event.quarantined
    assert [s.mfr_lot for s in event.stock] == ["X"]
    assert book.state.quarantines == {}
    assert _taken(book.ok(allocate("S-1", 2))) == [("PO-1/1", "X", D(2))]


def test_release_of_what_is_not_quarantined_is_lot_not_found() -> None:
    book = _lots()
    book.refused(quarantine(mfr_lot="X", quarantined=False), ReasonCode.LOT_NOT_FOUND)
    book.ok(quarantine("Q-1", mfr_lot="X"))
    refusal = book.refused(
        quarantine(mfr_lot="X", office="AI", quarantined=False), ReasonCode.LOT_NOT_FOUND
    )
    assert "Q-1" in refusal.reason  # names the quarantine in force, to release instead
    assert refusal.quarantine_id == "Q-1"


def test_quarantine_of_a_lot_the_item_never_had_is_lot_not_found() -> None:
    book = _lots()
    book.refused(quarantine(mfr_lot="NOPE"), ReasonCode.LOT_NOT_FOUND)
    book.refused(quarantine(lot_id="PO-9/1"), ReasonCode.LOT_NOT_FOUND)
    book.refused(quarantine(mfr_lot="Y", lot_id="PO-1/1"), ReasonCode.LOT_NOT_FOUND)
    book.refused(quarantine(lot_id="PO-1/1", office="BE"), ReasonCode.LOT_NOT_FOUND)
    plain = Book(item(), receive("PO-1/1", 5))
    plain.refused(quarantine(mfr_lot="X"), ReasonCode.LOT_NOT_FOUND)


def test_quarantine_of_an_unknown_item_is_refused() -> None:
    Book().refused(quarantine(mfr_lot="X"), ReasonCode.UNKNOWN_ITEM)


def test_a_refused_quarantine_in_a_batch_leaves_no_rule() -> None:
    book = _lots()
    decided = decide_batch(book.state, [quarantine(mfr_lot="NOPE"), quarantine(lot_id="PO-2/1")])
    assert list(decided.state.quarantines) == [("", "PO-2/1", "")]
    assert decided.touched["quarantines"] == (("", "PO-2/1", ""),)
