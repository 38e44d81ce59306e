"""A big trace is read as it is sent (DESIGN.md §4 /trace, §6), against a real PostgreSQL: its
transaction records come from a cursor a part at a time, never all held at once, in the one
snapshot its head (origins, customers) was read in; the snapshot and its connection end with
the answer, also when the client goes away halfway."""

from __future__ import annotations

import csv
import gc
import io
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import date
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from starlette.requests import ClientDisconnect

from services.ledger.api import create_api
from services.ledger.queries import PART_ROWS
from services.ledger.schemas import TraceOut
from tests.integration.test_ledger import Wire, mv, pool, record
from tests.integration.test_ledger_big_answers import UNITS, _big_lot

__all__ = ["pool"]  # the fixture, for pytest

EVENTS = 3 * UNITS  # a receipt, an allocation and a shipment per serial of mfr lot M1
HELD = 2 * PART_ROWS
"""The most trace records alive at once while the trace is sent: the part being sent and the
next (the whole trace, 15,000 of them, was read and held before the first byte went out)."""

OnPart = Callable[[int], Awaitable[None]]


def _records_alive() -> int:
    """asyncpg records alive in this process (they are tracked by the garbage collector)."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, asyncpg.Record))


class _Gone(OSError):
    """The client's connection broke (what a server's send raises then)."""


async def _get(app: FastAPI, query: str, on_part: OnPart) -> tuple[int, bytes]:
    """GET /trace?`query` through the app; `on_part(n)` runs as the n-th body part is sent."""
    parts: list[bytes] = []
    status = 0

    async def receive() -> dict[str, Any]:
        raise AssertionError("the request has no body to read")

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and message.get("body"):
            parts.append(message["body"])
            await on_part(len(parts))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/trace",
        "raw_path": b"/trace",
        "query_string": query.encode(),
        "headers": [(b"host", b"ledger")],
        "client": ("test", 1),
        "server": ("ledger", 80),
        "root_path": "",
        "state": {},
    }
    await app(scope, receive, send)
    return status, b"".join(parts)


async def _nothing(_: int) -> None:
    return None


async def _in_transaction(pool: asyncpg.Pool) -> int:
    """Sessions of the test database left inside a transaction."""
    async with pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state LIKE 'idle in transaction%'"
            )
        )


@pytest.mark.parametrize("fmt", ["json", "csv"])
async def test_a_big_traces_records_are_read_a_part_at_a_time_as_it_is_sent(
    pool: asyncpg.Pool, fmt: str
) -> None:
    """§4 /trace, §6: while the 15,000 records of mfr lot M1's trace are sent (JSON or the
    recall sheet), at most two parts' worth of them are alive at any time: they are read from
    a cursor as the answer goes out, not fetched whole first. The parts still make the whole
    trace, oldest first."""
    await _big_lot(pool)
    baseline = _records_alive()
    alive: list[int] = []

    async def count(_: int) -> None:
        alive.append(_records_alive() - baseline)

    status, body = await _get(create_api(lambda: pool), f"lic=CAM&mfr_lot=M1&format={fmt}", count)

    assert status == 200
    assert len(alive) > EVENTS // PART_ROWS  # sent in parts, each counted
    assert max(alive) <= HELD, f"{max(alive)} trace records alive at once"
    if fmt == "json":
        trace = TraceOut.model_validate_json(body)
        assert len(trace.events) == EVENTS and trace.customers == ["ACME"]
        assert [e.event_type for e in trace.events[::UNITS]] == [
            "receipt",
            "allocation",
            "shipment",
        ]
    else:
        rows = list(csv.reader(io.StringIO(body.decode())))
        assert len(rows) == 1 + EVENTS


async def test_a_trace_sent_in_parts_is_one_snapshot_and_ends_with_its_answer(
    pool: asyncpg.Pool,
) -> None:
    """§4 /trace: a shipment of M1 to a new customer committed while the trace is being sent
    shows neither in its events nor in its customers (head and events are one snapshot), and
    once the answer is sent no session is left in its transaction."""
    await _big_lot(pool)
    w = Wire()
    more = [mv("L1", 1, "10", serial="S999999", mfr_lot="M1")]

    async def ship_meanwhile(n: int) -> None:
        if n == 2:  # the head and a first part of the events are out
            await record(pool, w.sale("CAM", "OUT-9", more, customer="LATE", on=date(2024, 3, 1)))

    status, body = await _get(create_api(lambda: pool), "lic=CAM&mfr_lot=M1", ship_meanwhile)

    assert status == 200
    trace = TraceOut.model_validate_json(body)
    assert len(trace.events) == EVENTS and trace.customers == ["ACME"]
    assert "OUT-9" not in {e.document for e in trace.events}
    assert await _in_transaction(pool) == 0
    status, body = await _get(create_api(lambda: pool), "lic=CAM&mfr_lot=M1", _nothing)
    assert TraceOut.model_validate_json(body).customers == ["ACME", "LATE"]


async def test_a_client_gone_halfway_through_a_trace_leaves_no_transaction_open(
    pool: asyncpg.Pool,
) -> None:
    """§6: the client goes away after a few parts of a big trace: its snapshot (and cursor)
    ends and its connection goes back to the pool, so every connection can still be taken
    and a trace answered after it."""
    await _big_lot(pool)
    app = create_api(lambda: pool)

    async def go_away(n: int) -> None:
        if n == 3:
            raise _Gone("connection reset by peer")

    with pytest.raises(ClientDisconnect):
        await _get(app, "lic=CAM&mfr_lot=M1", go_away)

    assert await _in_transaction(pool) == 0
    held = [await pool.acquire(timeout=5) for _ in range(pool.get_max_size())]
    for conn in held:
        await pool.release(conn)

    status, body = await _get(app, "lic=CAM&mfr_lot=M1", _nothing)
    assert status == 200 and len(TraceOut.model_validate_json(body).events) == EVENTS
