"""Bulk loader of the ledger (scenario 5): millions of usage rows, exactly as the event path
writes them, in minutes.

1. A template block goes through the real event path: per-LIC commands for `lics_per_kind`
   lot-tracked perishable LICs (two manufacturer lots, `SHIPMENTS` lines of two units shipped
   FEFO) and as many serialized LICs (`SHIPMENTS` serials, one shipped per line) are decided by
   the allocation process, whose events the ledger process records. Every identifier of the
   block carries a block marker (`QBQ`), every LIC a group marker (`QGQ`), every date is one of
   four sentinel dates.
2. `capture()` copies every ledger table of that template out with `COPY … TO STDOUT` (all
   columns but identities and generated ones, in `seq` order).
3. `load()` empties the tables, drops their indexes and constraints, makes them UNLOGGED (a
   throwaway benchmark database: crash safety buys nothing, reads are unaffected), then streams
   the template `blocks` times with `COPY … FROM STDIN`, markers replaced by the block number and
   the LIC group (`block % groups`: the same LICs receive again and again) and the dates shifted
   by one day per block. Items are written once per group. The migration's own constraints and
   indexes are then rebuilt (their definitions were read from the catalog before dropping them)
   and the tables analyzed.

What the loaded ledger holds is therefore row for row what the ledger consumer writes for such
a history, apart from the inbox (the consumer's processed message ids: no read touches them)
and the seq values (assigned in load order).
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import asyncpg

from bench import workload

BLOCK, GROUP = "QBQ", "QGQ"
SHIPMENTS = 100  # lines per LIC per block: usage rows per block = 2 × lics_per_kind × SHIPMENTS
RECEIVED, SHIPPED, EXPIRES_A, EXPIRES_B = "2001-01-01", "2001-01-02", "2001-07-01", "2001-06-01"
FIRST_DAY = date(2020, 1, 1)
TABLES = (
    "items",
    "lots",
    "mfr_lots",
    "unallocated",
    "serials",
    "usage",
    "transactions",
    "cogs",
    "purchase_orders",
)
ONCE_PER_GROUP = frozenset({"items"})
# The two connections that load in parallel: the biggest table alone on one of them.
LANES = (
    ("transactions",),
    ("usage", "cogs", "serials", "lots", "mfr_lots", "items", "unallocated", "purchase_orders"),
)


def lot_lic(group: int | str, n: int) -> str:
    return f"LOT-{group}-{n:02d}"


def serial_lic(group: int | str, n: int) -> str:
    return f"SER-{group}-{n:02d}"


def block_id(block: int) -> str:
    return f"{block:05d}"


def mfr_lot(block: int, which: str) -> str:
    return f"M{which}-{block_id(block)}"


def serial(block: int, n: int, k: int) -> str:
    return f"SN-{block_id(block)}-{n:02d}-{k:03d}"


def usage_per_block(lics_per_kind: int) -> int:
    return 2 * lics_per_kind * SHIPMENTS


def template_commands(lics_per_kind: int) -> list[tuple[str, bytes]]:
    """The template block's per-LIC commands (lotline's own topic, key = LIC)."""
    setup: list[tuple[str, bytes]] = []
    lines: list[tuple[str, bytes]] = []
    for n in range(lics_per_kind):
        for kind, lic in (("lot", lot_lic(GROUP, n)), ("serial", serial_lic(GROUP, n))):
            item = workload.Lic(lic, kind)
            setup.append((lic, workload.upsert_item(item, f"{lic}/item/{BLOCK}")))
            units = SHIPMENTS * (2 if kind == "lot" else 1)
            receipt: dict[str, Any] = {
                "message_id": f"{lic}/receive/{BLOCK}",
                "lic": lic,
                "shipment_id": f"PO-{BLOCK}",
                "line_no": n + 1 + (lics_per_kind if kind == "serial" else 0),
                "lot_id": f"PO-{BLOCK}-{lic}/1",
                "office": workload.OFFICE,
                "reference": f"PO-{BLOCK}",
                "received_on": RECEIVED,
                "quantity": units,
                "unit_cost": "4.00",
            }
            if kind == "lot":
                receipt["lots"] = [
                    {"mfr_lot": f"MA-{BLOCK}", "expires_on": EXPIRES_A, "quantity": units // 2},
                    {"mfr_lot": f"MB-{BLOCK}", "expires_on": EXPIRES_B, "quantity": units // 2},
                ]
            else:
                receipt["serials"] = [f"SN-{BLOCK}-{n:02d}-{k:03d}" for k in range(units)]
            setup.append((lic, workload.encode("ReceiveStock", **receipt)))
            for line in range(1, SHIPMENTS + 1):
                fields = {"lic": lic, "shipment_id": f"SO-{BLOCK}-{lic}-{line}", "line_no": 1}
                allocate = workload.encode(
                    "AllocateLine",
                    message_id=f"{lic}/alloc/{BLOCK}/{line}",
                    office=workload.OFFICE,
                    ship_on=SHIPPED,
                    quantity=2 if kind == "lot" else 1,
                    counterparty=f"Customer {line % 37}",
                    **fields,
                )
                ship = workload.encode(
                    "ShipLine", message_id=f"{lic}/ship/{BLOCK}/{line}", **fields
                )
                lines += [(lic, allocate), (lic, ship)]
    return setup + lines


@dataclass
class Template:
    columns: dict[str, list[str]] = field(default_factory=dict)
    data: dict[str, bytes] = field(default_factory=dict)

    def rows(self, table: str) -> int:
        return self.data.get(table, b"").count(b"\n")


async def _columns(conn: asyncpg.Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'ledger' AND table_name = $1"
        " AND is_generated = 'NEVER' AND is_identity = 'NO' ORDER BY ordinal_position",
        table,
    )
    return [r["column_name"] for r in rows]


async def capture(dsn: str) -> Template:
    """Copy the template block out of the ledger's tables."""
    template = Template()
    conn = await asyncpg.connect(dsn)
    try:
        for table in TABLES:
            columns = await _columns(conn, table)
            has_seq = await conn.fetchval(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'ledger'"
                " AND table_name = $1 AND column_name = 'seq'",
                table,
            )
            order = " ORDER BY seq" if has_seq else ""
            buffer = io.BytesIO()
            names = ", ".join(f'"{c}"' for c in columns)
            await conn.copy_from_query(f"SELECT {names} FROM ledger.{table}{order}", output=buffer)
            template.columns[table] = columns
            template.data[table] = buffer.getvalue()
    finally:
        await conn.close()
    return template


def _day(block: int, offset: int) -> bytes:
    return (FIRST_DAY + timedelta(days=block + offset)).isoformat().encode()


def instantiate(data: bytes, block: int, groups: int) -> bytes:
    """The template's rows for `block`: markers replaced, dates shifted."""
    for marker, value in (
        (BLOCK.encode(), block_id(block).encode()),
        (GROUP.encode(), str(block % groups).encode()),
        (RECEIVED.encode(), _day(block, 0)),
        (SHIPPED.encode(), _day(block, 1)),
        (EXPIRES_A.encode(), _day(block, 181)),
        (EXPIRES_B.encode(), _day(block, 151)),
    ):
        data = data.replace(marker, value)
    return data


@dataclass
class LoadReport:
    rows: dict[str, int] = field(default_factory=dict)
    lanes: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


async def load(
    dsn: str,
    template: Template,
    blocks: int,
    groups: int,
    on_block: Callable[[int], None] = lambda _: None,
) -> LoadReport:
    """Replace the ledger's rows by `blocks` copies of the template (see the module doc)."""
    report = LoadReport()
    admin = await asyncpg.connect(dsn)
    try:
        ddl = await _drop_indexes(admin)
        await admin.execute("; ".join(f"ALTER TABLE ledger.{t} SET UNLOGGED" for t in TABLES))
    finally:
        await admin.close()
    started = time.monotonic()

    async def lane(n: int, tables: tuple[str, ...]) -> None:
        """COPY this lane's tables, then rebuild their constraints and indexes, analyze."""
        conn = await asyncpg.connect(dsn)
        try:
            began = time.monotonic()
            for table in tables:
                if not template.data.get(table):
                    continue
                count = groups if table in ONCE_PER_GROUP else blocks
                await conn.copy_to_table(
                    table,
                    schema_name="ledger",
                    columns=template.columns[table],
                    source=_stream(template.data[table], count, groups, n == 0, on_block),
                )
                report.rows[table] = template.rows(table) * count
            copied = time.monotonic()
            await conn.execute(
                "SET maintenance_work_mem = '1GB'; SET max_parallel_maintenance_workers = 0"
            )
            for table in tables:
                for statement in ddl.get(table, []):
                    await conn.execute(statement)
            indexed = time.monotonic()
            await conn.execute("; ".join(f"ANALYZE ledger.{t}" for t in tables))
            report.lanes.append(
                {
                    "tables": list(tables),
                    "copy_seconds": round(copied - began, 1),
                    "index_seconds": round(indexed - copied, 1),
                    "analyze_seconds": round(time.monotonic() - indexed, 1),
                }
            )
        finally:
            await conn.close()

    await asyncio.gather(*(lane(n, tables) for n, tables in enumerate(LANES)))
    report.seconds = time.monotonic() - started
    return report


async def _stream(
    data: bytes, count: int, groups: int, report: bool, on_block: Callable[[int], None]
) -> AsyncIterator[bytes]:
    for block in range(count):
        yield instantiate(data, block, groups)
        if report:
            on_block(block + 1)
        await asyncio.sleep(0)  # let the other lane's generator run


async def _drop_indexes(conn: asyncpg.Connection) -> dict[str, list[str]]:
    """Empty the tables, drop their constraints and indexes; per table, the DDL that
    recreates them (constraints first), read from the catalog."""
    await conn.execute("TRUNCATE " + ", ".join(f"ledger.{t}" for t in TABLES))
    constraints = await conn.fetch(
        "SELECT c.conrelid::regclass::text AS tbl, c.conname, pg_get_constraintdef(c.oid) AS def"
        " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE n.nspname = 'ledger' AND c.contype IN ('p', 'u')"
        " AND c.conrelid::regclass::text = ANY($1::text[])",
        [f"ledger.{t}" for t in TABLES],
    )
    indexes = await conn.fetch(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'ledger'"
        " AND tablename = ANY($1::text[])"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u'))",
        list(TABLES),
    )
    ddl: dict[str, list[str]] = {}
    for c in constraints:
        await conn.execute(f'ALTER TABLE {c["tbl"]} DROP CONSTRAINT "{c["conname"]}"')
        table = c["tbl"].removeprefix("ledger.")
        ddl.setdefault(table, []).append(
            f'ALTER TABLE {c["tbl"]} ADD CONSTRAINT "{c["conname"]}" {c["def"]}'
        )
    for i in indexes:
        await conn.execute(f'DROP INDEX ledger."{i["indexname"]}"')
        ddl.setdefault(i["tablename"], []).append(i["indexdef"])
    return ddl
