"""The ledger service end to end on the real broker and PostgreSQL: consumers fed through
Kafka, idempotent under redelivery, and the process serving its API and stopping cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from services.ledger.api import create_api
from services.ledger.app import ReadPool, create_runtime, runtime_lifespan
from shared.contracts.codec import encode
from shared.contracts.events import Event
from shared.contracts.upstream import PurchaseOrderUpdated
from tests.fixtures.infra import LotlineEnv, kafka_publish_many
from tests.integration.test_ledger import CAM, Wire, mv

D = Decimal


async def _published(
    env: LotlineEnv, topic: str, messages: list[Event | PurchaseOrderUpdated]
) -> None:
    def key(m: Event | PurchaseOrderUpdated) -> str:
        return m.po if isinstance(m, PurchaseOrderUpdated) else m.lic

    await kafka_publish_many(env.bootstrap, topic, [(key(m), encode(m)) for m in messages])


async def rewind(env: LotlineEnv) -> None:
    """Every ledger consumer back to offset 0, as if its stored offsets were lost: a replay."""
    conn = await asyncpg.connect(env.dsn)
    try:
        await conn.execute("UPDATE ledger.consumer_offsets SET next_offset = 0")
    finally:
        await conn.close()


async def consumed(env: LotlineEnv, consumer: str, count: int, within: float = 60) -> None:
    """Wait until `consumer` committed `count` messages (the sum of its stored offsets)."""
    conn = await asyncpg.connect(env.dsn)
    try:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            done = await conn.fetchval(
                "SELECT coalesce(sum(next_offset), 0) FROM ledger.consumer_offsets"
                " WHERE consumer = $1",
                consumer,
            )
            if done >= count:
                return
            assert asyncio.get_running_loop().time() < deadline, f"{consumer}: {done}/{count}"
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def _counts(env: LotlineEnv) -> dict[str, Any]:
    conn = await asyncpg.connect(env.dsn)
    try:
        return {
            "usage": await conn.fetchval("SELECT count(*) FROM ledger.usage"),
            "transactions": await conn.fetchval("SELECT count(*) FROM ledger.transactions"),
            "cogs": await conn.fetchval("SELECT sum(amount) FROM ledger.cogs"),
            "reconciliations": await conn.fetchval(
                "SELECT count(*) FROM ledger.cogs WHERE kind = 'reconciliation'"
            ),
            "lot": tuple(
                await conn.fetchrow(
                    "SELECT received_qty, used_qty, allocated_qty, act_unit_cost"
                    " FROM ledger.lots WHERE lot_id = '60002'"
                )
            ),
        }
    finally:
        await conn.close()


async def test_ledger_records_events_and_costs_through_the_broker_exactly_once(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """DESIGN §6, R16: events and PO costs arrive through Kafka; a message delivered twice, a
    close sent again under a new id, and a full replay from offset 0 change nothing."""
    env = lotline_env()
    topics = env.settings.topics
    w = Wire()
    serials = [mv("60002", 1, "300.00", serial=s) for s in ("134593568", "200937842")]
    item = w.item(CAM, description="IP3VO Document Camera v4", serialized=True)
    receipt = w.received(CAM, "60002", 2, "300.00", serials, po="PO-60006", on=date(2023, 8, 1))
    sale = w.sale(CAM, "60007", [serials[1]], customer="Montboro", on=date(2023, 8, 2))
    events: list[Event | PurchaseOrderUpdated] = [item, receipt, *sale, sale[1]]  # shipped twice
    close = w.po("PO-60006", CAM, ordered_quantity=D(2), act_unit_cost=D(310), closed=True)
    costs: list[Event | PurchaseOrderUpdated] = [close, close, w.po("PO-60006", CAM, closed=True)]

    runtime = create_runtime(env.settings)
    await runtime.start()
    try:
        await _published(env, topics.events, events)
        await consumed(env, "ledger", len(events))
        await _published(env, topics.costs, costs)
        await consumed(env, "ledger-costs", len(costs))
        app = create_api(lambda: runtime.pool)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ledger"
        ) as api:
            lot = (await api.get("/lots/60002")).json()
    finally:
        await runtime.stop()

    before = await _counts(env)
    assert before["lot"] == (2, 1, 0, 310)
    # Transactions: two receipts, the allocation, the shipment and the close's cost change.
    assert (before["usage"], before["transactions"], before["reconciliations"]) == (1, 5, 1)
    assert before["cogs"] == 310
    assert D(lot["valuation"]["ordered"]["value"]) == 620 and lot["valuation"]["cost_is_final"]

    await rewind(env)
    replay = create_runtime(env.settings)
    await replay.start()
    try:
        await consumed(env, "ledger", len(events))
        await consumed(env, "ledger-costs", len(costs))
    finally:
        await replay.stop()

    assert await _counts(env) == before


async def test_requests_holding_every_api_connection_never_stop_the_consumers(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """DESIGN §6: the read API has connections of its own (`ReadPool`). Requests holding every
    one of them (a burst of dashboard and recall queries) leave the consumers recording, and
    the API answers again once they let go."""
    env = lotline_env(LEDGER_API_POOL_SIZE="2", DB_POOL_SIZE="3")
    w = Wire()
    serials = [mv("60002", 1, "300.00", serial=s) for s in ("134593568", "200937842")]
    events: list[Event | PurchaseOrderUpdated] = [
        w.item(CAM, serialized=True),
        w.received(CAM, "60002", 2, "300.00", serials, po="PO-60006", on=date(2023, 8, 1)),
    ]
    runtime = create_runtime(env.settings)
    reads = ReadPool(env.settings)
    app = create_api(lambda: reads.pool, lifespan=runtime_lifespan(runtime, reads))
    async with runtime_lifespan(runtime, reads)(app):
        assert reads.pool is not None and reads.pool is not runtime.pool
        held = [await reads.pool.acquire() for _ in range(env.settings.api_pool_size)]
        try:
            await _published(env, env.settings.topics.events, events)
            await consumed(env, "ledger", len(events), within=30)
        finally:
            for conn in held:
                await reads.pool.release(conn)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ledger"
        ) as api:
            lot = (await api.get("/lots/60002")).json()
    assert [s["serial"] for s in lot["serials"]] == ["134593568", "200937842"]


async def test_ledger_process_serves_its_api_and_stops_cleanly_on_sigterm(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """DESIGN §3, §6: `python -m services.ledger` starts consumers and API in one process,
    answers /healthz, and drains and exits 0 on SIGTERM."""
    env = lotline_env()
    log_path = env.data_dir / "ledger.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.ledger",
            env=env.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=os.getcwd(),
        )
    try:
        async with httpx.AsyncClient(base_url=env.api, timeout=2) as api:
            deadline = asyncio.get_running_loop().time() + 60
            while True:
                try:
                    health = await api.get("/healthz")
                    if health.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.returncode is None, log_path.read_text()
                assert asyncio.get_running_loop().time() < deadline, "ledger did not start"
                await asyncio.sleep(0.2)
            assert health.json() == {"status": "ok", "database": "ok"}
            assert (await api.get("/docs")).status_code == 200
            assert "lotline_batches_total" in (await api.get("/metrics")).text
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
        assert code == 0, log_path.read_text()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
