"""A manufacturer lot named twice on one line (an entry per scan, say) is one request for the
sum: a refusal names what was asked of the lot in all and what the lot holds, never one entry
against what the entries before it left (R9, R11, R13: the offending values)."""

from __future__ import annotations

from datetime import date

from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import InventoryAdjusted, ShipmentKind
from tests.unit.allocation.builders import (
    Book,
    D,
    adjust,
    allocate,
    give_back,
    item,
    lot,
    pick,
    receive,
    ship,
)

LATE = date(2024, 6, 1)


def sold_one_of_ten() -> Book:
    return Book(
        item(track=True),
        receive("PO-1/1", 10, lots=[lot("A", 10, LATE)]),
        allocate("S-1", 1, to="Acme", lots=[pick("A", 1)]),
        ship("S-1"),
    )


def test_count_naming_a_lot_twice_is_refused_for_the_sum_against_what_was_used() -> None:
    """R11 (the seed's lot of 10, 1 sold, 2 found, typed as two entries of A): refused
    LOT_QTY_EXCEEDS_USED naming 2 adjusted against the 1 used, not "1 > 0"."""
    book = sold_one_of_ten()
    rejection = book.refused(
        adjust("ADJ-1", "count", 2, lots=[lot("A", 1), lot("A", 1)]),
        ReasonCode.LOT_QTY_EXCEEDS_USED,
    )
    assert rejection.offending == "2 > 1"
    assert "a count can put back at most 1 of them, and this count adds 2" in rejection.reason


def test_count_naming_a_lot_twice_within_what_was_used_puts_back_the_sum() -> None:
    """R11: two entries of A that fit what was used put back both, as one movement."""
    book = Book(
        item(track=True),
        receive("PO-1/1", 10, lots=[lot("A", 10, LATE)]),
        allocate("S-1", 3, to="Acme", lots=[pick("A", 3)]),
        ship("S-1"),
    )
    (event,) = book.ok(adjust("ADJ-1", "count", 2, lots=[lot("A", 1), lot("A", 1)]))
    assert isinstance(event, InventoryAdjusted)
    assert [(m.lot_id, m.mfr_lot, m.quantity) for m in event.movements] == [("PO-1/1", "A", D(2))]
    assert book.mfr("PO-1/1", "A") == (D(9), D(0), D(1))


def test_loss_naming_a_lot_twice_is_refused_for_the_sum_against_the_lot() -> None:
    """R11: a loss of 5 + 7 of A against 9 of A on hand names 12 > 9, not "7 > 4"."""
    book = sold_one_of_ten()
    rejection = book.refused(
        adjust("ADJ-1", "loss", -12, lots=[lot("A", 5), lot("A", 7)]),
        ReasonCode.INSUFFICIENT_STOCK,
    )
    assert rejection.offending == "12 > 9"
    assert "requested 12, available 9" in rejection.reason


def test_shipment_line_naming_a_lot_twice_is_refused_for_the_sum() -> None:
    """R9, R14: picks of 2 + 2 of A against 3 of A free name 4 > 3, on a sale and on a return
    to vendor alike."""
    kinds: tuple[ShipmentKind, ...] = ("sale", "vendor_return")
    for kind in kinds:
        book = Book(item(track=True), receive("PO-1/1", 3, lots=[lot("A", 3, LATE)]))
        rejection = book.refused(
            allocate("S-1", 4, kind=kind, lots=[pick("A", 2), pick("A", 2)]),
            ReasonCode.INSUFFICIENT_STOCK,
        )
        assert rejection.offending == "4 > 3", kind


def test_customer_return_naming_a_lot_twice_is_refused_for_the_sum() -> None:
    """R13: 1 + 1 of A back when 1 of A was shipped to Acme names 2 > 1, not "1 > 0"."""
    book = sold_one_of_ten()
    rejection = book.refused(
        give_back("R-1", 2, customer="Acme", lots=[pick("A", 1), pick("A", 1)]),
        ReasonCode.RETURN_EXCEEDS_SHIPPED,
    )
    assert rejection.offending == "2 > 1"
    assert "returning 2, but only 1 was shipped" in rejection.reason
