"""The batch subscribers' poll (shared.kafka): FastStream naps `batch_timeout_ms` after an empty
poll, which delays a message arriving meanwhile; lotline's poll goes straight back to waiting
on the fetcher."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import anyio
import pytest
from faststream.kafka.subscriber.usecase import BatchSubscriber

import shared.kafka  # noqa: F401  (installs the poll)


class _Consumer:
    def __init__(self, answers: list[dict[str, list[str]]]) -> None:
        self.answers = answers
        self.calls: list[tuple[int, int]] = []

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[str, list[str]]:
        self.calls.append((timeout_ms, max_records))
        return self.answers.pop(0)


async def test_an_empty_poll_returns_at_once_instead_of_napping(monkeypatch: Any) -> None:
    """No clock is read: any nap (FastStream's own takes `anyio.sleep(batch_timeout_ms)`) is
    recorded instead of slept, and there must be none."""
    naps: list[float] = []

    async def nap(seconds: float, *_: Any, **__: Any) -> None:
        naps.append(seconds)

    monkeypatch.setattr(anyio, "sleep", nap)
    monkeypatch.setattr(asyncio, "sleep", nap)
    subscriber: Any = SimpleNamespace(batch_timeout_ms=500, max_records=7)
    consumer = _Consumer([{}])
    assert await BatchSubscriber.get_msg(subscriber, consumer) == ()
    assert naps == []  # FastStream's own would nap 0.5 s here
    assert consumer.calls == [(500, 7)]


async def test_a_poll_returns_every_partitions_records_in_order() -> None:
    subscriber: Any = SimpleNamespace(batch_timeout_ms=20, max_records=10)
    consumer = _Consumer([{"p0": ["a", "b"], "p1": ["c"]}])
    assert await BatchSubscriber.get_msg(subscriber, consumer) == ("a", "b", "c")


class _Fetching(_Consumer):
    """A consumer whose fetcher's wait the pace sets, as aiokafka's `Fetcher` reads it."""

    def __init__(self, answers: list[dict[str, list[str]]]) -> None:
        super().__init__(answers)
        self._fetcher = SimpleNamespace(_fetch_max_wait_ms=20)


async def test_a_consumer_idle_for_a_second_fetches_less_often_until_a_record_comes(
    monkeypatch: Any,
) -> None:
    """Idle, every fetch costs the broker and the service CPU for nothing: after a second
    without records the wait grows to the idle one; the first record brings it back."""
    from shared.kafka import IdlePace

    now = [1000.0]
    monkeypatch.setattr("shared.kafka.time.monotonic", lambda: now[0])
    pace = IdlePace(busy_ms=20, idle_ms=100)
    subscriber: Any = SimpleNamespace(batch_timeout_ms=20, max_records=10, idle_pace=pace)
    consumer = _Fetching([{}, {}, {}, {"p0": ["a"]}, {}])

    async def poll(after: float) -> int:
        now[0] += after
        await BatchSubscriber.get_msg(subscriber, consumer)
        wait: int = consumer._fetcher._fetch_max_wait_ms
        return wait

    assert await poll(0.5) == 20  # quiet for half a second: still busy
    assert await poll(0.49) == 20
    assert await poll(0.02) == 100  # a second without records
    assert await poll(0.3) == 20  # a record: busy at once
    assert await poll(0.9) == 20  # counted from that record


async def test_records_the_consumer_passes_over_keep_it_idle(monkeypatch: Any) -> None:
    """A stream of records the consumer does not read (receiving passes over allocation's
    shipment events) keeps it as idle as no records: its fetches slow down all the same, and
    the first record it reads brings them back."""
    from shared.kafka import IdlePace

    now = [1000.0]
    monkeypatch.setattr("shared.kafka.time.monotonic", lambda: now[0])
    pace = IdlePace(busy_ms=20, idle_ms=100, wanted=lambda record: record != "passed-over")
    subscriber: Any = SimpleNamespace(batch_timeout_ms=20, max_records=10, idle_pace=pace)
    passed_over = {"p0": ["passed-over", "passed-over"]}
    consumer = _Fetching([passed_over, passed_over, {"p0": ["passed-over", "read"]}])

    async def poll(after: float) -> int:
        now[0] += after
        await BatchSubscriber.get_msg(subscriber, consumer)
        wait: int = consumer._fetcher._fetch_max_wait_ms
        return wait

    assert await poll(0.6) == 20
    assert await poll(0.6) == 100  # a second of records it passes over
    assert await poll(0.1) == 20  # one it reads among them


async def test_a_subscriber_without_an_idle_pace_keeps_its_fetch_wait() -> None:
    subscriber: Any = SimpleNamespace(batch_timeout_ms=500, max_records=7)
    consumer = _Fetching([{}])
    await BatchSubscriber.get_msg(subscriber, consumer)
    assert consumer._fetcher._fetch_max_wait_ms == 20


@pytest.mark.parametrize(("busy", "idle", "paced"), [(20, 100, True), (500, 100, False)])
def test_every_service_consumer_gets_the_idle_pace_unless_it_already_fetches_slower(
    busy: int, idle: int, paced: bool
) -> None:
    """`TransactionalConsumer.register` installs it; a consumer that fetches every 500 ms (the
    ledger's dashboard feeds) is left as it is."""
    from faststream.kafka import KafkaBroker
    from pydantic import TypeAdapter

    from shared.config import Settings
    from shared.consumer import Route, TransactionalConsumer
    from shared.contracts.upstream import ItemMessage

    async def handler(*_: Any) -> None:
        return None

    settings = Settings(KAFKA_FETCH_MAX_WAIT_MS=busy, KAFKA_IDLE_FETCH_MAX_WAIT_MS=idle)
    route = Route(name="r", topic="t", adapter=TypeAdapter(ItemMessage), handler=handler)
    consumer = TransactionalConsumer(
        name="c",
        routes=[route],
        pool=cast(Any, None),  # registering touches neither the database nor the relay
        relay=cast(Any, None),
        schema="s",
        settings=settings,
    )
    consumer.register(KafkaBroker("localhost:9092"))

    pace = getattr(consumer._subscriber, "idle_pace", None)
    assert (pace is not None) == paced
    if pace is not None:
        assert (pace.busy_ms, pace.idle_ms) == (busy, idle)
