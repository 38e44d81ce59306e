"""Bulk loader of the ledger (scenario 5): millions of usage rows, exactly as the event path
writes them, in a minute or two.

1. A template block goes through the real event path: per-LIC commands for `lics_per_kind`
   lot-tracked perishable LICs (two manufacturer lots, `SHIPMENTS` lines of two units shipped
   FEFO) and as many serialized LICs (`SHIPMENTS` serials, one shipped per line) are decided by
   the allocation process, whose events the ledger process records. Every identifier of the
   block carries a block marker (`QBQ`), every LIC a group marker (`QGQ`), every date is one of
   four sentinel dates.
2. `capture()` copies every ledger table of that template out with `COPY … TO STDOUT` (all
   columns but identities and generated ones, in `seq` order).
3. `load()` empties the tables, drops their indexes and constraints, makes them UNLOGGED and
   turns their autovacuum off (a throwaway benchmark database: crash safety buys nothing, reads
   are unaffected, and a background VACUUM of freshly loaded tables would only compete with the
   load and the measurement), then streams the template `blocks` times with
   `COPY … FROM STDIN`, markers replaced by the block number and the LIC group (`block %
   groups`: the same LICs receive again and again) and the dates shifted by one day per block
   (`instantiate`). Items are written once per group. Every table gets all its rows.
4. Of the migration's own constraints and indexes (their definitions read from the catalog
   before dropping them), the ones the scenario's queries can use are rebuilt
   (`TRACE_INDEXES`: GET /trace reads transactions by LIC and manufacturer lot or serial, and
   lots and items by their keys; GET /valuation the records dated after a day, by BRIN, and
   one item's lots and stock in no lot), and the tables they read are analyzed. The other
   indexes (usage, cogs, serials, …, and transactions' own key and by-lot index) are not built:
   no query here can use them (EXPLAIN on a loaded ledger), so the plans and timings are the
   ones a fully indexed ledger gives, and they were two thirds of the load's time. `LoadReport`
   lists built and skipped ones.

The COPYs, index builds and ANALYZEs are tasks that `connections` connections take in turn
(the biggest table's COPY split between them, index builds of a table as soon as its COPYs
ended), so every core is busy until the end.

What the loaded ledger holds is therefore row for row what the ledger consumer writes for such
a history, apart from the inbox (the consumer's processed message ids: no read touches them)
and the seq values (assigned in load order: increasing within each block, as the consumer
assigned them, blocks loaded by different connections interleaved).
"""

from __future__ import annotations

import asyncio
import io
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import psutil

from bench import workload

BLOCK, GROUP = "QBQ", "QGQ"
SHIPMENTS = 100  # lines per LIC per block: usage rows per block = 2 × lics_per_kind × SHIPMENTS
RECEIVED, SHIPPED, EXPIRES_A, EXPIRES_B = "2001-01-01", "2001-01-02", "2001-07-01", "2001-06-01"
FIRST_DAY = date(2020, 1, 1)
UNIT_COST = Decimal("4.00")  # of every receipt
UNITS = {"lot": 2 * SHIPMENTS, "serial": SHIPMENTS}  # each LIC receives per block, by kind
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
# What the scenario's queries read (services/ledger/queries.py), and the indexes they can use
# (EXPLAIN on a loaded ledger; the others it never chose): GET /trace, transactions by (lic,
# mfr_lot) or (lic, serial), lots and items by primary key; GET /valuation, the records dated
# after a day (transactions_by_date, a BRIN: seconds to build), one item's lots (lots_by_lic)
# and its stock in no lot (unallocated_pkey), as GET /items, read to check it, does.
TRACE_READS = ("transactions", "lots", "items", "unallocated")
TRACE_INDEXES = frozenset(
    {
        "transactions_by_mfr_lot",
        "transactions_by_serial",
        "transactions_by_date",
        "lots_pkey",
        "lots_by_lic",
        "items_pkey",
        "unallocated_pkey",
    }
)
# COPYs split between connections: the biggest table's would otherwise end last.
SPLIT = {"transactions": 2}
# Enough for each index build (over 10 M keys) to sort in memory rather than in runs on disk.
MAINTENANCE_WORK_MEM = "2GB"
# Rough cost of each task (seconds on this 2-core machine), only to order the tasks.
COPY_SECONDS_PER_BYTE = 1e-8
INDEX_SECONDS_PER_ROW = 1.2e-6
BRIN_SECONDS_PER_ROW = 3e-7  # one pass over the table, no sort


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


def on_hand_as_of(day: date, blocks: int, groups: int, lics_per_kind: int) -> dict[str, int]:
    """Units each LIC holds at the end of `day` in a ledger loaded with `blocks` blocks: what
    the block whose receipts are dated that day received (each block ships all it received the
    day after, so every earlier block's stock is gone by then). Known from the block's design,
    not read from the ledger: what GET /valuation as of `day` must answer."""
    block = (day - FIRST_DAY).days
    if not 0 <= block < blocks:
        return {}
    group = block % groups
    held = {lot_lic(group, n): UNITS["lot"] for n in range(lics_per_kind)}
    return held | {serial_lic(group, n): UNITS["serial"] for n in range(lics_per_kind)}


def template_commands(lics_per_kind: int) -> list[tuple[str, bytes]]:
    """The template block's per-LIC commands (lotline's own topic, key = LIC)."""
    setup: list[tuple[str, bytes]] = []
    lines: list[tuple[str, bytes]] = []
    for n in range(lics_per_kind):
        for kind, lic in (("lot", lot_lic(GROUP, n)), ("serial", serial_lic(GROUP, n))):
            item = workload.Lic(lic, kind)
            setup.append((lic, workload.upsert_item(item, f"{lic}/item/{BLOCK}")))
            units = UNITS[kind]
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
                "unit_cost": str(UNIT_COST),
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


def _substitutions(block: int, groups: int) -> list[tuple[bytes, bytes]]:
    """What each marker of the template becomes in `block`, in the order they are replaced."""
    return [
        (BLOCK.encode(), block_id(block).encode()),
        (GROUP.encode(), str(block % groups).encode()),
        (RECEIVED.encode(), _day(block, 0)),
        (SHIPPED.encode(), _day(block, 1)),
        (EXPIRES_A.encode(), _day(block, 181)),
        (EXPIRES_B.encode(), _day(block, 151)),
    ]


def instantiate(data: bytes, block: int, groups: int) -> bytes:
    """The template's rows for `block`: markers replaced, dates shifted. This is the
    definition; `Rendering` produces the same bytes faster."""
    for marker, value in _substitutions(block, groups):
        data = data.replace(marker, value)
    return data


def records_by_day(template: Template, blocks: int, groups: int) -> Counter[date]:
    """How many transaction records the load writes dated each day (`occurred_on`): the
    template's, as `instantiate` dates them in each block."""
    column = template.columns["transactions"].index("occurred_on")
    dated = Counter(
        line.split(b"\t")[column] for line in template.data["transactions"].splitlines()
    )
    days: Counter[date] = Counter()
    for value, count in dated.items():
        for block in range(blocks):
            days[date.fromisoformat(instantiate(value, block, groups).decode())] += count
    return days


class Rendering:
    """`instantiate` in one pass: the template as a `bytes %` format whose fields are the
    markers. Six `replace` passes over a block cost this process about as much CPU as
    PostgreSQL's COPY of the same rows; one formatting pass costs a fraction of that."""

    def __init__(self, data: bytes, groups: int) -> None:
        self.data, self.groups = data, groups
        # One format per LIC group, the group marker already in: fewer fields per block.
        escaped = data.replace(b"%", b"%%")
        self._formats = []
        for group in range(groups):
            fmt = escaped
            for n, (marker, value) in enumerate(_substitutions(group, groups)):
                fmt = fmt.replace(marker, value if marker == GROUP.encode() else b"%%(%d)s" % n)
            self._formats.append(fmt)

    def block(self, block: int) -> bytes:
        values = {
            b"%d" % n: value for n, (_, value) in enumerate(_substitutions(block, self.groups))
        }
        return self._formats[block % self.groups] % values

    def check(self, count: int) -> None:
        """Raise unless the first and last blocks are `instantiate`'s, byte for byte."""
        for block in sorted({0, count - 1}):
            if self.block(block) != instantiate(self.data, block, self.groups):
                raise RuntimeError(f"the loader's rendering of block {block} is not the template's")


@dataclass
class LoadReport:
    rows: dict[str, int] = field(default_factory=dict)
    tasks: list[dict[str, Any]] = field(default_factory=list)  # what ran when, on which connection
    indexes: dict[str, list[str]] = field(default_factory=dict)  # rebuilt, per table
    skipped: dict[str, list[str]] = field(
        default_factory=dict
    )  # not built: no query here uses them
    seconds: float = 0.0
    copy_seconds: float = 0.0  # until the last COPY ended (index builds overlap it)


@dataclass(frozen=True)
class _Task:
    name: str
    kind: str  # "copy", "index", "constraint" or "analyze"
    table: str
    statement: str = ""
    blocks: range = range(0)  # a COPY's blocks
    after: frozenset[str] = frozenset()  # tasks that must have ended first
    cost: float = 0.0  # estimated seconds, to order the tasks


def _plan(
    template: Template, blocks: int, groups: int, ddl: dict[str, list[tuple[str, str]]]
) -> list[_Task]:
    """The load as tasks, in the order free connections take them (each once its `after`
    tasks ended): the split COPY of the biggest table first, then the rest longest first (index
    builds of a table wait for its COPYs), constraints after their table's indexes (attaching
    one locks the table), ANALYZE last (it and CREATE INDEX on one table wait for each other)."""
    copies: list[_Task] = []
    for table in TABLES:
        data = template.data.get(table, b"")
        if not data:
            continue
        count = groups if table in ONCE_PER_GROUP else blocks
        parts = min(SPLIT.get(table, 1), count)
        # Every `parts`-th block to each part, not halves: the connections then write the
        # table's pages side by side in date order, as the consumer records them, so the BRIN
        # index by date (transactions_by_date) finds a day's pages as it would in production;
        # with halves each of its page ranges would hold days of both, hundreds apart.
        shares = [range(p, count, parts) for p in range(parts)]
        copies += [
            _Task(
                f"copy {table} {p + 1}/{parts}",
                "copy",
                table,
                blocks=share,
                cost=len(data) * len(share) * COPY_SECONDS_PER_BYTE,
            )
            for p, share in enumerate(shares)
        ]
    builds: list[_Task] = []
    finals: list[_Task] = []
    for table in TRACE_READS:
        copied = frozenset(t.name for t in copies if t.table == table)
        rows = template.rows(table) * (groups if table in ONCE_PER_GROUP else blocks)
        wanted = [(name, sql) for name, sql in ddl.get(table, []) if name in TRACE_INDEXES]
        indexes = [
            _Task(
                f"index {name}",
                "index",
                table,
                sql,
                after=copied,
                cost=rows
                * (BRIN_SECONDS_PER_ROW if " USING brin " in sql else INDEX_SECONDS_PER_ROW),
            )
            for name, sql in wanted
            if not sql.startswith("ALTER TABLE")
        ]
        built = copied | frozenset(t.name for t in indexes)
        constraints = [
            _Task(f"constraint {name}", "constraint", table, sql, after=built)
            for name, sql in wanted
            if sql.startswith("ALTER TABLE")
        ]
        builds += indexes
        finals += constraints
        finals.append(
            _Task(
                f"analyze {table}",
                "analyze",
                table,
                f"ANALYZE ledger.{table}",
                after=built | frozenset(t.name for t in constraints),
            )
        )
    first = [t for t in copies if t.table in SPLIT]
    rest = sorted((t for t in copies + builds if t not in first), key=lambda t: -t.cost)
    return first + rest + finals


async def load(
    dsn: str,
    template: Template,
    blocks: int,
    groups: int,
    on_progress: Callable[[str], None] = lambda _: None,
    connections: int = 2,
) -> LoadReport:
    """Replace the ledger's rows by `blocks` copies of the template (see the module doc)."""
    report = LoadReport()
    renderings = {t: Rendering(data, groups) for t, data in template.data.items() if data}
    for table, rendering in renderings.items():
        rendering.check(groups if table in ONCE_PER_GROUP else blocks)
    admin = await asyncpg.connect(dsn)
    try:
        ddl = await _drop_indexes(admin)
        await admin.execute(
            "; ".join(
                f"ALTER TABLE ledger.{t} SET UNLOGGED, SET (autovacuum_enabled = off)"
                for t in TABLES
            )
        )
    finally:
        await admin.close()
    names = {
        t: list(dict.fromkeys(name for name, _ in statements)) for t, statements in ddl.items()
    }
    missing = TRACE_INDEXES - {n for found in names.values() for n in found}
    if missing:  # renamed by a migration: the trace would scan the tables instead
        raise RuntimeError(f"the ledger's migrations no longer define {sorted(missing)}")
    for table, found in names.items():
        for name in found:
            into = report.indexes if name in TRACE_INDEXES else report.skipped
            into.setdefault(table, []).append(name)
    plan = _plan(template, blocks, groups, ddl)
    pending = list(plan)
    blocks_to_copy = sum(len(t.blocks) for t in plan)
    copied = 0
    done: set[str] = set()
    changed = asyncio.Condition()
    started = time.monotonic()

    def progress() -> None:
        ended = sum(1 for t in plan if t.kind != "copy" and t.name in done)
        others = sum(1 for t in plan if t.kind != "copy")
        on_progress(f"COPY {copied / max(blocks_to_copy, 1):.0%}, indexes {ended}/{others}")

    async def take() -> _Task | None:
        async with changed:
            while pending:
                ready = next((t for t in pending if t.after <= done), None)
                if ready is not None:
                    pending.remove(ready)
                    return ready
                await changed.wait()
            return None

    async def rows(task: _Task) -> AsyncIterator[bytes]:
        nonlocal copied
        rendering = renderings[task.table]
        for block in task.blocks:
            yield rendering.block(block)
            copied += 1
            progress()

    async def worker(n: int) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                f"SET maintenance_work_mem = '{MAINTENANCE_WORK_MEM}';"
                # one core per connection: the connections are the parallelism
                " SET max_parallel_maintenance_workers = 0"
            )
            backend = _backend(conn)
            while (task := await take()) is not None:
                began = time.monotonic()
                cpu = _cpu(backend)
                if task.kind == "copy":
                    await conn.copy_to_table(
                        task.table,
                        schema_name="ledger",
                        columns=template.columns[task.table],
                        source=rows(task),
                    )
                    report.copy_seconds = time.monotonic() - started
                else:
                    await conn.execute(task.statement)
                record = {
                    "task": task.name,
                    "connection": n,
                    "start": round(began - started, 1),
                    "seconds": round(time.monotonic() - began, 1),
                }
                if cpu is not None and (now := _cpu(backend)) is not None:
                    # the backend's own CPU: what the task cost, whatever else ran on the machine
                    record["backend_cpu_seconds"] = round(now - cpu, 1)
                report.tasks.append(record)
                async with changed:
                    done.add(task.name)
                    changed.notify_all()
                progress()
        finally:
            await conn.close()

    await asyncio.gather(*(worker(n) for n in range(connections)))
    report.seconds = time.monotonic() - started
    for table in renderings:
        report.rows[table] = template.rows(table) * (groups if table in ONCE_PER_GROUP else blocks)
    return report


def _backend(conn: asyncpg.Connection) -> psutil.Process | None:
    """The connection's server process, when the server runs on this machine."""
    try:
        return psutil.Process(conn.get_server_pid())
    except psutil.Error:
        return None


def _cpu(process: psutil.Process | None) -> float | None:
    if process is None:
        return None
    try:
        times = process.cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


async def _drop_indexes(conn: asyncpg.Connection) -> dict[str, list[tuple[str, str]]]:
    """Empty the tables, drop their constraints and indexes; per table, (name, DDL) that
    recreates them: a constraint as a plain CREATE UNIQUE INDEX (which can be built while other
    indexes of the table are) and an ALTER TABLE that attaches it, read from the catalog."""
    await conn.execute("TRUNCATE " + ", ".join(f"ledger.{t}" for t in TABLES))
    constraints = await conn.fetch(
        "SELECT c.conrelid::regclass::text AS tbl, c.conname, c.contype::text AS contype,"
        " pg_get_indexdef(c.conindid) AS indexdef"
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
    ddl: dict[str, list[tuple[str, str]]] = {}
    for c in constraints:
        await conn.execute(f'ALTER TABLE {c["tbl"]} DROP CONSTRAINT "{c["conname"]}"')
        table = c["tbl"].removeprefix("ledger.")
        kind = "PRIMARY KEY" if c["contype"] == "p" else "UNIQUE"
        ddl.setdefault(table, []).append((c["conname"], c["indexdef"]))
        ddl[table].append(
            (
                c["conname"],
                f'ALTER TABLE {c["tbl"]} ADD CONSTRAINT "{c["conname"]}"'
                f' {kind} USING INDEX "{c["conname"]}"',
            )
        )
    for i in indexes:
        await conn.execute(f'DROP INDEX ledger."{i["indexname"]}"')
        ddl.setdefault(i["tablename"], []).append((i["indexname"], i["indexdef"]))
    return ddl
