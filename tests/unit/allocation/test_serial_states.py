"""The serial unit state machine (STYLE §1): explicit transitions, named error."""

from __future__ import annotations

import pytest

from services.allocation.domain.errors import IllegalTransition
from services.allocation.domain.model import SERIAL_TRANSITIONS, SerialStatus, Unit

S = SerialStatus
LEGAL = [(a, b) for a, targets in SERIAL_TRANSITIONS.items() for b in targets]
ILLEGAL = [(a, b) for a in S for b in S if b not in SERIAL_TRANSITIONS[a]]


def unit(status: SerialStatus) -> Unit:
    return Unit(lic="L", serial="1", lot_id="PO-1/1", mfr_lot=None, position=0, status=status)


def test_every_state_has_a_transition_entry() -> None:
    """Every serial is in exactly one known state."""
    assert set(SERIAL_TRANSITIONS) == set(S)


@pytest.mark.parametrize(("current", "target"), LEGAL)
def test_legal_transitions_move_the_unit(current: SerialStatus, target: SerialStatus) -> None:
    assert unit(current).moved_to(target).status is target


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_illegal_transitions_raise_a_named_error(
    current: SerialStatus, target: SerialStatus
) -> None:
    with pytest.raises(IllegalTransition):
        unit(current).moved_to(target)


def test_returned_to_vendor_is_final() -> None:
    """R14: a unit returned to its vendor can only come back as a new receipt."""
    assert SERIAL_TRANSITIONS[S.RETURNED_TO_VENDOR] == frozenset()


def test_only_available_allocated_and_held_units_are_in_stock() -> None:
    """R4: the serial uniqueness constraint covers units in stock, allocated, or held by a
    receipt line waiting for the rest of its document."""
    assert {s for s in S if unit(s).in_stock} == {S.AVAILABLE, S.ALLOCATED, S.HELD}
