"""Review regressions for the outbox relay (shared/outbox.py), against the real PostgreSQL and
broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from shared import db
from shared.kafka import make_producer
from shared.outbox import OutboxRelay, OutboxRow, write_outbox
from tests.fixtures.infra import LotlineEnv

SCHEMA = "relay_review"


@pytest.fixture
async def pool(lotline_env: Any, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    env: LotlineEnv = lotline_env(topics=False)
    await db.migrate(env.dsn, SCHEMA, db.migration_files(tmp_path))
    pool = await db.create_pool(env.dsn, SCHEMA, size=3)
    yield pool
    await pool.close()


class _Hanging:
    """The real producer, behind a broker that takes records and never acknowledges them (a
    broker that hangs: aiokafka waits for its request timeout, 40 s by default)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()


async def test_a_drain_that_cannot_finish_in_time_stops_without_raising(
    pool: asyncpg.Pool, lotline_env: Any
) -> None:
    """Shutdown with a broker that does not answer: the relay gives up draining after its
    timeout and returns (the service then closes its producer and pool, and exits cleanly);
    what it could not publish stays unsent for the next leader."""
    env: LotlineEnv = lotline_env()
    async with pool.acquire() as proxy:
        await write_outbox(
            cast(asyncpg.Connection, proxy),
            [OutboxRow(env.settings.topics.events, b"LIC-1", b"{}", {"type": "T"})],
            "unused",
        )
    real = make_producer(env.settings)
    await real.start()
    relay = OutboxRelay(pool, cast(AIOKafkaProducer, _Hanging(real)), SCHEMA)
    try:
        relay.start()
        for _ in range(100):  # leading, and publishing the row
            if relay.leading:
                break
            await asyncio.sleep(0.05)
        assert relay.leading
        await asyncio.sleep(0.2)
        await asyncio.wait_for(relay.stop(), timeout=30)
    finally:
        if relay._task is not None and not relay._task.done():
            relay._task.cancel()
            with contextlib.suppress(BaseException):
                await relay._task
        await real.stop()
    assert relay._task is not None and relay._task.done()
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 1
    # The lease went with the relay's connection: another relay can lead at once.
    async with pool.acquire() as proxy:
        conn = cast(asyncpg.Connection, proxy)
        lock = await conn.fetchval("SELECT pg_try_advisory_lock($1)", relay._lock_key)
        assert lock
        await conn.execute("SELECT pg_advisory_unlock($1)", relay._lock_key)
