"""An item's stock at an office as the read API reports it (§4, R9, R12)."""

from __future__ import annotations

from services.ledger.domain.stock import StockAtOffice
from tests.unit.ledger.builders import D


def test_available_is_lot_stock_not_yet_allocated() -> None:
    """§4, R9: available is what allocation can still take from the office's lots."""
    stock = StockAtOffice(office="AI", in_lots=D(8), allocated=D(3))

    assert (stock.on_hand, stock.available, stock.unallocated) == (8, 5, 0)


def test_unallocated_stock_is_on_hand_but_not_available() -> None:
    """R12: stock no lot holds is physically there (on hand) but allocation cannot ship it,
    so available does not promise it; it is reported on its own."""
    stock = StockAtOffice(office="EE", in_lots=D(4), unallocated=D(5))

    assert (stock.on_hand, stock.available, stock.unallocated) == (9, 4, 5)


def test_an_office_with_only_unallocated_stock_has_nothing_available() -> None:
    """R12: a plain item counted up at an office without open lots."""
    stock = StockAtOffice(office="EE", in_lots=D(0), unallocated=D(2))

    assert (stock.on_hand, stock.available) == (2, 0)
