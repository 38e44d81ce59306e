"""Scenario 1: what this machine can do at all, measured in the same run as everything else.

- broker produce and consume msgs/s: ~300-byte keyed messages on a topic with the partition
  count of `inventory.commands` (LIC_PARTITIONS), with lotline's producer settings and the services'
  consumer settings (batches of KAFKA_MAX_BATCH, fetch_max_wait_ms 20);
- broker produce→consume latency p50/p99 at each offered rate of scenario 3 (messages/s = lines/s),
  published by the separate publisher process for `latency_seconds` (6 s by default, a fifth of
  scenario 3's runs: the topic then holds fewer messages, so on the embedded broker this ceiling
  is if anything lower, i.e. the comparison is conservative), each on its own fresh topic;
- PostgreSQL COPY rows/s of the same ~300-byte rows, 1,000 rows per transaction;
- the one-hop pipeline: a consumer group member reads a batch, COPYs it with its offsets in one
  transaction, then commits the offsets to Kafka (msgs/s).
"""

from __future__ import annotations

import time

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench import stats
from bench.infra import Deployment, new_deployment
from bench.kafka_io import Record, Tail, observer, partitions_of, publish, topic_sizes
from bench.publisher import Publisher
from bench.report import ScenarioResult
from bench.scenarios import Context
from bench.sizes import Sizes
from shared.contracts.topics import LIC_PARTITIONS
from shared.kafka import make_producer

PARTITIONS = LIC_PARTITIONS  # the ceilings read topics shaped like lotline's per-LIC topics
MESSAGE_BYTES = 300
COPY_BATCH = 1000


def steps(sizes: Sizes) -> int:
    return 5 + len(sizes.rates)


async def create_topic(deployment: Deployment, name: str, partitions: int = PARTITIONS) -> str:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=deployment.infra.bootstrap, **deployment.infra.kafka_options
    )
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    return name


def payload(n: int) -> bytes:
    body = orjson.dumps({"type": "Ceiling", "message_id": f"ceiling-{n}", "lic": f"LIC-{n % 1000}"})
    return body + b" " * max(0, MESSAGE_BYTES - len(body))


async def run(ctx: Context, result: ScenarioResult) -> None:
    deployment = await new_deployment(ctx.infra, "ceilings")
    topics: list[str] = []
    try:
        prefix = deployment.settings.topic_prefix
        raw = await create_topic(deployment, f"{prefix}ceiling.raw")
        topics.append(raw)
        ctx.progress.step("ceilings: broker produce")
        await _produce(ctx, result, deployment, raw)
        ctx.progress.step("ceilings: broker consume")
        await _consume(ctx, result, deployment, raw)
        publisher = Publisher(deployment.infra.bootstrap)
        await publisher.start()
        try:
            for offered in ctx.sizes.rates:
                ctx.progress.step(f"ceilings: broker latency at {offered}/s")
                topic = await create_topic(deployment, f"{prefix}ceiling.latency.{offered}")
                topics.append(topic)
                await _latency(ctx, result, deployment, publisher, topic, offered)
        finally:
            await publisher.close()
        ctx.progress.step("ceilings: PostgreSQL COPY")
        await _copy(ctx, result, deployment)
        ctx.progress.step("ceilings: one-hop pipeline")
        await _pipeline(ctx, result, deployment, raw)
        ctx.progress.step("ceilings: topic sizes")
        result.topics_held = await topic_sizes(
            deployment.infra.bootstrap, deployment.infra.kafka_options, topics
        )
    finally:
        await deployment.drop()


async def _produce(
    ctx: Context, result: ScenarioResult, deployment: Deployment, topic: str
) -> None:
    n = ctx.sizes.ceiling_messages
    messages = [(f"LIC-{i % 1000}", payload(i)) for i in range(n)]
    producer = make_producer(deployment.settings)
    await producer.start()
    try:
        started = time.perf_counter()
        await publish(producer, topic, messages)
        seconds = time.perf_counter() - started
    finally:
        await producer.stop()
    value = stats.rate(n, seconds)
    ctx.ceiling(
        "broker_produce_msgs_s",
        value,
        "msgs/s",
        "broker produce",
        f"{n:,} × {MESSAGE_BYTES} B, lotline's producer settings",
    )
    result.figure("broker produce", value, "msgs/s", ceiling="broker_produce_msgs_s")


async def _consume(
    ctx: Context, result: ScenarioResult, deployment: Deployment, topic: str
) -> None:
    n = ctx.sizes.ceiling_messages
    consumer = observer(
        deployment.infra.bootstrap,
        deployment.infra.kafka_options,
        max_poll_records=deployment.settings.kafka_max_batch,
    )
    await consumer.start()
    try:
        parts = await partitions_of(consumer, topic)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        got = 0
        started = time.perf_counter()
        deadline = started + 120
        while got < n and time.perf_counter() < deadline:
            batch = await consumer.getmany(
                timeout_ms=500, max_records=deployment.settings.kafka_max_batch
            )
            got += sum(len(records) for records in batch.values())
        seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
    if got < n:
        raise RuntimeError(f"consume ceiling: read {got:,} of {n:,} messages in 120 s")
    value = stats.rate(n, seconds)
    ctx.ceiling(
        "broker_consume_msgs_s",
        value,
        "msgs/s",
        "broker consume",
        f"batches of {deployment.settings.kafka_max_batch}, fetch_max_wait_ms 20",
    )
    result.figure("broker consume", value, "msgs/s", ceiling="broker_consume_msgs_s")


async def _latency(
    ctx: Context,
    result: ScenarioResult,
    deployment: Deployment,
    publisher: Publisher,
    topic: str,
    offered: int,
) -> None:
    latencies: list[float] = []

    def on_record(record: Record, seen_at: float) -> None:
        latencies.append(seen_at - orjson.loads(record.value or b"{}")["t"])

    tail = Tail(deployment.infra.bootstrap, deployment.infra.kafka_options, [topic], on_record)
    await tail.start()
    try:
        seconds = ctx.sizes.latency_seconds
        publisher.submit(
            {
                "op": "raw",
                "topic": topic,
                "rate": offered,
                "seconds": seconds,
                "size": MESSAGE_BYTES,
            }
        )
        done = await publisher.result("raw", seconds + 60)
        deadline = time.monotonic() + 30
        while len(latencies) < done["sent"] and time.monotonic() < deadline:
            tail.check()
            await __import__("asyncio").sleep(0.1)
    finally:
        await tail.stop()
    summary = stats.summary_ms(latencies)
    key = f"broker_latency_{offered}"
    note = f"{done['sent']:,} msgs at {offered}/s for {ctx.sizes.latency_seconds:.0f} s"
    ctx.ceiling(
        f"{key}_p50_ms", summary["p50_ms"], "ms", f"broker produce→consume p50 at {offered}/s", note
    )
    ctx.ceiling(
        f"{key}_p99_ms", summary["p99_ms"], "ms", f"broker produce→consume p99 at {offered}/s", note
    )
    result.figure(
        f"broker latency p50 at {offered}/s", summary["p50_ms"], "ms", ceiling=f"{key}_p50_ms"
    )
    result.figure(
        f"broker latency p99 at {offered}/s", summary["p99_ms"], "ms", ceiling=f"{key}_p99_ms"
    )
    result.details[f"latency_{offered}"] = {**summary, "sent": done["sent"]}


async def _copy(ctx: Context, result: ScenarioResult, deployment: Deployment) -> None:
    n = ctx.sizes.copy_rows
    rows = [
        ("ceiling", i % PARTITIONS, i, f"LIC-{i % 1000}".encode(), payload(i)) for i in range(n)
    ]
    conn = await asyncpg.connect(deployment.dsn)
    try:
        await conn.execute(_TABLES)
        started = time.perf_counter()
        for start in range(0, n, COPY_BATCH):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "bench_rows", records=rows[start : start + COPY_BATCH]
                )
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    value = stats.rate(n, seconds)
    ctx.ceiling(
        "copy_rows_s",
        value,
        "rows/s",
        "PostgreSQL COPY",
        f"{n:,} rows of ~{MESSAGE_BYTES} B, {COPY_BATCH} per transaction",
    )
    result.figure("PostgreSQL COPY", value, "rows/s", ceiling="copy_rows_s")


_TABLES = """
CREATE TABLE IF NOT EXISTS bench_rows (
    topic text NOT NULL, partition int NOT NULL, "offset" bigint NOT NULL, key bytea, value bytea
);
CREATE TABLE IF NOT EXISTS bench_offsets (
    topic text NOT NULL, partition int NOT NULL, next_offset bigint NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""


async def _pipeline(
    ctx: Context, result: ScenarioResult, deployment: Deployment, topic: str
) -> None:
    n = ctx.sizes.ceiling_messages
    settings = deployment.settings
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=deployment.infra.bootstrap,
        group_id=f"{settings.topic_prefix}pipeline",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        **deployment.infra.kafka_options,
    )
    conn = await asyncpg.connect(deployment.dsn)
    await consumer.start()
    try:
        await conn.execute("TRUNCATE bench_rows")
        got = 0
        started: float | None = None
        deadline = time.monotonic() + 180
        while got < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"pipeline ceiling: {got:,} of {n:,} messages in 180 s")
            batch = await consumer.getmany(timeout_ms=500, max_records=settings.kafka_max_batch)
            records = [r for part in batch.values() for r in part]
            if not records:
                continue
            if started is None:
                started = time.perf_counter()
            offsets = {(r.topic, r.partition): r.offset + 1 for r in records}
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "bench_rows",
                    records=[(r.topic, r.partition, r.offset, r.key, r.value) for r in records],
                )
                await conn.execute(
                    "INSERT INTO bench_offsets"
                    " SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])"
                    " ON CONFLICT (topic, partition)"
                    " DO UPDATE SET next_offset = excluded.next_offset",
                    [t for t, _ in offsets],
                    [p for _, p in offsets],
                    list(offsets.values()),
                )
            await consumer.commit()
            got += len(records)
        seconds = time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()
        await conn.close()
    value = stats.rate(n, seconds)
    ctx.ceiling(
        "pipeline_msgs_s",
        value,
        "msgs/s",
        "one-hop pipeline (consume → COPY + offsets in one transaction → commit)",
        f"{n:,} msgs, batches of ≤ {settings.kafka_max_batch}",
    )
    result.figure("one-hop pipeline", value, "msgs/s", ceiling="pipeline_msgs_s")
