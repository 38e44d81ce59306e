"""Allocation use cases: decide a batch of per-LIC commands; re-key upstream items/adjustments."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import structlog

from services.allocation import translate
from services.allocation.cache import StateCache
from services.allocation.domain import model as d
from services.allocation.domain.checks import MAX_SERIALS_PER_LINE
from services.allocation.domain.decide import decide_batch
from services.allocation.domain.model import LicState, Touched
from services.allocation.repository import HeldEvent, PgStateRepository
from shared.config import Settings
from shared.consumer import Inbound, UnitOfWork
from shared.contracts import commands as c
from shared.contracts import events as e
from shared.contracts import upstream as u
from shared.ids import derived_id, namespaced
from shared.reasons import ReasonCode
from shared.serials import SerialEntryError, parse_serials

log = structlog.get_logger(__name__)


class AllocationService:
    def __init__(self, settings: Settings, repository: PgStateRepository | None = None) -> None:
        self._topics = settings.topics
        self._repository = repository or PgStateRepository()
        self._max_span = settings.max_serial_span
        self.cache = StateCache(settings.allocation_cache_rows)

    def forget_states(self) -> None:
        """On partition assignment: another process may have decided our LICs meanwhile."""
        self.cache.clear()

    async def decide_batch(self, uow: UnitOfWork, batch: list[Inbound[Any]]) -> None:
        """Take every LIC of the batch from the cache or load it at once, decide each LIC's
        commands in partition order on one working copy, write what changed."""
        by_lic: dict[str, list[Any]] = defaultdict(list)
        for inbound in batch:
            by_lic[inbound.message.lic].append(inbound.message)
        before, missing = self.cache.lookup(by_lic)
        if missing:
            before.update(await self._repository.load(uow.conn, missing))
        elsewhere = await self._lots_elsewhere(uow, by_lic)
        # The kept events of the held lines this batch settles (taken whether or not the
        # decision then agrees: a refused settle finds none), and those it holds.
        kept = await self._repository.take_held_events(
            uow.conn,
            [
                m.command_id
                for i in batch
                if isinstance(m := i.message, c.ConfirmHeld | c.CancelHeld)
            ],
        )
        after: dict[str, LicState] = {}
        touched: dict[str, Touched] = {}  # rows each LIC's batch wrote: all `save` compares
        for lic, commands in by_lic.items():
            decided = decide_batch(
                before[lic], map(translate.to_domain, commands), elsewhere.get(lic)
            )
            after[lic], events, touched[lic] = decided.state, decided.events, decided.touched
            self._publish(uow, lic, commands, events, kept)
        await self._repository.keep_held_events(uow.conn, kept)
        await self._repository.save(uow.conn, before, after, touched)
        uow.after_commit(lambda: self.cache.store(after))

    def _publish(
        self,
        uow: UnitOfWork,
        lic: str,
        commands: list[Any],
        events: list[d.Event],
        kept: dict[str, HeldEvent],
    ) -> None:
        """Put one LIC's events in the outbox, in decision order, each with an id derived from
        its command's; a held line's event goes into `kept` instead, and a settled one's out."""
        by_id = {c.message_id: c for c in commands}
        numbering: Counter[str] = Counter()
        for event in events:
            if isinstance(event, d.HeldSettled):
                self._settle_held(uow, lic, event, kept)
                continue
            command = by_id[event.command_id]
            if isinstance(event, d.LineHeld):
                # The kept event gets the id it would have had unheld.
                due = translate.to_wire(event.decided, f"{event.command_id}#0", command)
                kept[event.command_id] = HeldEvent.of(due)
                message_id = f"{event.command_id}#held"
            else:
                n = numbering[event.command_id]
                numbering[event.command_id] += 1
                message_id = f"{event.command_id}#{n}"
            uow.outbox.emit(self._topics.events, lic, translate.to_wire(event, message_id, command))

    def _settle_held(
        self, uow: UnitOfWork, lic: str, settled: d.HeldSettled, kept: dict[str, HeldEvent]
    ) -> None:
        """A confirmed line's kept event is published now, in its LIC's order, as if decided
        now; a cancelled line's is dropped."""
        held = kept.pop(settled.held_command_id, None)
        if held is None:  # the hold and its event are written together: never, but say so
            log.error("allocation.held_event_missing", command_id=settled.held_command_id)
        elif settled.confirmed:
            if settled.next_serial is not None:
                held = held.with_next_serial(settled.next_serial)
            uow.outbox.emit_raw(self._topics.events, lic.encode(), held.payload, held.headers)

    async def _lots_elsewhere(
        self, uow: UnitOfWork, by_lic: dict[str, list[Any]]
    ) -> dict[str, dict[str, str]]:
        """Per LIC, the inventory lot ids its receipts name that another LIC already holds:
        lot ids are unique across items, and a LIC's state knows only its own."""
        named = {
            m.lot_id: lic
            for lic, commands in by_lic.items()
            for m in commands
            if isinstance(m, c.ReceiveStock)
        }
        if not named:
            return {}
        owners = await self._repository.lot_owners(uow.conn, list(named))
        elsewhere: dict[str, dict[str, str]] = {}
        for lot_id, owner in owners.items():
            if owner != named[lot_id]:
                elsewhere.setdefault(named[lot_id], {})[lot_id] = owner
        return elsewhere

    async def rekey_items(self, uow: UnitOfWork, batch: list[Inbound[u.UpsertItem]]) -> None:
        """Intake: upstream keys `inventory.items` as it likes; commands are keyed by LIC."""
        for inbound in batch:
            m = inbound.message
            command = m.model_copy(update={"message_id": namespaced("item", m.message_id)})
            uow.outbox.emit(self._topics.commands, m.lic, command)

    async def rekey_adjustments(
        self, uow: UnitOfWork, batch: list[Inbound[u.AdjustInventory]]
    ) -> None:
        for inbound in batch:
            m = inbound.message
            try:
                serials = (
                    parse_serials(
                        # as many as a line may carry: its event lists a movement per serial
                        m.serials,
                        max_span=self._max_span,
                        max_serials=MAX_SERIALS_PER_LINE,
                    )
                    if m.serials
                    else []
                )
            except SerialEntryError as exc:
                uow.outbox.emit(self._topics.events, m.lic, _refusal(m, exc))
                continue
            command = c.AdjustStock(
                message_id=namespaced("adjustment", m.message_id),
                occurred_at=m.occurred_at,
                lic=m.lic,
                adjustment_id=m.adjustment_id,
                office=m.office,
                kind=m.kind,
                quantity=m.quantity,
                unit_cost=m.unit_cost,
                lots=m.lots,
                serials=serials,
                reason=m.reason,
                adjusted_on=m.adjusted_on or m.occurred_at.date(),
            )
            uow.outbox.emit(self._topics.commands, m.lic, command)


def _refusal(m: u.AdjustInventory, exc: SerialEntryError) -> e.CommandRejected:
    """The intake's own refusal, with the ids a decided command's refusal would carry (any
    upstream message id, however long, fits them)."""
    command_id = namespaced("adjustment", m.message_id)
    return e.CommandRejected(
        message_id=derived_id(command_id, "rejected"),
        lic=m.lic,
        command_id=command_id,
        command_type=m.type,
        adjustment_id=m.adjustment_id,
        reason_code=ReasonCode(exc.code),
        reason=exc.reason,
        offending=exc.offending,
    )
