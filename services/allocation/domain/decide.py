"""The allocation core's entry points: `decide` one command, `decide_all` (or `decide_batch`,
which also lists the rows written) a sequence.

Pure and deterministic: no I/O, no clock (dates come from the commands), inputs never mutated.
A business refusal comes back as a `Decision` with the unchanged state and one
`CommandRejected`; anything else raised (`IllegalTransition`, `BrokenInvariant`) is a bug.
The one change a refusal makes (R2): a shipment line refused for a known item still is a sales
order naming it, so the item's tracking flags lock (`refused_state`), whether allocation refused
it or shipping did (an `AllocateLine` carrying shipping's own `refusal`, answered with it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from services.allocation.domain import waiting
from services.allocation.domain.adjusting import adjust
from services.allocation.domain.draft import Draft
from services.allocation.domain.errors import Refusal
from services.allocation.domain.holding import cancel, confirm
from services.allocation.domain.items import upsert_item
from services.allocation.domain.model import (
    AdjustStock,
    AllocateLine,
    BatchDecision,
    CancelHeld,
    Command,
    CommandRejected,
    ConfirmHeld,
    Decision,
    Event,
    LicState,
    QuarantineStock,
    ReceiveStock,
    ReleaseLine,
    ReturnFromCustomer,
    ShipLine,
    UpsertItem,
)
from services.allocation.domain.quarantine import quarantine
from services.allocation.domain.receiving import receive
from services.allocation.domain.returning import return_stock
from services.allocation.domain.shipping import allocate, release_line, ship


def decide(state: LicState, command: Command) -> Decision:
    """The decision on `command` given everything known about its LIC."""
    _same_lic(state, command)
    draft = Draft(state)
    try:
        events = _dispatch(draft, command)
    except Refusal as refusal:
        return Decision(state=refused_state(state, command), events=(rejected(command, refusal),))
    return Decision(state=draft.freeze(), events=events)


def decide_all(state: LicState, commands: Iterable[Command]) -> tuple[LicState, list[Event]]:
    """`decide` folded over `commands` in order: the final state and every event.

    Same answers as calling `decide` one command at a time, but one working copy serves the
    whole batch (a refused command is rolled back from the journal), so a batch costs what it
    changes rather than a copy of the LIC's rows per command.
    """
    batch = decide_batch(state, commands)
    return batch.state, batch.events


def decide_batch(
    state: LicState,
    commands: Iterable[Command],
    lots_elsewhere: Mapping[str, str] | None = None,
) -> BatchDecision:
    """`decide_all`, also telling which rows the batch wrote or deleted (`BatchDecision.touched`,
    read off the draft's journal) so saving costs what the batch changed. `lots_elsewhere`:
    inventory lot ids the batch's receipts name that other LICs already hold (id -> LIC)."""
    draft = Draft(state, lots_elsewhere)
    events: list[Event] = []
    for command in commands:
        _same_lic(state, command)
        mark = draft.savepoint()
        try:
            events.extend(_dispatch(draft, command))
        except Refusal as refusal:
            draft.rollback(mark)
            if isinstance(command, AllocateLine):
                draft.lock_item()  # as `refused_state`
            events.append(rejected(command, refusal))
    return BatchDecision(state=draft.freeze(), events=events, touched=draft.touched())


def refused_state(state: LicState, command: Command) -> LicState:
    """The state after refusing `command`: unchanged, but that a shipment line refused for a known
    item (no stock, say, or picks shipping refused itself) locks its tracking flags (R2). Shipping
    keeps the line as a sales order that names the item and may be picked again, and the flags
    cannot change under such a record.
    """
    item = state.item
    if isinstance(command, AllocateLine) and item is not None and not item.locked:
        return replace(state, item=replace(item, locked=True))
    return state


def _same_lic(state: LicState, command: Command) -> None:
    if command.lic != state.lic:
        raise ValueError(f"command for {command.lic} decided against the state of {state.lic}")


def _dispatch(draft: Draft, command: Command) -> tuple[Event, ...]:
    match command:
        case UpsertItem():
            return upsert_item(draft, command)
        case ReceiveStock():
            return receive(draft, command)
        case AllocateLine():
            return _allocate_or_wait(draft, command)
        case ReleaseLine():
            return release_line(draft, command)
        case ShipLine():
            return ship(draft, command)
        case AdjustStock():
            return adjust(draft, command)
        case ReturnFromCustomer():
            return return_stock(draft, command)
        case ConfirmHeld():
            return (*confirm(draft, command), *_decide_waiting(draft))
        case CancelHeld():
            return (*cancel(draft, command), *_decide_waiting(draft))
        case QuarantineStock():
            return quarantine(draft, command)


def _allocate_or_wait(draft: Draft, cmd: AllocateLine) -> tuple[Event, ...]:
    """Allocate the line; a sale short only while held lines hold stock at its office waits
    for them instead, and one behind such a waiting sale waits with it (`waiting.py`)."""
    queued = waiting.queued(draft, cmd)
    if queued:
        return waiting.wait(draft, cmd, queued)
    mark = draft.savepoint()
    try:
        return allocate(draft, cmd)
    except Refusal as refusal:
        draft.rollback(mark)  # (a re-allocation released the line's picks before refusing)
        awaits = waiting.awaited(draft, cmd, refusal)
        if not awaits:
            raise
        return waiting.wait(draft, cmd, awaits)


def _decide_waiting(draft: Draft) -> list[Event]:
    """A hold just settled: decide each waiting line with no hold left to wait for, in the
    order they came, as each would be decided arriving now (but never made to wait again)."""
    events: list[Event] = []
    for line in waiting.due(draft):
        draft.drop_waiting(line.command.message_id)
        mark = draft.savepoint()
        try:
            events.extend(allocate(draft, line.command))
        except Refusal as refusal:
            draft.rollback(mark)
            events.append(rejected(line.command, refusal))
    return events


def rejected(command: Command, refusal: Refusal) -> CommandRejected:
    """The refusal event, carrying the ids the command carried."""
    return CommandRejected(
        command_id=command.message_id,
        lic=command.lic,
        command_type=type(command).__name__,
        reason_code=refusal.code,
        reason=refusal.reason,
        offending=refusal.offending,
        shipment_id=getattr(command, "shipment_id", None),
        line_no=getattr(command, "line_no", None),
        adjustment_id=getattr(command, "adjustment_id", None),
        lot_id=getattr(command, "lot_id", None),
        quarantine_id=getattr(command, "quarantine_id", None),
    )
