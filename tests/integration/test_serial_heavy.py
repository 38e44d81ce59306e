"""A receipt of 100,000 serials (R4, R6) is decided and its event, which lists every serial
(about 11 MB), is published and read back: large decisions never stall the outbox."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from services.allocation.app import create_runtime
from tests.fixtures.infra import LotlineEnv, kafka_publish_many, kafka_read_until

SERIALS = 100_000


@pytest.fixture
async def allocation(lotline_env: Any) -> AsyncIterator[LotlineEnv]:
    env: LotlineEnv = lotline_env(
        KAFKA_SESSION_TIMEOUT_MS="3000", KAFKA_HEARTBEAT_INTERVAL_MS="500"
    )
    runtime = create_runtime(env.settings)
    await runtime.start()
    try:
        yield env
    finally:
        await runtime.stop()


async def test_receipt_from_next_serial_of_100k_units_is_published(allocation: LotlineEnv) -> None:
    topics = allocation.settings.topics
    lic = f"SER-{uuid.uuid4().hex[:6]}"
    item = {
        "type": "UpsertItem",
        "message_id": f"{lic}-i",
        "lic": lic,
        "serialized": True,
        "next_serial": "7",
    }
    receive = {
        "type": "ReceiveStock",
        "message_id": f"{lic}-r",
        "lic": lic,
        "shipment_id": "PO-BIG",
        "line_no": 1,
        "lot_id": "PO-BIG/1",
        "office": "AI",
        "received_on": "2026-11-01",
        "quantity": SERIALS,
        "generate_serials": True,
    }
    await kafka_publish_many(
        allocation.bootstrap,
        topics.commands,
        [(lic, json.dumps(item).encode()), (lic, json.dumps(receive).encode())],
    )

    def received(records: list[Any]) -> bool:
        return any(b'"StockReceived"' in (r.value or b"")[:200] for r in records)

    records = await kafka_read_until(
        allocation.bootstrap,
        topics.events,
        received,
        timeout=120,
        max_partition_fetch_bytes=64 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    event = next(json.loads(r.value) for r in records if b'"StockReceived"' in r.value[:200])
    serials = event["generated_serials"]
    assert len(serials) == SERIALS and len(set(serials)) == SERIALS
    assert serials[0] == "00007" and serials[-1] == str(7 + SERIALS - 1)
    assert event["next_serial"] == str(7 + SERIALS)


async def test_receipt_document_with_a_100k_span_is_posted(lotline_env: Any) -> None:
    """Through receiving (R5 span parsing) and allocation: the 11 MB answer is read back by
    receiving, which posts the document."""
    from services.receiving.app import create_runtime as receiving_runtime

    env: LotlineEnv = lotline_env(
        KAFKA_SESSION_TIMEOUT_MS="3000", KAFKA_HEARTBEAT_INTERVAL_MS="500"
    )
    topics = env.settings.topics
    runtimes = [create_runtime(env.settings), receiving_runtime(env.settings)]
    for runtime in runtimes:
        await runtime.start()
    try:
        lic = f"SPAN-{uuid.uuid4().hex[:6]}"
        item = {"type": "UpsertItem", "message_id": f"{lic}-i", "lic": lic, "serialized": True}
        await kafka_publish_many(env.bootstrap, topics.items, [(lic, json.dumps(item).encode())])
        await kafka_read_until(
            env.bootstrap,
            topics.events,
            lambda rs: any(b'"ItemUpserted"' in (r.value or b"") for r in rs),
        )
        receipt = {
            "type": "ShipmentReceived",
            "message_id": f"{lic}-doc",
            "shipment_id": f"PO-{lic}",
            "office": "AI",
            "source": "purchase",
            "received_on": "2026-11-01",
            "lines": [
                {"line_no": 1, "lic": lic, "quantity": SERIALS, "serials": "SN-000000...SN-099999"}
            ],
        }
        conn = await asyncpg.connect(env.dsn)
        try:  # receiving learns items from allocation's events: wait until it knows this one
            for _ in range(200):
                if await conn.fetchval("SELECT count(*) FROM receiving.items WHERE lic = $1", lic):
                    break
                await asyncio.sleep(0.1)
        finally:
            await conn.close()
        await kafka_publish_many(
            env.bootstrap, topics.receipts, [(f"PO-{lic}", json.dumps(receipt).encode())]
        )
        statuses = await kafka_read_until(
            env.bootstrap,
            topics.status,
            lambda rs: any(b"Receipt" in (r.value or b"") for r in rs),
            timeout=120,
        )
        posted = [json.loads(r.value) for r in statuses if b"ReceiptPosted" in (r.value or b"")]
        assert posted and posted[0]["lines"][0]["lot_id"] == f"PO-{lic}/1"
    finally:
        for runtime in reversed(runtimes):
            await runtime.stop()
