"""A quarantine of a manufacturer lot that has not arrived yet (a supplier's recall notice for a
lot on its way): with `before_receipt` the rule is kept though the item never had the lot, and
holds the lot when it arrives; without it, such a lot is refused `LOT_NOT_FOUND` (a typo must
not hold nothing without a word). services/allocation/domain/quarantine.py."""

from __future__ import annotations

from datetime import date

from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import LineAllocated, StockQuarantined
from tests.unit.allocation.builders import (
    Book,
    D,
    allocate,
    item,
    lot,
    pick,
    quarantine,
    receive,
)

LATE = date(2024, 1, 1)
EARLY = date(2023, 12, 1)


def _lot_tracked() -> Book:
    return Book(item(track=True), receive("PO-1/1", 5, lots=[lot("Y", 5, LATE)]))


def test_a_lot_not_yet_received_is_held_with_before_receipt() -> None:
    book = _lot_tracked()
    (event,) = book.ok(quarantine("Q-1", mfr_lot="X", before_receipt=True))
    assert isinstance(event, StockQuarantined) and event.quarantined
    assert event.stock == ()  # nothing of it on hand yet
    assert ("X", "", "") in book.state.quarantines


def test_the_lot_is_held_when_it_arrives() -> None:
    book = _lot_tracked()
    book.ok(quarantine("Q-1", mfr_lot="X", reason="supplier recall", before_receipt=True))
    book.ok(receive("PO-2/1", 5, lots=[lot("X", 5, EARLY)]))
    # FEFO would take X (it expires first): the hold makes the sale take Y.
    events = book.ok(allocate("S-1", 3))
    allocated = [e for e in events if isinstance(e, LineAllocated)]
    assert [(m.lot_id, m.mfr_lot) for m in allocated[-1].movements] == [("PO-1/1", "Y")]
    refusal = book.refused(allocate("S-2", 1, lots=[pick("X", 1)]), ReasonCode.INSUFFICIENT_STOCK)
    assert "Q-1" in refusal.reason and "supplier recall" in refusal.reason


def test_the_hold_is_released_as_any_other() -> None:
    book = _lot_tracked()
    book.ok(quarantine("Q-1", mfr_lot="X", before_receipt=True))
    book.ok(receive("PO-2/1", 5, lots=[lot("X", 5, EARLY)]))
    (released,) = book.ok(quarantine("Q-2", mfr_lot="X", quarantined=False))
    assert isinstance(released, StockQuarantined)
    assert released.released_quarantine_id == "Q-1"
    assert [(s.mfr_lot, s.on_hand) for s in released.stock] == [("X", D(5))]
    events = book.ok(allocate("S-1", 1, lots=[pick("X", 1)]))
    assert any(isinstance(e, LineAllocated) for e in events)


def test_without_before_receipt_a_lot_never_received_is_refused_saying_how_to_hold_it() -> None:
    refusal = _lot_tracked().refused(quarantine(mfr_lot="X"), ReasonCode.LOT_NOT_FOUND)
    assert refusal.offending == "X"
    assert "never received" in refusal.reason and "before_receipt" in refusal.reason


def test_before_receipt_on_an_item_without_manufacturer_lots_is_lot_not_found() -> None:
    plain = Book(item(), receive("PO-1/1", 5))
    refusal = plain.refused(quarantine(mfr_lot="X", before_receipt=True), ReasonCode.LOT_NOT_FOUND)
    assert "does not track manufacturer lots" in refusal.reason


def test_before_receipt_does_not_excuse_an_unknown_inventory_lot() -> None:
    book = _lot_tracked()
    book.refused(
        quarantine(mfr_lot="X", lot_id="PO-9/1", before_receipt=True), ReasonCode.LOT_NOT_FOUND
    )
