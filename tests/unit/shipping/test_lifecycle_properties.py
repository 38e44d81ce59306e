"""Property: whatever upstream sends, in whatever order allocation answers, once nothing is
pending the shipment has settled and shipping's view matches what allocation holds: a line is
allocated, with the picks allocation holds, made on the shipment's terms, exactly when
allocation holds it (never half-apply a document); and every line's item has heard of it (R2:
even a line whose picks shipping refused itself names the item, and locks its tracking flags).

Allocation is played by a small model of its line rules (one allocation per LIC and line; a
re-allocation releases the old picks first, and if refused leaves the old allocation standing;
a line shipping refused itself is answered with that refusal, nothing decided; release and
ship need an open allocation). Commands
and answers travel keyed by LIC, so each LIC's commands are answered in the order they were
sent, but shipping reads the LICs' partitions in any interleaving: a resend that changes a
line's LIC may have the new LIC's answers read before the old one's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.shipping import domain
from services.shipping.model import (
    Allocate,
    Allocated,
    AllocatedStatus,
    AllocationFailedStatus,
    Answer,
    Cancel,
    CancelledStatus,
    Command,
    Decision,
    Entry,
    Item,
    Kind,
    LineView,
    Moved,
    Picks,
    PicksUpdate,
    Rejected,
    Release,
    Released,
    Request,
    RequestLine,
    Shipment,
    Shipped,
    ShippedStatus,
    ShipRequest,
    Status,
    Upstream,
)
from shared.ids import derived_id
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
    taken: dict[tuple[str, int], tuple[Moved, ...]] = field(default_factory=dict)
    picks: dict[tuple[str, int], Picks] = field(default_factory=dict)
    terms: dict[tuple[str, int], tuple[str, str, date]] = field(default_factory=dict)
    named: set[tuple[str, int]] = field(default_factory=set)  # lines an item heard of (R2)

    def decide(self, command: Command, accept: bool) -> list[Answer]:
        key = (command.lic, command.line_no)
        if isinstance(command, Allocate):
            self.named.add(key)
            if command.refusal is not None:
                refusal = command.refusal
                return [
                    Rejected(
                        command_id=command.command_id,
                        lic=command.lic,
                        reason_code=refusal.reason_code,
                        reason=refusal.reason,
                        offending=refusal.offending,
                    )
                ]
            if key in self.shipped or not accept:
                return [self._no(command, ReasonCode.INSUFFICIENT_STOCK)]
            replies: list[Answer] = []
            if key in self.held:
                replies.append(
                    Released(command_id=command.command_id, lic=command.lic, reallocated=True)
                )
            self.held.add(key)
            self.taken[key] = _moves(command.lic, command.quantity)
            self.picks[key] = command.picks
            self.terms[key] = (command.office, command.kind, command.ship_on)
            replies.append(
                Allocated(
                    command_id=command.command_id,
                    lic=command.lic,
                    complete=True,
                    movements=self.taken[key],
                )
            )
            return replies
        if key not in self.held:
            return [self._no(command, ReasonCode.UNKNOWN_SHIPMENT)]
        self.held.discard(key)
        moved = self.taken.pop(key)
        if isinstance(command, Release):
            return [Released(command_id=command.command_id, lic=command.lic, movements=moved)]
        self.shipped.add(key)
        return [Shipped(command_id=command.command_id, lic=command.lic, movements=moved)]

    @staticmethod
    def _no(command: Command, code: ReasonCode) -> Rejected:
        return Rejected(
            command_id=command.command_id, lic=command.lic, reason_code=code, reason="no"
        )


def _moves(lic: str, quantity: Decimal) -> tuple[Moved, ...]:
    """Movements from the LIC's own lot (`<LIC>-1`), so a status naming another LIC's lots
    for a line shows."""
    if lic == "CAM":
        return tuple(
            Moved(lot_id="CAM-1", serial=f"S{n}", quantity=Decimal(1), unit_cost=Decimal(1))
            for n in range(int(quantity))
        )
    mfr_lot = "A1" if lic == "MILK" else None
    return (Moved(lot_id=f"{lic}-1", mfr_lot=mfr_lot, quantity=quantity, unit_cost=Decimal(1)),)


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
        kind=draw(st.sampled_from(["sale", "sale", "vendor_return"])),
        ship_on=draw(st.sampled_from([date(2026, 11, 2), date(2026, 11, 3)])),
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
# (n, True/False): shipping reads the answer to the oldest command of the n-th LIC (of those
# with commands waiting), allocation accepting or refusing an allocation.
_reads = st.tuples(st.integers(0, len(ITEMS) - 1), st.booleans())
_steps = st.lists(st.one_of(_upstream, _reads), max_size=25)


def _own_lots(views: Iterable[LineView]) -> bool:
    return all(m.lot_id == f"{v.lic}-1" for v in views for m in v.movements)


def _views(status: Status) -> tuple[LineView, ...]:
    match status:
        case AllocatedStatus() | ShippedStatus():
            return status.lines
        case AllocationFailedStatus():
            return status.allocated_lines
        case CancelledStatus():
            return status.released_lines
    return ()


def _one(lic: str, kind: Kind = "sale", picks: Entry | None = None) -> Request:
    line = RequestLine(line_no=1, lic=lic, quantity=Decimal(1), entry=picks or Entry())
    return Request(
        message_id="?",
        shipment_id="S-1",
        office="AI",
        kind=kind,
        ship_on=date(2026, 11, 2),
        lines=(line,),
    )


_SHIP = ShipRequest(message_id="?", shipment_id="S-1")
_CANCEL = Cancel(message_id="?", shipment_id="S-1")
_BAD_SPAN = Entry(serials="9...1")
_OK = (0, True)


@settings(max_examples=500, deadline=None)
@given(steps=_steps)
# Found before, kept: a resend to another LIC, the new LIC's partition read first, then cancel;
@example(steps=[_one("PLAIN"), _one("MILK"), _OK, _OK, _OK, _CANCEL])
# new picks refused by allocation, or by the parse, while the old allocation stands;
@example(
    steps=[
        _one("PLAIN"),
        _OK,
        PicksUpdate(message_id="?", shipment_id="S-1", line_no=1),
        (0, False),
    ]
)
@example(
    steps=[
        _one("PLAIN"),
        _OK,
        PicksUpdate(message_id="?", shipment_id="S-1", line_no=1, entry=_BAD_SPAN),
    ]
)
# a resend on other terms refused; picks refused by the parse while an allocation is in flight;
@example(steps=[_one("PLAIN"), _OK, _one("PLAIN", "vendor_return"), (0, False)])
@example(steps=[_one("CAM"), _one("CAM", "vendor_return", _BAD_SPAN), _OK, _SHIP])
# a second ship request while shipping, a second cancel while cancelling;
@example(steps=[_one("PLAIN"), _OK, _SHIP, _SHIP])
@example(steps=[_one("PLAIN"), _OK, _CANCEL, _CANCEL])
# a ship request while a resend to another LIC has only the new LIC's answer read;
@example(steps=[_one("PLAIN"), _one("MILK"), (1, True), _SHIP])
# a request (and picks, a ship request, a cancel) read while the shipment is being cancelled.
@example(steps=[_one("PLAIN"), _OK, _CANCEL, _one("MILK")])
@example(
    steps=[
        _one("PLAIN"),
        _OK,
        _CANCEL,
        _one("CAM"),
        PicksUpdate(message_id="?", shipment_id="S-1", line_no=1, entry=_BAD_SPAN),
        _SHIP,
    ]
)
@example(steps=[_one("PLAIN"), _OK, _CANCEL, _one("MILK"), _CANCEL, _OK])
# a request read while the shipment is being shipped, or just after (decided the same way),
# with picks, a ship request and a cancel read while it waits.
@example(steps=[_one("PLAIN"), _OK, _SHIP, _one("MILK"), _OK])
@example(steps=[_one("PLAIN"), _OK, _SHIP, _OK, _one("MILK")])
@example(
    steps=[
        _one("PLAIN"),
        _OK,
        _SHIP,
        _one("CAM"),
        PicksUpdate(message_id="?", shipment_id="S-1", line_no=1, entry=_BAD_SPAN),
        _SHIP,
        _CANCEL,
        _one("MILK"),
        _OK,
    ]
)
# a cancel or picks read while the shipment is being shipped; a request a cancel or a newer
# request overrides while it waits (R2: still named to allocation).
@example(steps=[_one("PLAIN"), _OK, _SHIP, _CANCEL, _OK])
@example(
    steps=[
        _one("PLAIN"),
        _OK,
        _SHIP,
        PicksUpdate(message_id="?", shipment_id="S-1", line_no=1, entry=_BAD_SPAN),
        _OK,
    ]
)
@example(steps=[_one("PLAIN"), _OK, _CANCEL, _one("CAM"), _one("MILK"), _OK])
@example(steps=[_one("PLAIN"), _OK, _CANCEL, _one("CAM"), _CANCEL, _one("MILK"), _OK])
def test_settled_shipments_agree_with_what_allocation_holds(
    steps: list[Upstream | tuple[int, bool]],
) -> None:
    allocation = Allocation()
    shipment: Shipment | None = None
    queues: dict[str, deque[Command]] = {lic: deque() for lic in sorted(ITEMS)}
    command_ids: list[str] = []
    statuses: list[Status] = []
    owed: list[str] = []  # ship requests and cancels waiting for the phase under way
    requested: dict[str, set[tuple[str, int]]] = {}  # a request's status id: its lines

    def take(decision: Decision) -> Shipment | None:
        for command in decision.commands:
            queues[command.lic].append(command)
        command_ids.extend(c.command_id for c in decision.commands)
        statuses.extend(decision.statuses)
        return decision.shipment

    def read(n: int, accept: bool) -> Shipment | None:
        """Shipping reads the next answer of the n-th LIC partition with one waiting."""
        waiting = [q for q in queues.values() if q]
        command = waiting[n % len(waiting)].popleft()
        replies = allocation.decide(command, accept)
        assert shipment is not None
        return take(domain.answer(shipment, *replies, items=ITEMS))

    for n, step in enumerate(steps):
        if isinstance(step, tuple):
            if any(queues.values()):
                shipment = read(*step)
            continue
        message = replace(step, message_id=f"m{n}")
        before = shipment.phase if shipment is not None else None
        decision = domain.handle(shipment, message, ITEMS)
        if before == "shipped":
            assert decision.commands == (), "a shipped shipment sends nothing more"
        if before == "allocating" and isinstance(message, ShipRequest):
            assert decision.commands == (), "nothing ships before the allocation under way"
        if before in ("shipping", "cancelling"):
            # it waits for the phase under way: answered with it, or decided as if read just
            # after it settles
            assert (decision.commands, decision.statuses) == ((), ())
        under_way = {ShipRequest: "shipping", Cancel: "cancelling"}.get(type(message))
        nothing_waits = shipment is not None and shipment.queued == ()
        if before is not None and before == under_way and nothing_waits:
            owed.append(derived_id(message.message_id, "status"))  # answered with that phase
        if isinstance(message, Request):
            lines = {(x.lic, x.line_no) for x in message.lines}
            requested[derived_id(message.message_id, "status")] = lines
        shipment = take(decision)
    while any(queues.values()):
        shipment = read(0, True)

    assert len(set(command_ids)) == len(command_ids)
    status_ids = [s.message_id for s in statuses]
    assert len(set(status_ids)) == len(status_ids)
    assert set(owed) <= set(status_ids), "a ship request or cancel was never answered"
    # R2: a request not refused as a document was saved, so every item it names heard of it.
    refused = {
        s.message_id
        for s in statuses
        if isinstance(s, AllocationFailedStatus) and s.problems and s.problems[0].line_no is None
    }
    for status_id, lines in requested.items():
        if status_id not in refused:
            assert lines <= allocation.named, "a saved request's items never heard of it"
    assert all(_own_lots(_views(s)) for s in statuses), "a status names another LIC's lots"
    if shipment is None:
        return
    assert shipment.pending == ()
    assert shipment.phase in SETTLED
    assert shipment.queued == (), "a document waited for a phase that settled"
    held = {(lic, line.line_no) for line in shipment.lines for lic in line.held_lics}
    assert held == allocation.held
    named = {(line.lic, line.line_no) for line in shipment.lines}
    assert named <= allocation.named, "a line's item never heard of it: its flags stay unlocked"
    settled = [line for line in shipment.lines if line.status in ("allocated", "shipped")]
    assert all(m.lot_id == f"{x.lic}-1" for x in settled for m in x.movements)
    if shipment.phase != "cancelled":
        for line in shipment.lines:
            key = (line.lic, line.line_no)
            if line.status != "shipped":
                assert (line.status == "allocated") == (key in allocation.held), line
            if line.status == "allocated":
                assert line.picks == allocation.picks[key], line
                terms = (shipment.office, shipment.kind, shipment.ship_on)
                assert allocation.terms[key] == terms, "it would ship on old terms"
    if shipment.phase == "allocated":
        assert all(line.problem is None for line in shipment.lines)
    if shipment.phase == "cancelled":
        assert allocation.held == set()
    if shipment.phase == "shipped":
        assert {(line.lic, line.line_no) for line in shipment.lines} <= allocation.shipped
    if shipment.phase == "allocated":
        assert all(line.status in ("allocated", "shipped") for line in shipment.lines)


@settings(max_examples=500, deadline=None)
@given(steps=_steps)
# A request and the picks update after it, allocated together; a request a cancel overrides
# before it is answered;
@example(steps=[_one("PLAIN"), PicksUpdate(message_id="?", shipment_id="S-1", line_no=1), _OK, _OK])
@example(steps=[_one("PLAIN"), _CANCEL, _OK, _OK])
# a ship request while allocating (refused at once, the allocation answered later);
@example(steps=[_one("PLAIN"), _SHIP, _OK])
# a second ship request while shipping, a second cancel while cancelling (own status each);
@example(steps=[_one("PLAIN"), _OK, _SHIP, _SHIP, _OK])
@example(steps=[_one("PLAIN"), _OK, _CANCEL, _CANCEL, _OK])
# documents waiting for the ship or the cancel, then decided in the order read.
@example(steps=[_one("PLAIN"), _OK, _SHIP, _SHIP, _one("MILK"), _CANCEL, _SHIP, _OK])
@example(steps=[_one("PLAIN"), _OK, _CANCEL, _one("CAM"), _one("MILK"), _OK])
def test_every_document_is_answered_by_exactly_one_status(
    steps: list[Upstream | tuple[int, bool]],
) -> None:
    """Correlation: each status lists in `answers` the documents it answers. Whatever is sent
    and in whatever order allocation's answers are read, every document appears in the
    `answers` of exactly one status, one published when it was read or later; a status under
    a document's own id answers that document; and no status answers nothing."""
    allocation = Allocation()
    shipment: Shipment | None = None
    queues: dict[str, deque[Command]] = {lic: deque() for lic in sorted(ITEMS)}
    statuses: list[Status] = []
    read_at: dict[str, int] = {}  # a document's message id: how many statuses came before it

    def take(decision: Decision) -> Shipment | None:
        for command in decision.commands:
            queues[command.lic].append(command)
        statuses.extend(decision.statuses)
        return decision.shipment

    for n, step in enumerate(steps):
        if isinstance(step, tuple):
            if any(queues.values()):
                waiting = [q for q in queues.values() if q]
                command = waiting[step[0] % len(waiting)].popleft()
                assert shipment is not None
                replies = allocation.decide(command, step[1])
                shipment = take(domain.answer(shipment, *replies, items=ITEMS))
            continue
        message = replace(step, message_id=f"m{n}")
        read_at[message.message_id] = len(statuses)
        shipment = take(domain.handle(shipment, message, ITEMS))
    while any(queues.values()):
        assert shipment is not None
        replies = allocation.decide(next(q for q in queues.values() if q).popleft(), True)
        shipment = take(domain.answer(shipment, *replies, items=ITEMS))

    answered_by: dict[str, int] = {}
    for index, status in enumerate(statuses):
        assert status.answers, f"{status.message_id} answers no document"
        for document in status.answers:
            assert document in read_at, f"{status.message_id} answers an unknown {document}"
            assert document not in answered_by, f"{document} is answered twice"
            assert index >= read_at[document], f"{document} answered before it was read"
            answered_by[document] = index
    own = {derived_id(document, "status"): document for document in read_at}
    for status in statuses:
        if status.message_id in own:
            assert own[status.message_id] in status.answers, "its own status does not answer it"
    # Once nothing is in flight, every document read has been answered: those without a
    # status of their own by a later one.
    assert set(answered_by) == set(read_at), "a document was never answered"
    if shipment is not None:
        assert (shipment.unanswered, shipment.waiting, shipment.waiting_documents) == ((), (), ())
