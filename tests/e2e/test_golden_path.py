"""The golden path, through the real message path of DESIGN.md §2, with the four services running
as OS processes and an upstream system publishing with a plain Kafka client:

UpsertItem → ShipmentReceived → ShipmentRequested (allocated automatically) → ShipmentShipRequested
→ a usage record and a COGS entry in the ledger, a ShipmentShipped status event.
Delivering the same message_id again changes nothing (DESIGN.md §4, §6).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from tests.fixtures.infra import LotlineEnv, json_values, kafka_publish, kafka_read_until


def _json(message_type: str, /, **fields: Any) -> bytes:
    body = {"type": message_type, "occurred_at": "2026-11-01T10:00:00Z", **fields}
    return json.dumps(body).encode()


async def _status(env: LotlineEnv, kind: str, document: str, count: int = 1) -> list[Any]:
    def seen(records: list[Any]) -> bool:
        hits = [v for v in json_values(records) if v["type"] == kind]
        return len([v for v in hits if v.get("shipment_id") == document]) >= count

    records = await kafka_read_until(env.bootstrap, env.settings.topics.status, seen, timeout=90)
    return [v for v in json_values(records) if v.get("shipment_id") == document]


async def _get(env: LotlineEnv, path: str, until: Any = None, timeout: float = 60) -> Any:
    """GET from the read API, polling until `until(body)` holds (the ledger is eventually
    consistent with the status topic)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(base_url=env.api, timeout=5) as client:
        while True:
            try:
                response = await client.get(path)
                if response.status_code == 200 and (until is None or until(response.json())):
                    return response.json()
            except httpx.TransportError:
                pass
            assert loop.time() < deadline, f"GET {path} did not answer as expected"
            await asyncio.sleep(0.2)


async def _last_outbox_rows(env: LotlineEnv) -> dict[str, int]:
    """The id of the last row receiving and shipping wrote to their outboxes."""
    conn = await asyncpg.connect(env.dsn)
    try:
        return {
            schema: await conn.fetchval(f"SELECT coalesce(max(id), 0) FROM {schema}.outbox")
            for schema in ("receiving", "shipping")
        }
    finally:
        await conn.close()


async def _consumed(env: LotlineEnv, schema: str, topic: str, records: int) -> None:
    """Until `schema`'s consumers have committed `records` records of `topic` (the topic is
    the test's own: it starts empty)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    conn = await asyncpg.connect(env.dsn)
    try:
        while True:
            done = await conn.fetchval(
                f"SELECT coalesce(sum(next_offset), 0) FROM {schema}.consumer_offsets"
                " WHERE topic = $1",
                topic,
            )
            if done >= records:
                return
            assert loop.time() < deadline, f"{schema} consumed {done} of {records} on {topic}"
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def test_plain_item_golden_path_with_redelivery(running: LotlineEnv) -> None:
    env = running
    topics = env.settings.topics
    run = uuid.uuid4().hex[:8]
    lic, receipt, shipment = f"WIDGET-{run}", f"PO-{run}", f"SO-{run}"

    item = _json("UpsertItem", message_id=f"item-{run}", lic=lic, est_unit_cost="4.00")
    await kafka_publish(env.bootstrap, topics.items, lic, item)
    await _get(env, f"/items/{lic}")

    received = _json(
        "ShipmentReceived",
        message_id=f"rcv-{run}",
        shipment_id=receipt,
        office="AI",
        source="purchase",
        reference=receipt,
        received_on="2026-11-01",
        lines=[{"line_no": 1, "lic": lic, "quantity": 10, "unit_cost": "4.00"}],
    )
    await kafka_publish(env.bootstrap, topics.receipts, receipt, received)
    posted = await _status(env, "ReceiptPosted", receipt)
    assert posted[0]["type"] == "ReceiptPosted"

    requested = _json(
        "ShipmentRequested",
        message_id=f"req-{run}",
        shipment_id=shipment,
        office="AI",
        kind="sale",
        customer="Montboro High School East",
        ship_on="2026-11-02",
        lines=[{"line_no": 1, "lic": lic, "quantity": 3}],
    )
    await kafka_publish(env.bootstrap, topics.shipments, shipment, requested)
    allocated = await _status(env, "ShipmentAllocated", shipment)
    assert allocated[-1]["lines"][0]["quantity"] == "3"

    ship = _json("ShipmentShipRequested", message_id=f"ship-{run}", shipment_id=shipment)
    await kafka_publish(env.bootstrap, topics.shipments, shipment, ship)
    await _status(env, "ShipmentShipped", shipment)

    # The same message_ids again: upstream retried. Nothing may change. A service writes what
    # it decides (commands, statuses) to its outbox in the transaction that stores its consumed
    # offsets, so once both services' offsets are past the redelivered records, any decision
    # taken on them is in the outbox: none may be.
    last_rows = await _last_outbox_rows(env)
    for topic, key, body in (
        (topics.receipts, receipt, received),
        (topics.shipments, shipment, requested),
        (topics.shipments, shipment, ship),
    ):
        await kafka_publish(env.bootstrap, topic, key, body)
    await _consumed(env, "receiving", topics.receipts, 2)
    await _consumed(env, "shipping", topics.shipments, 4)
    assert await _last_outbox_rows(env) == last_rows, "a redelivered document was decided again"

    statuses = await _status(env, "ShipmentShipped", shipment)
    assert [s["type"] for s in statuses].count("ShipmentShipped") == 1
    assert [s["type"] for s in statuses].count("ShipmentAllocated") == 1
    receipts = await _status(env, "ReceiptPosted", receipt)
    assert [s["type"] for s in receipts].count("ReceiptPosted") == 1

    usage = await _get(env, f"/usage?lic={lic}", until=lambda body: len(body) >= 1)
    assert len(usage) == 1
    assert Decimal(usage[0]["quantity"]) == 3
    assert Decimal(usage[0]["total_cost"]) == Decimal("12.00")

    item_view = await _get(
        env, f"/items/{lic}", until=lambda body: any(s["on_hand"] for s in body["stock"])
    )
    stock = {s["office"]: s for s in item_view["stock"]}
    assert Decimal(stock["AI"]["on_hand"]) == 7
    assert Decimal(stock["AI"]["available"]) == 7

    lot = await _get(env, f"/lots/{receipt}%2F1", until=lambda body: body["cogs"])
    assert len(lot["cogs"]) == 1
    assert Decimal(lot["cogs"][0]["quantity"]) == 3
