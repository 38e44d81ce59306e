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
