"""The outbox relay keeps each partition's rows in outbox order when a record batch fails
(shared/outbox.py), against the real PostgreSQL and broker.

The relay hands a partition's rows to the producer as record batches of up to 1 MiB. When the
broker refuses one of them (its topic's `max.message.bytes` below the batch's size) or it fails
for a while, the rows of the batches behind it, same partition, same key, must not reach the
broker first; a row the broker refuses even alone is parked, never dropped. The embedded broker
takes records of any size, so the producer here plays Kafka's size check, as in
test_outbox_relay.py: a record batch over LIMIT fails with Kafka's own error.
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

from shared.kafka import make_producer
from shared.outbox import OutboxRelay, OutboxRow, write_outbox
from tests.fixtures.infra import LotlineEnv, kafka_read_until, plumbing_pool

SCHEMA = "relay_order"
# Below the producer's record batch size (1 MiB): two rows of 400 kB share a batch the broker
# refuses, and each alone is taken.
LIMIT = 500_000
KB = 1000


@pytest.fixture
async def pool(lotline_env: Any, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    pool = await plumbing_pool(lotline_env(topics=False), SCHEMA, tmp_path)
    yield pool
    await pool.close()


class _Failing:
    """The real producer, failing with `error` the record batches over LIMIT bytes, the first
    `times` of them (None: every one)."""

    def __init__(self, producer: AIOKafkaProducer, error: Exception, times: int | None) -> None:
        self._producer = producer
        self._error = error
        self._times = times

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        if batch.size() > LIMIT and (self._times is None or self._times > 0):
            if self._times is not None:
                self._times -= 1
            failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            failed.set_exception(self._error)
            return failed
        sent: asyncio.Future[Any] = await self._producer.send_batch(
            batch, topic, partition=partition
        )
        return sent


def _row(topic: str, tag: bytes, size: int) -> OutboxRow:
    """A row of LIC-1 whose payload starts with `tag` (how the test tells rows apart)."""
    return OutboxRow(topic, b"LIC-1", tag + b"x" * (size - len(tag)), {"type": "T"})


async def _relayed(
    pool: asyncpg.Pool,
    env: LotlineEnv,
    rows: list[OutboxRow],
    error: Exception,
    times: int | None,
    *,
    dead_letter_topic: str | None = None,
) -> tuple[OutboxRelay, AIOKafkaProducer]:
    """`rows` committed to the outbox, and a relay whose producer fails the record batches
    over LIMIT with `error` (`times`, as `_Failing`); the real producer is the caller's to
    stop."""
    async with pool.acquire() as proxy:
        await write_outbox(cast(asyncpg.Connection, proxy), rows, "unused")
    real = make_producer(env.settings)
    await real.start()
    producer = cast(AIOKafkaProducer, _Failing(real, error, times))
    relay = OutboxRelay(pool, producer, SCHEMA, dead_letter_topic=dead_letter_topic)
    return relay, real


async def _publish(pool: asyncpg.Pool, relay: OutboxRelay) -> int:
    async with pool.acquire() as proxy:
        conn = cast(asyncpg.Connection, proxy)
        sent = await relay.publish_once(conn)
        await relay.mark_published(conn)
        return sent


async def _tags(env: LotlineEnv, count: int) -> list[bytes]:
    records = await kafka_read_until(
        env.bootstrap, env.settings.topics.events, lambda rs: len(rs) >= count
    )
    return [bytes(r.value[:2]) for r in records if r.value is not None]


async def test_rows_behind_a_refused_record_batch_do_not_overtake_it(
    pool: asyncpg.Pool, lotline_env: Any
) -> None:
    """Rows 1 and 2 share a record batch the broker refuses (800 kB over its 500 kB); rows 3
    and 4 fill the next batch of the same partition, which it takes. Before, 3 and 4 went out
    at once and 1 and 2, retried alone, after them."""
    env: LotlineEnv = lotline_env()
    events = env.settings.topics.events
    rows = [
        _row(events, b"r1", 400 * KB),
        _row(events, b"r2", 400 * KB),
        _row(events, b"r3", 400 * KB),
        _row(events, b"r4", 10),
    ]
    relay, real = await _relayed(pool, env, rows, MessageSizeTooLargeError(), None)
    try:
        assert await _publish(pool, relay) == 4
    finally:
        await real.stop()
    assert await _tags(env, 4) == [b"r1", b"r2", b"r3", b"r4"]
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0


async def test_a_row_refused_alone_is_parked_and_the_rows_behind_it_keep_their_order(
    pool: asyncpg.Pool, lotline_env: Any
) -> None:
    """Row 2 (700 kB) is refused even alone: parked, with its notice on the dead-letter topic;
    rows 1, 3 and 4 reach the broker in that order."""
    env: LotlineEnv = lotline_env()
    topics = env.settings.topics
    rows = [
        _row(topics.events, b"r1", 10),
        _row(topics.events, b"r2", 700 * KB),
        _row(topics.events, b"r3", 400 * KB),
        _row(topics.events, b"r4", 10),
    ]
    relay, real = await _relayed(
        pool, env, rows, MessageSizeTooLargeError(), None, dead_letter_topic=topics.dlq
    )
    try:
        assert await _publish(pool, relay) == 4
    finally:
        await real.stop()
    assert await _tags(env, 3) == [b"r1", b"r3", b"r4"]
    (notice,) = await kafka_read_until(env.bootstrap, topics.dlq, lambda rs: len(rs) >= 1)
    parked = await pool.fetch("SELECT id, payload FROM outbox WHERE parked IS NOT NULL")
    assert [bytes(r["payload"][:2]) for r in parked] == [b"r2"]
    assert dict(notice.headers)["outbox_id"] == str(parked[0]["id"]).encode()


async def test_rows_behind_a_record_batch_that_failed_for_a_while_wait_for_it(
    pool: asyncpg.Pool, lotline_env: Any
) -> None:
    """The batch of rows 1 and 2 fails once (the broker away for a moment): the round fails,
    and rows 3 and 4 of the same partition are not sent ahead of them; the next round
    publishes all four in order. Before, 3 and 4 reached consumers before 1 and 2."""
    env: LotlineEnv = lotline_env()
    events = env.settings.topics.events
    rows = [
        _row(events, b"r1", 400 * KB),
        _row(events, b"r2", 400 * KB),
        _row(events, b"r3", 400 * KB),
        _row(events, b"r4", 10),
    ]
    relay, real = await _relayed(pool, env, rows, KafkaConnectionError("broker away"), 1)
    try:
        with pytest.raises(KafkaConnectionError):
            await _publish(pool, relay)
        assert await _publish(pool, relay) == 4
    finally:
        await real.stop()
    assert await _tags(env, 4) == [b"r1", b"r2", b"r3", b"r4"]


class _Watching:
    """The real producer, noting for each record batch handed to it whether it was closed."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self.closed: list[bool] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        self.closed.append(batch.closed())
        sent: asyncio.Future[Any] = await self._producer.send_batch(
            batch, topic, partition=partition
        )
        return sent


async def test_record_batches_go_to_the_producer_complete_so_none_waits_out_its_linger(
    pool: asyncpg.Pool, lotline_env: Any
) -> None:
    """aiokafka holds an open record batch for the producer's `linger_ms` in case more records
    come; the relay's batches are complete when handed over, so each is closed first and sent
    at once (an open one cost 1.4 ms of every hop on the embedded broker). Before, none was."""
    env: LotlineEnv = lotline_env()
    events = env.settings.topics.events
    rows = [_row(events, b"r1", 10), _row(events, b"r2", 10)]
    async with pool.acquire() as proxy:
        await write_outbox(cast(asyncpg.Connection, proxy), rows, "unused")
    real = make_producer(env.settings)
    await real.start()
    producer = _Watching(real)
    relay = OutboxRelay(pool, cast(AIOKafkaProducer, producer), SCHEMA)
    try:
        assert await _publish(pool, relay) == 2
    finally:
        await real.stop()
    assert producer.closed == [True]  # one batch: both rows share the key's partition
    assert await _tags(env, 2) == [b"r1", b"r2"]
