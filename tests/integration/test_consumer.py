"""The transactional consumer against a real PostgreSQL (DESIGN.md §6): fencing of a zombie by
the partition epoch, exactly-once effect through the inbox and stored offsets, isolation of a
message that trips a bug, and constraint conflicts that never half-apply a batch."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from pydantic import TypeAdapter

from shared import db
from shared.consumer import (
    OUTCOMES,
    Fenced,
    Inbound,
    Refused,
    Route,
    TransactionalConsumer,
    UnitOfWork,
)
from shared.contracts.upstream import ItemMessage, UpsertItem
from shared.outbox import OutboxRelay
from tests.fixtures.infra import LotlineEnv

SCHEMA = "consumer_test"
TOPIC = "items"


class Recorder:
    """A handler that records LICs in a table with a CHECK: 'BOOM' raises, 'BAD' violates."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, uow: UnitOfWork, batch: list[Inbound[UpsertItem]]) -> None:
        self.calls += 1
        for inbound in batch:
            if inbound.message.lic == "BOOM":
                raise RuntimeError("a bug tripped by this message")
            await uow.conn.execute("INSERT INTO seen (lic) VALUES ($1)", inbound.message.lic)
            uow.outbox.emit("events", inbound.message.lic, inbound.message)


class _Stamps(Recorder):
    """A Recorder that also keeps each message's `occurred_at`, by LIC."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, datetime] = {}

    async def __call__(self, uow: UnitOfWork, batch: list[Inbound[UpsertItem]]) -> None:
        for inbound in batch:
            self.seen[inbound.message.lic] = inbound.message.occurred_at
        await super().__call__(uow, batch)


class _NoRelay:
    def wake(self) -> None:
        pass


@pytest.fixture
async def pool(lotline_env: Any, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    env: LotlineEnv = lotline_env(topics=False)
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "001_seen.sql").write_text(
        "CREATE TABLE seen (lic text NOT NULL CHECK (lic <> 'BAD'));"
    )
    await db.migrate(env.dsn, SCHEMA, db.migration_files(migrations))
    pool = await db.create_pool(env.dsn, SCHEMA, size=2)
    try:
        yield pool
    finally:
        await pool.close()


def _consumer(
    pool: asyncpg.Pool, handler: Recorder, *others: Route[Any], **options: Any
) -> TransactionalConsumer:
    from shared.config import Settings

    accepts = options.pop("accepts", None)
    route = Route(
        name="test",
        topic=TOPIC,
        adapter=TypeAdapter(ItemMessage),
        handler=handler,
        accepts=frozenset(accepts) if accepts else None,
        **options,
    )
    return TransactionalConsumer(
        name="service",
        routes=[route, *others],
        pool=pool,
        relay=_NoRelay(),  # type: ignore[arg-type]
        schema=SCHEMA,
        settings=Settings(LOTLINE_TOPIC_PREFIX="t."),
    )


def _record(
    offset: int,
    value: bytes,
    partition: int = 0,
    kind: str | None = None,
    topic: str = TOPIC,
    timestamp: int = 0,
) -> ConsumerRecord[bytes, bytes]:
    headers = [("type", kind.encode())] if kind else []
    return ConsumerRecord(
        topic, partition, offset, timestamp, 0, b"k", value, None, 1, len(value), headers
    )


def _item(message_id: str, lic: str) -> bytes:
    return json.dumps({"type": "UpsertItem", "message_id": message_id, "lic": lic}).encode()


async def _decided(pool: asyncpg.Pool, env: LotlineEnv, n: int) -> None:
    """`n` messages processed, their outbox rows bound for the real events topic."""
    consumer = _consumer(pool, Recorder())
    await consumer.claim([TopicPartition(TOPIC, 0)])
    await consumer._process_resiliently([_record(i, _item(f"m{i}", f"L{i}")) for i in range(n)])
    await pool.execute("UPDATE outbox SET topic = $1", env.settings.topics.events)


async def _rows(pool: asyncpg.Pool, sql: str) -> list[Any]:
    return [tuple(r) for r in await pool.fetch(sql)]


async def test_batch_commits_state_inbox_offsets_and_outbox_together(pool: asyncpg.Pool) -> None:
    handler = Recorder()
    consumer = _consumer(pool, handler)
    await consumer.claim([TopicPartition(TOPIC, 0)])
    batch = [_record(0, _item("m1", "A")), _record(1, _item("m2", "B"))]
    await consumer._process_resiliently(batch)

    assert await _rows(pool, "SELECT lic FROM seen ORDER BY lic") == [("A",), ("B",)]
    assert await _rows(pool, "SELECT next_offset FROM consumer_offsets") == [(2,)]
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 2
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 2


async def test_redelivered_message_ids_change_nothing(pool: asyncpg.Pool) -> None:
    handler = Recorder()
    consumer = _consumer(pool, handler)
    await consumer.claim([TopicPartition(TOPIC, 0)])
    await consumer._process_resiliently([_record(0, _item("m1", "A"))])
    # The same message again at a later offset (an upstream retry), twice in one batch.
    await consumer._process_resiliently(
        [_record(1, _item("m1", "A")), _record(2, _item("m1", "A"))]
    )
    assert await _rows(pool, "SELECT lic FROM seen") == [("A",)]
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1
    assert await _rows(pool, "SELECT next_offset FROM consumer_offsets") == [(3,)]


async def test_a_zombie_with_an_old_epoch_cannot_commit(pool: asyncpg.Pool) -> None:
    zombie = _consumer(pool, Recorder())
    await zombie.claim([TopicPartition(TOPIC, 0)])
    successor = _consumer(pool, Recorder())
    await successor.claim([TopicPartition(TOPIC, 0)])  # the rebalance bumps the epoch

    with pytest.raises(Fenced):
        await zombie._commit_unit([_record(0, _item("m1", "ZOMBIE"))], None)
    assert await _rows(pool, "SELECT lic FROM seen") == []
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 0

    await successor._process_resiliently([_record(0, _item("m1", "OWNER"))])
    assert await _rows(pool, "SELECT lic FROM seen") == [("OWNER",)]


async def test_a_message_that_trips_a_bug_is_isolated_and_dead_lettered(
    pool: asyncpg.Pool,
) -> None:
    consumer = _consumer(pool, Recorder())
    await consumer.claim([TopicPartition(TOPIC, 0)])
    batch = [
        _record(0, _item("m1", "A")),
        _record(1, _item("m2", "BOOM")),
        _record(2, _item("m3", "C")),
    ]
    await consumer._process_resiliently(batch)

    assert await _rows(pool, "SELECT lic FROM seen ORDER BY lic") == [("A",), ("C",)]
    dead = await pool.fetch("SELECT payload, headers FROM outbox WHERE topic = 't.inventory.dlq'")
    assert len(dead) == 1
    assert json.loads(dead[0]["payload"])["lic"] == "BOOM"
    assert "a bug tripped by this message" in dead[0]["headers"]["error"]
    assert dead[0]["headers"]["source_offset"] == "1"
    assert await _rows(pool, "SELECT next_offset FROM consumer_offsets") == [(3,)]


async def test_a_constraint_conflict_never_half_applies_a_batch(pool: asyncpg.Pool) -> None:
    """The backstop: a batch whose write breaks a constraint is rolled back as a whole, retried,
    then split so the good messages commit and the offending one is dead-lettered."""
    consumer = _consumer(pool, Recorder())
    await consumer.claim([TopicPartition(TOPIC, 0)])
    batch = [_record(0, _item("m1", "A")), _record(1, _item("m2", "BAD"))]
    await consumer._process_resiliently(batch)

    assert await _rows(pool, "SELECT lic FROM seen") == [("A",)]
    assert await _rows(pool, "SELECT next_offset FROM consumer_offsets") == [(2,)]
    dead = await pool.fetch("SELECT headers FROM outbox WHERE topic = 't.inventory.dlq'")
    assert "CheckViolation" in dead[0]["headers"]["error"]


async def test_invalid_bytes_are_dead_lettered_with_their_source(pool: asyncpg.Pool) -> None:
    consumer = _consumer(pool, Recorder())
    await consumer.claim([TopicPartition(TOPIC, 0)])
    await consumer._process_resiliently([_record(0, b"\xff not json"), _record(1, _item("m", "A"))])

    dead = await pool.fetch("SELECT payload, headers FROM outbox WHERE topic = 't.inventory.dlq'")
    assert [bytes(d["payload"]) for d in dead] == [b"\xff not json"]
    assert dead[0]["headers"]["source_topic"] == TOPIC
    assert "UTF-8" in dead[0]["headers"]["error"]
    assert await _rows(pool, "SELECT lic FROM seen") == [("A",)]


async def test_a_nul_in_an_upstream_header_does_not_stop_the_dead_letter(
    pool: asyncpg.Pool,
) -> None:
    """Dead-letter headers are stored as jsonb, which refuses NUL: the header is kept with the
    NUL replaced, and the partition moves on."""
    consumer = _consumer(pool, Recorder())
    await consumer.claim([TopicPartition(TOPIC, 0)])
    bad = _record(0, b"not json")
    bad.headers.append(("trace\x00id", b"abc\x00def"))
    await consumer._process_resiliently([bad, _record(1, _item("m", "A"))])

    (dead,) = await pool.fetch("SELECT headers FROM outbox WHERE topic = 't.inventory.dlq'")
    assert dead["headers"]["original_trace\ufffdid"] == "abc\ufffddef"
    assert await _rows(pool, "SELECT lic FROM seen") == [("A",)]
    assert consumer._next[(TOPIC, 0)] == 2


async def test_relay_publishes_in_decision_order_and_marks_rows_sent(
    pool: asyncpg.Pool, lotline_env: Any
) -> None:
    from shared.kafka import make_producer
    from tests.fixtures.infra import json_values, kafka_read_until

    env: LotlineEnv = lotline_env()
    await _decided(pool, env, 5)

    producer = make_producer(env.settings)
    await producer.start()
    relay = OutboxRelay(pool, producer, SCHEMA)
    try:
        async with pool.acquire() as proxy:
            conn = cast(asyncpg.Connection, proxy)
            assert await relay.publish_once(conn) == 5
            assert await relay.publish_once(conn) == 0
    finally:
        await producer.stop()
    records = await kafka_read_until(
        env.bootstrap, env.settings.topics.events, lambda rs: len(rs) >= 5
    )
    assert sorted(v["lic"] for v in json_values(records)) == [f"L{i}" for i in range(5)]
    assert {tuple(r.headers) for r in records} == {(("type", b"UpsertItem"),)}
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0


async def test_the_relay_puts_each_key_on_the_partition_send_would_in_row_order(
    pool: asyncpg.Pool, lotline_env: Any
) -> None:
    """The relay hands the producer one record batch per partition: each key must still land
    where `producer.send()` (every other lotline producer) puts it, since one writer per LIC
    rests on it, and each partition must keep the rows' order."""
    from shared.kafka import make_producer
    from shared.outbox import OutboxRow, write_outbox
    from tests.fixtures.infra import kafka_read_until

    env: LotlineEnv = lotline_env()
    topics = env.settings.topics
    keys = [f"LIC-{i}".encode() for i in range(40)]
    rows = [
        OutboxRow(topics.events, key, b"%d" % n, {"type": "T"}) for n, key in enumerate(keys * 2)
    ]
    async with pool.acquire() as proxy:
        await write_outbox(cast(asyncpg.Connection, proxy), rows, "unused")
    producer = make_producer(env.settings)
    await producer.start()
    try:
        for key in keys:  # the same keys through send(), onto a topic as wide
            await producer.send_and_wait(topics.commands, value=b"x", key=key)
        async with pool.acquire() as proxy:
            assert await OutboxRelay(pool, producer, SCHEMA).publish_once(
                cast(asyncpg.Connection, proxy)
            ) == len(rows)
    finally:
        await producer.stop()
    relayed = await kafka_read_until(env.bootstrap, topics.events, lambda rs: len(rs) >= len(rows))
    sent = await kafka_read_until(env.bootstrap, topics.commands, lambda rs: len(rs) >= len(keys))
    assert {r.key: r.partition for r in relayed} == {r.key: r.partition for r in sent}
    assert len({r.partition for r in sent}) > 1
    for partition in {r.partition for r in relayed}:
        values = [int(r.value) for r in relayed if r.partition == partition]
        assert values == sorted(values)


async def test_types_a_consumer_does_not_read_are_passed_over_unparsed(pool: asyncpg.Pool) -> None:
    handler = Recorder()
    consumer = _consumer(pool, handler, accepts=("UpsertItem",))
    await consumer.claim([TopicPartition(TOPIC, 0)])
    # Not even parsed: these bytes would otherwise be dead-lettered.
    await consumer.on_batch(_Batch([_record(0, b"{not json", kind="StockReceived")]))
    assert handler.calls == 0
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0

    await consumer._process_resiliently(
        [
            _record(1, b"{not json either", kind="LineShipped"),
            _record(2, _item("m1", "A"), kind="UpsertItem"),
            _record(3, _item("m2", "B")),  # no type header: read as before
        ]
    )
    assert await _rows(pool, "SELECT lic FROM seen ORDER BY lic") == [("A",), ("B",)]
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 2  # nothing dead-lettered
    assert await _rows(pool, "SELECT next_offset FROM consumer_offsets") == [(4,)]
    await consumer.close()


async def test_after_commit_callbacks_run_only_when_the_batch_committed(
    pool: asyncpg.Pool,
) -> None:
    committed: list[str] = []

    class Remembering(Recorder):
        async def __call__(self, uow: UnitOfWork, batch: list[Inbound[UpsertItem]]) -> None:
            lics = [i.message.lic for i in batch]
            uow.after_commit(lambda: committed.extend(lics))
            await super().__call__(uow, batch)

    consumer = _consumer(pool, Remembering())
    await consumer.claim([TopicPartition(TOPIC, 0)])
    # The batch with BAD rolls back (CHECK) and is split: only the single commits call back.
    await consumer._process_resiliently(
        [_record(0, _item("m1", "A")), _record(1, _item("m2", "BAD"))]
    )
    assert committed == ["A"]


async def test_assignment_calls_the_on_assign_hook(pool: asyncpg.Pool) -> None:
    calls: list[int] = []
    consumer = _consumer(pool, Recorder(), on_assign=lambda: calls.append(1))
    await consumer.claim([TopicPartition(TOPIC, 0)])
    await consumer.claim([])
    assert calls == [1]


class _Batch:
    """What FastStream hands `on_batch`: the raw records of one fetch."""

    def __init__(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        self.raw_message = tuple(records)


async def test_one_consumer_keeps_each_topics_inbox_and_offsets_apart(pool: asyncpg.Pool) -> None:
    """Two topics, one Kafka consumer: the same message_id on both is two messages, each topic
    goes to its own handler, and each topic's offsets are stored under its own name."""
    items, adjustments = Recorder(), Recorder()
    other = Route(
        name="test-adjustments",
        topic="adjustments",
        adapter=TypeAdapter(ItemMessage),
        handler=adjustments,
    )
    consumer = _consumer(pool, items, other)
    await consumer.claim([TopicPartition(TOPIC, 0), TopicPartition("adjustments", 0)])
    await consumer._process_resiliently(
        [
            _record(0, _item("same-id", "A")),
            _record(0, _item("same-id", "B"), topic="adjustments"),
            _record(1, _item("same-id", "B"), topic="adjustments"),  # a true repeat
        ]
    )
    assert (items.calls, adjustments.calls) == (1, 1)
    assert await _rows(pool, "SELECT lic FROM seen ORDER BY lic") == [("A",), ("B",)]
    assert await _rows(
        pool, "SELECT consumer, topic, next_offset FROM consumer_offsets ORDER BY consumer"
    ) == [("test", TOPIC, 1), ("test-adjustments", "adjustments", 2)]


class _Locking(Recorder):
    """A handler that takes its messages' LIC locks itself, as the intakes do; with events,
    it then lets the other transaction go on and waits for it (at most a second) to have
    taken its own."""

    def __init__(
        self, mine: asyncio.Event | None = None, other: asyncio.Event | None = None
    ) -> None:
        super().__init__()
        self.mine, self.other = mine, other

    async def __call__(self, uow: UnitOfWork, batch: list[Inbound[UpsertItem]]) -> None:
        await db.lock_names(uow.conn, _names([inbound.message for inbound in batch]))
        if self.mine is not None and self.other is not None:
            self.mine.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.other.wait(), 1.0)
        await super().__call__(uow, batch)


def _names(messages: list[UpsertItem]) -> list[str]:
    return [f"test.lic:{m.lic}" for m in messages]


async def _lic_locks(_conn: asyncpg.Connection, messages: list[UpsertItem]) -> list[str]:
    return _names(messages)


async def test_two_transactions_reading_two_topics_in_opposite_orders_never_deadlock(
    pool: asyncpg.Pool,
) -> None:
    """Two processes, each with a batch of both topics: one's items name LIC A and its
    adjustments B, the other's the reverse, and each handler locks its LICs. Locked topic by
    topic, each would hold one LIC and wait for the other's (PostgreSQL ends one transaction,
    DeadlockDetectedError); the consumer takes both topics' locks before any handler runs."""
    first, second = asyncio.Event(), asyncio.Event()
    consumers = []
    for mine, other, partition in ((first, second, 0), (second, first, 1)):
        adjustments = Route(
            name="test-adjustments",
            topic="adjustments",
            adapter=TypeAdapter(ItemMessage),
            handler=_Locking(),
            locks=_lic_locks,
        )
        consumer = _consumer(pool, _Locking(mine, other), adjustments, locks=_lic_locks)
        await consumer.claim(
            [TopicPartition(TOPIC, partition), TopicPartition("adjustments", partition)]
        )
        consumers.append(consumer)
    batches = [
        [_record(0, _item("i-A", "A")), _record(0, _item("a-B", "B"), topic="adjustments")],
        [
            _record(0, _item("i-B", "B"), partition=1),
            _record(0, _item("a-A", "A"), partition=1, topic="adjustments"),
        ],
    ]
    await asyncio.wait_for(
        asyncio.gather(*(c._commit_unit(b, None) for c, b in zip(consumers, batches, strict=True))),
        20,
    )
    assert await _rows(pool, "SELECT lic FROM seen ORDER BY lic") == [
        ("A",),
        ("A",),
        ("B",),
        ("B",),
    ]


async def test_locks_are_taken_up_front_only_for_a_batch_of_several_declaring_routes(
    pool: asyncpg.Pool,
) -> None:
    """A batch of one route's messages leaves its locks to its handler (one statement, which
    cannot wait in turn for another's): no extra round trip. A batch of two routes' messages
    has both routes' declared locks taken together, with the consumer's `lock`."""
    asked: list[tuple[str, list[str]]] = []
    taken: list[list[str]] = []

    def declaring(route: str) -> Any:
        async def locks(_conn: asyncpg.Connection, messages: list[UpsertItem]) -> list[str]:
            asked.append((route, [m.lic for m in messages]))
            return [m.lic for m in messages]

        return locks

    async def lock(_conn: asyncpg.Connection, names: list[str]) -> None:
        taken.append(sorted(names))

    adjustments = Route(
        name="test-adjustments",
        topic="adjustments",
        adapter=TypeAdapter(ItemMessage),
        handler=Recorder(),
        locks=declaring("adjustments"),
    )
    consumer = _consumer(pool, Recorder(), adjustments, locks=declaring("items"))
    consumer._lock = lock
    await consumer.claim([TopicPartition(TOPIC, 0), TopicPartition("adjustments", 0)])
    await consumer._commit_unit([_record(0, _item("i-1", "A"))], None)
    assert (asked, taken) == ([], [])
    await consumer._commit_unit(
        [_record(1, _item("i-2", "B")), _record(0, _item("a-1", "C"), topic="adjustments")], None
    )
    assert sorted(asked) == [("adjustments", ["C"]), ("items", ["B"])]
    assert taken == [["B", "C"]]


async def test_the_relay_purges_message_ids_older_than_the_retention(pool: asyncpg.Pool) -> None:
    consumer = _consumer(pool, Recorder())
    await consumer.claim([TopicPartition(TOPIC, 0)])
    await consumer._process_resiliently(
        [_record(0, _item("old", "A")), _record(1, _item("new", "B"))]
    )
    await pool.execute(
        "UPDATE inbox SET processed_at = now() - interval '31 days' WHERE message_id = 'old'"
    )
    async with pool.acquire() as proxy:
        assert await OutboxRelay.purge_inbox(cast(asyncpg.Connection, proxy), 30 * 86400) == 1
    assert await _rows(pool, "SELECT message_id FROM inbox") == [("new",)]


async def test_a_stopped_relay_hands_its_lease_on_and_leaves_no_session_state(
    pool: asyncpg.Pool, lotline_env: Any
) -> None:
    """The pool returns connections without asyncpg's reset round trip, so the relay must undo
    its session-level lock and LISTEN itself: after it stops, another process's relay leads."""
    import asyncio

    from shared.kafka import make_producer

    env: LotlineEnv = lotline_env()
    producer = make_producer(env.settings)
    await producer.start()
    first = OutboxRelay(pool, producer, SCHEMA)
    key = first._lock_key
    try:
        first.start()
        for _ in range(100):
            if await pool.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            ):
                break
            await asyncio.sleep(0.05)
        assert await pool.fetchval("SELECT pg_try_advisory_lock($1)", key) is False  # led
        await first.stop()
        async with pool.acquire() as proxy:  # may be the relay's connection, back in the pool
            conn = cast(asyncpg.Connection, proxy)
            assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
            locks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            assert await conn.fetchval(locks) == 0
        other = await asyncpg.connect(env.dsn)  # another process
        try:
            assert await other.fetchval("SELECT pg_try_advisory_lock($1)", key) is True
        finally:
            await other.close()
    finally:
        await producer.stop()


async def test_the_relay_marks_what_it_published_even_when_no_commit_follows(
    pool: asyncpg.Pool, lotline_env: Any
) -> None:
    """The relay marks a batch sent with its next read; when no commit wakes it soon after,
    it marks the batch on its own, with the time publishing was acknowledged."""
    import asyncio

    from shared.kafka import make_producer

    env: LotlineEnv = lotline_env()
    await _decided(pool, env, 3)
    producer = make_producer(env.settings)
    await producer.start()
    relay = OutboxRelay(pool, producer, SCHEMA)
    try:
        relay.start()
        for _ in range(100):
            if not await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
                break
            await asyncio.sleep(0.05)
        assert relay.published == 3
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
        assert await pool.fetchval(
            "SELECT bool_and(sent_at >= created_at AND sent_at <= now()) FROM outbox"
        )
    finally:
        await relay.stop()
        await producer.stop()


# --- invalid but identifiable documents: refused and dead-lettered together -------------------


def _bad_item(message_id: str, lic: str = "A") -> bytes:
    """An identifiable UpsertItem that fails validation: a negative cost."""
    return json.dumps(
        {"type": "UpsertItem", "message_id": message_id, "lic": lic, "est_unit_cost": "-1"}
    ).encode()


def _refusing(pool: asyncpg.Pool, **options: Any) -> TransactionalConsumer:
    from services.allocation.translate import refuse_items

    return _consumer(pool, Recorder(), refuse=refuse_items("t.inventory.events"), **options)


async def _outbox(pool: asyncpg.Pool) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    rows = await pool.fetch("SELECT topic, payload, headers FROM outbox ORDER BY id")
    return [(r["topic"], _json(bytes(r["payload"])), r["headers"]) for r in rows]


def _json(payload: bytes) -> dict[str, Any]:
    try:
        return cast(dict[str, Any], json.loads(payload))
    except ValueError:
        return {}


async def test_an_identifiable_invalid_document_is_refused_and_dead_lettered_together(
    pool: asyncpg.Pool,
) -> None:
    consumer = _refusing(pool)
    await consumer.claim([TopicPartition(TOPIC, 0)])
    await consumer._process_resiliently(
        [_record(0, _bad_item("m1")), _record(1, b"{not json"), _record(2, _item("m2", "B"))]
    )

    rows = await _outbox(pool)
    refusals = [(payload, headers) for topic, payload, headers in rows if topic.endswith("events")]
    assert [
        (p["type"], p["lic"], p["command_id"], p["reason_code"], p["offending"])
        for p, _ in refusals[:1]
    ] == [("CommandRejected", "A", "item:m1", "INVALID_QUANTITY", "-1")]
    assert refusals[0][0]["message_id"] == "item:m1/rejected"
    assert refusals[0][1] == {"type": "CommandRejected"}
    dead = [(payload, headers) for topic, payload, headers in rows if topic.endswith("dlq")]
    assert len(dead) == 2  # the refused document is dead-lettered too, the non-JSON one only
    assert dead[0][1]["answered"] == "CommandRejected"
    assert "est_unit_cost" in dead[0][1]["error"]
    assert "answered" not in dead[1][1]
    # The refused message's id is in the inbox: it has been answered.
    assert await _rows(pool, "SELECT message_id FROM inbox ORDER BY message_id") == [
        ("m1",),
        ("m2",),
    ]
    assert await _rows(pool, "SELECT lic FROM seen") == [("B",)]
    assert await _rows(pool, "SELECT next_offset FROM consumer_offsets") == [(3,)]


async def test_a_refusal_is_written_only_with_its_dead_letter_and_offsets(
    pool: asyncpg.Pool,
) -> None:
    """One transaction: a zombie's batch leaves neither the refusal nor the dead letter."""
    zombie = _refusing(pool)
    await zombie.claim([TopicPartition(TOPIC, 0)])
    await _refusing(pool).claim([TopicPartition(TOPIC, 0)])
    with pytest.raises(Fenced):
        await zombie._commit_unit([_record(0, _bad_item("m1"))], None)
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 0


async def test_a_redelivered_invalid_document_is_refused_once(pool: asyncpg.Pool) -> None:
    consumer = _refusing(pool)
    await consumer.claim([TopicPartition(TOPIC, 0)])
    await consumer._process_resiliently([_record(0, _bad_item("m1"))])
    # An upstream retry at a later offset, twice in one batch.
    await consumer._process_resiliently(
        [_record(1, _bad_item("m1")), _record(2, _bad_item(" m1 "))]
    )
    rows = await _outbox(pool)
    assert [p["type"] for t, p, _ in rows if t.endswith("events")] == ["CommandRejected"]
    dead = [h for t, _, h in rows if t.endswith("dlq")]
    assert [h["source_offset"] for h in dead] == ["0", "1", "2"]  # every record reaches operators
    assert [h["answered"] for h in dead[1:]] == ["already answered (message_id seen before)"] * 2
    assert await _rows(pool, "SELECT next_offset FROM consumer_offsets") == [(3,)]


async def test_a_refusal_builder_that_raises_leaves_the_dead_letter_only(
    pool: asyncpg.Pool,
) -> None:
    def broken(raw: dict[str, Any], errors: Any) -> Any:
        raise RuntimeError("a bug in the builder")

    consumer = _consumer(pool, Recorder(), refuse=broken)
    await consumer.claim([TopicPartition(TOPIC, 0)])
    await consumer._process_resiliently([_record(0, _bad_item("m1")), _record(1, _item("m2", "B"))])

    rows = await _outbox(pool)
    dead = [h for t, _, h in rows if t.endswith("dlq")]
    assert len(dead) == 1 and "answered" not in dead[0]
    assert [t for t, _, _ in rows if not t.endswith("dlq")] == ["events"]  # B's, nothing else
    assert await _rows(pool, "SELECT message_id FROM inbox") == [("m2",)]
    assert await _rows(pool, "SELECT next_offset FROM consumer_offsets") == [(2,)]


async def test_a_refusal_the_contract_cannot_carry_leaves_the_dead_letter_only(
    pool: asyncpg.Pool,
) -> None:
    """A builder returning something unencodable is a bug too: dead letter, partition goes on."""
    consumer = _consumer(pool, Recorder(), refuse=lambda raw, errors: [("x", "k", object())])
    await consumer.claim([TopicPartition(TOPIC, 0)])
    await consumer._process_resiliently([_record(0, _bad_item("m1"))])
    assert [t for t, _, _ in await _outbox(pool)] == ["t.inventory.dlq"]
    assert await _rows(pool, "SELECT next_offset FROM consumer_offsets") == [(1,)]


async def test_an_on_refused_hook_acts_in_record_order_before_the_refusal_once(
    pool: asyncpg.Pool,
) -> None:
    """A route's `on_refused` hook runs in the transaction for the documents answered now, never
    again on redelivery; the route's records are handled in record order: what the handler
    emits for the messages before it, then what the hook emits, then the refusal, then the rest."""
    from services.allocation.translate import refuse_items

    called: list[list[tuple[str, str, int]]] = []

    async def hook(uow: UnitOfWork, refused: list[Refused]) -> None:
        called.append([(r.message_id, r.document["lic"], r.offset) for r in refused])
        for r in refused:
            uow.outbox.emit(
                "events", r.document["lic"], UpsertItem(message_id=f"hook-{r.message_id}", lic="H")
            )

    handler = Recorder()
    consumer = _consumer(pool, handler, refuse=refuse_items("t.inventory.events"), on_refused=hook)
    await consumer.claim([TopicPartition(TOPIC, 0)])
    batch = [
        _record(0, _item("m1", "A")),
        _record(1, _bad_item(" m2 ", "X")),
        _record(2, _bad_item("m3", "Y")),
        _record(3, _item("m4", "B")),
    ]
    await consumer._process_resiliently(batch)
    # Redelivered, and the same document again under its id: answered before, no hook.
    await consumer._process_resiliently([_record(4, _bad_item("m2", "X"))])

    assert called == [[("m2", "X", 1), ("m3", "Y", 2)]]
    assert handler.calls == 2  # the messages before the refused documents, then those after
    rows = [
        (t.removeprefix("t.inventory."), p.get("message_id")) for t, p, _ in await _outbox(pool)
    ]
    assert rows == [
        ("events", "m1"),
        ("events", "hook-m2"),
        ("events", "hook-m3"),
        ("events", "item:m2/rejected"),
        ("dlq", " m2 "),  # the dead letter: the record's bytes as sent
        ("events", "item:m3/rejected"),
        ("dlq", "m3"),
        ("events", "m4"),
        ("dlq", "m2"),  # the redelivery: dead-lettered, not answered again
    ]


# --- occurred_at: the record's timestamp when upstream leaves it out -----------------------------


async def test_a_message_without_occurred_at_takes_its_records_timestamp(
    pool: asyncpg.Pool,
) -> None:
    from datetime import UTC

    stamps = _Stamps()
    seen = stamps.seen
    consumer = _consumer(pool, stamps)
    await consumer.claim([TopicPartition(TOPIC, 0)])
    stamped = json.dumps(
        {
            "type": "UpsertItem",
            "message_id": "m2",
            "lic": "B",
            "occurred_at": "2026-01-02T03:04:05Z",
        }
    ).encode()
    ts = 1_767_225_600_123  # 2026-01-01T00:00:00.123Z
    await consumer._process_resiliently(
        [_record(0, _item("m1", "A"), timestamp=ts), _record(1, stamped, timestamp=ts)]
    )
    assert seen["A"] == datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    assert seen["B"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # given: kept
    # What the handler emitted (and so every later decision) carries the record's time.
    (payload,) = await pool.fetch("SELECT payload FROM outbox WHERE key = 'A'")
    assert json.loads(payload["payload"])["occurred_at"] == "2026-01-01T00:00:00.123000Z"


async def test_a_record_timestamp_past_year_9999_is_clamped_not_dead_lettered(
    pool: asyncpg.Pool,
) -> None:
    """Any int64 is a legal CreateTime: a valid message without occurred_at whose record time
    lies past 9999-12-31 is processed, stamped with the latest instant a message can carry (the
    same on every replay), instead of failing with OverflowError and being dead-lettered."""
    from datetime import UTC

    stamps = _Stamps()
    seen = stamps.seen
    consumer = _consumer(pool, stamps)
    await consumer.claim([TopicPartition(TOPIC, 0)])
    await consumer._process_resiliently(
        [
            _record(0, _item("m1", "A"), timestamp=253_402_300_800_000),  # 10000-01-01
            _record(1, _item("m2", "B"), timestamp=2**63 - 1),
        ]
    )
    latest = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert seen == {"A": latest, "B": latest}
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 't.inventory.dlq'") == 0
    (payload,) = await pool.fetch("SELECT payload FROM outbox WHERE key = 'A'")
    assert json.loads(payload["payload"])["occurred_at"] == "9999-12-31T23:59:59.999000Z"


# --- headers without a value (Kafka allows them; aiokafka gives None) ---------------------------


async def test_an_invalid_record_with_a_header_without_a_value_is_dead_lettered(
    pool: asyncpg.Pool,
) -> None:
    """§6: the dead letter keeps the header, empty, and the partition moves on (it used to
    raise while writing the dead letter, so the same record came back forever)."""
    consumer = _consumer(pool, Recorder())
    await consumer.claim([TopicPartition(TOPIC, 0)])
    bad = _record(0, b"not json")
    bad.headers.append(("traceparent", None))  # type: ignore[arg-type]
    await consumer.on_batch(_Batch([bad, _record(1, _item("m", "A"))]))

    (dead,) = await pool.fetch("SELECT headers FROM outbox WHERE topic = 't.inventory.dlq'")
    assert dead["headers"]["original_traceparent"] == ""
    assert await _rows(pool, "SELECT lic FROM seen") == [("A",)]
    assert await _rows(pool, "SELECT next_offset FROM consumer_offsets") == [(2,)]
    await consumer.close()


async def test_a_type_header_without_a_value_is_read_like_no_header(pool: asyncpg.Pool) -> None:
    """A null `type` names no type: the record is parsed (contract: a record without the header
    is parsed), neither passed over unread nor a crash."""
    handler = Recorder()
    consumer = _consumer(pool, handler, accepts=("UpsertItem",))
    await consumer.claim([TopicPartition(TOPIC, 0)])
    valid, garbage = _record(0, _item("m1", "A")), _record(1, b"{not json")
    for record in (valid, garbage):
        record.headers.append(("type", None))  # type: ignore[arg-type]
    await consumer.on_batch(_Batch([valid, garbage]))

    assert await _rows(pool, "SELECT lic FROM seen") == [("A",)]
    dead = await pool.fetch("SELECT headers FROM outbox WHERE topic = 't.inventory.dlq'")
    assert [d["headers"]["source_offset"] for d in dead] == ["1"]
    await consumer.close()


# --- hostile values in an identifiable document: still answered -------------------------------


async def test_a_refusal_whose_offending_value_grows_under_nfc_is_still_sent(
    pool: asyncpg.Pool,
) -> None:
    """U+FB2C is three characters in NFC: 700 of them fail the 2,000-character description and
    the refusal echoing them must still be valid, so the document is answered."""
    consumer = _refusing(pool)
    await consumer.claim([TopicPartition(TOPIC, 0)])
    doc = {"type": "UpsertItem", "message_id": "m1", "lic": "A", "description": "\ufb2c" * 700}
    await consumer._process_resiliently([_record(0, json.dumps(doc).encode())])

    rows = await _outbox(pool)
    (refusal,) = [p for t, p, _ in rows if t.endswith("events")]
    assert (refusal["type"], refusal["reason_code"]) == ("CommandRejected", "INVALID_QUANTITY")
    assert len(refusal["offending"]) <= 2_000
    (dead,) = [h for t, _, h in rows if t.endswith("dlq")]
    assert dead["answered"] == "CommandRejected"


@pytest.mark.parametrize("cost", [b"9" * 5000, b"1E+1000000000", b'"1E+1000000000"'])
async def test_a_number_beyond_what_python_converts_is_refused_like_1e400(
    pool: asyncpg.Pool, cost: bytes
) -> None:
    """§6 hostile numbers: a 5,000-digit integer (past Python's int conversion limit) or an
    exponent past the decimal context's is an ordinary invalid value, answered INVALID_QUANTITY
    with the dead letter, not a crash that splits the batch."""
    consumer = _refusing(pool)
    await consumer.claim([TopicPartition(TOPIC, 0)])
    raw = _bad_item("m1").replace(b'"-1"', cost)
    await consumer._process_resiliently([_record(0, raw), _record(1, _item("m2", "B"))])

    rows = await _outbox(pool)
    refusals = [p for t, p, _ in rows if t.endswith("events") and p.get("type") != "UpsertItem"]
    assert [(p["type"], p["reason_code"]) for p in refusals] == [
        ("CommandRejected", "INVALID_QUANTITY")
    ]
    assert len(refusals[0]["offending"]) <= 2_000
    (dead,) = [h for t, _, h in rows if t.endswith("dlq")]
    assert dead["answered"] == "CommandRejected"
    assert "est_unit_cost" in dead["error"]
    assert await _rows(pool, "SELECT lic FROM seen") == [("B",)]


# --- errors that are not worth retrying ----------------------------------------------------------


async def test_a_client_side_data_error_is_dead_lettered_not_retried_forever(
    pool: asyncpg.Pool,
) -> None:
    """asyncpg's client-side DataError (an argument it cannot encode) is an InterfaceError,
    which is transient, but it fails the same way on every try: the message that trips it is
    isolated and dead-lettered like any bug, and the partition goes on."""
    import asyncio

    class Encoding(Recorder):
        async def __call__(self, uow: UnitOfWork, batch: list[Inbound[UpsertItem]]) -> None:
            for inbound in batch:
                if inbound.message.lic == "ENCODE":
                    raise asyncpg.exceptions._base.DataError("invalid input for query argument")
            await super().__call__(uow, batch)

    consumer = _consumer(pool, Encoding())
    await consumer.claim([TopicPartition(TOPIC, 0)])
    batch = [_record(0, _item("m1", "A")), _record(1, _item("m2", "ENCODE"))]
    await asyncio.wait_for(consumer._process_resiliently(batch), timeout=20)

    assert await _rows(pool, "SELECT lic FROM seen") == [("A",)]
    (dead,) = await pool.fetch("SELECT headers FROM outbox WHERE topic = 't.inventory.dlq'")
    assert "DataError" in dead["headers"]["error"]
    assert dead["headers"]["source_offset"] == "1"


# --- claiming an assignment while the database is unreachable ----------------------------------


class _Unreachable:
    async def __aenter__(self) -> Any:
        raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    async def __aexit__(self, *exc: object) -> None:
        return None


class _FlakyPool:
    """The real pool, but the next `down` connections cannot be had (a failover)."""

    def __init__(self, pool: asyncpg.Pool, down: int) -> None:
        self._pool = pool
        self.down = down

    def acquire(self) -> Any:
        if self.down > 0:
            self.down -= 1
            return _Unreachable()
        return self._pool.acquire()


class _Seeks:
    """The aiokafka consumer as TransactionalConsumer drives it: where it sends each partition."""

    def __init__(self) -> None:
        self.seeks: list[tuple[str, int, int]] = []

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp.topic, tp.partition, offset))

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.topic, tp.partition, 0))

    async def commit(self, offsets: Any) -> None:
        return None


def _flaky_consumer(
    pool: asyncpg.Pool, handler: Recorder, down: int
) -> tuple[TransactionalConsumer, _FlakyPool, _Seeks]:
    from types import SimpleNamespace

    flaky = _FlakyPool(pool, down)
    consumer = _consumer(flaky, handler)  # type: ignore[arg-type]
    kafka = _Seeks()
    consumer._subscriber = SimpleNamespace(consumer=kafka)
    consumer._claim_seconds = 0.3
    return consumer, flaky, kafka


async def test_claiming_an_assignment_retries_while_the_database_is_unreachable(
    pool: asyncpg.Pool,
) -> None:
    from shared.consumer import _Listener

    consumer, flaky, kafka = _flaky_consumer(pool, Recorder(), down=2)
    consumer._claim_seconds = 30
    await _Listener(consumer).on_partitions_assigned([TopicPartition(TOPIC, 0)])

    assert flaky.down == 0
    assert consumer._epochs == {(TOPIC, 0): 1}
    assert kafka.seeks == [(TOPIC, 0, 0)]
    assert await _rows(pool, "SELECT epoch FROM consumer_offsets") == [(1,)]


async def test_records_of_a_partition_whose_claim_failed_are_claimed_never_passed_over(
    pool: asyncpg.Pool,
) -> None:
    """§6: aiokafka only logs a listener's error, so a claim that fails at assignment leaves a
    partition assigned but without an epoch. Its records are not silently skipped: on_batch
    claims it first (seeking back while the database is still down) and reads them after."""
    from shared.consumer import _Listener

    handler = Recorder()
    consumer, flaky, kafka = _flaky_consumer(pool, handler, down=1_000_000)
    await _Listener(consumer).on_partitions_assigned([TopicPartition(TOPIC, 0)])  # logged only
    assert consumer._epochs == {}
    batch = _Batch([_record(i, _item(f"m{i}", f"L{i}")) for i in (3, 4)])

    await consumer.on_batch(batch)  # the database is still down: back to where the batch began
    assert kafka.seeks == [(TOPIC, 0, 3)]
    assert handler.calls == 0

    flaky.down = 0
    await consumer.on_batch(batch)  # claimed now: seek to the stored offset, read from there
    assert consumer._epochs == {(TOPIC, 0): 1}
    assert kafka.seeks[1:] == [(TOPIC, 0, 0)]
    redelivered = _Batch([_record(i, _item(f"m{i}", f"L{i}")) for i in range(5)])
    await consumer.on_batch(redelivered)

    assert await _rows(pool, "SELECT lic FROM seen ORDER BY lic") == [
        ("L0",),
        ("L1",),
        ("L2",),
        ("L3",),
        ("L4",),
    ]
    assert await _rows(pool, "SELECT next_offset FROM consumer_offsets") == [(5,)]
    assert consumer.processed == 5
    await consumer.close()


# --- observability: refusals counted once committed, outcomes by route, dead-letter lines -----


class _Logged:
    """Stands in for a module's structlog logger: keeps (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        def record(event: str, *args: Any, **fields: Any) -> None:
            self.lines.append((level, event, fields))

        return record

    def events(self, name: str) -> list[dict[str, Any]]:
        return [fields for _, event, fields in self.lines if event == name]


def _logged(monkeypatch: pytest.MonkeyPatch, module: Any) -> _Logged:
    fake = _Logged()
    monkeypatch.setattr(module, "log", fake)
    return fake


def _sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def _outcomes(*consumers: str) -> dict[tuple[str, str], float]:
    return {
        (consumer, outcome): _sample("lotline_messages_total", consumer=consumer, outcome=outcome)
        for consumer in consumers
        for outcome in OUTCOMES
    }


def _grown(
    before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]
) -> dict[tuple[str, str], float]:
    return {key: after[key] - before[key] for key in after if after[key] != before[key]}


class _Rejecting(Recorder):
    """Answers every item with a refusal, then records it (so 'BOOM' raises after emitting
    its refusal and that of every message before it in the batch: all rolled back)."""

    async def __call__(self, uow: UnitOfWork, batch: list[Inbound[UpsertItem]]) -> None:
        from shared.contracts.events import CommandRejected
        from shared.contracts.reasons import ReasonCode

        self.calls += 1
        for inbound in batch:
            m = inbound.message
            uow.outbox.emit(
                "events",
                m.lic,
                CommandRejected(
                    message_id=f"{m.message_id}/rejected",
                    lic=m.lic,
                    command_id=m.message_id,
                    command_type="UpsertItem",
                    reason_code=ReasonCode.TRACKING_LOCKED,
                    reason=f"{m.lic}: tracking is locked",
                    offending=m.lic,
                ),
            )
            if m.lic == "BOOM":
                raise RuntimeError("a bug tripped by this message")
            await uow.conn.execute("INSERT INTO seen (lic) VALUES ($1)", m.lic)


async def test_a_committed_refusal_counts_and_logs_once_and_a_rolled_back_one_never(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared.outbox

    logged = _logged(monkeypatch, shared.outbox)
    labels = {"service": "service", "type": "CommandRejected", "reason_code": "TRACKING_LOCKED"}
    before = _sample("lotline_refusals_total", **labels)
    consumer = _consumer(pool, _Rejecting())
    await consumer.claim([TopicPartition(TOPIC, 0)])
    # The whole batch is rolled back (BOOM), then each message alone: A and C commit, BOOM is
    # dead-lettered. Three refusals were emitted in the rolled-back unit, one more in BOOM's.
    await consumer._process_resiliently(
        [
            _record(0, _item("m1", "A")),
            _record(1, _item("m2", "BOOM")),
            _record(2, _item("m3", "C")),
        ]
    )
    assert await _rows(pool, "SELECT lic FROM seen ORDER BY lic") == [("A",), ("C",)]
    assert _sample("lotline_refusals_total", **labels) == before + 2
    lines = logged.events("refusal")
    assert [(line["lic"], line["message_id"]) for line in lines] == [
        ("A", "m1/rejected"),
        ("C", "m3/rejected"),
    ]
    assert lines[0] == {
        "service": "service",
        "type": "CommandRejected",
        "message_id": "m1/rejected",
        "reason_code": "TRACKING_LOCKED",
        "reason": "A: tracking is locked",
        "offending": "A",
        "command_id": "m1",
        "lic": "A",
    }

    # A redelivery changes nothing and says nothing; a fenced zombie's unit never commits.
    await consumer._process_resiliently([_record(3, _item("m1", "A"))])
    zombie = _consumer(pool, _Rejecting())
    await zombie.claim([TopicPartition(TOPIC, 0)])
    await _consumer(pool, _Rejecting()).claim([TopicPartition(TOPIC, 0)])
    with pytest.raises(Fenced):
        await zombie._commit_unit([_record(4, _item("m9", "Z"))], None)
    assert _sample("lotline_refusals_total", **labels) == before + 2
    assert len(logged.events("refusal")) == 2


async def test_an_answered_invalid_document_counts_once_as_refused_under_its_route(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lotline_messages_total`: every record once, under its route's name (`test`), never the
    service's (`service`); the refusal answering it is in `lotline_refusals_total` too."""
    import shared.outbox

    logged = _logged(monkeypatch, shared.outbox)
    labels = {"service": "service", "type": "CommandRejected", "reason_code": "INVALID_QUANTITY"}
    refused_before = _sample("lotline_refusals_total", **labels)
    before = _outcomes("test", "service")
    consumer = _refusing(pool, accepts=("UpsertItem",))
    await consumer.claim([TopicPartition(TOPIC, 0)])
    await consumer._process_resiliently(
        [
            _record(0, _bad_item("m1")),  # answered: refused
            _record(1, b"{not json"),  # dead-lettered
            _record(2, _item("m2", "B")),  # processed
            _record(3, b"whatever", kind="StockReceived"),  # passed over
        ]
    )
    assert _grown(before, _outcomes("test", "service")) == {
        ("test", "refused"): 1,
        ("test", "dead_lettered"): 1,
        ("test", "processed"): 1,
        ("test", "passed_over"): 1,
    }
    assert _sample("lotline_refusals_total", **labels) == refused_before + 1
    (line,) = logged.events("refusal")
    assert (line["type"], line["lic"], line["offending"]) == ("CommandRejected", "A", "-1")

    # Again (an upstream retry): not answered again, so dead-lettered only; and a batch of
    # types the route does not read, passed over without a transaction, under the route too.
    before = _outcomes("test", "service")
    await consumer._process_resiliently([_record(4, _bad_item("m1")), _record(5, _item("m2", "B"))])
    await consumer.on_batch(_Batch([_record(6, b"x", kind="LineShipped")]))
    assert _grown(before, _outcomes("test", "service")) == {
        ("test", "dead_lettered"): 1,
        ("test", "duplicate"): 1,
        ("test", "passed_over"): 1,
    }
    assert _sample("lotline_refusals_total", **labels) == refused_before + 1
    await consumer.close()


async def test_a_dead_letters_log_line_names_the_records_key_and_message_id(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared.consumer

    logged = _logged(monkeypatch, shared.consumer)
    consumer = _refusing(pool)
    await consumer.claim([TopicPartition(TOPIC, 0)])
    hostile = _record(2, b"\xff not json")
    hostile.key = b"\x1b[2J\nforged line" * 50
    await consumer._process_resiliently(
        [
            _record(0, _bad_item("m-refused")),  # answered: the id it was answered under
            _record(1, _item("m-boom", "BOOM")),  # valid, failed processing: read from the bytes
            hostile,  # not a message: no id; its key escaped and clipped
        ]
    )
    lines = {line["offset"]: line for line in logged.events("consumer.dead_letter")}
    assert (lines[0]["key"], lines[0]["message_id"]) == ("b'k'", "m-refused")
    assert (lines[1]["key"], lines[1]["message_id"]) == ("b'k'", "m-boom")
    assert lines[2]["message_id"] is None
    key = lines[2]["key"]
    assert "\n" not in key and "\x1b" not in key and key.startswith("b'\\x1b[2J\\nforged")
    assert key.endswith(f"({len(hostile.key)} bytes)") and len(key) < 400
    assert {line["consumer"] for line in lines.values()} == {"test"}


# --- a message_id reused upstream for another document: dead-lettered, never dropped silently --

REUSED = "was already processed with a different document: this one was not applied"


def _doc(message_id: str, lic: str, **fields: Any) -> bytes:
    return json.dumps(
        {"type": "UpsertItem", "message_id": message_id, "lic": lic, **fields}
    ).encode()


async def _dead_letters(pool: asyncpg.Pool) -> list[tuple[bytes, dict[str, str]]]:
    rows = await pool.fetch(
        "SELECT payload, headers FROM outbox WHERE topic = 't.inventory.dlq' ORDER BY id"
    )
    return [(bytes(r["payload"]), r["headers"]) for r in rows]


async def test_a_message_id_reused_for_another_document_is_dead_lettered_not_applied(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The id's first document stands (its effect is not undone, the second is not applied),
    but the second is not dropped silently: it is dead-lettered with the reason, logged, and
    counted as `reused_id`. The same document re-sent with a new occurred_at, another key order
    and other spacing is a redelivery: silent, as always."""
    import shared.consumer

    logged = _logged(monkeypatch, shared.consumer)
    consumer = _consumer(pool, Recorder())
    await consumer.claim([TopicPartition(TOPIC, 0)])
    first = _doc("m1", "A", est_unit_cost=2, occurred_at="2026-01-01T00:00:00Z")
    await consumer._process_resiliently([_record(0, first)])
    assert await pool.fetchval("SELECT digest IS NOT NULL FROM inbox WHERE message_id = 'm1'")

    before = _outcomes("test")
    other = _doc("m1", "A", est_unit_cost=7)
    again = json.dumps(  # the first document, rendered differently, re-sent later
        {"occurred_at": "2026-02-02T00:00:00Z", "est_unit_cost": 2.0, "lic": "A"}
        | {"message_id": " m1 ", "type": "UpsertItem"},
        indent=2,
    ).encode()
    await consumer._process_resiliently([_record(1, other), _record(2, again)])

    assert await _rows(pool, "SELECT lic FROM seen") == [("A",)]  # applied once: the first
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'events'") == 1
    ((payload, headers),) = await _dead_letters(pool)
    assert payload == other  # as received
    assert headers["error"] == f"message_id m1 {REUSED}"
    assert (headers["source_topic"], headers["source_offset"], headers["consumer"]) == (
        TOPIC,
        "1",
        "test",
    )
    assert "answered" not in headers
    assert _grown(before, _outcomes("test")) == {("test", "reused_id"): 1, ("test", "duplicate"): 1}
    (warning,) = logged.events("consumer.message_id_reused")
    assert (warning["message_id"], warning["offset"], warning["consumer"]) == ("m1", 1, "test")
    assert await _rows(pool, "SELECT next_offset FROM consumer_offsets") == [(3,)]


async def test_a_message_id_reused_inside_one_batch_is_dead_lettered_too(
    pool: asyncpg.Pool,
) -> None:
    """The id twice in one batch: the first document is applied, a different second one is
    dead-lettered, a true repeat of the first is a silent duplicate."""
    before = _outcomes("test")
    consumer = _consumer(pool, Recorder())
    await consumer.claim([TopicPartition(TOPIC, 0)])
    await consumer._process_resiliently(
        [
            _record(0, _item("m1", "A")),
            _record(1, _item("m1", "B")),
            _record(2, _item("m1", "A")),
            _record(3, _item("m2", "C")),
        ]
    )
    assert await _rows(pool, "SELECT lic FROM seen ORDER BY lic") == [("A",), ("C",)]
    dead = await _dead_letters(pool)
    assert [(p, h["source_offset"], h["error"]) for p, h in dead] == [
        (_item("m1", "B"), "1", f"message_id m1 {REUSED}")
    ]
    assert _grown(before, _outcomes("test")) == {
        ("test", "processed"): 2,
        ("test", "reused_id"): 1,
        ("test", "duplicate"): 1,
    }


async def test_an_inbox_row_from_before_digests_takes_any_document_as_a_duplicate(
    pool: asyncpg.Pool,
) -> None:
    """A row written before the digest column (NULL) cannot tell documents apart: as before."""
    consumer = _consumer(pool, Recorder())
    await consumer.claim([TopicPartition(TOPIC, 0)])
    await consumer._process_resiliently([_record(0, _item("m1", "A"))])
    await pool.execute("UPDATE inbox SET digest = NULL")
    await consumer._process_resiliently([_record(1, _item("m1", "B"))])
    assert await _rows(pool, "SELECT lic FROM seen") == [("A",)]
    assert await _dead_letters(pool) == []


async def test_a_refused_documents_id_reused_by_a_corrected_one_is_dead_lettered(
    pool: asyncpg.Pool,
) -> None:
    """An id answered with a refusal keeps its document's digest: a corrected document under the
    same id is not applied (the refusal stands) and is dead-lettered, not dropped silently."""
    consumer = _refusing(pool)
    await consumer.claim([TopicPartition(TOPIC, 0)])
    await consumer._process_resiliently([_record(0, _bad_item("m1"))])
    await consumer._process_resiliently([_record(1, _item("m1", "A"))])
    assert await _rows(pool, "SELECT lic FROM seen") == []
    dead = await _dead_letters(pool)
    assert [(h["source_offset"], h.get("answered")) for _, h in dead] == [
        ("0", "CommandRejected"),
        ("1", None),
    ]
    assert dead[1][1]["error"] == f"message_id m1 {REUSED}"


async def test_ids_on_lotlines_own_topics_keep_no_digest(pool: asyncpg.Pool) -> None:
    """lotline derives the ids of its own commands, events and status itself: no digest is
    stored or compared for them (an id again is a duplicate, as always)."""
    own = Recorder()
    commands = "t.inventory.commands"
    route = Route(name="test-own", topic=commands, adapter=TypeAdapter(ItemMessage), handler=own)
    consumer = _consumer(pool, Recorder(), route)
    await consumer.claim([TopicPartition(commands, 0)])
    await consumer._process_resiliently(
        [_record(0, _item("c1", "A"), topic=commands), _record(1, _item("c1", "B"), topic=commands)]
    )
    assert await _rows(pool, "SELECT consumer, digest FROM inbox") == [("test-own", None)]
    assert await _rows(pool, "SELECT lic FROM seen") == [("A",)]
    assert await _dead_letters(pool) == []


# --- a document on the wrong intake topic: dead-lettered only, never answered there ------------


def _adjustment(message_id: str, lic: str, quantity: Any = 5) -> bytes:
    return json.dumps(
        {
            "type": "AdjustInventory",
            "message_id": message_id,
            "adjustment_id": f"ADJ-{message_id}",
            "lic": lic,
            "office": "AI",
            "kind": "beginning_balance",
            "quantity": quantity,
            "unit_cost": "1.00",
        }
    ).encode()


async def test_a_document_on_the_wrong_intake_topic_is_dead_lettered_unanswered(
    pool: asyncpg.Pool,
) -> None:
    """An AdjustInventory on the items topic (and an UpsertItem on the adjustments topic), valid
    or not, is not that topic's document: dead letter only, no CommandRejected, its id kept out
    of the route's inbox, so the same document on the right topic gets its one decision."""
    from services.allocation.translate import refuse_adjustments, refuse_items
    from shared.contracts.upstream import AdjustmentMessage

    adjusted = Recorder()
    adjustments = Route(
        name="test-adjustments",
        topic="adjustments",
        adapter=TypeAdapter(AdjustmentMessage),
        handler=adjusted,
        refuse=refuse_adjustments("t.inventory.events"),
    )
    consumer = _consumer(pool, Recorder(), adjustments, refuse=refuse_items("t.inventory.events"))
    await consumer.claim([TopicPartition(TOPIC, 0), TopicPartition("adjustments", 0)])
    await consumer._process_resiliently(
        [
            _record(0, _adjustment("a1", "A")),  # valid, wrong topic
            _record(1, _adjustment("a2", "A", quantity=0)),  # invalid too, wrong topic
            _record(0, _item("i1", "B"), topic="adjustments"),  # valid, wrong topic
            _record(1, _bad_item("i2", "B"), topic="adjustments"),  # invalid too, wrong topic
        ]
    )
    rows = await _outbox(pool)
    assert [t for t, _, _ in rows] == ["t.inventory.dlq"] * 4  # no answer at all
    assert all("answered" not in h for _, _, h in rows)
    assert [(h["source_topic"], h["source_offset"]) for _, _, h in rows] == [
        (TOPIC, "0"),
        (TOPIC, "1"),
        ("adjustments", "0"),
        ("adjustments", "1"),
    ]
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 0

    # The same documents on the right topics: each decided once, there.
    await consumer._process_resiliently(
        [
            _record(2, _item("i1", "B")),
            _record(3, _bad_item("i2", "B")),
            _record(2, _adjustment("a1", "A"), topic="adjustments"),
            _record(3, _adjustment("a2", "A", quantity=0), topic="adjustments"),
        ]
    )
    assert await _rows(pool, "SELECT lic FROM seen ORDER BY lic") == [("A",), ("B",)]
    answers = [p for t, p, _ in await _outbox(pool) if t == "t.inventory.events"]
    assert sorted((p["type"], p["command_id"]) for p in answers) == [
        ("CommandRejected", "adjustment:a2"),
        ("CommandRejected", "item:i2"),
    ]


# --- the document digest: what identifies a document, not its rendering -----------------------


def _digest(text: bytes) -> bytes:
    from shared.consumer import document_digest
    from shared.contracts.codec import loads

    return document_digest(loads(text), text)


def test_the_digest_ignores_rendering_occurred_at_and_the_ids_spacing() -> None:
    base = _digest(b'{"type":"UpsertItem","message_id":"m1","lic":"A","cost":2,"x":{"b":1,"a":2}}')
    for same in (
        b'{ "x": {"a": 2, "b": 1.0}, "cost": 2.00, "lic": "A", "message_id": " m1 ",'
        b' "type": "UpsertItem", "occurred_at": "2026-01-01T00:00:00Z" }',
        b'{"type":"UpsertItem","message_id":"m1","lic":"A","cost":2e0,"x":{"b":1,"a":2}}',
    ):
        assert _digest(same) == base
    for other in (
        b'{"type":"UpsertItem","message_id":"m1","lic":"B","cost":2,"x":{"b":1,"a":2}}',
        b'{"type":"UpsertItem","message_id":"m1","lic":"A","cost":2.5,"x":{"b":1,"a":2}}',
        b'{"type":"UpsertItem","message_id":"m1","lic":"A","cost":"2","x":{"b":1,"a":2}}',
        b'{"type":"UpsertItem","message_id":"m1","lic":"A","cost":2,"x":{"b":1,"a":3}}',
        b'{"type":"UpsertItem","message_id":"m1","lic":"A","cost":2,"x":[1,2]}',
    ):
        assert _digest(other) != base


def test_a_valid_messages_digest_is_of_what_validation_reads() -> None:
    """A re-send that validates to the same message (an identifier with spaces around it or
    decomposed, a quantity as text or as a number, a new occurred_at) digests the same; one
    that says something else does not."""
    from pydantic import TypeAdapter

    from shared.consumer import message_digest
    from shared.contracts.codec import decode
    from shared.contracts.upstream import ItemMessage

    def digest(text: bytes) -> bytes:
        return message_digest(decode(TypeAdapter(ItemMessage), text))

    base = digest(
        b'{"type":"UpsertItem","message_id":"m1","lic":"Caf\u00e9","est_unit_cost":2,'
        b'"occurred_at":"2026-01-01T00:00:00Z"}'
    )
    for same in (
        b'{"est_unit_cost":"2.0","lic":" Cafe\u0301 ","type":"UpsertItem","message_id":" m1 "}',
        b'{"type":"UpsertItem","message_id":"m1","lic":"Caf\u00e9","est_unit_cost":2.00,'
        b'"occurred_at":"2026-02-02T00:00:00Z"}',
    ):
        assert digest(same) == base
    assert digest(b'{"type":"UpsertItem","message_id":"m1","lic":"Cafe","est_unit_cost":2}') != base
    assert (
        digest(b'{"type":"UpsertItem","message_id":"m1","lic":"Caf\u00e9","est_unit_cost":3}')
        != base
    )


def test_a_field_left_out_and_one_sent_with_its_default_digest_apart_where_that_differs() -> None:
    """`PurchaseOrderUpdated.closed` left out keeps the PO as it was; `false` reopens it: the
    same id with the one and then the other is another document (dead-lettered, never a silent
    duplicate). A field defaulting to None reads the same sent as null or left out."""
    from pydantic import TypeAdapter

    from shared.consumer import message_digest
    from shared.contracts.codec import decode
    from shared.contracts.upstream import CostMessage, ItemMessage

    def po(extra: bytes) -> bytes:
        return message_digest(
            decode(
                TypeAdapter(CostMessage),
                b'{"type":"PurchaseOrderUpdated","message_id":"po-1","po":"PO-1","lic":"A",'
                b'"ordered_quantity":5' + extra + b"}",
            )
        )

    assert po(b"") != po(b',"closed":false') != po(b',"closed":true')
    item = TypeAdapter(ItemMessage)
    left_out = b'{"type":"UpsertItem","message_id":"m1","lic":"A"}'
    as_null = b'{"type":"UpsertItem","message_id":"m1","lic":"A","next_serial":null,"gtin":null}'
    assert message_digest(decode(item, left_out)) == message_digest(decode(item, as_null))


def test_the_digest_of_what_orjson_cannot_render_never_raises() -> None:
    big = b'{"n": ' + b"9" * 40 + b"}"
    assert _digest(big) != _digest(b'{"n": ' + b"9" * 39 + b"}")
    assert len(_digest(b'{"s": "\\ud800"}')) == 16  # a lone surrogate
    assert _digest(b'{"d": 1e400}') != _digest(b'{"d": 1e401}')


async def test_a_closed_consumer_starts_no_more_offset_hint_tasks(pool: asyncpg.Pool) -> None:
    """Shutdown: `ServiceRuntime.stop` closes the consumers before the broker stops, and a batch
    in between would start a hint task nobody cancels ("Task was destroyed but it is
    pending"). Once closed, none starts."""
    consumer = _consumer(pool, Recorder())
    consumer._ensure_hint_task()
    assert consumer._hint_task is not None
    await consumer.close()
    assert consumer._hint_task.done()
    consumer._ensure_hint_task()
    assert consumer._hint_task.done()  # still the cancelled one: no new task


async def test_the_relay_purges_a_chunk_at_a_time(pool: asyncpg.Pool) -> None:
    """Out-of-retention message ids and sent outbox rows go `limit` at a time (the relay
    publishes between chunks: one DELETE of millions would hold it); parked rows stay."""
    await pool.execute(
        "INSERT INTO inbox (consumer, message_id, processed_at)"
        " SELECT 'c', 'm' || g, now() - interval '40 days' FROM generate_series(1, 5) g"
    )
    await pool.execute(
        "INSERT INTO outbox (topic, payload, sent_at, parked)"
        " SELECT 't', '\\x00', now() - interval '1 hour', CASE WHEN g = 1 THEN 'refused' END"
        " FROM generate_series(1, 5) g"
    )
    async with pool.acquire() as proxy:
        conn = cast(asyncpg.Connection, proxy)
        assert [await OutboxRelay.purge_inbox(conn, 30 * 86400, 2) for _ in range(4)] == [
            2,
            2,
            1,
            0,
        ]
        assert [await OutboxRelay.purge(conn, 600, 3) for _ in range(3)] == [3, 1, 0]
    assert await _rows(pool, "SELECT parked FROM outbox") == [("refused",)]
