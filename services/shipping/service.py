"""Shipping's use cases: decide upstream shipment messages; apply allocation's answers.

Both run inside the consumer's unit of work, with the shipments they touch locked, so a
shipment's state, its commands and its statuses are committed together. Each writes back only
what its batch changed, compared with what it loaded.

A document with scans of an item shipping does not know yet waits for it (`domain.resume`),
publishing nothing, as receiving holds a receipt: it is decided in the transaction that stores
the item (`collect_answers`: one held by the same consumer batch too, since the batch's
documents are handled before its events, in its transaction), or by a periodic job
(`settle_waiting`) once its own wait (LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS from when it was read)
is over, or once its items are known if their arrival committed while it was being held by
another process (neither transaction then saw the other: the job catches it within
`settle_every`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg
import structlog

from services.shipping import domain, model, translate
from services.shipping.repository import PgShippingRepository
from shared.config import Settings
from shared.consumer import Inbound, Locker, UnitOfWork
from shared.contracts import events as e
from shared.contracts.upstream import ShipmentPicksUpdated, ShipmentRequested
from shared.offload import compute, entry_weight

log = structlog.get_logger(__name__)

# What a movement of an answer costs to apply and answer, roughly in microseconds.
MOVE_WEIGHT = 10
# Shipments whose documents waited for items decided per round of the periodic job.
SETTLE_AT_ONCE = 100


def document_weight(message: Any) -> int:
    """About how many microseconds deciding an upstream shipment message takes
    (`shared.offload`): reading its picks, scans above all."""
    if isinstance(message, ShipmentRequested):
        return sum(entry_weight(line, line.quantity) for line in message.lines)
    if isinstance(message, ShipmentPicksUpdated):
        return entry_weight(message)
    return 1


def waiting_weight(shipments: Iterable[model.Shipment]) -> int:
    """About how many microseconds deciding the shipments' waiting documents takes: reading
    the picks of those kept unread."""
    weight = 0
    for shipment in shipments:
        for document in shipment.queued:
            if isinstance(document, model.Request):
                weight += sum(entry_weight(x.entry, x.quantity) for x in document.lines)
            elif isinstance(document, model.PicksUpdate):
                weight += entry_weight(document.entry)
    return weight


class ShippingService:
    def __init__(self, settings: Settings, repository: PgShippingRepository | None = None) -> None:
        self._topics = settings.topics
        self._repository = repository or PgShippingRepository()
        self._limits = model.Limits(max_span=settings.max_serial_span)
        self._wait = settings.unknown_item_wait_seconds

    @property
    def settle_every(self) -> float:
        """Seconds between looks for documents whose wait for items is over: a tenth of the
        wait, 0.25 to 5 s (as receiving's)."""
        return min(5.0, max(0.25, self._wait / 10))

    @property
    def lock(self) -> Locker:
        """Takes the shipments the routes declare (`Route.locks`)."""
        return self._repository.lock

    async def document_locks(self, _conn: asyncpg.Connection, documents: list[Any]) -> list[str]:
        """The shipments `handle_documents` locks: its documents' (`Route.locks`)."""
        return [document.shipment_id for document in documents]

    async def answer_locks(self, conn: asyncpg.Connection, events: list[Any]) -> list[str]:
        """The shipments `collect_answers` may lock: those its events answer, whose commands
        carry their shipment id, and those waiting for the items arriving (`Route.locks`)."""
        ids = [sid for event in events if (sid := getattr(event, "shipment_id", None))]
        arrived = [event.lic for event in events if isinstance(event, e.ItemUpserted)]
        if arrived:
            ids += await self._repository.awaiting_items(conn, arrived)
        return ids

    async def handle_documents(self, uow: UnitOfWork, batch: list[Inbound[Any]]) -> None:
        """Requests, picks updates, ship requests and cancellations, in partition order."""
        messages = [translate.upstream(inbound.message) for inbound in batch]
        lics = {line.lic for m in messages if isinstance(m, model.Request) for line in m.lines}
        loaded = await self._repository.load(uow.conn, [m.shipment_id for m in messages], lics)
        shipments = dict(loaded.shipments)
        items = loaded.items
        changed: dict[str, model.Shipment] = {}

        may_wait = self._wait > 0

        def decide() -> None:
            for message in messages:
                decision = domain.handle(
                    shipments.get(message.shipment_id),
                    message,
                    items,
                    self._limits,
                    may_wait=may_wait,
                )
                self._apply(uow, decision, shipments, changed)

        await compute(decide, weight=sum(document_weight(i.message) for i in batch))
        await self._repository.save(uow.conn, loaded.shipments, changed.values(), self._wait)
        for shipment in changed.values():
            before = loaded.shipments.get(shipment.shipment_id)
            if shipment.awaited and (before is None or not before.awaited):
                log.info(
                    "shipping.document_held",
                    shipment_id=shipment.shipment_id,
                    awaited=list(shipment.awaited),
                    wait_seconds=self._wait,
                )

    async def collect_answers(self, uow: UnitOfWork, batch: list[Inbound[Any]]) -> None:
        """Keep the item read model (deciding the documents waiting for an item that arrives);
        apply answers to the shipments waiting for them."""
        events: list[e.Event] = [inbound.message for inbound in batch]
        items = [translate.item(ev) for ev in events if isinstance(ev, e.ItemUpserted)]
        if items:
            await self._repository.upsert_items(uow.conn, items)
        answers = [a for a in map(translate.answer, events) if a is not None]
        if not answers and not items:
            return
        loaded = await self._repository.load_awaiting(
            uow.conn, [a.command_id for a in answers], [item.lic for item in items]
        )
        if not loaded:
            return
        shipments = dict(loaded)
        owner = {p.command_id: s.shipment_id for s in shipments.values() for p in s.pending}
        replies: dict[str, list[model.Answer]] = {}
        for reply in answers:
            if reply.command_id in owner:
                replies.setdefault(owner[reply.command_id], []).append(reply)
        # Documents waiting for a phase these answers may settle, or for an item arriving, are
        # decided then: picks are read and ship requests checked against the items (rarely
        # any: not worth a statement).
        waiting = [sid for sid, shipment in shipments.items() if shipment.queued]
        flags = await self._repository.load_items(uow.conn, waiting) if waiting else {}
        arrived = {item.lic for item in items}
        may_wait = self._wait > 0
        changed: dict[str, model.Shipment] = {}

        def decide() -> None:
            for shipment_id, theirs in replies.items():
                decision = domain.answer(
                    shipments[shipment_id],
                    *theirs,
                    items=flags,
                    limits=self._limits,
                    may_wait=may_wait,
                )
                self._apply(uow, decision, shipments, changed)
            # After the answers (which decide what waits when they apply: then only documents
            # whose items are still unknown wait again), those still waiting for an item that
            # arrived are decided, its scans read against it as stored.
            for shipment_id in waiting:
                if arrived.intersection(shipments[shipment_id].awaited):
                    decision = domain.resume(
                        shipments[shipment_id], flags, self._limits, may_wait=may_wait
                    )
                    self._apply(uow, decision, shipments, changed)

        # About 10 µs a movement: a 100,000-serial line's answer and status take a second.
        moved = sum(len(getattr(ev, "movements", ())) for ev in events)
        weight = MOVE_WEIGHT * moved + waiting_weight(shipments[sid] for sid in waiting)
        await compute(decide, weight=weight)
        await self._repository.save(uow.conn, loaded, changed.values(), self._wait)

    async def settle_waiting(self, uow: UnitOfWork) -> bool:
        """The periodic job: decide the documents waiting for items that are now known, or
        whose own wait is over (their lines whose item is still unknown refused
        `UNKNOWN_ITEM`); a document behind one may wait in turn until its own is over.
        True: a full round, more may be due (`ServiceRuntime.every` runs the next at once)."""
        due = await self._repository.due(uow.conn, SETTLE_AT_ONCE)
        if not due:
            return False
        loaded = await self._repository.load(uow.conn, due)
        shipments = dict(loaded.shipments)
        changed: dict[str, model.Shipment] = {}
        may_wait = self._wait > 0

        def decide() -> None:
            # Whose wait is over is each document's own (`Shipment.overdue`, as loaded).
            for shipment_id in due:
                decision = domain.resume(
                    shipments[shipment_id], loaded.items, self._limits, may_wait=may_wait
                )
                self._apply(uow, decision, shipments, changed)

        await compute(decide, weight=waiting_weight(loaded.shipments.values()))
        await self._repository.save(uow.conn, loaded.shipments, changed.values(), self._wait)
        for shipment_id, expired in due.items():
            log.info(
                "shipping.document_released",
                shipment_id=shipment_id,
                how="expired" if expired else "items_known",
            )
        return len(due) >= SETTLE_AT_ONCE

    def _apply(
        self,
        uow: UnitOfWork,
        decision: model.Decision,
        shipments: dict[str, model.Shipment],
        changed: dict[str, model.Shipment],
    ) -> None:
        if decision.changed and decision.shipment is not None:
            shipments[decision.shipment.shipment_id] = decision.shipment
            changed[decision.shipment.shipment_id] = decision.shipment
        for command in decision.commands:
            uow.outbox.emit(self._topics.commands, command.lic, translate.command(command))
        for status in decision.statuses:
            uow.outbox.emit(self._topics.status, status.shipment_id, translate.status(status))
