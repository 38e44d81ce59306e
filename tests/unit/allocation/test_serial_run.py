"""Next Serial arithmetic (R6), by example and by property."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocation.domain.errors import Refusal
from services.allocation.domain.serials import serial_run


@pytest.mark.parametrize(
    ("start", "count", "serials", "after"),
    [
        ("7", 2, ("00007", "00008"), "00009"),
        ("00007", 1, ("00007",), "00008"),
        ("134593568", 2, ("134593568", "134593569"), "134593570"),
        ("SN-0098", 3, ("SN-0098", "SN-0099", "SN-0100"), "SN-0101"),
        ("99999", 2, ("99999", "100000"), "100001"),
        ("A9", 2, ("A9", "A10"), "A11"),
        ("X1", 0, (), "X1"),
    ],
)
def test_runs_continue_from_next_serial(
    start: str, count: int, serials: tuple[str, ...], after: str
) -> None:
    """R6: zero padding to 5 for short numeric serials, prefix and width kept otherwise."""
    assert serial_run(start, count) == (serials, after)


def test_next_serial_without_digits_is_refused() -> None:
    """R6: nothing to count on."""
    with pytest.raises(Refusal):
        serial_run("ABC", 1)


@settings(max_examples=200)
@given(
    prefix=st.sampled_from(["", "SN-", "A", "X/"]),
    number=st.integers(min_value=0, max_value=10**9),
    count=st.integers(min_value=0, max_value=50),
)
def test_runs_are_unique_increasing_and_chain(prefix: str, number: int, count: int) -> None:
    """R6: serials in a run are distinct, consecutive, and the next run starts after them."""
    start = f"{prefix}{number}"
    serials, after = serial_run(start, count)
    assert len(set(serials)) == count
    numbers = [int(s[len(prefix) :]) for s in serials]
    assert numbers == list(range(number, number + count))
    again, _ = serial_run(after, 1)
    assert again[0] not in serials and int(after[len(prefix) :]) == number + count
