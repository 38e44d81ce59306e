"""Next Serial arithmetic (R6), by example and by property."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocation.domain.errors import ReasonCode, Refusal
from services.allocation.domain.serials import serial_run
from shared.serials import parse_serials


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


@pytest.mark.parametrize(
    ("start", "count", "offending"),
    [
        ("9" * 64, 2, "1" + "0" * 64),  # the run grows past 64 characters
        ("A" * 60 + "9999", 2, "A" * 60 + "10000"),
        ("SN 1000", 1, "SN 1000"),  # stored before the contract checked it: typed entry splits
        ("X" * 100 + "1", 1, "X" * 100 + "1"),
    ],
)
def test_a_run_handing_out_a_serial_typed_entry_refuses_is_refused(
    start: str, count: int, offending: str
) -> None:
    """R6 with R5: a generated serial that typed entry would refuse (too long) or split could
    never be named again by a return or adjustment: INVALID_SERIAL_SPAN naming it, not raised
    later while building the event."""
    with pytest.raises(Refusal) as refused:
        serial_run(start, count)
    assert refused.value.code is ReasonCode.INVALID_SERIAL_SPAN
    assert refused.value.offending == offending
    assert start[:20] in refused.value.reason


@settings(max_examples=300)
@given(
    prefix=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=70).filter(
        lambda p: not p[-1:].isdigit()
    ),
    number=st.integers(min_value=0, max_value=10**70),
    count=st.integers(min_value=1, max_value=20),
)
def test_every_generated_serial_is_one_typed_entry_reads_back(
    prefix: str, number: int, count: int
) -> None:
    """R6 with R5: a run either hands out serials that typed entry reads back one by one as
    themselves, or is refused with a reason code; it never hands out one it cannot name."""
    try:
        serials, _ = serial_run(f"{prefix}{number}", count)
    except Refusal as refusal:
        assert refusal.code in (ReasonCode.INVALID_SERIAL_SPAN, ReasonCode.SERIAL_REQUIRED)
        return
    for serial in serials:
        assert parse_serials(serial) == [serial]
