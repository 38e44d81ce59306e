"""R3: a manufacturer lot listed twice on one receipt or beginning-balance line with different
expiries is refused, and the reason says how it is listed in words, never "None"."""

from __future__ import annotations

from datetime import date

import pytest

from services.allocation.domain.errors import ReasonCode
from tests.unit.allocation.builders import Book, D, adjust, item, lot, receive

DEC = date(2026, 12, 31)
JAN = date(2027, 1, 31)


@pytest.mark.parametrize(
    ("first", "second"),
    [(DEC, None), (None, DEC)],
    ids=["dated-first", "undated-first"],
)
def test_r3_lot_listed_with_and_without_expiry_is_refused_naming_no_none(
    first: date | None, second: date | None
) -> None:
    """R3: a non-perishable lot may carry an expiry, but not two different ones on a line."""
    book = Book(item(track=True, perishable=False))
    refusal = book.refused(
        receive("PO-1/1", 3, lots=[lot("A", 1, first), lot("A", 2, second)]),
        ReasonCode.EXPIRY_REQUIRED,
    )
    assert "None" not in refusal.reason
    assert refusal.reason == ("manufacturer lot A is listed expiring on 2026-12-31 and without one")
    assert refusal.offending == "A"


def test_r3_lot_listed_with_two_expiry_dates_names_both_in_order() -> None:
    """R3: the two dates are named, earlier first, whatever order the line lists them in."""
    book = Book(item(track=True))
    refusal = book.refused(
        receive("PO-1/1", 3, lots=[lot("A", 1, JAN), lot("A", 2, DEC)]),
        ReasonCode.EXPIRY_REQUIRED,
    )
    assert refusal.reason == ("manufacturer lot A is listed expiring on 2026-12-31 and 2027-01-31")


def test_r11_beginning_balance_lot_listed_with_and_without_expiry_names_no_none() -> None:
    """R11: a beginning balance is validated like a receipt line, with the same reason."""
    book = Book(item(track=True, perishable=False))
    refusal = book.refused(
        adjust("BB-1", "beginning_balance", 2, lots=[lot("A", 1), lot("A", 1, DEC)]),
        ReasonCode.EXPIRY_REQUIRED,
    )
    assert refusal.reason == ("manufacturer lot A is listed expiring on 2026-12-31 and without one")


def test_r3_same_lot_listed_twice_with_the_same_expiry_is_one_lot() -> None:
    """R3: entries that agree are merged (one entry per scan, say)."""
    book = Book(item(track=True, perishable=False))
    book.ok(receive("PO-1/1", 3, lots=[lot("A", 1), lot("A", 2)]))
    assert book.mfr("PO-1/1", "A") == (D(3), D(0), D(0))
