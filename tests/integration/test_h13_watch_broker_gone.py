"""`lotline watch` tells the person watching when its broker stops answering, and when it
answers again: the consumer alone never says (aiokafka retries quietly, and a poll returns
nothing, as when nothing happens).

The broker is one of the test's own (the embedded one), so the test can take it away: it is
paused (connections open, requests never answered: the metadata request times out) or dies
(connections refused) and comes back on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import shared.watch
from shared import stack
from shared.config import Settings
from shared.kafka import ensure_topics
from shared.watch import watch
from tests.fixtures.infra import kafka_publish


class _Lines(io.StringIO):
    """Text written to it, line by line, with an event set whenever a line arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    def write(self, text: str) -> int:
        self.arrived.set()
        return super().write(text)

    async def until(self, wanted: str) -> None:
        while wanted not in self.getvalue():
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 120)


@contextlib.contextmanager
def _broker(tmp_path: Path, name: str, port: int | None = None) -> Iterator[stack.EmbeddedBroker]:
    broker = stack.start_broker(port, log_path=tmp_path / f"{name}.log")
    try:
        yield broker
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(broker.process.pid, signal.SIGCONT)
        broker.stop()


@pytest.mark.parametrize("how", ["unresponsive", "died"])
async def test_watch_says_once_that_the_broker_is_gone_and_once_that_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setattr(shared.watch, "PROBE_SECONDS", 0.5)  # a short test, same behaviour
    monkeypatch.setattr(shared.watch, "PROBE_TIMEOUT_SECONDS", 1.0)
    with contextlib.ExitStack() as brokers:
        broker = brokers.enter_context(_broker(tmp_path, "first"))
        settings = Settings().model_copy(
            update={
                "kafka_bootstrap_servers": broker.bootstrap,
                "topic_prefix": f"t{uuid.uuid4().hex[:8]}.",
            }
        )
        await ensure_topics(settings)
        out, notes = _Lines(), _Lines()
        stop = asyncio.Event()
        watching = asyncio.create_task(
            watch(settings, out, from_beginning=True, notes=notes, until=lambda _: stop.is_set())
        )
        try:
            answer = {"type": "ShipmentCancelled", "message_id": "st-1", "shipment_id": "S-1"}
            await kafka_publish(
                broker.bootstrap, settings.topics.status, "S-1", json.dumps(answer).encode()
            )
            await out.until("S-1")  # watching

            if how == "died":
                broker.stop()
            else:
                os.killpg(broker.process.pid, signal.SIGSTOP)
            gone = f"lotline watch: the broker at {broker.bootstrap} does not answer; still trying"
            await notes.until(gone)

            if how == "died":
                brokers.enter_context(_broker(tmp_path, "second", port=broker.port))
            else:
                os.killpg(broker.process.pid, signal.SIGCONT)
            back = f"lotline watch: the broker at {broker.bootstrap} answers again"
            await notes.until(back)
        finally:
            stop.set()
            await asyncio.wait_for(watching, 60)

    assert notes.getvalue().splitlines() == [gone, back]  # one line each, nothing else
