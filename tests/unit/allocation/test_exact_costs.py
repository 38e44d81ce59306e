"""R10: a shipped line's cost is exact at the contract's largest quantities and costs.

A quantity (up to 10^9, 6 places) times a unit cost (up to 10^12, 6 places) needs up to 33
significant digits, more than Decimal's default context keeps (28): no amount is rounded.
"""

from __future__ import annotations

from decimal import Context, Decimal

from services.allocation.domain.model import LineShipped
from tests.unit.allocation.builders import Book, allocate, item, receive, ship

QUANTITY = "999999999.999999"
COST = "999999999999.999999"
EXACT = Context(prec=60)


def test_shipped_cost_is_exact_at_the_largest_quantity_and_cost() -> None:
    book = Book(item(cost=COST), receive("PO-1/1", QUANTITY, cost=COST), allocate("S-1", QUANTITY))
    (event,) = book.ok(ship("S-1"))
    assert isinstance(event, LineShipped)
    assert event.total_cost == EXACT.multiply(Decimal(QUANTITY), Decimal(COST))
    assert event.total_cost == Decimal("999999999999998999000.000000000001")


def test_shipped_cost_of_several_lots_is_their_exact_sum() -> None:
    other = "0.000001"
    book = Book(
        item(cost=COST),
        receive("PO-1/1", QUANTITY, cost=COST),
        receive("PO-2/1", "1", cost=other),
        allocate("S-1", "1000000000.999999"),
    )
    (event,) = book.ok(ship("S-1"))
    assert isinstance(event, LineShipped)
    expected = EXACT.add(EXACT.multiply(Decimal(QUANTITY), Decimal(COST)), Decimal(other))
    assert event.total_cost == expected
