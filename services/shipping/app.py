"""Shipping's composition root: the outgoing shipment lifecycle."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import TypeAdapter

from services.shipping.service import ShippingService
from shared import logs
from shared.config import Settings, from_env
from shared.contracts.events import InventoryEvent
from shared.contracts.upstream import ShipmentMessage
from shared.service import ServiceRuntime, run_until_signalled

SCHEMA = "shipping"
MIGRATIONS = Path(__file__).parent / "migrations"


def create_runtime(settings: Settings) -> ServiceRuntime:
    runtime = ServiceRuntime(settings, schema=SCHEMA, migrations=MIGRATIONS)
    service = ShippingService(settings)
    topics = settings.topics
    runtime.consume(
        name="shipping",
        topic=topics.shipments,
        adapter=TypeAdapter(ShipmentMessage),
        handler=service.handle_documents,
        payload_doc=ShipmentMessage,
        description="Shipment requests, picks updates, ship requests and cancellations: the "
        "lifecycle requested → allocated → shipped, or cancelled.",
    )
    runtime.consume(
        name="shipping-events",
        topic=topics.events,
        adapter=TypeAdapter(InventoryEvent),
        handler=service.collect_answers,
        payload_doc=InventoryEvent,
        description="Allocation's decisions: the item read model and the answers to shipment "
        "line commands, which move each shipment through its lifecycle.",
    )
    return runtime


async def main(settings: Settings | None = None) -> None:
    settings = settings or from_env()
    logs.configure("shipping", level=settings.log_level, fmt=settings.log_format)
    runtime = create_runtime(settings)
    await run_until_signalled(runtime.start, runtime.stop)


def run() -> None:
    asyncio.run(main())
