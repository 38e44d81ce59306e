"""Receiving's composition root: whole incoming documents in, per-LIC commands and status out."""

from __future__ import annotations

from pathlib import Path

from pydantic import TypeAdapter

from services.receiving import translate
from services.receiving.repository import arrival_locks
from services.receiving.service import ReceivingService
from shared.config import Settings
from shared.contracts.events import InventoryEvent
from shared.contracts.upstream import ReceiptMessage, ShipmentReceived
from shared.service import ServiceRuntime, serve

SCHEMA = "receiving"
MIGRATIONS = Path(__file__).parent / "migrations"


def create_runtime(settings: Settings) -> ServiceRuntime:
    runtime = ServiceRuntime(settings, schema=SCHEMA, migrations=MIGRATIONS)
    service = ReceivingService(settings)
    topics = settings.topics
    runtime.consume(
        name="receiving",
        topic=topics.receipts,
        adapter=TypeAdapter(ReceiptMessage),
        handler=service.receive_documents,
        payload_doc=ShipmentReceived,
        refuse=translate.refuse_receipts(topics.status),
        # A newer version that fails its schema still supersedes the held older ones.
        on_refused=service.supersede_refused,
        locks=service.receipt_locks,
        description="Whole receipts (purchase, production, customer return): checked line by "
        "line, refused as a whole or split into per-LIC commands.",
    )
    runtime.consume(
        name="receiving-events",
        topic=topics.events,
        adapter=TypeAdapter(InventoryEvent),
        handler=service.collect_answers,
        locks=arrival_locks,
        payload_doc=InventoryEvent,
        description="Allocation's decisions: the item read model and the answers to receipt "
        "lines, which settle each document's status.",
        accepts=(
            "ItemUpserted",
            "StockReceived",
            "StockReturned",
            "LineHeld",
            "CommandRejected",
        ),
    )
    # Receipts held for items not known yet: settled when their wait is over.
    runtime.every(service.settle_every, service.settle_expired)
    # A receipt waits while it is held, or while any of its lines waits for an answer (pending,
    # or confirmed after being held; the partial indexes find both).
    runtime.watch_waiting(
        "SELECT least("
        " (SELECT min(r.created_at) FROM receipts AS r WHERE r.message_id IN"
        "   (SELECT message_id FROM receipt_lines WHERE status IN ('pending', 'confirmed'))),"
        " (SELECT min(held_at) FROM held_receipts WHERE status = 'held'))"
    )
    return runtime


def run() -> None:
    serve("receiving", create_runtime)
