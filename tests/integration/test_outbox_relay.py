"""The outbox relay against a broker that refuses a record for good.

Apache Kafka refuses a record larger than its topic's `max.message.bytes`, and no retry can
change that. Before, such a row stopped every row behind it, forever. The embedded broker takes
records of any size, so the producer here plays the size check Kafka's broker does: a record
batch holding a record over `LIMIT` fails with Kafka's own error. Everything else goes to the
real broker, and the assertions read the real topics and tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from shared import db
from shared.kafka import make_producer
from shared.outbox import OutboxRelay, OutboxRow, write_outbox
from tests.fixtures.infra import LotlineEnv, kafka_read_until

SCHEMA = "relay_test"
LIMIT = 100_000


@pytest.fixture
async def pool(lotline_env: Any, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    env: LotlineEnv = lotline_env(topics=False)
    await db.migrate(env.dsn, SCHEMA, db.migration_files(tmp_path))
    pool = await db.create_pool(env.dsn, SCHEMA, size=2)
    yield pool
    await pool.close()


class _Refusing:
    """The real producer, with a broker's record size limit in front of `send_batch`."""

    def __init__(self, producer: AIOKafkaProducer, error: Exception) -> None:
        self._producer = producer
        self._error = error
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        if batch.size() > LIMIT:
            self.refused += 1
            failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            failed.set_exception(self._error)
            return failed
        sent: asyncio.Future[Any] = await self._producer.send_batch(
            batch, topic, partition=partition
        )
        return sent


async def _relay_once(pool: asyncpg.Pool, relay: OutboxRelay) -> int:
    async with pool.acquire() as proxy:
        conn = cast(asyncpg.Connection, proxy)
        sent = await relay.publish_once(conn)
        await relay.mark_published(conn)
        return sent


async def test_a_record_the_broker_refuses_is_parked_and_the_rows_behind_it_go_out(
    pool: asyncpg.Pool, lotline_env: Any
) -> None:
    env: LotlineEnv = lotline_env()
    topics = env.settings.topics
    rows = [
        OutboxRow(topics.events, b"LIC-1", b'{"n": 1}', {"type": "T"}),
        OutboxRow(topics.events, b"LIC-1", b"x" * (2 * LIMIT), {"type": "Big"}),
        OutboxRow(topics.events, b"LIC-1", b'{"n": 3}', {"type": "T"}),
        OutboxRow(topics.events, b"LIC-2", b'{"n": 4}', {"type": "T"}),
    ]
    async with pool.acquire() as proxy:
        await write_outbox(cast(asyncpg.Connection, proxy), rows, "unused")
    real = make_producer(env.settings)
    await real.start()
    producer = _Refusing(real, MessageSizeTooLargeError())
    relay = OutboxRelay(
        pool, cast(AIOKafkaProducer, producer), SCHEMA, dead_letter_topic=topics.dlq
    )
    try:
        assert await _relay_once(pool, relay) == 4
        assert await _relay_once(pool, relay) == 0  # nothing left behind the refused row
    finally:
        await real.stop()

    events = await kafka_read_until(env.bootstrap, topics.events, lambda rs: len(rs) >= 3)
    assert [r.value for r in events if r.key == b"LIC-1"] == [b'{"n": 1}', b'{"n": 3}']
    assert [r.value for r in events if r.key == b"LIC-2"] == [b'{"n": 4}']
    (notice,) = await kafka_read_until(env.bootstrap, topics.dlq, lambda rs: len(rs) >= 1)
    headers = {k: v.decode() for k, v in notice.headers}
    big_id = await pool.fetchval("SELECT id FROM outbox WHERE headers->>'type' = 'Big'")
    assert (notice.key, notice.value) == (b"LIC-1", b"")
    assert headers["outbox_id"] == str(big_id) and headers["source_topic"] == topics.events
    assert headers["payload_bytes"] == str(2 * LIMIT) and "MessageSizeTooLarge" in headers["error"]
    parked = await pool.fetch("SELECT id, parked, sent_at FROM outbox WHERE parked IS NOT NULL")
    assert [(r["id"], r["sent_at"] is not None) for r in parked] == [(big_id, True)]
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    async with pool.acquire() as proxy:
        await OutboxRelay.purge(cast(asyncpg.Connection, proxy), -1)
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1  # the parked row is kept


async def test_a_broker_that_is_away_is_waited_for_not_parked(
    pool: asyncpg.Pool, lotline_env: Any
) -> None:
    """Only a refusal no retry can change parks a row: any other failure (the broker away)
    leaves every row unsent, to be published when it answers again."""
    env: LotlineEnv = lotline_env()
    rows = [OutboxRow(env.settings.topics.events, b"LIC-1", b"x" * (2 * LIMIT), {"type": "Big"})]
    async with pool.acquire() as proxy:
        await write_outbox(cast(asyncpg.Connection, proxy), rows, "unused")
    real = make_producer(env.settings)
    await real.start()
    producer = _Refusing(real, KafkaConnectionError("broker away"))
    relay = OutboxRelay(pool, cast(AIOKafkaProducer, producer), SCHEMA)
    try:
        with pytest.raises(KafkaConnectionError):
            await _relay_once(pool, relay)
    finally:
        await real.stop()
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE parked IS NOT NULL") == 0
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 1
