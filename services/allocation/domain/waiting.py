"""Sale lines that wait for held lines to settle, rather than be refused short of stock.

A document of several receipt or return lines is received whole or not at all: each line's
stock is held until receiving confirms or cancels it (`holding.py`), normally a round trip
later. In a backlog (a service stalled or restarted with thousands of commands queued), a sale
queued behind such a receipt is decided while the receipt is still held, and would be refused
short of stock that is on hand and usable a moment later. So a sale line that is short while
held lines put stock at its office waits instead: `LineWaiting`, nothing published. When every
hold it awaits is settled, it is decided, once, as a line arriving then would be: allocated, or
refused short of stock as any line (it never waits again, so a stream of new holds cannot keep
it waiting). Lines waiting together are decided in the order they came.

Only a line that could simply be allocated later waits: a sale (a return to vendor names its
stock), with no picks named (a named lot or serial on a held line is refused as it says) and
not already allocated (a re-allocation is refused at once and the allocation stands).

A waiting line takes nothing meanwhile, and keeps its place: a later sale line that could wait,
at its office, waits behind it even with free stock, and is decided after it (`queued`), so a
backlog serves orders in the order they came (without that, a small later order took the free
stock and the earlier one, decided when the hold settled, could be refused). Its shipment waits
for its answer, as for any line being decided; a hold never settled (receiving stopped
half-way) keeps it waiting, and shows on `lotline_oldest_waiting_document_seconds`.
"""

from __future__ import annotations

from services.allocation.domain.draft import Draft
from services.allocation.domain.errors import ReasonCode, Refusal
from services.allocation.domain.model import AllocateLine, LineWaiting, WaitingLine


def awaited(draft: Draft, cmd: AllocateLine, refusal: Refusal) -> tuple[str, ...]:
    """The held lines (command ids) a line refused with `refusal` should wait for instead:
    those with stock at its office; none when it must be answered now."""
    if refusal.code is not ReasonCode.INSUFFICIENT_STOCK or not may_wait(draft, cmd):
        return ()
    lots = draft.lots
    return tuple(
        command_id
        for command_id, line in draft.holds.items()
        if any(
            (lot := lots.get(p.lot_id)) is not None and lot.office == cmd.office for p in line.picks
        )
    )


def queued(draft: Draft, cmd: AllocateLine) -> tuple[str, ...]:
    """What a line that could wait must wait for, free stock or not, because earlier sale lines
    at its office wait: their holds, so it is decided after them, in the order they came, and
    takes no stock they were waiting for. None when no line waits there."""
    if not draft.waiting or not may_wait(draft, cmd):
        return ()
    return tuple(dict.fromkeys(c for line in _ahead(draft, cmd) for c in line.awaits))


def _ahead(draft: Draft, cmd: AllocateLine) -> list[WaitingLine]:
    """The lines waiting at `cmd`'s office, in the order they came."""
    at = (line for line in draft.waiting.values() if line.command.office == cmd.office)
    return sorted(at, key=lambda line: line.seq)


def may_wait(draft: Draft, cmd: AllocateLine) -> bool:
    """Whether the line is one that waits: a sale naming no stock, not already allocated, and
    not one its sender refused (answered with that refusal at once)."""
    if cmd.kind != "sale" or cmd.lots or cmd.serials or cmd.refusal is not None:
        return False
    previous = draft.allocations.get((cmd.shipment_id, cmd.line_no))
    return previous is None or previous.status != "allocated"


def wait(draft: Draft, cmd: AllocateLine, awaits: tuple[str, ...]) -> tuple[LineWaiting]:
    """Keep the line to decide once `awaits` are settled. It names the item as any sale line
    does, so the item's tracking flags lock (R2)."""
    ahead = _ahead(draft, cmd)
    seq = max((line.seq for line in draft.waiting.values()), default=0) + 1
    draft.put_waiting(WaitingLine(command=cmd, awaits=awaits, seq=seq))
    draft.lock_item()
    holds = draft.holds
    held = tuple(sorted({(holds[c].shipment_id, holds[c].line_no) for c in awaits if c in holds}))
    return (
        LineWaiting(
            command_id=cmd.message_id,
            lic=cmd.lic,
            shipment_id=cmd.shipment_id,
            line_no=cmd.line_no,
            awaits=awaits,
            held=held,
            behind=tuple((w.command.shipment_id, w.command.line_no) for w in ahead),
        ),
    )


def due(draft: Draft) -> list[WaitingLine]:
    """The waiting lines none of whose holds is left, in the order they came."""
    if not draft.waiting:
        return []
    holds = draft.holds
    return sorted(
        (line for line in draft.waiting.values() if not any(c in holds for c in line.awaits)),
        key=lambda line: line.seq,
    )
