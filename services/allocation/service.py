"""Allocation use cases: decide a batch of per-LIC commands; re-key upstream items/adjustments."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

import asyncpg
import structlog

from services.allocation import translate
from services.allocation.cache import StateCache
from services.allocation.domain import model as d
from services.allocation.domain.checks import MAX_SERIALS_PER_LINE
from services.allocation.domain.decide import decide_batch
from services.allocation.domain.model import LicState, Touched
from services.allocation.intake import HeldAdjustment, PgIntakeRepository, item_lock
from services.allocation.repository import HeldEvent, PgStateRepository
from shared.config import Settings
from shared.consumer import Inbound, UnitOfWork
from shared.contracts import commands as c
from shared.contracts import upstream as u
from shared.ids import namespaced
from shared.offload import compute
from shared.outbox import TYPE_HEADER
from shared.reasons import ReasonCode
from shared.serials import SerialEntryError, parse_serials

log = structlog.get_logger(__name__)

# What deciding a command costs, and each unit it moves, roughly in microseconds.
COMMAND_WEIGHT = 20
UNIT_WEIGHT = 20

# Held adjustments published per round of the periodic job: one may list 100,000 serials.
EXPIRE_AT_ONCE = 100


class AllocationService:
    def __init__(
        self,
        settings: Settings,
        repository: PgStateRepository | None = None,
        intake: PgIntakeRepository | None = None,
    ) -> None:
        self._topics = settings.topics
        self._repository = repository or PgStateRepository()
        self._intake = intake or PgIntakeRepository()
        self._max_span = settings.max_serial_span
        self._wait = settings.unknown_item_wait_seconds
        self.cache = StateCache(settings.allocation_cache_rows)

    @property
    def expire_every(self) -> float:
        """Seconds between looks for held adjustments whose wait is over: a tenth of the wait,
        0.25 to 5 s (as receiving looks for its held receipts)."""
        return min(5.0, max(0.25, self._wait / 10))

    def forget_states(self) -> None:
        """On partition assignment: another process may have decided our LICs meanwhile."""
        self.cache.clear()

    async def decide_batch(self, uow: UnitOfWork, batch: list[Inbound[Any]]) -> None:
        """Take every LIC of the batch from the cache or load it at once, decide each LIC's
        commands in partition order on one working copy, write what changed."""
        by_lic: dict[str, list[Any]] = defaultdict(list)
        for inbound in batch:
            by_lic[inbound.message.lic].append(inbound.message)
        before, missing = self.cache.take(by_lic)
        if missing:
            before.update(await self._repository.load(uow.conn, missing))
        named = _lots_named(by_lic)
        lot_ids = sorted(set().union(*named.values()))
        owners = await self._repository.lot_owners(uow.conn, lot_ids) if lot_ids else {}
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

        def decide() -> None:
            for lic, commands in by_lic.items():
                elsewhere = {
                    lot_id: owner
                    for lot_id in named.get(lic, ())
                    if (owner := owners.get(lot_id, lic)) != lic
                }
                decided = decide_batch(
                    before[lic], map(translate.to_domain, commands), elsewhere or None
                )
                after[lic], events, touched[lic] = decided.state, decided.events, decided.touched
                # A lot this LIC just made is held for the LICs decided after it (one write of
                # the batch must not name a lot id twice).
                for lot_id in named.get(lic, ()):
                    if lot_id not in owners and lot_id in decided.state.lots:
                        owners[lot_id] = lic
                self._publish(uow, lic, commands, events, kept)

        await compute(decide, weight=sum(_weight(before[lic], cs) for lic, cs in by_lic.items()))
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
        numbering: dict[str, int] = {}  # (a Counter's missing keys cost a Python call each)
        topic = self._topics.events
        emit = uow.outbox.emit
        for event in events:
            if type(event) is d.HeldSettled:
                self._settle_held(uow, lic, event, kept)
                continue
            command_id = event.command_id
            if type(event) is d.LineWaiting:
                _log_waiting(event)
                continue
            # A waiting line decided now that its holds settled came in an earlier batch: its
            # events need nothing of the wire command (`translate.to_wire`).
            command = by_id.get(command_id)
            if type(event) is d.LineHeld:
                # The kept event gets the id it would have had unheld.
                due = translate.to_wire(event.decided, f"{command_id}#0", command)
                kept[command_id] = HeldEvent.of(due)
                message_id = f"{command_id}#held"
            else:
                n = numbering.get(command_id, 0)
                numbering[command_id] = n + 1
                message_id = f"{command_id}#{n}"
                if type(event) is d.InventoryAdjusted and event.warnings:
                    _log_warnings(event)
            emit(topic, lic, translate.to_wire(event, message_id, command))

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

    async def item_locks(self, _conn: asyncpg.Connection, items: list[u.UpsertItem]) -> list[str]:
        """The intake locks `rekey_items` takes: every item's (`Route.locks`)."""
        return [item_lock(m.lic) for m in items]

    async def adjustment_locks(
        self, conn: asyncpg.Connection, adjustments: list[u.AdjustInventory | u.QuarantineStock]
    ) -> list[str]:
        """The intake locks `rekey_adjustments` may take: those of the items it does not know
        (an item known stays known, so it never locks one; `Route.locks`)."""
        if self._wait <= 0:
            return []
        lics = {m.lic for m in adjustments}
        return [item_lock(lic) for lic in sorted(lics - await self._intake.known(conn, lics))]

    async def rekey_items(self, uow: UnitOfWork, batch: list[Inbound[u.UpsertItem]]) -> None:
        """Intake: upstream keys `inventory.items` as it likes; commands are keyed by LIC. The
        adjustments held for an item follow its (first) UpsertItem, in the order held, so that
        allocation knows the item when it decides them."""
        lics = {inbound.message.lic for inbound in batch}
        # Locked before reading what is held: an adjustment holding itself for one of these
        # LICs meanwhile is either seen here or sees the LIC passed (`intake` module).
        await self._intake.lock_items(uow.conn, lics)
        held: dict[str, list[HeldAdjustment]] = defaultdict(list)
        for adjustment in await self._intake.pass_items(uow.conn, lics):
            held[adjustment.lic].append(adjustment)
        for inbound in batch:
            m = inbound.message
            command = m.model_copy(update={"message_id": namespaced("item", m.message_id)})
            uow.outbox.emit(self._topics.commands, m.lic, command)
            self._publish_held(uow, held.pop(m.lic, []), "released")

    async def rekey_adjustments(
        self, uow: UnitOfWork, batch: list[Inbound[u.AdjustInventory | u.QuarantineStock]]
    ) -> None:
        """Intake: each adjustment becomes its LIC's `AdjustStock` command, each quarantine its
        `QuarantineStock`. One for an item the intake has not passed on yet is held (see
        `rekey_items`, `expire_held`), unless the wait is 0. One whose serials do not parse
        carries its refusal, which allocation answers in the LIC's order: never before an
        adjustment read earlier."""
        commands: list[c.AdjustStock | c.QuarantineStock] = []
        for inbound in batch:
            m = inbound.message
            if isinstance(m, u.QuarantineStock):
                commands.append(_quarantine_command(m))
                continue
            refusal: c.LineRefusal | None = None
            serials: list[str] = []
            try:
                if m.serials:
                    serials = parse_serials(
                        # as many as a line may carry: its event lists a movement per serial
                        m.serials,
                        max_span=self._max_span,
                        max_serials=MAX_SERIALS_PER_LINE,
                    )
            except SerialEntryError as exc:
                refusal = c.LineRefusal(
                    reason_code=ReasonCode(exc.code), reason=exc.reason, offending=exc.offending
                )
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
                refusal=refusal,
            )
            commands.append(command)
        unknown = await self._unknown_items(uow, {m.lic for m in commands})
        await self._intake.hold(uow.conn, [a for a in commands if a.lic in unknown])
        for adjust in commands:
            if adjust.lic in unknown:
                log.info(
                    "allocation.adjustment_held",
                    command_id=adjust.message_id,
                    command_type=adjust.type,
                    lic=adjust.lic,
                    wait_seconds=self._wait,
                )
            else:
                uow.outbox.emit(self._topics.commands, adjust.lic, adjust)

    async def expire_held(self, uow: UnitOfWork) -> bool:
        """The periodic job: publish, in the order held, the adjustments whose item has not
        come within the wait. Allocation refuses them UNKNOWN_ITEM, as it would have at once
        (or decides them, if the item reached it by another way). True: a full round, more may
        be due (`ServiceRuntime.every` runs the next one at once: at a round per interval, a
        backlog of thousands went out at about 33 a second)."""
        expired = await self._intake.expire(uow.conn, self._wait, EXPIRE_AT_ONCE)
        self._publish_held(uow, expired, "expired")
        return len(expired) >= EXPIRE_AT_ONCE

    async def _unknown_items(self, uow: UnitOfWork, lics: set[str]) -> set[str]:
        """The LICs the intake has not passed an UpsertItem for (none when the wait is 0),
        locked: read again under their locks, so that an item passed from now on finds the
        adjustments held (`rekey_items`)."""
        if self._wait <= 0 or not lics:
            return set()
        unknown = lics - await self._intake.known(uow.conn, lics)
        if unknown:
            await self._intake.lock_items(uow.conn, unknown)
            unknown -= await self._intake.known(uow.conn, unknown)
        return unknown

    def _publish_held(
        self, uow: UnitOfWork, held: list[HeldAdjustment], how: Literal["released", "expired"]
    ) -> None:
        """Publish held commands (adjustments, quarantines) as encoded when held, keyed by
        their LIC."""
        for adjustment in held:
            uow.outbox.emit_raw(
                self._topics.commands,
                adjustment.lic.encode(),
                adjustment.command,
                {TYPE_HEADER: adjustment.command_type},
            )
            log.info(
                f"allocation.adjustment_{how}", command_id=adjustment.command_id, lic=adjustment.lic
            )


def _log_waiting(event: d.LineWaiting) -> None:
    """A sale line not answered yet: it waits for held lines to settle (`domain/waiting.py`)."""
    log.info(
        "allocation.line_waiting",
        command_id=event.command_id,
        lic=event.lic,
        shipment_id=event.shipment_id,
        line_no=event.line_no,
        held_lines=[f"{shipment_id} line {line_no}" for shipment_id, line_no in event.held],
        behind=[f"{shipment_id} line {line_no}" for shipment_id, line_no in event.behind],
    )


def _log_warnings(event: d.InventoryAdjusted) -> None:
    """An adjustment accepted with warnings, for the log (as receiving logs a receipt's): the
    codes and what they concern; each sentence is in the answer."""
    log.warning(
        "allocation.adjustment_posted_with_warnings",
        command_id=event.command_id,
        adjustment_id=event.adjustment_id,
        lic=event.lic,
        office=event.office,
        warnings=[
            {
                "code": w.code,
                **{
                    name: str(value)
                    for name in ("serial", "mfr_lot", "expires_on", "lot_id", "office")
                    if (value := getattr(w, name)) is not None
                },
            }
            for w in event.warnings
        ],
    )


def _quarantine_command(m: u.QuarantineStock) -> c.QuarantineStock:
    """The LIC's command for an upstream quarantine (its id namespaced as an adjustment's)."""
    return c.QuarantineStock(
        message_id=namespaced("quarantine", m.message_id),
        occurred_at=m.occurred_at,
        lic=m.lic,
        quarantine_id=m.quarantine_id,
        mfr_lot=m.mfr_lot,
        lot_id=m.lot_id,
        office=m.office,
        quarantined=m.quarantined,
        reason=m.reason,
        quarantined_on=m.quarantined_on or m.occurred_at.date(),
        before_receipt=m.before_receipt,
    )


def _weight(state: LicState, commands: list[Any]) -> int:
    """About how many microseconds deciding `commands` on `state` takes (`shared.offload`):
    a serialized item's commands move a unit per serial (a 100,000-unit line takes seconds)."""
    if state.item is None or not state.item.serialized:
        return COMMAND_WEIGHT * len(commands)
    weight = 0
    for m in commands:
        units = abs(int(getattr(m, "quantity", 0)))
        weight += COMMAND_WEIGHT + UNIT_WEIGHT * min(units, MAX_SERIALS_PER_LINE)
    return weight


def _lots_named(by_lic: dict[str, list[Any]]) -> dict[str, set[str]]:
    """Per LIC, the inventory lot ids its receipts name. Lot ids are unique across items, and
    a LIC's state knows only its own: `decide_batch` tells each LIC's decision those that
    another LIC holds, in the database or made earlier in the batch."""
    named: dict[str, set[str]] = {}
    for lic, commands in by_lic.items():
        for m in commands:
            if isinstance(m, c.ReceiveStock):
                named.setdefault(lic, set()).add(m.lot_id)
    return named
