"""Big read-API answers against a real PostgreSQL (DESIGN.md §4, §6): a lot of thousands of
serials, its trace and its recall sheet are sent in bounded parts, the event loop (which the
ledger's consumers and their heartbeats share with the API) running between parts."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import MutableMapping
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
from fastapi import FastAPI

from services.ledger.api import create_api
from services.ledger.schemas import LotDetail, TraceOut
from tests.integration.test_ledger import Wire, mv, pool, record, record_costs

__all__ = ["pool"]  # the fixture, for pytest

D = Decimal
UNITS = 5_000
PART_BYTES = 1 << 20
"""The most one part may hold: the whole answer (MBs here) must not go out as one."""


async def _get_in_parts(app: FastAPI, path: str, query: str = "") -> tuple[int, list[bytes], int]:
    """The answer's status and body parts as the app sent them, and the most bytes it sent
    with no other task of the event loop running in between."""
    ticks = 0
    running = True

    async def ticker() -> None:
        nonlocal ticks
        while running:
            ticks += 1
            await asyncio.sleep(0)

    parts: list[bytes] = []
    seen: list[int] = []
    status = 0

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # the client never goes away
        raise AssertionError

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and message.get("body"):
            parts.append(message["body"])
            seen.append(ticks)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"ledger")],
        "client": ("test", 1),
        "server": ("ledger", 80),
        "root_path": "",
        "state": {},
    }
    task = asyncio.create_task(ticker())
    try:
        await app(scope, receive, send)
    finally:
        running = False
        await task
    stretches: dict[int, int] = {}  # bytes sent at each count of the other task's turns
    for tick, part in zip(seen, parts, strict=True):
        stretches[tick] = stretches.get(tick, 0) + len(part)
    return status, parts, max(stretches.values(), default=0)


async def _big_lot(pool: asyncpg.Pool) -> None:
    """UNITS serials of mfr lot M1 received into lot L1 (PO-1, est 10), all shipped to ACME,
    then PO-1 closed at 12: one usage and one reconciliation per serial."""
    w = Wire()
    serials = [mv("L1", 1, "10", serial=f"S{n:06d}", mfr_lot="M1") for n in range(UNITS)]
    await record(
        pool,
        w.item("CAM", serialized=True, track_mfr_lot=True),
        w.received("CAM", "L1", UNITS, "10", serials, po="PO-1", on=date(2024, 2, 1)),
        w.sale("CAM", "OUT-1", serials, customer="ACME", on=date(2024, 2, 5)),
    )
    await record_costs(pool, w.po("PO-1", "CAM", act_unit_cost=D(12), closed=True))


def _assert_bounded(parts: list[bytes], stretch: int) -> None:
    assert len(parts) > 1, "the answer went out as one part"
    assert stretch <= PART_BYTES, f"{stretch} bytes went out with the event loop held"


async def test_a_big_lot_is_sent_in_bounded_parts_that_make_the_whole_lot(
    pool: asyncpg.Pool,
) -> None:
    """§4 /lots/{lot_id}, §6: the lot of 5,000 shipped serials (each with a usage and a
    reconciliation entry) comes in parts of at most 1 MiB with the event loop free between
    them (a lot of 100,000 serials held it for 17 s, past the consumers' session timeout),
    and the parts make the whole lot: every serial, every COGS entry, the exact total."""
    await _big_lot(pool)

    status, parts, stretch = await _get_in_parts(create_api(lambda: pool), "/lots/L1")

    assert status == 200
    _assert_bounded(parts, stretch)
    lot = LotDetail.model_validate_json(b"".join(parts))
    assert len(lot.serials) == UNITS and {s.status for s in lot.serials} == {"shipped"}
    assert [s.serial for s in lot.serials] == [f"S{n:06d}" for n in range(UNITS)]
    assert len(lot.cogs) == 2 * UNITS
    assert lot.cogs_total == UNITS * 12
    assert (lot.valuation.used.quantity, lot.valuation.current.quantity) == (D(UNITS), D(0))
    assert list(json.loads(b"".join(parts))) == list(LotDetail.model_fields)


async def test_a_big_trace_and_its_recall_sheet_are_sent_in_bounded_parts(
    pool: asyncpg.Pool,
) -> None:
    """§4 /trace (JSON and `format=csv`), §6: the trace of mfr lot M1 (a receipt, an
    allocation and a shipment per serial: 15,000 records) comes in bounded parts with the
    event loop free between them, and makes the whole trace, oldest first, with its origin
    and customer."""
    await _big_lot(pool)
    app = create_api(lambda: pool)

    status, parts, stretch = await _get_in_parts(app, "/trace", "lic=CAM&mfr_lot=M1")

    assert status == 200
    _assert_bounded(parts, stretch)
    trace = TraceOut.model_validate_json(b"".join(parts))
    assert [e.event_type for e in trace.events[::UNITS]] == [
        "receipt",
        "allocation",
        "shipment",
    ]
    assert len(trace.events) == 3 * UNITS
    assert trace.customers == ["ACME"] and [o.lot_id for o in trace.origins] == ["L1"]
    assert list(json.loads(b"".join(parts))) == list(TraceOut.model_fields)

    status, parts, stretch = await _get_in_parts(app, "/trace", "lic=CAM&mfr_lot=M1&format=csv")

    assert status == 200
    _assert_bounded(parts, stretch)
    rows = list(csv.reader(io.StringIO(b"".join(parts).decode())))
    assert len(rows) == 1 + 3 * UNITS
    assert sum(D(r[15]) for r in rows[1:]) == 0  # in, then out: none of M1 is left
