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
from tests.fixtures.infra import LotlineEnv, kafka_read_until, plumbing_pool

SCHEMA = "relay_test"
LIMIT = 100_000


@pytest.fixture
async def pool(lotline_env: Any, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    pool = await plumbing_pool(lotline_env(topics=False), SCHEMA, tmp_path)
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


# --- the lag gauges: what is committed and not yet published ----------------------------------


class _Away:
    """The real producer, with a broker that does not answer in front of `send_batch`."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        failed.set_exception(KafkaConnectionError("broker away"))
        return failed


class _Counting:
    """A connection that counts the single-value queries (the relay's count of what is left)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.counted = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def fetchval(self, *args: Any) -> Any:
        self.counted += 1
        return await self._conn.fetchval(*args)


def _lag() -> tuple[float | None, float | None]:
    from prometheus_client import REGISTRY

    return (
        REGISTRY.get_sample_value("lotline_outbox_unsent_rows", {"service": SCHEMA}),
        REGISTRY.get_sample_value("lotline_outbox_oldest_unsent_seconds", {"service": SCHEMA}),
    )


async def test_the_lag_gauges_rise_with_unsent_rows_and_fall_to_zero_once_published(
    pool: asyncpg.Pool, lotline_env: Any
) -> None:
    env: LotlineEnv = lotline_env()
    rows = [
        OutboxRow(env.settings.topics.events, b"LIC-1", b'{"n": %d}' % n, {"type": "T"})
        for n in range(3)
    ]
    async with pool.acquire() as proxy:
        await write_outbox(cast(asyncpg.Connection, proxy), rows, "unused")
    await pool.execute("UPDATE outbox SET created_at = now() - interval '30 seconds'")
    real = make_producer(env.settings)
    await real.start()
    try:
        stuck = OutboxRelay(pool, cast(AIOKafkaProducer, _Away(real)), SCHEMA)
        with pytest.raises(KafkaConnectionError):
            await _relay_once(pool, stuck)
        unsent, oldest = _lag()
        assert unsent == 3
        assert oldest is not None and 30 <= oldest < 120
        await asyncio.sleep(0.1)
        assert (_lag()[1] or 0) > oldest  # still stuck: the age keeps growing

        relay = OutboxRelay(pool, real, SCHEMA)
        assert await _relay_once(pool, relay) == 3
        assert _lag() == (0, 0)
        assert await _relay_once(pool, relay) == 0
        assert _lag() == (0, 0)
    finally:
        await real.stop()


async def test_behind_a_full_batch_the_relay_counts_what_is_left_at_most_every_few_seconds(
    pool: asyncpg.Pool, lotline_env: Any
) -> None:
    env: LotlineEnv = lotline_env()
    rows = [
        OutboxRow(env.settings.topics.events, b"LIC-1", b'{"n": %d}' % n, {"type": "T"})
        for n in range(5)
    ]
    async with pool.acquire() as proxy:
        await write_outbox(cast(asyncpg.Connection, proxy), rows, "unused")
    real = make_producer(env.settings)
    await real.start()
    relay = OutboxRelay(pool, real, SCHEMA, batch_size=2)
    try:
        async with pool.acquire() as proxy:
            conn = _Counting(cast(asyncpg.Connection, proxy))
            published: list[float | None] = []
            for _ in range(4):
                published.append(await relay.publish_once(cast(asyncpg.Connection, conn)))
                published.append(_lag()[0])
            await relay.mark_published(cast(asyncpg.Connection, conn))
    finally:
        await real.stop()
    # Read 2 of 5 (counted: 5), 3 left; read 2 (not counted again so soon), 1 left; the last.
    assert published == [2, 3, 2, 1, 1, 0, 0, 0]
    assert conn.counted == 1
    assert _lag() == (0, 0)


async def test_a_relay_that_no_longer_leads_shows_nothing_unsent(
    pool: asyncpg.Pool, lotline_env: Any
) -> None:
    """Its successor reports the lag: a process waiting for the lease shows 0, not what it last
    read before it lost it."""
    env: LotlineEnv = lotline_env()
    rows = [OutboxRow(env.settings.topics.events, b"LIC-1", b"{}", {"type": "T"})]
    async with pool.acquire() as proxy:
        await write_outbox(cast(asyncpg.Connection, proxy), rows, "unused")
    real = make_producer(env.settings)
    await real.start()
    stuck = OutboxRelay(pool, cast(AIOKafkaProducer, _Away(real)), SCHEMA)
    try:
        with pytest.raises(KafkaConnectionError):
            await _relay_once(pool, stuck)
        assert _lag()[0] == 1
        async with pool.acquire() as leader:  # another process holds the lease
            await leader.execute("SELECT pg_advisory_lock($1)", stuck._lock_key)
            stuck.start()
            for _ in range(50):
                if _lag() == (0, 0):
                    break
                await asyncio.sleep(0.05)
            assert _lag() == (0, 0)
            await stuck.stop()
            await leader.execute("SELECT pg_advisory_unlock($1)", stuck._lock_key)
    finally:
        await real.stop()


# --- a leader that is alive but stuck: its heartbeat goes stale, it is ended ------------------


async def _stuck_leader(
    env: LotlineEnv, relay: OutboxRelay, *, renewed: str, pid: str = "pg_backend_pid()"
) -> asyncpg.Connection:
    """A session that took the relay's lock and then stopped: its process paused, its
    connection open. `renewed` is its heartbeat's age as SQL, `pid` the pid it recorded."""
    stuck = await asyncpg.connect(env.dsn, server_settings={"search_path": SCHEMA})
    await stuck.execute("SELECT pg_advisory_lock($1)", relay._lock_key)
    await stuck.execute(
        f"INSERT INTO outbox_lease (id, pid, renewed_at) VALUES (1, {pid}, {renewed})"
        " ON CONFLICT (id) DO UPDATE SET pid = EXCLUDED.pid, renewed_at = EXCLUDED.renewed_at"
    )
    return stuck


async def _deployment(lotline_env: Any, tmp_path: Path) -> tuple[LotlineEnv, asyncpg.Pool]:
    """Topics and a migrated schema in one database, for sessions of its own beside the pool."""
    env: LotlineEnv = lotline_env()
    await db.migrate(env.dsn, SCHEMA, db.migration_files(tmp_path))
    return env, await db.create_pool(env.dsn, SCHEMA, size=2)


async def test_a_stuck_leader_is_ended_once_its_heartbeat_is_stale_and_the_rows_go_out(
    lotline_env: Any, tmp_path: Path
) -> None:
    """A paused leader keeps its connection, so the server never frees its lock; without the
    heartbeat the service published nothing until that process ran again (audit, lease_stop)."""
    env, pool = await _deployment(lotline_env, tmp_path)
    topic = env.settings.topics.events
    async with pool.acquire() as proxy:
        await write_outbox(cast(asyncpg.Connection, proxy), [OutboxRow(topic, b"K", b"1")], "x")
    producer = make_producer(env.settings)
    await producer.start()
    relay = OutboxRelay(pool, producer, SCHEMA, lease_seconds=1)
    stuck = await _stuck_leader(env, relay, renewed="now() - interval '5 seconds'")
    try:
        relay.start()
        records = await kafka_read_until(env.bootstrap, topic, lambda rs: len(rs) >= 1, timeout=30)
        assert [r.value for r in records] == [b"1"]
        assert stuck.is_closed() or await _ended(stuck)
        # The new leader's heartbeat is its own, and fresh: nobody ends it in turn.
        lease = await pool.fetchrow("SELECT pid, now() - renewed_at AS age FROM outbox_lease")
        assert lease["pid"] != stuck.get_server_pid()
        assert lease["age"].total_seconds() < 5
    finally:
        await relay.stop()
        await producer.stop()
        stuck.terminate()
        await pool.close()


@pytest.mark.parametrize(
    ("renewed", "pid"),
    [
        ("now() - interval '5 seconds'", "pg_backend_pid()"),  # renewed within its lease
        ("now() - interval '50 seconds'", "0"),  # a stale heartbeat of another, older leader
    ],
)
async def test_a_leader_with_a_fresh_heartbeat_or_another_pid_is_left_alone(
    lotline_env: Any, tmp_path: Path, renewed: str, pid: str
) -> None:
    env, pool = await _deployment(lotline_env, tmp_path)
    topic = env.settings.topics.events
    async with pool.acquire() as proxy:
        await write_outbox(cast(asyncpg.Connection, proxy), [OutboxRow(topic, b"K", b"1")], "x")
    producer = make_producer(env.settings)
    await producer.start()
    relay = OutboxRelay(pool, producer, SCHEMA, lease_seconds=20)
    leader = await _stuck_leader(env, relay, renewed=renewed, pid=pid)
    try:
        relay.start()
        await asyncio.sleep(2.5)  # two rounds of the waiting relay
        assert not relay.leading
        assert await leader.fetchval("SELECT 1") == 1
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 1
    finally:
        await relay.stop()
        await producer.stop()
        leader.terminate()
        await pool.close()


async def _ended(conn: asyncpg.Connection) -> bool:
    try:
        await conn.fetchval("SELECT 1")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError):
        return True
    return False


async def test_a_leader_whose_round_waits_on_a_lock_is_not_taken_for_stuck(
    lotline_env: Any, tmp_path: Path
) -> None:
    """The heartbeat runs beside the rounds: a leader whose inbox purge waits on a lock (a long
    DELETE, a DDL) is alive, and is neither ended nor has the lease taken from it (renewed
    between rounds, the two relays ended each other every lease: review, r2)."""
    env, pool = await _deployment(lotline_env, tmp_path)
    other_pool = await db.create_pool(env.dsn, SCHEMA, size=2)
    producers = [make_producer(env.settings), make_producer(env.settings)]
    for producer in producers:
        await producer.start()
    leader = OutboxRelay(pool, producers[0], SCHEMA, lease_seconds=5)
    waiting = OutboxRelay(other_pool, producers[1], SCHEMA, lease_seconds=5)
    blocker = await asyncpg.connect(env.dsn, server_settings={"search_path": SCHEMA})
    lock = blocker.transaction()
    await lock.start()
    await blocker.execute("LOCK TABLE inbox IN SHARE MODE")  # the purge's DELETE waits for it
    try:
        leader.start()
        for _ in range(50):
            if leader.leading:
                break
            await asyncio.sleep(0.1)
        waiting.start()
        await asyncio.sleep(8)  # past the lease, with the leader's first round still waiting
        assert leader.leading and not waiting.leading
        age = await blocker.fetchval(
            "SELECT extract(epoch FROM now() - renewed_at) FROM outbox_lease"
        )
        assert age < 5
    finally:
        await lock.rollback()
        await blocker.close()
        for relay in (waiting, leader):
            await relay.stop()
        for producer in producers:
            await producer.stop()
        await other_pool.close()
        await pool.close()
