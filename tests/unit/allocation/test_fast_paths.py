"""The core's shortcuts give the answers of the plain way: `Draft.move` changes lots as changing
them pick by pick does, and an allocation loaded without its kept movements ships and releases
exactly as one that kept them."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocation.domain.decide import decide
from services.allocation.domain.draft import BrokenInvariant, Draft
from services.allocation.domain.model import ZERO, InventoryLot, LicState, MfrLot, Pick
from tests.unit.allocation.builders import Book, allocate, item, lot, receive, release, ship

LOTS = ("L1", "L2", "L3")
MFR = {"L1": ("A", "B"), "L2": ("C",), "L3": ()}

# The signs every caller of `move` uses: hold, release, ship, remove, put back / return.
MOVES = [
    {"allocated": 1},
    {"allocated": -1},
    {"allocated": -1, "on_hand": -1, "used": 1},
    {"on_hand": -1, "used": 1},
    {"on_hand": 1, "used": -1},
]
EXPIRY = date(2030, 1, 1)
QUANTITIES = st.sampled_from(["1", "2", "0.5", "1.25", "3"]).map(Decimal)


@st.composite
def _picks(draw: st.DrawFn) -> list[Pick]:
    picks = []
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        lot_id = draw(st.sampled_from(LOTS))
        names = MFR[lot_id]
        picks.append(
            Pick(
                lot_id=lot_id,
                mfr_lot=draw(st.sampled_from(names)) if names else None,
                serial=None,
                quantity=draw(QUANTITIES),
            )
        )
    return picks


def _quantities(
    need: Decimal, slack: Decimal, signs: dict[str, int]
) -> tuple[Decimal, Decimal, Decimal]:
    """(on_hand, allocated, used) before the move: just enough for it, plus `slack` (0 closes
    or reopens the row; −1 leaves it short, so the move breaks an invariant)."""
    out = signs.get("on_hand", 0) < 0 or signs.get("allocated", 0) > 0
    on_hand = max(ZERO, slack + (need if out else ZERO))
    allocated = min(on_hand, need) if signs.get("allocated", 0) < 0 else ZERO
    used = max(ZERO, slack + need) if signs.get("used", 0) < 0 else Decimal(5)
    return on_hand, allocated, used


def _state(picks: list[Pick], slack: dict[str, Decimal], signs: dict[str, int]) -> LicState:
    """Lots and mfr lots holding what `picks` move, each with its own `slack`."""
    lots: dict[str, InventoryLot] = {}
    mfr_lots: dict[tuple[str, str], MfrLot] = {}
    for seq, lot_id in enumerate(LOTS, start=1):
        need = sum((p.quantity for p in picks if p.lot_id == lot_id), ZERO)
        on_hand, allocated, used = _quantities(need, slack[lot_id], signs)
        lots[lot_id] = InventoryLot(
            lot_id=lot_id,
            lic="L",
            office="AI",
            kind="purchase",
            reference=lot_id,
            received_on=date(2024, 1, 1),
            unit_cost=Decimal("2.50"),
            received_qty=on_hand + used,
            seq=seq,
            on_hand=on_hand,
            allocated=allocated,
            used=used,
            status="open" if on_hand else "closed",
        )
        for name in MFR[lot_id]:
            need = sum((p.quantity for p in picks if (p.lot_id, p.mfr_lot) == (lot_id, name)), ZERO)
            on_hand, allocated, used = _quantities(need, slack[name], signs)
            mfr_lots[(lot_id, name)] = MfrLot(
                lot_id=lot_id,
                mfr_lot=name,
                expires_on=None,
                initial_qty=on_hand + used,
                on_hand=on_hand,
                allocated=allocated,
                used=used,
            )
    return LicState(lic="L", lots=lots, mfr_lots=mfr_lots)


def _rows(draft: Draft) -> list[str]:
    # repr, not ==: the Decimals must match digit for digit (Decimal("1.0") == Decimal("1")).
    return [repr(row) for row in (*draft.lots.values(), *draft.mfr_lots.values())]


SLACK = st.sampled_from(["0", "0", "0", "1", "-1", "0.5"]).map(Decimal)


@settings(max_examples=400, deadline=None)
@given(
    picks=_picks(),
    slack=st.fixed_dictionaries({name: SLACK for name in (*LOTS, "A", "B", "C")}),
    signs=st.sampled_from(MOVES),
)
def test_move_equals_changing_pick_by_pick(
    picks: list[Pick], slack: dict[str, Decimal], signs: dict[str, int]
) -> None:
    state = _state(picks, slack, signs)
    one_by_one, at_once = Draft(state), Draft(state)
    try:
        for p in picks:
            one_by_one.change(
                p.lot_id,
                p.mfr_lot,
                **{name: p.quantity if sign > 0 else -p.quantity for name, sign in signs.items()},
            )
    except BrokenInvariant:
        with pytest.raises(BrokenInvariant):
            at_once.move(picks, **signs)
        return
    at_once.move(picks, **signs)
    assert _rows(at_once) == _rows(one_by_one)
    assert (at_once.closed, at_once.reopened) == (one_by_one.closed, one_by_one.reopened)
    assert at_once.freeze() == one_by_one.freeze()
    assert dict(at_once.stocked) == dict(one_by_one.stocked)


@pytest.mark.parametrize("serialized", [False, True])
def test_a_loaded_allocation_ships_and_releases_as_one_that_kept_its_movements(
    serialized: bool,
) -> None:
    """The repository loads allocations without their kept movements: shipping or releasing
    one builds them from the picks, the same as the allocating decision kept them."""
    if serialized:
        book = Book(item(serialized=True, next_serial="1"), receive("PO-1/1", 4, generate=True))
    else:
        book = Book(
            item(track=True), receive("PO-1/1", 4, lots=[lot("A", 3, EXPIRY), lot("B", 1, EXPIRY)])
        )
    book.ok(allocate("S-1", 4))
    book.ok(ship("S-1"))
    if serialized:
        book.ok(receive("PO-2/1", 2, generate=True))
    else:
        book.ok(receive("PO-2/1", 2, lots=[lot("C", 2, EXPIRY)]))
    book.ok(allocate("S-3", 2))
    kept = book.state
    loaded = replace(
        kept,
        allocations={key: replace(a, movements=None) for key, a in kept.allocations.items()},
        index=None,
    )
    assert loaded == kept
    for command in (ship("S-3"), release("S-3")):
        assert decide(loaded, command).events == decide(kept, command).events
