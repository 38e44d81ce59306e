"""Shipping's use cases: decide upstream shipment messages; apply allocation's answers.

Both run inside the consumer's unit of work, with the shipments they touch locked, so a
shipment's state, its commands and its statuses are committed together. Each writes back only
what its batch changed, compared with what it loaded.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from services.shipping import domain, model, translate
from services.shipping.repository import PgShippingRepository
from shared.config import Settings
from shared.consumer import Inbound, Locker, UnitOfWork
from shared.contracts import events as e
from shared.contracts.upstream import ShipmentPicksUpdated, ShipmentRequested
from shared.offload import compute, entry_weight

# What a movement of an answer costs to apply and answer, roughly in microseconds.
MOVE_WEIGHT = 10


def document_weight(message: Any) -> int:
    """About how many microseconds deciding an upstream shipment message takes
    (`shared.offload`): reading its picks, scans above all."""
    if isinstance(message, ShipmentRequested):
        return sum(entry_weight(line, line.quantity) for line in message.lines)
    if isinstance(message, ShipmentPicksUpdated):
        return entry_weight(message)
    return 1


class ShippingService:
    def __init__(self, settings: Settings, repository: PgShippingRepository | None = None) -> None:
        self._topics = settings.topics
        self._repository = repository or PgShippingRepository()
        self._limits = model.Limits(max_span=settings.max_serial_span)

    @property
    def lock(self) -> Locker:
        """Takes the shipments the routes declare (`Route.locks`)."""
        return self._repository.lock

    async def document_locks(self, _conn: asyncpg.Connection, documents: list[Any]) -> list[str]:
        """The shipments `handle_documents` locks: its documents' (`Route.locks`)."""
        return [document.shipment_id for document in documents]

    async def answer_locks(self, _conn: asyncpg.Connection, events: list[Any]) -> list[str]:
        """The shipments `collect_answers` may lock: those its events answer, whose commands
        carry their shipment id (`Route.locks`)."""
        return [sid for event in events if (sid := getattr(event, "shipment_id", None))]

    async def handle_documents(self, uow: UnitOfWork, batch: list[Inbound[Any]]) -> None:
        """Requests, picks updates, ship requests and cancellations, in partition order."""
        messages = [translate.upstream(inbound.message) for inbound in batch]
        lics = {line.lic for m in messages if isinstance(m, model.Request) for line in m.lines}
        loaded = await self._repository.load(uow.conn, [m.shipment_id for m in messages], lics)
        shipments = dict(loaded.shipments)
        items = loaded.items
        changed: dict[str, model.Shipment] = {}

        def decide() -> None:
            for message in messages:
                decision = domain.handle(
                    shipments.get(message.shipment_id), message, items, self._limits
                )
                self._apply(uow, decision, shipments, changed)

        await compute(decide, weight=sum(document_weight(i.message) for i in batch))
        await self._repository.save(uow.conn, loaded.shipments, changed.values())

    async def collect_answers(self, uow: UnitOfWork, batch: list[Inbound[Any]]) -> None:
        """Keep the item read model; apply answers to the shipments waiting for them."""
        events: list[e.Event] = [inbound.message for inbound in batch]
        items = [translate.item(ev) for ev in events if isinstance(ev, e.ItemUpserted)]
        if items:
            await self._repository.upsert_items(uow.conn, items)
        answers = [a for a in map(translate.answer, events) if a is not None]
        if not answers:
            return
        loaded = await self._repository.load_awaiting(uow.conn, [a.command_id for a in answers])
        if not loaded:
            return
        shipments = dict(loaded)
        owner = {p.command_id: s.shipment_id for s in shipments.values() for p in s.pending}
        replies: dict[str, list[model.Answer]] = {}
        for reply in answers:
            if reply.command_id in owner:
                replies.setdefault(owner[reply.command_id], []).append(reply)
        # Documents waiting for a phase these answers may settle are decided then: picks are
        # read and ship requests checked against the items (rarely any: not worth a statement).
        waiting = [sid for sid in replies if shipments[sid].queued]
        flags = await self._repository.load_items(uow.conn, waiting) if waiting else {}
        changed: dict[str, model.Shipment] = {}

        def decide() -> None:
            for shipment_id, theirs in replies.items():
                decision = domain.answer(
                    shipments[shipment_id], *theirs, items=flags, limits=self._limits
                )
                self._apply(uow, decision, shipments, changed)

        # About 10 µs a movement: a 100,000-serial line's answer and status take a second.
        moved = sum(len(getattr(ev, "movements", ())) for ev in events)
        await compute(decide, weight=MOVE_WEIGHT * moved)
        await self._repository.save(uow.conn, loaded, changed.values())

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
