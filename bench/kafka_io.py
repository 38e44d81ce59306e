"""Kafka clients of the benchmark: bulk publishing, topic sizes, and observers that tail topics.

Observers are plain consumers without a group (as a dashboard would read), assigned every
partition from the beginning, with `fetch_max_wait_ms=20`: the default 500 ms would dominate
every latency on the embedded broker, which does not answer a waiting fetch early.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

FETCH_MAX_WAIT_MS = 20

Record: TypeAlias = ConsumerRecord[bytes, bytes]


def plain_producer(bootstrap: str, options: dict[str, Any], **overrides: Any) -> AIOKafkaProducer:
    """A producer as an upstream system would configure it (its own client, default partitioner)."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "enable_idempotence": False,  # the embedded broker rejects idempotent producers
        "acks": "all",
        "linger_ms": 2,
        "max_batch_size": 1024 * 1024,
        "max_request_size": 9 * 1024 * 1024,
        **options,
        **overrides,
    }
    return AIOKafkaProducer(**config)


def observer(bootstrap: str, options: dict[str, Any], **overrides: Any) -> AIOKafkaConsumer:
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
        "max_partition_fetch_bytes": 16 * 1024 * 1024,
        "fetch_max_bytes": 64 * 1024 * 1024,
        **options,
        **overrides,
    }
    return AIOKafkaConsumer(**config)


async def publish(
    producer: AIOKafkaProducer, topic: str, messages: Iterable[tuple[str, bytes]]
) -> int:
    """Send (key, value) pairs without waiting for each; return once the broker has them all."""
    futures = [await producer.send(topic, value, key=key.encode()) for key, value in messages]
    await asyncio.gather(*futures)
    return len(futures)


async def partitions_of(
    consumer: AIOKafkaConsumer, topic: str, timeout: float = 30
) -> list[TopicPartition]:
    deadline = time.monotonic() + timeout
    while True:
        known = await consumer.topics()
        if topic in known:
            found = consumer.partitions_for_topic(topic)
            if found:
                return [TopicPartition(topic, p) for p in sorted(found)]
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"topic {topic} does not exist after {timeout:.0f}s (known: {sorted(known)[:20]})"
            )
        await asyncio.sleep(0.1)


async def topic_sizes(
    bootstrap: str, options: dict[str, Any], topics: Sequence[str]
) -> dict[str, int]:
    """How many messages each topic holds (end minus beginning offsets over its partitions).

    The embedded broker's "latest offset" answer can lag the true end by one batch, so the
    end is confirmed by reading from just before the answered end until nothing more comes.
    """
    consumer = observer(bootstrap, options)
    await consumer.start()
    try:
        parts: list[TopicPartition] = []
        for topic in topics:  # all metadata first: after assign() the client only tracks those
            parts += await partitions_of(consumer, topic)
        starts = await consumer.beginning_offsets(parts)
        ends = dict(await consumer.end_offsets(parts))
        consumer.assign(parts)
        for part in parts:
            consumer.seek(part, max(starts[part], ends[part] - 1))
        quiet = 0
        while quiet < 2:
            batch = await consumer.getmany(timeout_ms=300, max_records=100_000)
            quiet = 0 if batch else quiet + 1
            for part, records in batch.items():
                ends[part] = max(ends[part], records[-1].offset + 1)
        return {
            topic: sum(ends[p] - starts[p] for p in parts if p.topic == topic) for topic in topics
        }
    finally:
        await consumer.stop()


class Tail:
    """Reads `topics` from the beginning in the background; `on_record(record, seen_at)` runs for
    every record, `seen_at` being this process's wall clock when the batch arrived."""

    def __init__(
        self,
        bootstrap: str,
        options: dict[str, Any],
        topics: Sequence[str],
        on_record: Callable[[Record, float], None],
        *,
        fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
    ) -> None:
        self._consumer = observer(bootstrap, options, fetch_max_wait_ms=fetch_max_wait_ms)
        self._topics = list(topics)
        self._on_record = on_record
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None
        self.records = 0

    async def start(self) -> None:
        await self._consumer.start()
        parts: list[TopicPartition] = []
        for topic in self._topics:
            parts += await partitions_of(self._consumer, topic)
        self._consumer.assign(parts)
        await self._consumer.seek_to_beginning(*parts)
        self._task = asyncio.create_task(self._run(), name="bench-tail")

    async def _run(self) -> None:
        try:
            while True:
                batch = await self._consumer.getmany(timeout_ms=200)
                seen_at = time.time()
                for records in batch.values():
                    for record in records:
                        self._on_record(record, seen_at)
                    self.records += len(records)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # surfaced by check(): an observer must not fail silently
            self.error = exc

    def check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"observer of {self._topics} failed: {self.error!r}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()
