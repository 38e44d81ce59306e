"""R9 and §6: "first in" is the date a receipt carries (`received_on`), not the order allocation
happened to process receipts in. Receipts of one LIC from different documents arrive through
different partitions of `inventory.receipts`, so that order is arbitrary. Each test here
receives the March document first and the January one second; the January stock came in first.
Lots received the same day keep the order they were decided in, so the choice stays one.

Stock going back (a count that reverses usage, a customer return) fills the newest lots first
by the same order, reversed."""

from __future__ import annotations

from datetime import date

from services.allocation.domain.model import (
    InventoryAdjusted,
    LineAllocated,
    StockReturned,
)
from tests.unit.allocation.builders import (
    Book,
    adjust,
    allocate,
    give_back,
    item,
    lot,
    pick,
    receive,
    ship,
)

JAN, MAR, APR = date(2026, 1, 1), date(2026, 3, 1), date(2026, 4, 1)
EXPIRY = date(2027, 1, 1)


def allocated(events: tuple[object, ...]) -> LineAllocated:
    event = events[-1]
    assert isinstance(event, LineAllocated)
    return event


def adjusted(events: tuple[object, ...]) -> InventoryAdjusted:
    (event,) = events
    assert isinstance(event, InventoryAdjusted)
    return event


def test_plain_items_ship_the_earliest_received_lot_first() -> None:
    """R9: the audit's case: PO-NEW (March) processed before PO-OLD (January)."""
    book = Book(item(), receive("PO-NEW/1", 5, on=MAR), receive("PO-OLD/1", 5, on=JAN))
    event = allocated(book.ok(allocate("S-1", 7, ship_on=APR)))
    assert [(m.lot_id, m.quantity) for m in event.movements] == [("PO-OLD/1", 5), ("PO-NEW/1", 2)]


def test_lots_received_the_same_day_ship_in_the_order_they_were_decided() -> None:
    """R9: the tie-break keeps the choice deterministic."""
    book = Book(item(), receive("PO-B/1", 1, on=JAN), receive("PO-A/1", 1, on=JAN))
    event = allocated(book.ok(allocate("S-1", 1, ship_on=APR)))
    assert [m.lot_id for m in event.movements] == ["PO-B/1"]


def test_non_perishable_lot_tracked_items_ship_the_earliest_received_lot_first() -> None:
    """R9: other lots first-in-first-out, by receipt date."""
    book = Book(
        item(track=True, perishable=False),
        receive("PO-NEW/1", 2, on=MAR, lots=[lot("A", 2)]),
        receive("PO-OLD/1", 2, on=JAN, lots=[lot("Z", 2)]),
    )
    event = allocated(book.ok(allocate("S-1", 3, ship_on=APR)))
    assert [(m.mfr_lot, m.quantity) for m in event.movements] == [("Z", 2), ("A", 1)]


def test_serials_ship_from_the_earliest_received_lot_first() -> None:
    """R9: serials first-in-first-out, by their lot's receipt date."""
    book = Book(
        item(serialized=True),
        receive("PO-NEW/1", 2, on=MAR, serials=["N1", "N2"]),
        receive("PO-OLD/1", 2, on=JAN, serials=["O1", "O2"]),
    )
    event = allocated(book.ok(allocate("S-1", 3, ship_on=APR)))
    assert [m.serial for m in event.movements] == ["O1", "O2", "N1"]


def test_perishable_lots_expiring_together_ship_the_earliest_received_first() -> None:
    """R9: FEFO first; among lots of one expiry date, the one received first."""
    book = Book(
        item(track=True),
        receive("PO-NEW/1", 2, on=MAR, lots=[lot("A", 2, EXPIRY)]),
        receive("PO-OLD/1", 2, on=JAN, lots=[lot("Z", 2, EXPIRY)]),
        receive("PO-SOON/1", 1, on=MAR, lots=[lot("S", 1, date(2026, 6, 1))]),
    )
    event = allocated(book.ok(allocate("S-1", 4, ship_on=APR)))
    assert [(m.mfr_lot, m.quantity) for m in event.movements] == [("S", 1), ("Z", 2), ("A", 1)]


def test_perishable_serials_expiring_together_ship_the_earliest_received_first() -> None:
    """R9: the same tie-break orders serialized units of perishable lots."""
    book = Book(
        item(track=True, serialized=True),
        receive("PO-NEW/1", 1, on=MAR, lots=[lot("A", 1, EXPIRY)], serials=["new"]),
        receive("PO-OLD/1", 1, on=JAN, lots=[lot("Z", 1, EXPIRY)], serials=["old"]),
    )
    event = allocated(book.ok(allocate("S-1", 1, ship_on=APR)))
    assert event.movements[0].serial == "old"


def test_a_named_lot_in_several_receipts_ships_from_the_earliest_received_first() -> None:
    """R9: a named mfr lot spread over inventory lots is taken first-in-first-out too."""
    book = Book(
        item(track=True, perishable=False),
        receive("PO-NEW/1", 2, on=MAR, lots=[lot("A", 2)]),
        receive("PO-OLD/1", 2, on=JAN, lots=[lot("A", 2)]),
    )
    event = allocated(book.ok(allocate("S-1", 3, ship_on=APR, lots=[pick("A", 3)])))
    assert [(m.lot_id, m.quantity) for m in event.movements] == [("PO-OLD/1", 2), ("PO-NEW/1", 1)]


def test_plain_removal_takes_the_earliest_received_stock_first() -> None:
    """R11: an adjustment that removes plain stock goes first-in-first-out, by receipt date."""
    book = Book(item(), receive("PO-NEW/1", 2, on=MAR), receive("PO-OLD/1", 2, on=JAN))
    event = adjusted(book.ok(adjust("ADJ-1", "loss", -3, on=APR)))
    assert [(m.lot_id, m.quantity) for m in event.movements] == [("PO-OLD/1", -2), ("PO-NEW/1", -1)]


def test_a_beginning_balance_dated_earlier_ships_before_later_receipts() -> None:
    """R9, R11: an adjustment lot came in on its adjustment's date."""
    book = Book(
        item(), receive("PO-1/1", 1, on=MAR), adjust("ADJ-1", "beginning_balance", 1, on=JAN)
    )
    event = allocated(book.ok(allocate("S-1", 1, ship_on=APR)))
    assert [m.lot_id for m in event.movements] == ["ADJ-1/L/BB"]


def test_plain_count_up_puts_back_into_the_latest_received_lot_first() -> None:
    """R11: usage is reversed newest first, the mirror of first-in-first-out."""
    book = Book(
        item(),
        receive("PO-NEW/1", 2, on=MAR),
        receive("PO-OLD/1", 2, on=JAN),
        allocate("S-1", 4, ship_on=APR),
        ship("S-1"),
    )
    event = adjusted(book.ok(adjust("ADJ-1", "count", 3, on=APR)))
    assert [(m.lot_id, m.quantity) for m in event.movements] == [("PO-NEW/1", 2), ("PO-OLD/1", 1)]


def test_lot_count_up_puts_back_into_the_latest_received_lot_first() -> None:
    """R11: a mfr lot in several inventory lots takes usage back newest first."""
    book = Book(
        item(track=True, perishable=False),
        receive("PO-NEW/1", 2, on=MAR, lots=[lot("A", 2)]),
        receive("PO-OLD/1", 2, on=JAN, lots=[lot("A", 2)]),
        allocate("S-1", 4, ship_on=APR),
        ship("S-1"),
    )
    event = adjusted(book.ok(adjust("ADJ-1", "count", 3, lots=[lot("A", 3)], on=APR)))
    assert [(m.lot_id, m.quantity) for m in event.movements] == [("PO-NEW/1", 2), ("PO-OLD/1", 1)]


def test_a_return_goes_back_into_the_latest_received_lot_first() -> None:
    """R13: newest lots take returns first, by receipt date."""
    book = Book(
        item(),
        receive("PO-NEW/1", 2, on=MAR),
        receive("PO-OLD/1", 2, on=JAN),
        allocate("S-1", 4, ship_on=APR),
        ship("S-1"),
    )
    (event,) = book.ok(give_back("R-1", 3, on=APR))
    assert isinstance(event, StockReturned)
    assert [(m.lot_id, m.quantity) for m in event.movements] == [("PO-NEW/1", 2), ("PO-OLD/1", 1)]
