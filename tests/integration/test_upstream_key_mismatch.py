"""Upstream documents whose record key is not their document id (docs/contract.md "Topics"),
through the real broker and PostgreSQL: each is processed and answered as ever (refusing a
valid document for its key would turn a producer's misconfiguration into an outage), and
counted in `lotline_upstream_key_mismatch_total` and logged once as `consumer.key_mismatch`,
since such a key no longer keeps the document's messages on one partition, in order.

Allocation, receiving and shipping run in process, as `lotline up` runs them; the consumer
test below drives one consumer's batches by hand to show a redelivery is not counted again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from prometheus_client import REGISTRY
from pydantic import TypeAdapter
from structlog.testing import capture_logs

from services.allocation.app import create_runtime as allocation
from services.receiving.app import create_runtime as receiving
from services.shipping.app import create_runtime as shipping
from shared.config import Settings
from shared.consumer import Inbound, Route, TransactionalConsumer, UnitOfWork
from shared.contracts.upstream import ItemMessage
from tests.fixtures.infra import (
    LotlineEnv,
    json_values,
    kafka_publish,
    kafka_read_until,
    plumbing_pool,
)
from tests.integration.test_receiving_expired_on_return import document, status_typed
from tests.integration.test_receiving_unknown_items import running, upsert_item

METRIC = "lotline_upstream_key_mismatch_total"


def mismatches(topic: str, kind: str) -> float:
    return REGISTRY.get_sample_value(METRIC, {"topic": topic, "type": kind}) or 0.0


def logged(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in e.items() if k not in ("offset", "partition", "log_level")}
        for e in logs
        if e["event"] == "consumer.key_mismatch"
    ]


async def item_answered(env: LotlineEnv, lic: str) -> None:
    def mine(records: list[Any]) -> list[Any]:
        return [v for v in json_values(records) if v.get("lic") == lic]

    records = await kafka_read_until(
        env.bootstrap, env.settings.topics.events, lambda rs: bool(mine(rs)), timeout=60
    )
    assert mine(records)[0]["type"] == "ItemUpserted", mine(records)


async def test_documents_keyed_by_another_id_or_none_are_answered_counted_and_logged(
    lotline_env: Any,
) -> None:
    with capture_logs() as logs:
        async with running(lotline_env, allocation, receiving, shipping, wait=30) as (env, _):
            topics, run = env.settings.topics, uuid.uuid4().hex[:6]
            lic, other, po, sale = f"BOLT-{run}", f"NUT-{run}", f"B1-KEY-B-{run}", f"SO-{run}"
            # Keyed as the contract says: not a mismatch.
            await kafka_publish(env.bootstrap, topics.items, lic, upsert_item(lic))
            await item_answered(env, lic)
            # A null key.
            await kafka_publish(env.bootstrap, topics.items, None, upsert_item(other))
            await item_answered(env, other)
            # A receipt keyed by another document's id.
            receipt = {
                "type": "ShipmentReceived",
                "office": "AI",
                "source": "purchase",
                "received_on": "2026-11-02",
                "lines": [{"line_no": 1, "lic": lic, "quantity": 5}],
            }
            await kafka_publish(
                env.bootstrap, topics.receipts, "B1-KEY-A", document(f"rcv-{run}", po, receipt)
            )
            await status_typed(env, po, "ReceiptPosted")
            # A sale and its ship request, each keyed by some other id.
            request = {
                "type": "ShipmentRequested",
                "office": "AI",
                "ship_on": "2026-11-20",
                "lines": [{"line_no": 1, "lic": lic, "quantity": 2}],
            }
            await kafka_publish(
                env.bootstrap,
                topics.shipments,
                "SOMETHING-ELSE-1",
                document(f"req-{run}", sale, request),
            )
            await status_typed(env, sale, "ShipmentAllocated")
            ship = {"type": "ShipmentShipRequested"}
            await kafka_publish(
                env.bootstrap,
                topics.shipments,
                "ZZZ-OTHER-KEY-9",
                document(f"ship-{run}", sale, ship),
            )
            await status_typed(env, sale, "ShipmentShipped")

    assert logged(logs) == [
        {
            "event": "consumer.key_mismatch",
            "topic": topics.items,
            "message_id": f"item-{other}",
            "type": "UpsertItem",
            "expected_key": other,
            "key": None,
        },
        {
            "event": "consumer.key_mismatch",
            "topic": topics.receipts,
            "message_id": f"rcv-{run}",
            "type": "ShipmentReceived",
            "expected_key": po,
            "key": "B1-KEY-A",  # as text, comparable with expected_key
        },
        {
            "event": "consumer.key_mismatch",
            "topic": topics.shipments,
            "message_id": f"req-{run}",
            "type": "ShipmentRequested",
            "expected_key": sale,
            "key": "SOMETHING-ELSE-1",
        },
        {
            "event": "consumer.key_mismatch",
            "topic": topics.shipments,
            "message_id": f"ship-{run}",
            "type": "ShipmentShipRequested",
            "expected_key": sale,
            "key": "ZZZ-OTHER-KEY-9",
        },
    ]
    # Every log line names where the record is.
    assert all(
        isinstance(e["partition"], int) and isinstance(e["offset"], int)
        for e in logs
        if e["event"] == "consumer.key_mismatch"
    )
    # The topics are the test's own (a fresh prefix): these counts are its documents'.
    assert mismatches(topics.items, "UpsertItem") == 1
    assert mismatches(topics.receipts, "ShipmentReceived") == 1
    assert mismatches(topics.shipments, "ShipmentRequested") == 1
    assert mismatches(topics.shipments, "ShipmentShipRequested") == 1


# -- one consumer, batches by hand: once per message ------------------------------------------

TOPIC = "keys.inventory.items"


class _NoRelay:
    def wake(self) -> None:
        pass


async def _handled(uow: UnitOfWork, batch: list[Inbound[Any]]) -> None:
    for inbound in batch:
        uow.outbox.emit("events", inbound.message.lic, inbound.message)


@pytest.fixture
async def pool(lotline_env: Any, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    env: LotlineEnv = lotline_env(topics=False)
    pool = await plumbing_pool(env, "keys_test", tmp_path)
    try:
        yield pool
    finally:
        await pool.close()


def _record(offset: int, key: bytes | None, message_id: str, lic: str) -> ConsumerRecord[Any, Any]:
    value = json.dumps({"type": "UpsertItem", "message_id": message_id, "lic": lic}).encode()
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, key, value, None, -1, len(value), [])


async def test_a_mismatch_is_counted_and_logged_once_however_often_it_is_delivered(
    pool: asyncpg.Pool,
) -> None:
    route = Route(name="keys", topic=TOPIC, adapter=TypeAdapter(ItemMessage), handler=_handled)
    consumer = TransactionalConsumer(
        name="keys",
        routes=[route],
        pool=pool,
        relay=_NoRelay(),  # type: ignore[arg-type]
        schema="keys_test",
        settings=Settings(LOTLINE_TOPIC_PREFIX="keys."),
    )
    await consumer.claim([TopicPartition(TOPIC, 0)])
    before = mismatches(TOPIC, "UpsertItem")
    with capture_logs() as logs:
        await consumer._process_resiliently(
            [
                _record(0, b" BOLT ", "m1", "BOLT"),  # trimmed, it is the LIC
                _record(1, b"\xffBOLT", "m2", "WASHER"),  # not UTF-8
                _record(2, b"NUT", "m3", "NUT"),
                _record(3, "ÉCROU".encode(), "m4", "NUT-2"),  # UTF-8: logged as its text
                _record(4, b"RIV\x1bET", "m5", "RIVET"),  # text a terminal would run: repr'd
            ]
        )
        # The mismatched one again (an upstream retry): a duplicate, not counted again.
        await consumer._process_resiliently([_record(5, b"\xffBOLT", "m2", "WASHER")])

    assert [(e["message_id"], e["expected_key"], e["key"]) for e in logged(logs)] == [
        ("m2", "WASHER", repr(b"\xffBOLT")),
        ("m4", "NUT-2", "ÉCROU"),
        ("m5", "RIVET", repr("RIV\x1bET")),
    ]
    assert mismatches(TOPIC, "UpsertItem") == before + 3
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 5  # all five processed
