"""decide_batch's touched keys: saving only them writes exactly what comparing every row writes,
and a batch on a LIC with a long history writes only the rows it changed."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocation.domain.decide import decide_all, decide_batch
from services.allocation.domain.model import LicState, SerialStatus
from services.allocation.repository import TABLES, Change, _changes, _rows_of
from tests.unit.allocation.builders import allocate, item, receive, ship
from tests.unit.allocation.test_batches import commands, setup


def _as_multisets(changes: dict[str, Change]) -> dict[str, tuple[Counter[Any], Counter[Any]]]:
    """Row order within a statement means nothing to the database, nor whether a row is
    written as new or upserted (the full walk upserts every row)."""
    return {
        name: (Counter(up) + Counter(new), Counter(down))
        for name, (up, down, new) in changes.items()
    }


@pytest.mark.parametrize("kind", ["plain", "lot", "serial"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_journal_driven_save_writes_what_the_full_walk_writes(
    kind: str, data: st.DataObject
) -> None:
    """Over random histories cut into random batches (refusals included), the touched keys
    name every row that differs, and nothing else gets written."""
    batches = data.draw(st.lists(st.lists(commands(kind), max_size=8), min_size=1, max_size=6))
    state = LicState.empty("L")
    batches[0] = [setup(kind), *batches[0]]
    for batch in batches:
        decided = decide_batch(state, batch)
        journal = _changes("L", state, decided.state, decided.touched)
        walk = _changes("L", state, decided.state)
        assert _as_multisets(journal) == _as_multisets(walk)
        for upserts, deletes, inserts in journal.values():  # a row written once at most
            written = [*upserts, *inserts]
            assert len(set(written)) == len(written) and len(set(deletes)) == len(deletes)
        # New rows are only those the state did not have (COPY writes them into the table).
        for table in TABLES:
            had = {
                table.key_of(table.to_row("L", row)) for row in _rows_of(state)[table.name].values()
            }
            assert not {table.key_of(row) for row in journal[table.name][2]} & had
        assert (decided.state, decided.events) == decide_all(state, batch)
        state = decided.state


def test_a_refused_command_touches_nothing() -> None:
    start, _ = decide_all(LicState.empty("L"), [item(), receive("PO-1/1", 2)])
    decided = decide_batch(start, [allocate("S-1", 3)])  # more than in stock: refused
    assert decided.events[0].__class__.__name__ == "CommandRejected"
    assert all(not keys for keys in decided.touched.values())
    assert _changes("L", start, decided.state, decided.touched) == _changes(
        "L", start, decided.state
    )


def test_rows_a_refused_command_wrote_are_kept_if_an_earlier_command_wrote_them() -> None:
    start, _ = decide_all(LicState.empty("L"), [item(), receive("PO-1/1", 5)])
    decided = decide_batch(start, [allocate("S-1", 2), allocate("S-2", 9), allocate("S-3", 1)])
    assert decided.touched["lots"] == ("PO-1/1",)
    assert decided.touched["allocations"] == (("S-1", 1), ("S-3", 1))
    assert decided.state.lots["PO-1/1"].allocated == 3


def _long_history() -> LicState:
    """A serialized LIC with 400 shipped lines (1,000 shipped units) and 200 units in stock."""
    state, _ = decide_all(LicState.empty("L"), [item(serialized=True)])
    for n in range(3):
        serials = [f"S{n}-{i:03d}" for i in range(400)]
        state, _ = decide_all(state, [receive(f"PO-{n}/1", 400, serials=serials)])
    history = [
        c for i in range(400) for c in (allocate(f"H{i}", 3 if i < 200 else 2), ship(f"H{i}"))
    ]
    state, events = decide_all(state, history)
    assert not any(e.__class__.__name__ == "CommandRejected" for e in events)
    return state


def test_a_batch_on_a_long_history_writes_only_what_it_changed() -> None:
    state = _long_history()
    assert len(state.allocations) == 400
    assert sum(u.status is SerialStatus.SHIPPED for u in state.units.values()) == 1000
    decided = decide_batch(state, [allocate("NEW", 2)])
    changes = _changes("L", state, decided.state, decided.touched)
    written = {name: len(up) + len(new) for name, (up, _, new) in changes.items() if up or new}
    assert written == {"inventory_lots": 1, "units": 2, "allocations": 1}
    assert all(not down for _, down, _ in changes.values())
    # What was looked at is what the batch wrote, not the 1,200 units and 400 allocations.
    assert sum(map(len, decided.touched.values())) == 4
