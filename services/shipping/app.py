"""Shipping's composition root: the outgoing shipment lifecycle."""

from __future__ import annotations

from pathlib import Path

from pydantic import TypeAdapter

from services.shipping import translate
from services.shipping.service import ShippingService
from shared.config import Settings
from shared.contracts.events import InventoryEvent
from shared.contracts.upstream import ShipmentMessage
from shared.service import ServiceRuntime, serve

SCHEMA = "shipping"
MIGRATIONS = Path(__file__).parent / "migrations"


def create_runtime(settings: Settings) -> ServiceRuntime:
    service = ShippingService(settings)
    # Documents and answers lock their shipments' rows: a batch of both topics takes both
    # topics' at once (`Route.locks`).
    runtime = ServiceRuntime(settings, schema=SCHEMA, migrations=MIGRATIONS, lock=service.lock)
    topics = settings.topics
    runtime.consume(
        name="shipping",
        topic=topics.shipments,
        adapter=TypeAdapter(ShipmentMessage),
        handler=service.handle_documents,
        locks=service.document_locks,
        payload_doc=ShipmentMessage,
        refuse=translate.refuse_shipment_messages(topics.status),
        description="Shipment requests, picks updates, ship requests and cancellations: the "
        "lifecycle requested → allocated → shipped, or cancelled.",
    )
    runtime.consume(
        name="shipping-events",
        topic=topics.events,
        adapter=TypeAdapter(InventoryEvent),
        handler=service.collect_answers,
        locks=service.answer_locks,
        payload_doc=InventoryEvent,
        description="Allocation's decisions: the item read model and the answers to shipment "
        "line commands, which move each shipment through its lifecycle.",
        accepts=("ItemUpserted", "LineAllocated", "LineReleased", "LineShipped", "CommandRejected"),
    )
    # Documents waiting for an item: decided when their wait is over.
    runtime.every(service.settle_every, service.settle_waiting)
    # A shipment waits while a command it sent is unanswered, or while a document of its waits
    # for an item; it has waited since its last phase change (sending commands is one), or
    # since that document was read: its own deadline less the wait (documents joining the
    # queue behind it touch the row's updated_at; the first waiting is the oldest).
    wait = float(settings.unknown_item_wait_seconds)
    runtime.watch_waiting(
        "SELECT least("
        " (SELECT min(s.updated_at) FROM shipments AS s WHERE s.shipment_id IN"
        "   (SELECT shipment_id FROM pending_commands)),"
        f" (SELECT min(awaited_until) - make_interval(secs => {wait!r}) FROM shipments"
        "   WHERE awaited_until IS NOT NULL))"
    )
    return runtime


def run() -> None:
    serve("shipping", create_runtime)
