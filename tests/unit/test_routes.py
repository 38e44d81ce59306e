"""Every service's routes name real message types: a misspelt type in `accepts` would make a
consumer pass over the very events it waits for."""

from __future__ import annotations

import typing
from typing import Any

import pytest

from services.allocation.app import create_runtime as allocation
from services.ledger.app import create_runtime as ledger
from services.receiving.app import create_runtime as receiving
from services.shipping.app import create_runtime as shipping
from shared.config import Settings
from shared.contracts.events import InventoryEvent

EVENT_TYPES = {
    typing.get_args(model.model_fields["type"].annotation)[0]
    for model in typing.get_args(typing.get_args(InventoryEvent)[0])
}


@pytest.mark.parametrize("create", [allocation, receiving, shipping, ledger])
def test_every_accepted_type_is_an_event_type(create: Any) -> None:
    runtime = create(Settings(KAFKA_BOOTSTRAP_SERVERS="localhost:9092"))
    topics = [route.topic for route in runtime.routes]
    assert len(topics) == len(set(topics)), "one route per topic"
    for route in runtime.routes:
        if route.accepts is not None:
            assert route.topic == runtime.settings.topics.events
            assert route.accepts <= EVENT_TYPES, route.accepts - EVENT_TYPES


def test_the_event_types_are_known() -> None:
    assert {"StockReceived", "LineAllocated", "CommandRejected"} <= EVENT_TYPES


@pytest.mark.parametrize(
    "second",
    [
        {"name": "ledger-again", "topic_of": "events", "poll_ms": 500},  # the topic twice
        {"name": "ledger", "topic_of": "costs", "poll_ms": None},  # the route name twice
    ],
)
async def test_a_service_refuses_to_start_reading_a_topic_or_route_name_twice(
    second: dict[str, Any],
) -> None:
    """Routes with `poll_ms` get a consumer of their own; a topic declared once with it and once
    without would be read by two consumer groups under two inbox names: handled twice. So
    `start` refuses, before it touches the broker or the database."""
    runtime = ledger(Settings(KAFKA_BOOTSTRAP_SERVERS="localhost:9092"))
    topics = runtime.settings.topics
    first = runtime.routes[0]
    runtime.consume(
        name=second["name"],
        topic=getattr(topics, second["topic_of"]),
        adapter=first.adapter,
        handler=first.handler,
        poll_ms=second["poll_ms"],
    )
    with pytest.raises(ValueError, match="one route per"):
        await runtime.start()
