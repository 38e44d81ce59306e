"""Crash safety of the allocation process (DESIGN.md §6): SIGKILL after the decision's commit,
before its events are published and before the Kafka offset commit, loses nothing and repeats
nothing once the process is started again."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from typing import Any

import asyncpg

from shared import stack
from tests.fixtures.infra import LotlineEnv, json_values, kafka_publish, kafka_read_until

FAST_JOIN = {"KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500"}


def _command(kind: str, **fields: Any) -> bytes:
    return json.dumps({"type": kind, "occurred_at": "2026-11-01T10:00:00Z", **fields}).encode()


async def _wait_exit(proc: Any, timeout: float) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while proc.poll() is None:
        assert loop.time() < deadline, "allocation did not exit"
        await asyncio.sleep(0.1)
    return int(proc.returncode)


def _events_for(records: list[Any], command_id: str) -> list[dict[str, Any]]:
    return [e for e in json_values(records) if e.get("command_id") == command_id]


async def test_sigkill_after_commit_decides_the_command_exactly_once(lotline_env: Any) -> None:
    env: LotlineEnv = lotline_env(**FAST_JOIN)
    topics = env.settings.topics
    lic = f"PLAIN-{uuid.uuid4().hex[:6]}"
    receive_id = f"receive-{uuid.uuid4().hex}"

    await kafka_publish(
        env.bootstrap,
        topics.commands,
        lic,
        _command("UpsertItem", message_id=f"item-{lic}", lic=lic, est_unit_cost="2.50"),
    )
    await kafka_publish(
        env.bootstrap,
        topics.commands,
        lic,
        _command(
            "ReceiveStock",
            message_id=receive_id,
            lic=lic,
            shipment_id="PO-1",
            line_no=1,
            lot_id="PO-1/1",
            office="AI",
            received_on="2026-11-01",
            quantity="10",
        ),
    )

    crashing = stack.start_services(
        {**env.env, "LOTLINE_FAULT_KILL_AFTER_COMMIT": receive_id}, ["allocation"]
    )
    try:
        assert await _wait_exit(crashing[0], 60) == -signal.SIGKILL
    finally:
        stack.stop_services(crashing)

    conn = await asyncpg.connect(env.dsn)
    try:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM allocation.inventory_lots WHERE lic = $1", lic
            )
            == 1
        )
        unsent = await conn.fetchval("SELECT count(*) FROM allocation.outbox WHERE sent_at IS NULL")
        assert unsent >= 1, "the crash came before the relay published the decision's events"
    finally:
        await conn.close()

    restarted = stack.start_services(env.env, ["allocation"])
    try:
        marker = f"marker-{uuid.uuid4().hex}"
        await kafka_publish(
            env.bootstrap,
            topics.commands,
            lic,
            _command(
                "AllocateLine",
                message_id=marker,
                lic=lic,
                shipment_id="S-1",
                line_no=1,
                office="AI",
                ship_on="2026-11-02",
                quantity="4",
            ),
        )
        records = await kafka_read_until(
            env.bootstrap, topics.events, lambda rs: bool(_events_for(rs, marker)), timeout=60
        )
    finally:
        stack.stop_services(restarted)

    received = _events_for(records, receive_id)
    assert [e["type"] for e in received] == ["StockReceived"]
    allocated = _events_for(records, marker)
    assert [e["type"] for e in allocated] == ["LineAllocated"]
    conn = await asyncpg.connect(env.dsn)
    try:
        lot = await conn.fetchrow(
            "SELECT on_hand, allocated FROM allocation.inventory_lots WHERE lic = $1", lic
        )
        assert lot is not None and (lot["on_hand"], lot["allocated"]) == (10, 4)
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM allocation.inbox WHERE message_id = $1", receive_id
            )
            == 1
        )
    finally:
        await conn.close()
