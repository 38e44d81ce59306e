"""The batch subscribers' poll (shared.kafka): FastStream naps `batch_timeout_ms` after an empty
poll, which delays a message arriving meanwhile; lotline's poll goes straight back to waiting
on the fetcher."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from faststream.kafka.subscriber.usecase import BatchSubscriber

import shared.kafka  # noqa: F401  (installs the poll)


class _Consumer:
    def __init__(self, answers: list[dict[str, list[str]]]) -> None:
        self.answers = answers
        self.calls: list[tuple[int, int]] = []

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[str, list[str]]:
        self.calls.append((timeout_ms, max_records))
        return self.answers.pop(0)


async def test_an_empty_poll_returns_at_once_instead_of_napping() -> None:
    subscriber: Any = SimpleNamespace(batch_timeout_ms=500, max_records=7)
    consumer = _Consumer([{}])
    started = time.perf_counter()
    assert await BatchSubscriber.get_msg(subscriber, consumer) == ()
    assert time.perf_counter() - started < 0.1  # FastStream's own would sleep 0.5 s here
    assert consumer.calls == [(500, 7)]


async def test_a_poll_returns_every_partitions_records_in_order() -> None:
    subscriber: Any = SimpleNamespace(batch_timeout_ms=20, max_records=10)
    consumer = _Consumer([{"p0": ["a", "b"], "p1": ["c"]}])
    assert await BatchSubscriber.get_msg(subscriber, consumer) == ("a", "b", "c")
