"""A customer return refused because a count already put back the usage it would reverse
(R11, R13): the reason says what was shipped and why it cannot come back, never that less was
shipped than was."""

from __future__ import annotations

from datetime import date

from services.allocation.domain.errors import ReasonCode
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

LATE = date(2024, 6, 1)


def test_return_of_usage_a_count_put_back_names_what_was_shipped_and_the_remedy() -> None:
    """3 of A shipped to Acme, then a count put all 3 back into A: returning 1 is refused
    RETURN_EXCEEDS_SHIPPED "1 > 0", and the reason says 3 was shipped to Acme and not returned
    but its usage was counted back, with the remedy (a beginning balance), not "only 0 was
    shipped"."""
    book = Book(
        item(track=True),
        receive("PO-1/1", 5, lots=[lot("A", 5, LATE)]),
        allocate("S-1", 3, to="Acme", lots=[pick("A", 3)]),
        ship("S-1"),
        adjust("ADJ-1", "count", 3, lots=[lot("A", 3)]),
    )
    rejection = book.refused(
        give_back("R-1", 1, customer="Acme", lots=[pick("A", 1)]),
        ReasonCode.RETURN_EXCEEDS_SHIPPED,
    )
    assert rejection.offending == "1 > 0"
    assert "only 0 was shipped" not in rejection.reason
    assert "3 was shipped to Acme from office AI and not returned" in rejection.reason
    assert "beginning balance" in rejection.reason


def test_plain_return_within_what_was_shipped_but_counted_back_says_so() -> None:
    """The same for a plain item: 2 shipped, 1 counted back, 2 returned: 1 can come back."""
    book = Book(
        item(),
        receive("PO-1/1", 2),
        allocate("S-1", 2, to="Acme"),
        ship("S-1"),
        adjust("ADJ-1", "count", 1),
    )
    rejection = book.refused(
        give_back("R-1", 2, customer="Acme"), ReasonCode.RETURN_EXCEEDS_SHIPPED
    )
    assert rejection.offending == "2 > 1"
    assert "2 was shipped to Acme from office AI and not returned" in rejection.reason
