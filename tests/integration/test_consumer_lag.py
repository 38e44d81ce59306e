"""Consumer lag and stalled time (shared/consumer.py), against the real broker and PostgreSQL.

`lotline_consumer_lag_records{consumer, topic, partition}` is the partition's end offset, asked
of the broker, minus the consumer's position (the next offset it committed to PostgreSQL);
`lotline_consumer_stalled_seconds{consumer}` how long it has not moved on while some partition
lags (0 when caught up). Together they tell a stuck consumer (lag > 0, stalled growing) from an
idle one (lag 0), which the service's other gauges, all 0 while its database is down, cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import REGISTRY
from pydantic import TypeAdapter

from shared import consumer as consumer_module
from shared import stack
from shared.config import Settings
from shared.consumer import Inbound, UnitOfWork
from shared.contracts.upstream import ItemMessage, UpsertItem
from shared.service import ServiceRuntime
from tests.fixtures.infra import LotlineEnv, kafka_publish_many

SCHEMA = "lag_test"
# Generous: each condition is usually met within a round or two of LAG_EVERY below.
WAIT_SECONDS = 60.0
LAG_EVERY = 0.2


@pytest.fixture(autouse=True)
def _measure_often(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rounds every LAG_EVERY seconds instead of LAG_EVERY_SECONDS, so the waits are short."""
    monkeypatch.setattr(consumer_module, "LAG_EVERY_SECONDS", LAG_EVERY)


def _runtime(settings: Settings, migrations: Path, gate: asyncio.Event) -> ServiceRuntime:
    """A service recording each item's LIC, whose handler waits for `gate` before each batch."""

    async def record(uow: UnitOfWork, batch: list[Inbound[UpsertItem]]) -> None:
        await gate.wait()
        for inbound in batch:
            await uow.conn.execute("INSERT INTO seen (lic) VALUES ($1)", inbound.message.lic)

    if not (migrations / "001_seen.sql").exists():
        migrations.mkdir(exist_ok=True)
        (migrations / "001_seen.sql").write_text("CREATE TABLE seen (lic text NOT NULL);")
    runtime = ServiceRuntime(settings, schema=SCHEMA, migrations=migrations)
    runtime.consume(
        name="items", topic=settings.topics.items, adapter=TypeAdapter(ItemMessage), handler=record
    )
    return runtime


@contextlib.asynccontextmanager
async def _running(runtime: ServiceRuntime) -> AsyncIterator[ServiceRuntime]:
    await asyncio.wait_for(runtime.start(), 60)
    try:
        yield runtime
    finally:
        await asyncio.wait_for(runtime.stop(), 30)


def _items(lics: list[str]) -> list[tuple[str, bytes]]:
    return [
        (lic, json.dumps({"type": "UpsertItem", "message_id": f"m-{lic}", "lic": lic}).encode())
        for lic in lics
    ]


def _lag(topic: str) -> dict[int, float]:
    """The lag gauge's label sets for `topic`, by partition."""
    return {
        int(sample.labels["partition"]): sample.value
        for metric in REGISTRY.collect()
        if metric.name == "lotline_consumer_lag_records"
        for sample in metric.samples
        if sample.labels["consumer"] == SCHEMA and sample.labels["topic"] == topic
    }


def _shown() -> str:
    """What the gauges show of the consumer, for a failure's message."""
    return ", ".join(
        f"{sample.name}{sample.labels}={sample.value}"
        for metric in REGISTRY.collect()
        if metric.name.startswith("lotline_consumer_")
        for sample in metric.samples
        if sample.labels.get("consumer") == SCHEMA
    )


def _caught_up(topic: str) -> bool:
    """Lag shown for the topic's partitions, all 0."""
    lag = _lag(topic)
    return bool(lag) and not any(lag.values())


def _stalled() -> float | None:
    return REGISTRY.get_sample_value("lotline_consumer_stalled_seconds", {"consumer": SCHEMA})


async def _until(what: str, condition: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not {what} after {WAIT_SECONDS:g} s: {_shown()}")
        await asyncio.sleep(0.05)


async def _stalled_grows() -> None:
    """The stalled time goes up between two rounds (and is not 0)."""
    await _until("stalled", lambda: (_stalled() or 0) > 0)
    first = _stalled() or 0
    await _until("stalled longer", lambda: (_stalled() or 0) > first)


async def test_lag_counts_what_a_blocked_consumer_has_not_committed_and_stalled_grows_meanwhile(
    lotline_env: Callable[..., LotlineEnv], tmp_path: Path
) -> None:
    env = lotline_env()
    topic = env.settings.topics.items
    gate = asyncio.Event()
    # Published before the service starts: no stored offset yet, so counted from the beginning.
    await kafka_publish_many(env.bootstrap, topic, _items([f"A{i}" for i in range(7)]))
    runtime = _runtime(env.settings, tmp_path / "migrations", gate)
    async with _running(runtime):
        partitions = env.settings.topics.partitions(env.settings.lic_partitions)[topic]
        await _until("7 behind", lambda: sum(_lag(topic).values()) == 7)
        assert len(_lag(topic)) == partitions  # one label set per assigned partition
        await _stalled_grows()
        assert sum(_lag(topic).values()) == 7  # blocked: nothing committed

        gate.set()
        await _until("caught up", lambda: sum(_lag(topic).values()) == 0 and _stalled() == 0)

        # Behind again, while running: counted from the offsets the batches committed.
        gate.clear()
        await kafka_publish_many(env.bootstrap, topic, _items(["B1", "B2", "B3"]))
        await _until("3 behind", lambda: sum(_lag(topic).values()) == 3)
        await _stalled_grows()
        gate.set()
        await _until("caught up again", lambda: sum(_lag(topic).values()) == 0)
        await _until("not stalled", lambda: _stalled() == 0)

        # A revoked partition's label set goes (the listener calls `forget`), and stays gone.
        consumer = runtime.consumer
        assert consumer is not None
        gone = min(_lag(topic))
        consumer.forget([TopicPartition(topic, gone)])
        assert gone not in _lag(topic)
        await consumer.measure_lag()
        assert gone not in _lag(topic) and len(_lag(topic)) == partitions - 1

    # Stopped: its partitions are another process's to report.
    assert _lag(topic) == {}
    assert _stalled() is None
    assert consumer._lag_task is not None and consumer._lag_task.done()


async def test_while_its_database_is_down_the_consumer_shows_lag_and_a_growing_stalled_time(
    lotline_env: Callable[..., LotlineEnv], tmp_path: Path
) -> None:
    """The operator's case: PostgreSQL away for a while. The consumer retries its batch; the
    lag, asked of the broker only, counts what was published meanwhile, and the stalled time
    grows; once the database is back, it catches up and both read 0."""
    postgres = stack.start_postgres(tmp_path / "own-postgres")
    try:
        env = lotline_env(DATABASE_URL=postgres.dsn)
        topic = env.settings.topics.items
        gate = asyncio.Event()
        gate.set()
        runtime = _runtime(env.settings, tmp_path / "migrations", gate)
        async with _running(runtime):
            before = _batches()
            await kafka_publish_many(env.bootstrap, topic, _items(["A"]))
            await _until("A committed", lambda: _batches() > before)
            await _until("caught up", lambda: _caught_up(topic))
            postgres.stop()

            await kafka_publish_many(env.bootstrap, topic, _items(["B", "C", "D", "E"]))
            await _until("4 behind", lambda: sum(_lag(topic).values()) == 4)
            await _stalled_grows()
            assert sum(_lag(topic).values()) == 4

            postgres = stack.start_postgres(tmp_path / "own-postgres")
            await _until("caught up again", lambda: sum(_lag(topic).values()) == 0)
            await _until("not stalled", lambda: _stalled() == 0)
        conn = await asyncpg.connect(postgres.dsn, server_settings={"search_path": SCHEMA})
        try:
            seen = sorted(r["lic"] for r in await conn.fetch("SELECT lic FROM seen"))
        finally:
            await conn.close()
        assert seen == ["A", "B", "C", "D", "E"]
    finally:
        postgres.stop()


def _batches() -> float:
    """Batches the consumers named SCHEMA committed in this process."""
    return REGISTRY.get_sample_value("lotline_batches_total", {"consumer": SCHEMA}) or 0.0


async def test_partitions_assigned_while_the_database_is_down_count_from_the_offset_hint(
    lotline_env: Callable[..., LotlineEnv], tmp_path: Path
) -> None:
    """A rebalance while PostgreSQL is away: the consumer cannot claim its new partitions (nor
    read their stored offsets), so it reads nothing of them; their lag counts from the group's
    offset hint in Kafka, and they show as stuck, not idle."""
    postgres = stack.start_postgres(tmp_path / "own-postgres")
    try:
        env = lotline_env(DATABASE_URL=postgres.dsn)
        topic = env.settings.topics.items
        runtime = _runtime(env.settings, tmp_path / "migrations", _open_gate())
        async with _running(runtime):
            consumer = runtime.consumer
            assert consumer is not None
            lics = [f"A{i}" for i in range(8)]
            await kafka_publish_many(env.bootstrap, topic, _items(lics))
            await _until("all committed", lambda: consumer.processed >= len(lics))
            await _until("caught up", lambda: _caught_up(topic))
            # Positions of all four partitions committed to Kafka as the hint (about once a
            # second), so the new owner of a partition knows where its last owner stood.
            await consumer.commit_hints()
            postgres.stop()
            consumer._claim_seconds = 0.2  # give up claiming at once, as after CLAIM_SECONDS

            # Another member joins the group: our partitions are revoked, some assigned again.
            other = AIOKafkaConsumer(
                topic,
                bootstrap_servers=env.bootstrap,
                group_id=f"{env.topic_prefix}{SCHEMA}",
                enable_auto_commit=False,
            )
            await other.start()
            try:
                await _until("rebalanced", lambda: bool(other.assignment()))
                theirs = {tp.partition for tp in other.assignment()}
                ours = set(range(4)) - theirs
                await _until("ours shown", lambda: set(_lag(topic)) == ours)
                assert consumer._assigned and not consumer._epochs  # none claimed
                # Counted from the hint, not the beginning: nothing new since.
                assert any(_partition(lic) in ours for lic in lics)
                assert sum(_lag(topic).values()) == 0

                more = [f"B{i}" for i in range(8)]
                await kafka_publish_many(env.bootstrap, topic, _items(more))
                expected = sum(_partition(lic) in ours for lic in more)
                assert expected  # each pair of partitions holds some
                await _until(f"{expected} behind", lambda: sum(_lag(topic).values()) == expected)
                await _stalled_grows()
            finally:
                await other.stop()
            postgres = stack.start_postgres(tmp_path / "own-postgres")
            await _until("caught up again", lambda: sum(_lag(topic).values()) == 0)
            await _until("not stalled", lambda: _stalled() == 0)
    finally:
        postgres.stop()


def _open_gate() -> asyncio.Event:
    gate = asyncio.Event()
    gate.set()
    return gate


def _partition(lic: str) -> int:
    """The partition of the items topic (4 partitions) a record keyed `lic` goes to."""
    return int(DefaultPartitioner()(lic.encode(), [0, 1, 2, 3], [0, 1, 2, 3]))
