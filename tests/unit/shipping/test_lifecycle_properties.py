"""Property: whatever upstream sends, in whatever order allocation answers, once nothing is
pending the shipment has settled and shipping's view matches what allocation holds.

Allocation is played by a small model of its line rules (one allocation per LIC and line; a
re-allocation releases the old picks first; release and ship need an open allocation), answering
commands in the order they were sent, as the per-LIC partitions deliver them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.shipping import domain
from services.shipping.model import (
    Allocate,
    Allocated,
    Answer,
    Cancel,
    Command,
    Decision,
    Entry,
    Item,
    Moved,
    PicksUpdate,
    Rejected,
    Release,
    Released,
    Request,
    RequestLine,
    Shipment,
    Shipped,
    ShipRequest,
    Upstream,
)
from shared.reasons import ReasonCode

ITEMS = {
    "PLAIN": Item(lic="PLAIN"),
    "MILK": Item(lic="MILK", track_mfr_lot=True, perishable=True),
    "CAM": Item(lic="CAM", serialized=True),
}
SETTLED = {"allocated", "allocation_failed", "shipped", "cancelled"}


@dataclass
class Allocation:
    """What allocation holds, keyed like its allocations table: (LIC, line)."""

    held: set[tuple[str, int]] = field(default_factory=set)
    shipped: set[tuple[str, int]] = field(default_factory=set)

    def decide(self, command: Command, accept: bool) -> list[Answer]:
        key = (command.lic, command.line_no)
        if isinstance(command, Allocate):
            if key in self.shipped or not accept:
                return [self._no(command, ReasonCode.INSUFFICIENT_STOCK)]
            replies: list[Answer] = []
            if key in self.held:
                replies.append(
                    Released(command_id=command.command_id, lic=command.lic, reallocated=True)
                )
            self.held.add(key)
            replies.append(
                Allocated(
                    command_id=command.command_id,
                    lic=command.lic,
                    complete=True,
                    movements=_moves(command.lic, command.quantity),
                )
            )
            return replies
        if key not in self.held:
            return [self._no(command, ReasonCode.UNKNOWN_SHIPMENT)]
        self.held.discard(key)
        if isinstance(command, Release):
            return [Released(command_id=command.command_id, lic=command.lic)]
        self.shipped.add(key)
        return [Shipped(command_id=command.command_id, lic=command.lic)]

    @staticmethod
    def _no(command: Command, code: ReasonCode) -> Rejected:
        return Rejected(
            command_id=command.command_id, lic=command.lic, reason_code=code, reason="no"
        )


def _moves(lic: str, quantity: Decimal) -> tuple[Moved, ...]:
    if lic == "CAM":
        return tuple(
            Moved(lot_id="L", serial=f"S{n}", quantity=Decimal(1), unit_cost=Decimal(1))
            for n in range(int(quantity))
        )
    mfr_lot = "A1" if lic == "MILK" else None
    return (Moved(lot_id="L", mfr_lot=mfr_lot, quantity=quantity, unit_cost=Decimal(1)),)


# --- strategies -------------------------------------------------------------------------------

_picks = st.sampled_from([Entry(), Entry(serials="9...1"), Entry(serials="S0")])
_lines = st.lists(
    st.tuples(st.sampled_from(sorted(ITEMS)), st.integers(1, 3), _picks), min_size=1, max_size=3
)


@st.composite
def _request(draw: st.DrawFn) -> Request:
    lines = draw(_lines)
    return Request(
        message_id="?",
        shipment_id="S-1",
        office="AI",
        kind="sale",
        ship_on=date(2026, 11, 2),
        lines=tuple(
            RequestLine(line_no=n, lic=lic, quantity=Decimal(q), entry=picks)
            for n, (lic, q, picks) in enumerate(lines, start=1)
        ),
    )


_upstream = st.one_of(
    _request(),
    st.builds(
        PicksUpdate,
        message_id=st.just("?"),
        shipment_id=st.just("S-1"),
        line_no=st.integers(1, 3),
        entry=_picks,
    ),
    st.builds(ShipRequest, message_id=st.just("?"), shipment_id=st.just("S-1")),
    st.builds(Cancel, message_id=st.just("?"), shipment_id=st.just("S-1")),
)
# True/False: allocation answers the oldest command, accepting or refusing an allocation.
_steps = st.lists(st.one_of(_upstream, st.booleans()), max_size=25)


@settings(max_examples=300, deadline=None)
@given(steps=_steps)
def test_settled_shipments_agree_with_what_allocation_holds(steps: list[Upstream | bool]) -> None:
    allocation = Allocation()
    shipment: Shipment | None = None
    queue: deque[Command] = deque()
    command_ids: list[str] = []
    status_ids: list[str] = []

    def take(decision: Decision) -> Shipment | None:
        queue.extend(decision.commands)
        command_ids.extend(c.command_id for c in decision.commands)
        status_ids.extend(s.message_id for s in decision.statuses)
        return decision.shipment

    def answer_oldest(accept: bool) -> Shipment | None:
        command = queue.popleft()
        replies = allocation.decide(command, accept)
        assert shipment is not None
        return take(domain.answer(shipment, *replies))

    for n, step in enumerate(steps):
        if isinstance(step, bool):
            if queue:
                shipment = answer_oldest(step)
            continue
        message = replace(step, message_id=f"m{n}")
        shipped_before = shipment is not None and shipment.phase == "shipped"
        decision = domain.handle(shipment, message, ITEMS)
        if shipped_before:
            assert decision.commands == (), "a shipped shipment sends nothing more"
        shipment = take(decision)
    while queue:
        shipment = answer_oldest(True)

    assert len(set(command_ids)) == len(command_ids)
    assert len(set(status_ids)) == len(status_ids)
    if shipment is None:
        return
    assert shipment.pending == ()
    assert shipment.phase in SETTLED
    held = {(line.held_lic, line.line_no) for line in shipment.lines if line.held_lic}
    assert held == allocation.held
    if shipment.phase == "cancelled":
        assert allocation.held == set()
    if shipment.phase == "shipped":
        assert {(line.lic, line.line_no) for line in shipment.lines} <= allocation.shipped
    if shipment.phase == "allocated":
        assert all(line.status in ("allocated", "shipped") for line in shipment.lines)
