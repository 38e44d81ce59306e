"""Rows sent as one JSON text each are stored exactly as the per-column arrays stored them.

Shipping's save and the outbox writer send each row as one JSON text (asyncpg's array encoder
checks every element of a per-column array, which cost more than building the rows). Here
every stored value is compared with what a plainly typed per-column statement, the old
encoding, stores for the same values: a numeric's digits and scale, dates, NULL against the
JSON null, jsonb values, bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any, cast

import asyncpg
import pytest
from pydantic import TypeAdapter

from services.shipping import model
from services.shipping.app import MIGRATIONS, SCHEMA
from services.shipping.repository import PgShippingRepository
from shared import db
from shared.movements import Moved
from shared.outbox import OutboxRow, write_outbox
from shared.reasons import ReasonCode
from tests.fixtures.infra import LotlineEnv

REPO = PgShippingRepository()
_PICKS = TypeAdapter(model.Picks)
_MOVEMENTS = TypeAdapter(tuple[Moved, ...])
_PROBLEM = TypeAdapter(model.Problem)


@pytest.fixture
async def pool(lotline_env: Any) -> AsyncIterator[asyncpg.Pool]:
    env: LotlineEnv = lotline_env(topics=False)
    await db.migrate(env.dsn, SCHEMA, db.migration_files(MIGRATIONS))
    pool = await db.create_pool(env.dsn, SCHEMA, size=2)
    try:
        yield pool
    finally:
        await pool.close()


def _line(line_no: int, quantity: str, **fields: Any) -> model.Line:
    return model.Line(line_no=line_no, lic=f"LIC-{line_no}", quantity=Decimal(quantity), **fields)


def _shipment() -> model.Shipment:
    picks = model.Picks(
        lots=(model.LotPick(mfr_lot="M-é", quantity=Decimal("2.50")),),
        serials=("SN-1", "SN-2"),
    )
    moved = Moved(
        lot_id="L-1",
        quantity=Decimal("0.000001"),
        unit_cost=Decimal("1E+3"),
        mfr_lot="M-1",
        expires_on=date(2027, 1, 31),
    )
    problem = model.Problem(
        line_no=3,
        lic="LIC-3",
        reason_code=ReasonCode.LOT_REQUIRED,
        reason='line 3 names no lot: "quoted", back\\slash, ünïcode',
        offending=None,
    )
    return model.Shipment(
        shipment_id="S-ü 1",
        office="AI",
        kind="vendor_return",
        ship_on=date(2026, 12, 31),
        counterparty=None,
        reference='ref "1"',
        phase="allocating",
        waiting=("S-1:a/status",),
        waiting_documents=(("S-1:a/status", "S-1:a"),),
        unanswered=("m-1", "m-ü"),
        lines=(
            # Digits and scale as decided: 2.50 stays 2.50, 1E+3 is 1000.
            _line(1, "2.50", picks=picks, awaiting="S-1/allocate/1", held_lics=("A", "B")),
            _line(2, "1E+3", status="allocated", complete=True, movements=(moved,)),
            _line(3, "1000000000", status="failed", problem=problem),
            _line(4, "0.000001"),
        ),
        pending=(
            model.Pending(
                command_id="S-1/allocate/1", action="allocate", line_no=1, lic="LIC-1", picks=picks
            ),
            model.Pending(command_id="S-1/release/2", action="release", line_no=2, lic="LIC-2"),
        ),
    )


# Per table: its order, and what to_jsonb does not show: a numeric's stored scale, and a
# nullable jsonb column's SQL NULL apart from the JSON null.
_TABLES = {
    "shipments": ("shipment_id", "coalesce(jsonb_typeof(queued), 'NULL')"),
    "shipment_lines": (
        "shipment_id, line_no",
        "quantity::text || ' ' || coalesce(jsonb_typeof(problem), 'NULL')",
    ),
    "pending_commands": ("command_id", "coalesce(jsonb_typeof(picks), 'NULL')"),
}


async def _stored(conn: asyncpg.Connection) -> list[str]:
    """Every row of the shipment tables as text, but for the times the server sets."""
    rows: list[str] = []
    for table, (order, hidden) in _TABLES.items():
        rows += [
            r[0]
            for r in await conn.fetch(
                f"SELECT (to_jsonb(t) - 'created_at' - 'updated_at')::text || ' ' || {hidden}"
                f" FROM {table} AS t ORDER BY {order}"
            )
        ]
    return rows


async def _reference_save(conn: asyncpg.Connection, s: model.Shipment) -> None:
    """The rows of `s` written column by column with typed parameters (the old encoding)."""
    await conn.execute(
        "INSERT INTO shipments (shipment_id, office, kind, counterparty, reference, ship_on,"
        " phase, waiting, queued, unanswered, waiting_documents, awaited)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, NULL, $9::text::jsonb,"
        " $10::text::jsonb, $11::text[])",
        s.shipment_id,
        s.office,
        s.kind,
        s.counterparty,
        s.reference,
        s.ship_on,
        s.phase,
        '["S-1:a/status"]',
        '["m-1", "m-ü"]',
        '[["S-1:a/status", "S-1:a"]]',
        list(s.awaited),
    )
    for line in s.lines:
        await conn.execute(
            "INSERT INTO shipment_lines (shipment_id, line_no, lic, quantity, status, awaiting,"
            " held_lics, complete, picks, movements, problem) VALUES ($1, $2, $3, $4, $5, $6,"
            " $7::text::jsonb, $8, $9::text::jsonb, $10::text::jsonb, $11::text::jsonb)",
            s.shipment_id,
            line.line_no,
            line.lic,
            line.quantity,
            line.status,
            line.awaiting,
            TypeAdapter(tuple[str, ...]).dump_json(line.held_lics).decode(),
            line.complete,
            _PICKS.dump_json(line.picks).decode(),
            _MOVEMENTS.dump_json(line.movements).decode(),
            None if line.problem is None else _PROBLEM.dump_json(line.problem).decode(),
        )
    for p in s.pending:
        await conn.execute(
            "INSERT INTO pending_commands (command_id, shipment_id, action, line_no, lic, picks)"
            " VALUES ($1, $2, $3, $4, $5, $6::text::jsonb)",
            p.command_id,
            s.shipment_id,
            p.action,
            p.line_no,
            p.lic,
            None if p.picks is None else _PICKS.dump_json(p.picks).decode(),
        )


async def test_a_saved_shipment_is_stored_as_the_typed_columns_store_it(
    pool: asyncpg.Pool,
) -> None:
    shipment = _shipment()
    async with pool.acquire() as proxy, proxy.transaction():
        conn = cast(asyncpg.Connection, proxy)
        await REPO.save(conn, {}, [shipment])
        saved = await _stored(conn)
        awaited_until = await conn.fetchval("SELECT awaited_until FROM shipments")
        await conn.execute("DELETE FROM shipments")
        await _reference_save(conn, shipment)
        assert saved == await _stored(conn)
    assert awaited_until is None  # waits for no item
    assert [row.rsplit(" ", 2)[-2:] for row in saved[1:5]] == [
        ["2.50", "NULL"],
        ["1000", "NULL"],
        ["1000000000", "object"],
        ["0.000001", "NULL"],
    ]
    assert saved[0].endswith(" NULL")  # queued
    assert saved[5].endswith(" object") and saved[6].endswith(" NULL")  # pending picks
    async with pool.acquire() as proxy, proxy.transaction():
        conn = cast(asyncpg.Connection, proxy)
        loaded = await REPO.load(conn, [shipment.shipment_id])
    assert loaded.shipments == {shipment.shipment_id: shipment}


async def test_a_shipment_waiting_for_items_stores_them_and_its_deadline(
    pool: asyncpg.Pool,
) -> None:
    shipment = model.Shipment(
        shipment_id="S-2",
        office="AI",
        kind="sale",
        ship_on=date(2026, 3, 1),
        awaited=("NEW-1", "NEW-2"),
    )
    async with pool.acquire() as proxy, proxy.transaction():
        conn = cast(asyncpg.Connection, proxy)
        await REPO.save(conn, {}, [shipment], wait_seconds=30)
        row = await conn.fetchrow(
            "SELECT awaited, awaited_until - now() AS wait, queued IS NULL AS unqueued"
            " FROM shipments"
        )
    assert row is not None
    assert row["awaited"] == ["NEW-1", "NEW-2"]
    assert row["wait"].total_seconds() == 30  # now() is the transaction's start, both times
    assert row["unqueued"]


async def test_outbox_rows_are_stored_byte_for_byte_in_the_order_written(
    pool: asyncpg.Pool,
) -> None:
    rows = [
        OutboxRow("inventory.status", b"S-1", b'{"type":"ShipmentAllocated"}', {"type": "A"}),
        OutboxRow("inventory.dlq", None, b"\x00\xff not JSON \xc3", None),
        OutboxRow("inventory.dlq", b"\x00\x01\xfe", b"", {"error": 'a "quoted" é', "n": "1"}),
    ]
    async with pool.acquire() as proxy, proxy.transaction():
        conn = cast(asyncpg.Connection, proxy)
        await write_outbox(conn, rows, "lotline_outbox_h10")
        stored = await conn.fetch("SELECT topic, key, payload, headers FROM outbox ORDER BY id")
    assert [
        (
            r["topic"],
            None if r["key"] is None else bytes(r["key"]),
            bytes(r["payload"]),
            r["headers"],
        )
        for r in stored
    ] == [(r.topic, r.key, r.payload, r.headers) for r in rows]
