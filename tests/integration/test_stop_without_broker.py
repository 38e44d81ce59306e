"""Stopping a service whose broker is gone (shared/service.py, consumer.py, outbox.py, kafka.py).

The broker here is one of the test's own (the embedded one), so the test can take it away: it
dies (its process ends, connections are refused) or stops answering (its process is paused, as
behind a dropped network: connections open, requests never answered). Stopping must then give
up on the broker after BROKER_STOP_SECONDS, close the pool and return, and lose nothing: what
was not published is published by the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import cast

import asyncpg
import pytest
from pydantic import TypeAdapter

from shared import stack
from shared.config import Settings
from shared.consumer import Inbound, UnitOfWork
from shared.contracts.upstream import ItemMessage, UpsertItem
from shared.kafka import BROKER_STOP_SECONDS, ensure_topics
from shared.outbox import OutboxRow, channel_for, write_outbox
from shared.service import ServiceRuntime
from tests.fixtures.infra import LotlineEnv, kafka_publish, kafka_read_until

SCHEMA = "stop_test"
# Far above what stopping takes without the broker (about BROKER_STOP_SECONDS), far below what
# it took before (it never ended: the last offset hint looked for the group coordinator
# forever); a process manager kills a service that takes longer (docker's default).
STOP_BOUND_SECONDS = 10.0
assert STOP_BOUND_SECONDS >= 4 * BROKER_STOP_SECONDS


def _runtime(settings: Settings, migrations: Path) -> ServiceRuntime:
    """A service that records each item's LIC and emits an event for it (an outbox row)."""
    events = settings.topics.events

    async def record(uow: UnitOfWork, batch: list[Inbound[UpsertItem]]) -> None:
        for inbound in batch:
            await uow.conn.execute("INSERT INTO seen (lic) VALUES ($1)", inbound.message.lic)
            uow.outbox.emit(events, inbound.message.lic, inbound.message)

    runtime = ServiceRuntime(settings, schema=SCHEMA, migrations=migrations)
    runtime.consume(
        name="items", topic=settings.topics.items, adapter=TypeAdapter(ItemMessage), handler=record
    )
    return runtime


@contextlib.asynccontextmanager
async def _started(runtime: ServiceRuntime) -> AsyncIterator[ServiceRuntime]:
    """A started runtime; one the test did not stop is stopped, or torn down if it cannot be."""
    await asyncio.wait_for(runtime.start(), 60)
    try:
        yield runtime
    finally:
        assert runtime.pool is not None
        if not runtime.pool.is_closing():  # the test did not get to stop it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runtime.stop(), 30)
        if runtime.relay is not None and runtime.relay._task is not None:
            runtime.relay._task.cancel()
        if not runtime.pool.is_closing():
            runtime.pool.terminate()


@contextlib.contextmanager
def _broker(tmp_path: Path, name: str) -> Iterator[stack.EmbeddedBroker]:
    broker = stack.start_broker(log_path=tmp_path / f"{name}.log")
    try:
        yield broker
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(broker.process.pid, signal.SIGCONT)
        broker.stop()


def _take_away(broker: stack.EmbeddedBroker, how: str) -> None:
    if how == "died":
        broker.stop()
    else:  # paused: the kernel keeps its connections open, nothing answers on them
        os.killpg(broker.process.pid, signal.SIGSTOP)


async def _query(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


@pytest.mark.parametrize("how", ["died", "unresponsive"])
async def test_a_service_whose_broker_is_gone_stops_promptly_and_loses_nothing(
    lotline_env: Callable[..., LotlineEnv], tmp_path: Path, how: str
) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "001_seen.sql").write_text("CREATE TABLE seen (lic text NOT NULL);")
    with _broker(tmp_path, "first") as first:
        env = lotline_env(KAFKA_BOOTSTRAP_SERVERS=first.bootstrap)
        topics = env.settings.topics
        async with _started(_runtime(env.settings, migrations)) as runtime:
            body = {"type": "UpsertItem", "message_id": "m-a", "lic": "A"}
            await kafka_publish(first.bootstrap, topics.items, "A", json.dumps(body).encode())
            await kafka_read_until(first.bootstrap, topics.events, lambda rs: len(rs) >= 1)
            _take_away(first, how)
            # A decision committed while the broker is away (a periodic job's, say): the relay
            # is woken and tries to publish it.
            assert runtime.pool is not None
            async with runtime.pool.acquire() as proxy:
                await write_outbox(
                    cast(asyncpg.Connection, proxy),
                    [OutboxRow(topics.events, b"B", b'{"lic": "B"}', {"type": "T"})],
                    channel_for(SCHEMA),
                )
            await asyncio.sleep(0.5)
            await asyncio.wait_for(runtime.stop(), STOP_BOUND_SECONDS)
            assert runtime.pool.is_closing()
            assert runtime.relay is not None and runtime.relay._task is not None
            assert runtime.relay._task.done()

    # Nothing lost: what was processed stays processed, with its position; the row the broker
    # never took is still unsent, and the next start publishes it.
    assert [r["lic"] for r in await _query(env.dsn, "SELECT lic FROM seen")] == ["A"]
    offsets = await _query(env.dsn, "SELECT next_offset FROM consumer_offsets")
    assert sorted(r["next_offset"] or 0 for r in offsets)[-1] == 1
    unsent = await _query(env.dsn, "SELECT key FROM outbox WHERE sent_at IS NULL")
    assert [bytes(r["key"]) for r in unsent] == [b"B"]

    with _broker(tmp_path, "second") as second:
        settings = env.settings.model_copy(update={"kafka_bootstrap_servers": second.bootstrap})
        await ensure_topics(settings)
        async with _started(_runtime(settings, migrations)) as runtime:
            events = await kafka_read_until(
                second.bootstrap, topics.events, lambda rs: len(rs) >= 1
            )
            assert [(r.key, r.value) for r in events] == [(b"B", b'{"lic": "B"}')]
            # With the broker there, stopping drains and closes as before.
            await asyncio.wait_for(runtime.stop(), STOP_BOUND_SECONDS)
            assert runtime.pool is not None and runtime.pool.is_closing()
    assert await _query(env.dsn, "SELECT key FROM outbox WHERE sent_at IS NULL") == []
