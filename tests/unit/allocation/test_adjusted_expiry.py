"""An expiry named on a count or loss (R11) narrows it to the stock of that expiry, as an
inventory lot id does, never dropped unread: a manufacturer lot received twice with two expiry
dates is two stocks, and a count or loss says which one it found or lost."""

from __future__ import annotations

from datetime import date, timedelta

from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import InventoryAdjusted
from tests.unit.allocation.builders import Book, D, adjust, allocate, item, lot, pick, receive, ship

LATE = date(2024, 6, 1)
LATER = LATE + timedelta(days=30)


def two_receipts_of_a() -> Book:
    """Lot A received twice, expiring LATE (the older receipt) and LATER; 2 of each sold."""
    return Book(
        item(track=True),
        receive("PO-1/1", 5, lots=[lot("A", 5, LATE)]),
        receive("PO-2/1", 5, lots=[lot("A", 5, LATER)]),
        allocate("S-1", 2, to="Acme", lots=[pick("A", 2, "PO-1/1")]),
        allocate("S-1", 2, to="Acme", lots=[pick("A", 2, "PO-2/1")], line_no=2),
        ship("S-1"),
        ship("S-1", line_no=2),
    )


def test_a_loss_naming_an_expiry_takes_the_stock_of_that_expiry() -> None:
    book = two_receipts_of_a()
    (event,) = book.ok(adjust("ADJ-1", "loss", -1, lots=[lot("A", 1, LATER)]))
    assert isinstance(event, InventoryAdjusted)
    # Without the expiry the older receipt's stock would go first.
    assert [(m.lot_id, m.expires_on) for m in event.movements] == [("PO-2/1", LATER)]


def test_a_count_naming_an_expiry_puts_back_into_the_stock_of_that_expiry() -> None:
    book = two_receipts_of_a()
    (event,) = book.ok(adjust("ADJ-1", "count", 1, lots=[lot("A", 1, LATE)]))
    assert isinstance(event, InventoryAdjusted)
    # Without the expiry the newest receipt's usage would be reversed first.
    assert [(m.lot_id, m.expires_on) for m in event.movements] == [("PO-1/1", LATE)]
    assert book.mfr("PO-1/1", "A") == (D(4), D(0), D(1))


def test_an_expiry_no_stock_of_the_lot_has_is_refused_naming_the_lot() -> None:
    book = two_receipts_of_a()
    never = LATE + timedelta(days=1)
    for kind, quantity in (("loss", -1), ("count", 1)):
        rejection = book.refused(
            adjust(f"ADJ-{kind}", kind, quantity, lots=[lot("A", 1, never)]),
            ReasonCode.LOT_NOT_FOUND,
        )
        assert rejection.offending == "A"
        assert f"A expiring on {never}" in rejection.reason
