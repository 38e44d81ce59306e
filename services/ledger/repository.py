"""The ledger's writes: what a batch needs to know, and its rows written with set-based SQL.

Every statement takes whole arrays (`INSERT … SELECT FROM unnest(…)`, `UPDATE … FROM unnest(…)`),
so a batch costs a fixed number of round trips whatever its size. Row inserts are
`ON CONFLICT DO NOTHING` on deterministic ids: writing a batch twice adds nothing (the inbox
already prevents it; this is the backstop).

The two consumers (`inventory.events` and `inventory.costs`) may run at once in different
transactions. A PO closing must see every usage of its lots, and a usage must see a closing
that committed before it, or a usage could be booked at the estimate and never reconciled. So
both take a transaction-scoped advisory lock per LIC (bucketed, in a fixed order) first.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from services.ledger.domain.costing import (
    BookedUsage,
    CostEntries,
    MfrLotInLot,
    PoKey,
    PoLot,
    PurchaseOrder,
    SerialInLot,
)
from services.ledger.domain.model import (
    ADDING,
    ZERO,
    Entries,
    Fact,
    ItemFact,
    Known,
    Rule,
)

LOCK_BUCKETS = 4096
# From this many rows a table's rows go in by COPY (see `_insert`); below it, one round trip.
COPY_MIN_ROWS = 2_000

_LOCK_SQL = """
SELECT pg_advisory_xact_lock(bucket) FROM (
    SELECT DISTINCT (abs(hashtextextended('lotline.ledger:' || lic, 0)) % $2) AS bucket
    FROM unnest($1::text[]) AS lic ORDER BY 1
) AS buckets
"""

Column = tuple[str, str]


async def lock_lics(conn: asyncpg.Connection, lics: Iterable[str]) -> None:
    """Serialize this transaction with any other ledger transaction touching these LICs."""
    await conn.execute(_LOCK_SQL, sorted(set(lics)), LOCK_BUCKETS)


async def load_known(conn: asyncpg.Connection, facts: Sequence[Fact | ItemFact]) -> Known:
    """Actual costs of the lots the batch moves, closed POs of the lots it receives, and the
    quarantines in force of the items it may add stock to."""
    lot_ids = sorted(
        {m.lot_id for f in facts if isinstance(f, Fact) for m in f.moves if m.lot_id is not None}
    )
    pos = sorted(
        {
            (f.new_lot.reference, f.lic)
            for f in facts
            if isinstance(f, Fact)
            and f.new_lot is not None
            and f.new_lot.kind == "purchase"
            and f.new_lot.reference is not None
        }
    )
    # Items the batch may add stock to: their quarantines in force (`Known.rules`).
    adding = sorted({f.lic for f in facts if isinstance(f, Fact) and f.action in ADDING})
    actual: dict[str, Decimal] = {}
    if lot_ids:
        rows = await conn.fetch(
            "SELECT lot_id, act_unit_cost FROM lots"
            " WHERE lot_id = ANY($1::text[]) AND act_unit_cost IS NOT NULL",
            lot_ids,
        )
        actual = {r["lot_id"]: r["act_unit_cost"] for r in rows}
    applied: dict[tuple[str, str], Decimal] = {}
    if pos:
        rows = await conn.fetch(
            "SELECT p.po, p.lic, p.applied_unit_cost FROM purchase_orders AS p"
            " JOIN unnest($1::text[], $2::text[]) AS k(po, lic) USING (po, lic)"
            " WHERE p.applied_unit_cost IS NOT NULL",
            [p for p, _ in pos],
            [lic for _, lic in pos],
        )
        applied = {(r["po"], r["lic"]): r["applied_unit_cost"] for r in rows}
    rules: list[Rule] = []
    if adding:
        rows = await conn.fetch(
            "SELECT lic, mfr_lot, lot_id, office, quarantine_id, reason, since"
            " FROM quarantines WHERE lic = ANY($1::text[])",
            adding,
        )
        rules = [Rule(**r) for r in rows]
    return Known(actual_costs=actual, po_costs=applied, rules=rules)


async def write_entries(
    conn: asyncpg.Connection,
    entries: Entries,
    also: Sequence[Part] = (),
    next_serials: Mapping[str, str | None] | None = None,
) -> None:
    """Write one batch's rows and deltas in two round trips: the new items, lots and
    manufacturer lots first, then everything that may refer to them (deltas, unallocated stock,
    serials, usage, transactions, COGS) and `also` (writes to other tables, e.g. the
    dashboard's: no extra round trip). The sub-statements of one statement share a snapshot,
    so a lot's delta cannot go with the insert of that lot. `next_serials`: each item's Next
    Serial as the batch leaves it (R6), written with the item's row when the batch upserts it,
    else onto the row the item has (in the second round trip: one table per statement)."""
    next_serials = next_serials or {}
    mfr_lots = list(entries.mfr_lots.values())
    writes = _Writes()
    writes.add(_items_part(entries, next_serials))
    await writes.insert(conn, "lots", _LOT_COLUMNS, entries.lots, "(lot_id)")
    await writes.insert(conn, "mfr_lots", _MFR_LOT_COLUMNS, mfr_lots, "(lot_id, mfr_lot)")
    await writes.run(conn)
    for part in _delta_parts(entries):
        writes.add(part)
    writes.add(_unallocated_part(entries))
    writes.add(_next_serials_part(next_serials, skip=entries.items))
    await writes.serials(conn, entries)
    await writes.insert(conn, "usage", _USAGE_COLUMNS, entries.usage, "(usage_id)")
    await writes.insert(
        conn, "transactions", _TRANSACTION_COLUMNS, entries.transactions, "(txn_id)"
    )
    # Built as they are written, never all at once (`Entries.cogs`).
    cogs = entries.count_cogs()
    await writes.insert(conn, "cogs", _COGS_COLUMNS, entries.iter_cogs(), "(entry_key)", cogs)
    for part in also:
        writes.add(part)
    await writes.run(conn)


async def write_parts(conn: asyncpg.Connection, parts: Sequence[Part]) -> None:
    """Independent writes (no two to one table) in one statement."""
    writes = _Writes()
    for part in parts:
        writes.add(part)
    await writes.run(conn)


async def load_orders(
    conn: asyncpg.Connection, keys: Sequence[PoKey]
) -> dict[PoKey, PurchaseOrder]:
    rows = await conn.fetch(
        "SELECT p.* FROM purchase_orders AS p"
        " JOIN unnest($1::text[], $2::text[]) AS k(po, lic) USING (po, lic)",
        [po for po, _ in keys],
        [lic for _, lic in keys],
    )
    return {
        (r["po"], r["lic"]): PurchaseOrder(
            po=r["po"],
            lic=r["lic"],
            ordered_qty=r["ordered_qty"],
            purchased_qty=r["purchased_qty"],
            act_unit_cost=r["act_unit_cost"],
            applied_unit_cost=r["applied_unit_cost"],
            closed=r["closed"],
            closings=r["closings"],
            closed_on=r["closed_on"],
        )
        for r in rows
    }


async def load_booked_usage(
    conn: asyncpg.Connection, keys: Sequence[PoKey]
) -> dict[PoKey, list[BookedUsage]]:
    """Every usage of the POs' purchase lots with what is booked for it so far: its record's
    cost and its reconciliations (a return to vendor has no COGS `usage` entry, so its
    booked cost is read from the usage record, as every usage's is)."""
    if not keys:
        return {}
    rows = await conn.fetch(
        """
        SELECT k.po, u.lic, u.usage_id, u.lot_id, u.source, u.quantity, u.used_on,
               u.total_cost + coalesce(c.reconciled, 0) AS booked
        FROM unnest($1::text[], $2::text[]) AS k(po, lic)
        JOIN lots AS l ON l.reference = k.po AND l.lic = k.lic AND l.kind = 'purchase'
        JOIN usage AS u ON u.lot_id = l.lot_id
        LEFT JOIN LATERAL (
            SELECT sum(amount) AS reconciled FROM cogs
            WHERE cogs.usage_id = u.usage_id AND cogs.kind <> 'usage'
        ) AS c ON true
        ORDER BY u.seq
        """,
        [po for po, _ in keys],
        [lic for _, lic in keys],
    )
    usage: dict[PoKey, list[BookedUsage]] = {}
    for r in rows:
        usage.setdefault((r["po"], r["lic"]), []).append(
            BookedUsage(
                usage_id=r["usage_id"],
                lic=r["lic"],
                lot_id=r["lot_id"],
                source=r["source"],
                quantity=r["quantity"],
                booked=r["booked"],
                used_on=r["used_on"],
            )
        )
    return usage


async def load_po_lots(conn: asyncpg.Connection, keys: Sequence[PoKey]) -> dict[PoKey, list[PoLot]]:
    """The POs' purchase lots, in receipt order, with the units in them, their unit cost, the
    serials still in them and their manufacturer lots' units (a closing's records, R15)."""
    if not keys:
        return {}
    rows = await conn.fetch(
        """
        SELECT k.po, l.lic, l.lot_id, l.office, l.received_on, l.current_qty,
               coalesce(l.act_unit_cost, l.est_unit_cost) AS unit_cost,
               s.serials, s.serial_mfr_lots, s.serial_expiry,
               m.mfr_lots, m.mfr_qty, m.mfr_expiry
        FROM unnest($1::text[], $2::text[]) AS k(po, lic)
        JOIN lots AS l ON l.reference = k.po AND l.lic = k.lic AND l.kind = 'purchase'
        LEFT JOIN LATERAL (
            SELECT array_agg(serial ORDER BY serial) AS serials,
                   array_agg(mfr_lot ORDER BY serial) AS serial_mfr_lots,
                   array_agg(expires_on ORDER BY serial) AS serial_expiry
            FROM serials
            WHERE serials.lot_id = l.lot_id AND status IN ('available', 'allocated')
        ) AS s ON true
        LEFT JOIN LATERAL (
            SELECT array_agg(mfr_lot ORDER BY mfr_lot) AS mfr_lots,
                   array_agg(received_qty - used_qty ORDER BY mfr_lot) AS mfr_qty,
                   array_agg(expires_on ORDER BY mfr_lot) AS mfr_expiry
            FROM mfr_lots WHERE mfr_lots.lot_id = l.lot_id
        ) AS m ON true
        ORDER BY l.received_on, l.recorded_at, l.recorded_seq NULLS FIRST, l.lot_id
        """,
        [po for po, _ in keys],
        [lic for _, lic in keys],
    )
    lots: dict[PoKey, list[PoLot]] = {}
    for r in rows:
        serials = zip(
            r["serials"] or [], r["serial_mfr_lots"] or [], r["serial_expiry"] or [], strict=True
        )
        mfr_lots = zip(r["mfr_lots"] or [], r["mfr_qty"] or [], r["mfr_expiry"] or [], strict=True)
        lots.setdefault((r["po"], r["lic"]), []).append(
            PoLot(
                lot_id=r["lot_id"],
                lic=r["lic"],
                office=r["office"],
                received_on=r["received_on"],
                quantity=r["current_qty"],
                unit_cost=r["unit_cost"],
                serials=[
                    SerialInLot(serial=serial, mfr_lot=mfr_lot, expires_on=expires_on)
                    for serial, mfr_lot, expires_on in serials
                ],
                mfr_lots=[
                    MfrLotInLot(mfr_lot=mfr_lot, quantity=quantity, expires_on=expires_on)
                    for mfr_lot, quantity, expires_on in mfr_lots
                ],
            )
        )
    return lots


async def write_costs(conn: asyncpg.Connection, entries: CostEntries) -> None:
    """The POs' new state; on closed POs' purchase lots and their serials the actual cost;
    the cost-change records of the lots, their serials and manufacturer lots; reconciliations."""
    orders = list(entries.orders.values())
    if orders:
        await conn.execute(
            f"""
            INSERT INTO purchase_orders ({_names(_ORDER_COLUMNS)})
            SELECT * FROM unnest({_placeholders(_ORDER_COLUMNS)})
            ON CONFLICT (po, lic) DO UPDATE SET
                ordered_qty = excluded.ordered_qty, purchased_qty = excluded.purchased_qty,
                act_unit_cost = excluded.act_unit_cost,
                applied_unit_cost = excluded.applied_unit_cost, closed = excluded.closed,
                closings = excluded.closings, closed_on = excluded.closed_on, updated_at = now()
            """,
            *_arrays(orders, _ORDER_COLUMNS),
        )
    writes = _Writes()
    if entries.actual_costs:
        keys = list(entries.actual_costs)
        costs = [
            [po for po, _ in keys],
            [lic for _, lic in keys],
            [entries.actual_costs[k] for k in keys],
        ]
        writes.add(
            (
                "UPDATE lots AS l SET act_unit_cost = d.cost"
                " FROM unnest($1::text[], $2::text[], $3::numeric[]) AS d(po, lic, cost)"
                " WHERE l.reference = d.po AND l.lic = d.lic AND l.kind = 'purchase'",
                costs,
            )
        )
        writes.add(
            (
                "UPDATE serials AS s SET unit_cost = d.cost"
                " FROM unnest($1::text[], $2::text[], $3::numeric[]) AS d(po, lic, cost)"
                " JOIN lots AS l"
                "   ON l.reference = d.po AND l.lic = d.lic AND l.kind = 'purchase'"
                " WHERE s.lot_id = l.lot_id AND s.unit_cost <> d.cost",
                costs,
            )
        )
    await writes.insert(
        conn, "transactions", _TRANSACTION_COLUMNS, entries.transactions, "(txn_id)"
    )
    await writes.insert(conn, "cogs", _COGS_COLUMNS, entries.cogs, "(entry_key)")
    await writes.run(conn)


# -- statements -----------------------------------------------------------------------------


Part = tuple[str, list[Any]]
"""One sub-statement, its parameters numbered from $1, and their values."""

_PARAMETER = re.compile(r"\$(\d+)")


class _Writes:
    """Independent writes gathered into one statement: each a sub-statement of one `WITH`, so
    they cost one round trip. They share one snapshot: none may need what another writes, and
    no two may touch one table. Rows of a big batch (one event may move 100,000 serials) go in
    by COPY into a scratch table first, which costs client and server less per row."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.scratch: list[str] = []

    def add(self, part: Part | None) -> None:
        if part is not None:
            self.parts.append(part)

    async def insert(
        self,
        conn: asyncpg.Connection,
        table: str,
        columns: Sequence[Column],
        rows: Sequence[object] | Iterator[object],
        conflict: str,
        count: int | None = None,
    ) -> None:
        """`INSERT … ON CONFLICT DO NOTHING` of `rows` (names are constants); `count`: how
        many rows an iterator yields."""
        size = len(rows) if isinstance(rows, Sequence) else count
        assert size is not None, "an iterator of rows needs its count"
        if not size:
            return
        names = _names(columns)
        if size < COPY_MIN_ROWS:
            source, args = f"unnest({_placeholders(columns)})", _arrays(list(rows), columns)
        else:
            source, args = await self._copy(conn, table, columns, rows), []
        self.parts.append(
            (
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {source} AS s({names})"
                f" ON CONFLICT {conflict} DO NOTHING",
                args,
            )
        )

    async def serials(self, conn: asyncpg.Connection, entries: Entries) -> None:
        rows = list(entries.serials.values())
        if not rows:
            return
        names = _names(_SERIAL_COLUMNS)
        if len(rows) < COPY_MIN_ROWS:
            source = f"unnest({_placeholders(_SERIAL_COLUMNS)}) AS s({names})"
            args = _arrays(rows, _SERIAL_COLUMNS)
        else:
            source, args = await self._copy(conn, "serials", _SERIAL_COLUMNS, rows), []
        # A row carries its receipt date when the batch received the serial, and keeps the one
        # it has otherwise (a serial inserted without one, which allocation never publishes,
        # takes the date of its change).
        selected = ", ".join(
            "coalesce(received_on, changed_on)" if name == "received_on" else name
            for name, _ in _SERIAL_COLUMNS
        )
        self.parts.append(
            (
                f"""
                INSERT INTO serials ({names})
                SELECT {selected} FROM {source}
                ON CONFLICT (lic, serial, lot_id) DO UPDATE SET
                    mfr_lot = coalesce(excluded.mfr_lot, serials.mfr_lot),
                    expires_on = coalesce(excluded.expires_on, serials.expires_on),
                    status = excluded.status, document = excluded.document,
                    line_no = excluded.line_no, counterparty = excluded.counterparty,
                    unit_cost = excluded.unit_cost, changed_on = excluded.changed_on,
                    last_txn_id = excluded.last_txn_id
                """,
                args,
            )
        )

    async def run(self, conn: asyncpg.Connection) -> None:
        """Execute what was gathered, in one statement, and start over."""
        parts, self.parts = self.parts, []
        if len(parts) == 1:
            await conn.execute(parts[0][0], *parts[0][1])
        elif parts:
            ctes: list[str] = []
            args: list[Any] = []
            for n, (sql, values) in enumerate(parts):
                ctes.append(f"w{n} AS ({_shifted(sql, len(args))})")
                args += values
            await conn.execute(f"WITH {', '.join(ctes)} SELECT 1", *args)
        if self.scratch:
            # Dropped at commit anyway; dropped now so a second write to the same table in
            # this transaction can make its own.
            await conn.execute(f"DROP TABLE {', '.join(self.scratch)}")
            self.scratch = []

    async def _copy(
        self,
        conn: asyncpg.Connection,
        table: str,
        columns: Sequence[Column],
        rows: Iterable[object],
    ) -> str:
        """COPY `rows` into a temporary table shaped like `table`'s `columns`; its name. Each
        row's record is built as COPY encodes it: a list of them for 100,000 rows took 20 MB
        (and their computed costs as much again)."""
        scratch = f"copy_{table}"
        await conn.execute(
            f"CREATE TEMP TABLE {scratch} ON COMMIT DROP AS"
            f" SELECT {_names(columns)} FROM {table} WITH NO DATA"
        )
        await conn.copy_records_to_table(
            scratch, records=_records(rows, columns), columns=[name for name, _ in columns]
        )
        self.scratch.append(scratch)
        return scratch


def _shifted(sql: str, by: int) -> str:
    """`sql` with its parameters $1, $2, … renumbered from $(1 + by) (the SQL is ours: no
    other `$` in it)."""
    return _PARAMETER.sub(lambda m: f"${int(m.group(1)) + by}", sql)


def _names(columns: Sequence[Column]) -> str:
    return ", ".join(name for name, _ in columns)


def _placeholders(columns: Sequence[Column]) -> str:
    return ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(columns, 1))


def _records(rows: Iterable[object], columns: Sequence[Column]) -> Iterator[tuple[object, ...]]:
    """Each row's attributes of the columns' names, in column order (one C call per row),
    built as they are read."""
    get = operator.attrgetter(*(name for name, _ in columns))
    return map(get, rows)


def _arrays(rows: Sequence[object], columns: Sequence[Column]) -> list[list[object]]:
    """One array per column: each row's attribute of the column's name."""
    if len(columns) == 1:
        return [[getattr(row, columns[0][0]) for row in rows]]
    return [list(column) for column in zip(*_records(rows, columns), strict=True)]


def _items_part(entries: Entries, next_serials: Mapping[str, str | None]) -> Part | None:
    """The batch's upserted items, each with its Next Serial as the batch leaves it (an
    `ItemUpserted` sets it, so every upserted item has one in `next_serials`, None or not)."""
    items = list(entries.items.values())
    if not items:
        return None
    columns = [*_ITEM_COLUMNS, _NEXT_SERIAL]
    return (
        f"""
        INSERT INTO items ({_names(columns)})
        SELECT * FROM unnest({_placeholders(columns)})
        ON CONFLICT (lic) DO UPDATE SET
            description = excluded.description, uom = excluded.uom,
            track_mfr_lot = excluded.track_mfr_lot, serialized = excluded.serialized,
            perishable = excluded.perishable, est_unit_cost = excluded.est_unit_cost,
            gtin = excluded.gtin, next_serial = excluded.next_serial, updated_at = now()
        """,
        [*_arrays(items, _ITEM_COLUMNS), [next_serials.get(i.lic) for i in items]],
    )


def _next_serials_part(next_serials: Mapping[str, str | None], skip: Container[str]) -> Part | None:
    """The Next Serial receipts moved on, of the items the batch does not upsert (`skip`): set
    on the row each has (the ledger knows an item from its `ItemUpserted`, which allocation
    publishes before any receipt of it). A row already showing it is left as it is: most
    receipts of a serialized item (serials typed or scanned) carry its Next Serial unchanged."""
    lics = [lic for lic in next_serials if lic not in skip]
    if not lics:
        return None
    return (
        "UPDATE items AS i SET next_serial = d.next_serial, updated_at = now()"
        " FROM unnest($1::text[], $2::text[]) AS d(lic, next_serial)"
        " WHERE i.lic = d.lic AND i.next_serial IS DISTINCT FROM d.next_serial",
        [lics, [next_serials[lic] for lic in lics]],
    )


def _delta_parts(entries: Entries) -> list[Part]:
    parts: list[Part] = []
    if entries.lot_deltas:
        keys = list(entries.lot_deltas)
        parts.append(
            (
                "UPDATE lots AS l SET used_qty = l.used_qty + d.used,"
                " allocated_qty = l.allocated_qty + d.allocated"
                " FROM unnest($1::text[], $2::numeric[], $3::numeric[])"
                "   AS d(lot_id, used, allocated)"
                " WHERE l.lot_id = d.lot_id",
                [
                    keys,
                    [entries.lot_deltas[k].used for k in keys],
                    [entries.lot_deltas[k].allocated for k in keys],
                ],
            )
        )
    if entries.mfr_deltas:
        pairs = list(entries.mfr_deltas)
        parts.append(
            (
                "UPDATE mfr_lots AS m SET used_qty = m.used_qty + d.used,"
                " allocated_qty = m.allocated_qty + d.allocated"
                " FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[])"
                "   AS d(lot_id, mfr_lot, used, allocated)"
                " WHERE m.lot_id = d.lot_id AND m.mfr_lot = d.mfr_lot",
                [
                    [lot_id for lot_id, _ in pairs],
                    [mfr_lot for _, mfr_lot in pairs],
                    [entries.mfr_deltas[k].used for k in pairs],
                    [entries.mfr_deltas[k].allocated for k in pairs],
                ],
            )
        )
    return parts


def _unallocated_part(entries: Entries) -> Part | None:
    if not entries.unallocated:
        return None
    keys = list(entries.unallocated)
    return (
        "INSERT INTO unallocated (lic, office, quantity, value)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[])"
        " ON CONFLICT (lic, office) DO UPDATE"
        " SET quantity = unallocated.quantity + excluded.quantity,"
        " value = unallocated.value + excluded.value",
        [
            [lic for lic, _ in keys],
            [office for _, office in keys],
            list(entries.unallocated.values()),
            [entries.unallocated_value.get(key, ZERO) for key in keys],
        ],
    )


# -- row shapes -----------------------------------------------------------------------------

_LOT_COLUMNS: list[Column] = [
    ("lot_id", "text"),
    ("lic", "text"),
    ("office", "text"),
    ("kind", "text"),
    ("reference", "text"),
    ("document", "text"),
    ("line_no", "int"),
    ("received_on", "date"),
    ("est_unit_cost", "numeric"),
    ("act_unit_cost", "numeric"),
    ("received_qty", "numeric"),
    ("event_id", "text"),
    ("vendor", "text"),
    ("bin", "text"),
]
_MFR_LOT_COLUMNS: list[Column] = [
    ("lot_id", "text"),
    ("mfr_lot", "text"),
    ("lic", "text"),
    ("expires_on", "date"),
    ("received_qty", "numeric"),
]
_USAGE_COLUMNS: list[Column] = [
    ("usage_id", "text"),
    ("lic", "text"),
    ("lot_id", "text"),
    ("mfr_lot", "text"),
    ("serial", "text"),
    ("expires_on", "date"),
    ("source", "text"),
    ("quantity", "numeric"),
    ("unit_cost", "numeric"),
    ("est_unit_cost", "numeric"),
    ("total_cost", "numeric"),
    ("office", "text"),
    ("document", "text"),
    ("line_no", "int"),
    ("counterparty", "text"),
    ("used_on", "date"),
    ("event_id", "text"),
]
_TRANSACTION_COLUMNS: list[Column] = [
    ("txn_id", "text"),
    ("lic", "text"),
    ("lot_id", "text"),
    ("mfr_lot", "text"),
    ("serial", "text"),
    ("expires_on", "date"),
    ("event_type", "text"),
    ("record", "text"),
    ("quantity", "numeric"),
    ("stock_change", "numeric"),
    ("unit_cost", "numeric"),
    ("cost", "numeric"),
    ("office", "text"),
    ("document", "text"),
    ("line_no", "int"),
    ("counterparty", "text"),
    ("reference", "text"),
    ("reason", "text"),
    ("occurred_on", "date"),
    ("event_id", "text"),
]
_COGS_COLUMNS: list[Column] = [
    ("entry_key", "text"),
    ("lic", "text"),
    ("lot_id", "text"),
    ("usage_id", "text"),
    ("kind", "text"),
    ("source", "text"),
    ("quantity", "numeric"),
    ("unit_cost", "numeric"),
    ("amount", "numeric"),
    ("po", "text"),
    ("entered_on", "date"),
    ("event_id", "text"),
]

_ITEM_COLUMNS: list[Column] = [
    ("lic", "text"),
    ("description", "text"),
    ("uom", "text"),
    ("track_mfr_lot", "boolean"),
    ("serialized", "boolean"),
    ("perishable", "boolean"),
    ("est_unit_cost", "numeric"),
    ("gtin", "text"),
]
_NEXT_SERIAL: Column = ("next_serial", "text")
_SERIAL_COLUMNS: list[Column] = [
    ("lic", "text"),
    ("serial", "text"),
    ("lot_id", "text"),
    ("mfr_lot", "text"),
    ("expires_on", "date"),
    ("status", "text"),
    ("document", "text"),
    ("line_no", "int"),
    ("counterparty", "text"),
    ("unit_cost", "numeric"),
    ("changed_on", "date"),
    ("last_txn_id", "text"),
    ("received_on", "date"),
]
_ORDER_COLUMNS: list[Column] = [
    ("po", "text"),
    ("lic", "text"),
    ("ordered_qty", "numeric"),
    ("purchased_qty", "numeric"),
    ("act_unit_cost", "numeric"),
    ("applied_unit_cost", "numeric"),
    ("closed", "boolean"),
    ("closings", "int"),
    ("closed_on", "date"),
]
