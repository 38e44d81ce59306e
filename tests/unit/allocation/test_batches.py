"""decide_all: one working copy per batch, same answers as deciding one command at a time."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocation.domain.decide import decide, decide_all
from services.allocation.domain.model import Command, CommandRejected, LicState
from tests.unit.allocation.builders import (
    adjust,
    allocate,
    give_back,
    item,
    lot,
    pick,
    receive,
    release,
    ship,
)

DAYS = [date(2024, 1, 10), date(2024, 2, 10), date(2024, 3, 10)]
SERIALS = ["1", "2", "3", "4", "5", "6"]


def commands(kind: str) -> st.SearchStrategy[Command]:
    """Commands for one LIC of `kind` (plain, lot or serial), valid or not."""
    qty = st.integers(min_value=1, max_value=4)
    names = st.sampled_from(["A", "B"])
    shipment = st.sampled_from(["S1", "S2", "S3"])
    doc = st.integers(min_value=0, max_value=5).map(lambda i: f"PO-{i}/1")
    serials = st.lists(st.sampled_from(SERIALS), min_size=1, max_size=3)
    day = st.sampled_from(DAYS)
    if kind == "plain":
        incoming = st.builds(receive, doc, qty)
        outgoing = st.builds(allocate, shipment, qty, ship_on=day)
        signed = st.integers(min_value=-3, max_value=3).filter(bool)
        adjusting = st.builds(adjust, doc, st.sampled_from(["count", "loss"]), signed)
        back = st.builds(give_back, st.just("R"), qty)
    elif kind == "lot":
        entry = st.builds(lot, names, qty, day)
        incoming = st.builds(lambda d, e: receive(d, e.quantity, lots=[e]), doc, entry)
        named = st.builds(lambda n, q: [pick(n, q)], names, qty)
        outgoing = st.builds(
            lambda s, p, d: allocate(s, sum(x.quantity for x in p), lots=p, ship_on=d),
            shipment,
            named,
            day,
        ) | st.builds(allocate, shipment, qty, ship_on=day)
        adjusting = st.builds(
            lambda d, n, q: adjust(d, "count", q, lots=[lot(n, abs(q))]),
            doc,
            names,
            st.integers(min_value=-3, max_value=3).filter(bool),
        )
        back = st.builds(lambda n, q: give_back("R", q, lots=[pick(n, q)]), names, qty)
    else:
        incoming = st.builds(lambda d, s: receive(d, len(s), serials=s), doc, serials)
        outgoing = st.builds(
            lambda s, n: allocate(s, len(n), serials=n), shipment, serials
        ) | st.builds(allocate, shipment, qty)
        adjusting = st.builds(
            lambda d, s, sign: adjust(d, "loss", sign * len(s), serials=s),
            doc,
            serials,
            st.sampled_from([-1, 1]),
        )
        back = st.builds(lambda s: give_back("R", len(s), serials=s), serials)
    closing = st.builds(ship, shipment) | st.builds(release, shipment)
    return st.one_of(incoming, outgoing, closing, adjusting, back)


def setup(kind: str) -> Command:
    return item(track=kind == "lot", serialized=kind == "serial")


@pytest.mark.parametrize("kind", ["plain", "lot", "serial"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_batch_decides_like_one_command_at_a_time(kind: str, data: st.DataObject) -> None:
    """decide_all == folding decide, refusals included (rolled back inside the batch)."""
    batch = [setup(kind), *data.draw(st.lists(commands(kind), max_size=25))]
    one_by_one = LicState.empty("L")
    expected = []
    for command in batch:
        decision = decide(one_by_one, command)
        one_by_one = decision.state
        expected.extend(decision.events)
    start = LicState.empty("L")
    state, events = decide_all(start, batch)
    assert events == expected
    assert state == one_by_one
    assert start == LicState.empty("L")


def test_refused_command_inside_a_batch_leaves_no_trace() -> None:
    """A refusal in the middle of a batch is rolled back; later commands see the state before."""
    state, events = decide_all(
        LicState.empty("L"),
        [item(), receive("PO-1/1", 2), allocate("S-1", 3), allocate("S-1", 2), ship("S-1")],
    )
    assert [type(e).__name__ for e in events] == [
        "ItemUpserted",
        "StockReceived",
        "CommandRejected",
        "LineAllocated",
        "LineShipped",
    ]
    assert isinstance(events[2], CommandRejected)
    assert state.lots["PO-1/1"].used == 2 and state.lots["PO-1/1"].status == "closed"


def test_batch_never_mutates_its_input() -> None:
    """Purity: the state passed in is unchanged after the batch."""
    start, _ = decide_all(LicState.empty("L"), [item(), receive("PO-1/1", 2)])
    lots_before = dict(start.lots)
    decide_all(start, [allocate("S-1", 2), ship("S-1"), adjust("A", "count", 1)])
    assert start.lots == lots_before and start.allocations == {}
