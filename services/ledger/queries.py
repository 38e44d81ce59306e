"""The ledger's reads: every answer of the read API comes from the ledger's own tables.

Multi-query answers run in one read-only REPEATABLE READ transaction (`snapshot`) so their
parts agree. Traces read the transaction records through the partial indexes on (lic, mfr_lot)
and (lic, serial), so their cost follows the size of the answer, not of the table; their
records are read through a cursor, `PART_ROWS` at a time, as the answer is sent. A manufacturer
lot traced without its item finds its items through the manufacturer lots first
(`lot_in_items`), then traces each the same way.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import asyncpg
from pydantic import BaseModel

from services.ledger.domain.model import COGS_ACTIONS, EXACT
from services.ledger.domain.operations import POSTINGS
from services.ledger.domain.stock import StockAtOffice
from services.ledger.domain.valuation import Figure, LotFigures, PoShare, share_po_line, value
from services.ledger.quarantine import (
    HELD_BY_OFFICE_SQL,
    HELD_IN_LOT_SQL,
    held_stock,
    rules_of_lot,
)
from services.ledger.schemas import (
    CogsCause,
    CogsCauses,
    CogsEntry,
    CogsFigures,
    CogsItem,
    CogsPeriod,
    DocumentItem,
    DocumentRecord,
    DocumentRecords,
    ItemOut,
    ItemRollForward,
    ItemStockValue,
    ItemSummary,
    ItemTraces,
    LotDetail,
    LotOrigin,
    LotSummary,
    MfrLotOut,
    Movement,
    Movements,
    OfficeOnHand,
    OfficeRollForward,
    OfficeStock,
    OfficeStockValue,
    PoLineOut,
    PoLineSummary,
    PoLotOut,
    PoVendorReturnOut,
    PurchaseOrderOut,
    QuarantineOut,
    Recipient,
    RollForward,
    SerialOut,
    SerialRecord,
    StockRollForward,
    StockValuation,
    StockValueFigures,
    TraceBalance,
    TraceEvent,
    TraceOut,
    UsageOut,
    Valuation,
    VendorReturnFigures,
    WarningOut,
)
from services.ledger.schemas import Figure as FigureOut
from shared.contracts.types import normalize_identifier
from shared.reasons import shown

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Reader = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:  # FastAPI resolves the dependency's annotation at runtime
    Reader = asyncpg.Connection

_UNIT_COST = "coalesce(l.act_unit_cost, l.est_unit_cost)"
# A lot's stock on hand at its unit cost: `valuation.current.value` of `lot` (`value`), computed
# by the database. numeric multiplies and adds exactly, to the digit and to the scale, as
# `cost_of` does, so an item's value is its lots' values added up, to the last digit.
_LOT_VALUE = f"l.current_qty * {_UNIT_COST}"
# Lots in the order they were received: the ledger records in partition order (recorded_at
# orders batches, recorded_seq the lots of one batch; lots of before migration 011 have none).
_RECEIPT_ORDER = (
    "o.received_on, o.recorded_at, o.recorded_seq NULLS FIRST, o.document, o.line_no, o.lot_id"
)

# A serial's records with the vendor of the lot each came in.
_SERIALS_SELECT = (
    "SELECT s.*, l.vendor FROM serials AS s LEFT JOIN lots AS l ON l.lot_id = s.lot_id"
)
# An inventory lot's serials ($1), a unit in stock of a manufacturer lot held ($2, '' for a
# lot without manufacturer lots) shown `quarantined`, as `serial` shows it.
_LOT_SERIALS_SQL = """
SELECT s.lic, s.serial, s.lot_id, s.mfr_lot, s.expires_on, s.document, s.line_no,
       s.counterparty, s.unit_cost, s.received_on, s.changed_on, l.vendor, h.held AS quarantined,
       CASE WHEN h.held AND s.status = 'available' THEN 'quarantined' ELSE s.status END
         AS status
FROM serials AS s
LEFT JOIN lots AS l ON l.lot_id = s.lot_id
CROSS JOIN LATERAL (
    SELECT s.status IN ('available', 'allocated') AND coalesce(s.mfr_lot, '') = ANY($2::text[])
) AS h(held)
WHERE s.lot_id = $1
ORDER BY s.serial
"""
# A serial's records, the one it is in now first: the last one changed, in the order the
# changes were recorded (seq of the transaction record of each record's last change). Their
# business dates may not follow that order: a beginning balance dated at the period's start may
# find a serial counted out later in the period.
_SERIAL_RECORDS = f"""
{_SERIALS_SELECT}
LEFT JOIN transactions AS t ON t.txn_id = s.last_txn_id
WHERE s.lic = $1 AND s.serial = $2
ORDER BY t.seq DESC NULLS LAST, s.changed_on DESC, s.received_on DESC, s.lot_id DESC
"""

_TRACE_COLUMNS = """
t.occurred_on AS date, t.event_type, t.lic, t.lot_id, t.mfr_lot, t.serial, t.expires_on,
t.quantity, t.stock_change, t.unit_cost, t.cost, t.office, t.document, t.line_no,
t.counterparty, coalesce(l.reference, t.reference) AS reference, l.kind AS lot_kind,
t.reason, l.vendor, t.seq AS recorded_seq, t.recorded_at
"""
_TRACE_FROM = "FROM transactions AS t LEFT JOIN lots AS l ON l.lot_id = t.lot_id"
_TRACE_SELECT = f"SELECT {_TRACE_COLUMNS} {_TRACE_FROM}"

# A usage record's reconciliations (usage `u`): the entries its PO's closings wrote for it (R16),
# a COGS usage's `reconciliation`s and a return to vendor's `vendor_return_reconciliation`s
# (each `amount` = quantity × actual − what was booked before, signed), not its `usage` entry
# (its booked cost, the record's total_cost). Read through cogs_by_usage: a usage's few.
_RECONCILIATIONS = """
SELECT sum(c.amount) AS amount FROM cogs AS c
WHERE c.usage_id = u.usage_id AND c.kind IN ('reconciliation', 'vendor_return_reconciliation')
"""
# Whether usage `u`'s lot's cost is final: a purchase lot whose PO line closed with an actual
# cost applied, as `_PO_LINE`'s cost_is_final (by primary keys).
_COST_FINAL = """
SELECT p.closed AND p.applied_unit_cost IS NOT NULL AS final
FROM lots AS l JOIN purchase_orders AS p ON p.po = l.reference AND p.lic = l.lic
WHERE l.lot_id = u.lot_id AND l.kind = 'purchase'
"""
# A usage record (`u`) as `UsageOut` and `RecordUsage` show it: with its reconciled cost and
# whether its cost is final. Each read per record, after the page's records are found.
_RECONCILED_USAGE = f"""
u.total_cost + coalesce(({_RECONCILIATIONS}), 0) AS reconciled_cost,
coalesce(({_COST_FINAL}), false) AS cost_final
"""

# A document's items, each with its records summed up (`DocumentItem`), read through the index
# transactions_by_document, and the usage they wrote through usage_by_document (a usage row
# has the document of the record that wrote it). The records are summed by item, kind and
# counterparty first: a hash of a few groups, where kinds and counterparties gathered
# DISTINCT from every record sorted them all (a second, for a 100,000-serial shipment).
_DOCUMENT_ITEMS = f"""
WITH g AS (
    SELECT lic, event_type, counterparty, count(*) AS record_count,
           coalesce(sum(stock_change) FILTER (WHERE stock_change > 0), 0) AS quantity_in,
           coalesce(-sum(stock_change) FILTER (WHERE stock_change < 0), 0) AS quantity_out,
           coalesce(sum(cost) FILTER (WHERE stock_change > 0), 0) AS cost_in,
           coalesce(sum(cost) FILTER (WHERE stock_change < 0), 0) AS cost_out,
           coalesce(sum(cost) FILTER (WHERE event_type = 'cost_change'), 0) AS revaluation,
           min(occurred_on) AS first_date, max(occurred_on) AS last_date
    FROM transactions WHERE document = $1 GROUP BY lic, event_type, counterparty
)
SELECT t.*, i.description, i.uom, coalesce(u.usage_cost, 0) AS usage_cost,
       coalesce(u.usage_cost_reconciled, 0) AS usage_cost_reconciled,
       coalesce(r.reconciliation, 0) AS reconciliation
FROM (
    SELECT lic, sum(record_count)::bigint AS record_count, sum(quantity_in) AS quantity_in,
           sum(quantity_out) AS quantity_out, sum(cost_in) AS cost_in,
           sum(cost_out) AS cost_out, sum(revaluation) AS revaluation,
           min(first_date) AS first_date,
           max(last_date) AS last_date, array_agg(DISTINCT event_type) AS event_types,
           array_agg(DISTINCT counterparty) FILTER (WHERE counterparty IS NOT NULL)
             AS counterparties
    FROM g GROUP BY lic
) AS t
LEFT JOIN items AS i ON i.lic = t.lic
LEFT JOIN (
    SELECT u.lic, sum(u.total_cost) AS usage_cost,
           sum(u.total_cost + coalesce(r.amount, 0)) AS usage_cost_reconciled
    FROM usage AS u LEFT JOIN LATERAL ({_RECONCILIATIONS}) AS r ON true
    WHERE u.document = $1 GROUP BY u.lic
) AS u ON u.lic = t.lic
LEFT JOIN (
    -- A PO's closings' reconciliation entries, through its purchase lots (lots_by_reference,
    -- then each lot's entries: cogs_by_lot); none for a document that is no PO.
    SELECT c.lic, sum(c.amount) AS reconciliation
    FROM lots AS l JOIN cogs AS c ON c.lot_id = l.lot_id
    WHERE l.reference = $1 AND l.kind = 'purchase' AND c.po = $1
      AND c.kind IN ('reconciliation', 'vendor_return_reconciliation')
    GROUP BY c.lic
) AS r ON r.lic = t.lic
ORDER BY t.lic
"""

# The traced records summed by office, in one pass: the inventory lots they name (the trace's
# origins) and the units each kind of record moved (stock_change: + in, − out), so a recall
# can account for every unit (`TraceBalance`). Allocations, releases, quarantines and cost
# changes move none; every other kind is one of the sums, so on_hand is their total.
_BALANCE_SUMS = (
    "received",
    "shipped",
    "returned_by_customers",
    "returned_to_vendor",
    "adjusted",
    "on_hand",
)
_TRACE_BALANCE = """
SELECT t.office,
       array_agg(DISTINCT t.lot_id) FILTER (WHERE t.lot_id IS NOT NULL) AS lot_ids,
       coalesce(sum(t.stock_change) FILTER (
           WHERE t.event_type IN ('receipt', 'beginning_balance')), 0) AS received,
       coalesce(-sum(t.stock_change) FILTER (WHERE t.event_type = 'shipment'), 0) AS shipped,
       coalesce(sum(t.stock_change) FILTER (WHERE t.event_type = 'customer_return'), 0)
         AS returned_by_customers,
       coalesce(-sum(t.stock_change) FILTER (WHERE t.event_type = 'vendor_return'), 0)
         AS returned_to_vendor,
       coalesce(sum(t.stock_change) FILTER (WHERE t.event_type IN ('count', 'loss')), 0)
         AS adjusted,
       coalesce(sum(t.stock_change), 0) AS on_hand
FROM transactions AS t {where}
GROUP BY t.office
"""

# Each customer shipped any of the traced stock, with what they were shipped and returned, and
# (`unidentified_held`) what they may still hold of the units no serial identifies: shipped −
# returned of the records without a serial. A unit with a serial is held by serial
# (`_SERIALS_HELD`), so `held` is this plus the serials they hold (`_recipient`).
_RECIPIENTS = """
SELECT t.counterparty AS customer,
       count(DISTINCT t.document) FILTER (WHERE t.event_type = 'shipment') AS shipments,
       coalesce(sum(t.quantity) FILTER (WHERE t.event_type = 'shipment'), 0) AS shipped,
       coalesce(sum(t.quantity) FILTER (WHERE t.event_type = 'customer_return'), 0) AS returned,
       coalesce(sum(t.quantity) FILTER (WHERE t.event_type = 'shipment' AND t.serial IS NULL), 0)
         - coalesce(sum(t.quantity) FILTER (
               WHERE t.event_type = 'customer_return' AND t.serial IS NULL), 0)
         AS unidentified_held,
       min(t.occurred_on) FILTER (WHERE t.event_type = 'shipment') AS first_shipped_on,
       max(t.occurred_on) FILTER (WHERE t.event_type = 'shipment') AS last_shipped_on
FROM transactions AS t
{where} AND t.counterparty IS NOT NULL AND t.event_type IN ('shipment', 'customer_return')
GROUP BY t.counterparty
HAVING count(*) FILTER (WHERE t.event_type = 'shipment') > 0
"""
# The traced serials each customer holds now, set-based (one query whatever the customers):
# a serial is the customer's whose latest shipment of the traced records shipped it to them,
# unless a record of that serial of the item, traced or not, brought it back into stock since:
# a customer return (naming a customer or none), a beginning balance, a count or loss that
# adds, a receipt (R4: a serial is one unit of one LIC, and it is on our shelf). A
# unit shipped on again is the later customer's. The shipments are read through the trace's
# own index (one manufacturer lot's records, not every serialized record of the item), then
# sorted per serial; each one's later records through (lic, serial): a serial's own few.
_SERIALS_HELD = """
SELECT last.customer, array_agg(last.serial) AS serials
FROM (
    SELECT DISTINCT ON (t.serial) t.lic, t.serial, t.seq, t.counterparty AS customer
    FROM transactions AS t
    {where} AND t.serial IS NOT NULL AND t.event_type = 'shipment'
    -- Recording order, not business dates: who holds a unit is what the decisions, made in
    -- order, left (as /serials says), even when a later sale was dated before a return, or
    -- a beginning balance dated at the period's start found a unit shipped in the period.
    ORDER BY t.serial, t.seq DESC
) AS last
WHERE last.customer IS NOT NULL AND NOT EXISTS (
    SELECT FROM transactions AS back
    WHERE back.lic = last.lic AND back.serial = last.serial
      AND back.seq > last.seq AND back.stock_change > 0
)
GROUP BY last.customer
"""


_IN_STOCK = ("available", "allocated")
"""A serial's statuses while it is on hand."""


class NotFound(Exception):
    """The thing asked for is not in the ledger; the message names it."""


Head = TypeVar("Head", bound=BaseModel)
Row = TypeVar("Row", bound=BaseModel)


PART_ROWS = 500
"""Rows per part of a big answer. The ledger's consumers (and their heartbeats to the broker)
share the event loop with the API: a lot of 100,000 serials built and serialized whole held it
for 17 s, past the consumers' session timeout, and took 750 MB. Built and sent a part at a
time, each part is a few tens of milliseconds and a few hundred KB."""

Parts = AsyncIterator[Sequence[asyncpg.Record]]
"""A big list's rows, a part (at most PART_ROWS rows) at a time."""


@dataclass(frozen=True, slots=True)
class Found(Generic[Head]):
    """An answer that may be big (a lot of 100,000 serials, the trace of a manufacturer lot
    over years), read in one snapshot: `head` is the answer with its big lists empty, `lists`
    their rows, a part at a time, each with its row model. The API builds and sends the rows
    a part at a time (`api._json_parts`), so the whole answer is never built at once; a
    trace's rows are also read from the database a part at a time (`trace`), so they are
    never all held at once either."""

    head: Head
    lists: dict[str, tuple[type[BaseModel], Parts]] = field(default_factory=dict)


def json_time(at: dt.datetime, timespec: str = "auto") -> str:
    """A time as the JSON answers write it: ISO 8601, UTC as "Z". `timespec` as
    `datetime.isoformat` takes it: "auto" (microseconds kept, as the JSON's), or "seconds" for
    a time said in a sentence (a 404's latest answer)."""
    return at.isoformat(timespec=timespec).replace("+00:00", "Z")


def snapshot(conn: Reader) -> asyncpg.transaction.Transaction:
    """The read-only REPEATABLE READ transaction an answer of several queries is read in."""
    return conn.transaction(isolation="repeatable_read", readonly=True)


# An item's ($1) stock per office: its open lots, its unallocated stock (R12) and, of what is
# available, the units of manufacturer lots expired before today (`OfficeStock.expired`), as
# allocation's `FreeStock.expired` sorts free stock for a sale shipping today: a perishable
# item's (R9), free (received − used − allocated, exact per manufacturer lot) and not held
# (held stock is out of `available` already: counting it would count it twice). Today is the
# UTC date of the read, the dashboard's default `as_of`: never `current_date`, which follows
# the database server's time zone.
_ITEM_STOCK_SQL = f"""
WITH held AS ({held_stock(lic="$1")})
SELECT office, sum(in_lots) AS in_lots, sum(allocated) AS allocated,
       sum(unallocated) AS unallocated, sum(value) AS value, sum(expired) AS expired,
       sum(unallocated_value) AS unallocated_value
FROM (
    SELECT l.office, l.current_qty AS in_lots, l.allocated_qty AS allocated,
           0 AS unallocated, {_LOT_VALUE} AS value, 0 AS expired, 0 AS unallocated_value
    FROM lots AS l WHERE l.lic = $1 AND l.status = 'open'
    UNION ALL
    SELECT office, 0, 0, quantity, 0, 0, value FROM unallocated WHERE lic = $1
    UNION ALL
    SELECT l.office, 0, 0, 0, 0, m.received_qty - m.used_qty - m.allocated_qty, 0
    FROM mfr_lots AS m
    JOIN lots AS l ON l.lot_id = m.lot_id
    JOIN items AS i ON i.lic = m.lic AND i.perishable
    WHERE m.lic = $1 AND m.expires_on < (now() AT TIME ZONE 'UTC')::date
      AND m.received_qty - m.used_qty > m.allocated_qty
      AND NOT EXISTS (SELECT FROM held AS h WHERE h.lot_id = m.lot_id AND h.mfr_lot = m.mfr_lot)
) AS s GROUP BY office ORDER BY office
"""


async def item(conn: Reader, lic: str) -> ItemOut:
    async with snapshot(conn):
        row = await conn.fetchrow("SELECT * FROM items WHERE lic = $1", lic)
        if row is None:
            raise NotFound(f"item {shown(lic)} is not known to the ledger")
        stock = await conn.fetch(_ITEM_STOCK_SQL, lic)
        held = {h["office"]: h for h in await conn.fetch(HELD_BY_OFFICE_SQL, lic)}
    offices = [_office_stock(s, held.get(s["office"])) for s in stock]
    with localcontext(EXACT):  # amounts of up to 33 digits, more than the default keeps
        total = sum((o.value for o in offices), start=Decimal(0))
        unallocated = sum((o.unallocated_value for o in offices), start=Decimal(0))
    return ItemOut(
        **_fields(row, ItemOut, skip={"stock", "value", "unallocated_value"}),
        value=total,
        unallocated_value=unallocated,
        stock=offices,
    )


async def items(
    conn: Reader,
    gtin: str | None,
    limit: int,
    offset: int,
    after: str | None = None,
) -> Page[ItemSummary]:
    """Items by LIC, each with its stock on hand at every office and its lots' value; `gtin`
    (any GTIN form) only the items with it; `after` (a token of this list) starts past an
    item."""
    where, args = _where({"i.gtin14": gtin14(gtin)})
    if after is not None:
        (lic,) = _untoken(after, (str,))
        where += f" {'AND' if where else 'WHERE'} i.lic > ${len(args) + 1}"
        args.append(lic)
    rows = await conn.fetch(
        f"""
        SELECT i.*, coalesce(s.on_hand, 0) + coalesce(u.on_hand, 0) AS on_hand,
               coalesce(s.value, 0) AS value, coalesce(u.value, 0) AS unallocated_value
        FROM items AS i
        LEFT JOIN LATERAL (
            SELECT sum(l.current_qty) AS on_hand, sum({_LOT_VALUE}) AS value
            FROM lots AS l WHERE l.lic = i.lic AND l.status = 'open'
        ) AS s ON true
        LEFT JOIN LATERAL (
            SELECT sum(quantity) AS on_hand, sum(value) AS value FROM unallocated WHERE lic = i.lic
        ) AS u ON true
        {where} ORDER BY i.lic LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}
        """,
        *args,
        limit,
        offset,
    )
    if not rows and gtin is not None:
        await _known_gtin(conn, gtin)
    last = rows[-1] if len(rows) == limit else None
    return Page(model_rows(ItemSummary, rows), None if last is None else _token(last["lic"]))


def gtin14(gtin: str | None) -> str | None:
    """A GTIN-8, -12, -13 or -14 as the 14 digits `items.gtin14` holds (scans decode to that
    form); anything else as it is (an item's GTIN is whatever upstream named)."""
    if gtin is not None and gtin.isascii() and gtin.isdigit() and len(gtin) <= 14:
        return gtin.zfill(14)
    return gtin


async def lots(
    conn: Reader,
    lic: str | None,
    status: str | None,
    limit: int,
    offset: int,
    after: str | None = None,
) -> Page[LotSummary]:
    """Lots by LIC, date received and id; `after` (a token of this list) starts past a lot."""
    where, args = _where({"l.lic": lic, "l.status": status})
    if after is not None:
        lot_lic, received_on, lot_id = _untoken(after, (str, dt.date, str))
        n = len(args)
        where += " AND" if where else "WHERE"
        where += f" (l.lic, l.received_on, l.lot_id) > (${n + 1}, ${n + 2}::date, ${n + 3})"
        args += [lot_lic, received_on, lot_id]
    rows = await conn.fetch(
        f"SELECT l.*, {_UNIT_COST} AS unit_cost, {_LOT_VALUE} AS current_value, q.quarantines"
        " FROM lots AS l"
        f" LEFT JOIN LATERAL ({rules_of_lot('l')}) AS q ON true {where}"
        f" ORDER BY l.lic, l.received_on, l.lot_id"
        f" LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
        *args,
        limit,
        offset,
    )
    if not rows and lic is not None:
        await _known_item(conn, lic)
    last = rows[-1] if len(rows) == limit else None
    return Page(
        [_lot_summary(r) for r in rows],
        None if last is None else _token(last["lic"], last["received_on"], last["lot_id"]),
    )


def _quarantines(value: Any) -> list[QuarantineOut]:
    """A lot's quarantines as `rules_of_lot` selects them (JSON text or a list)."""
    rules = json.loads(value) if isinstance(value, str) else value
    return [QuarantineOut(**rule) for rule in rules or ()]


def _lot_summary(row: asyncpg.Record) -> LotSummary:
    rules = _quarantines(row["quarantines"])
    return LotSummary(
        **_fields(row, LotSummary, {"quarantined", "quarantines"}),
        quarantined=bool(rules),
        quarantines=rules,
    )


def _mfr_lot_out(row: asyncpg.Record, held: dict[str | None, asyncpg.Record]) -> MfrLotOut:
    """The manufacturer lot, with the first quarantine holding its stock on hand (none once
    all of it left the lot)."""
    rule = held.get(row["mfr_lot"])
    return MfrLotOut(
        **_fields(row, MfrLotOut, {"quarantined", "quarantine_id", "quarantine_reason"}),
        quarantined=rule is not None,
        quarantine_id=None if rule is None else rule["quarantine_id"],
        quarantine_reason=None if rule is None else rule["reason"],
    )


async def lot(conn: Reader, lot_id: str) -> Found[LotDetail]:
    async with snapshot(conn):
        row = await conn.fetchrow(
            f"""
            SELECT l.*, i.description, i.uom, i.serialized, i.track_mfr_lot,
                   p.ordered_qty, p.purchased_qty, p.closed AS po_closed,
                   line.lot_ids, line.received, q.quarantines
            FROM lots AS l
            LEFT JOIN items AS i ON i.lic = l.lic
            LEFT JOIN purchase_orders AS p
                   ON l.kind = 'purchase' AND p.po = l.reference AND p.lic = l.lic
            -- Every lot the PO line was received into, in receipt order, for this lot's share.
            LEFT JOIN LATERAL (
                SELECT array_agg(o.lot_id ORDER BY {_RECEIPT_ORDER}) AS lot_ids,
                       array_agg(o.received_qty ORDER BY {_RECEIPT_ORDER}) AS received
                FROM lots AS o
                WHERE o.kind = 'purchase' AND o.reference = p.po AND o.lic = p.lic
            ) AS line ON true
            LEFT JOIN LATERAL ({rules_of_lot("l")}) AS q ON true
            WHERE l.lot_id = $1
            """,
            lot_id,
        )
        if row is None:
            raise NotFound(f"inventory lot {shown(lot_id)} is not known to the ledger")
        mfr = await conn.fetch(
            "SELECT *, received_qty - used_qty AS current_qty FROM mfr_lots"
            " WHERE lot_id = $1 ORDER BY expires_on NULLS LAST, mfr_lot",
            lot_id,
        )
        held = {h["mfr_lot"]: h for h in await conn.fetch(HELD_IN_LOT_SQL, lot_id)}
        # A unit in stock of held stock is held (no per-serial query: the held manufacturer
        # lots of the lot, '' for a lot without any, go as a parameter).
        serials = await conn.fetch(_LOT_SERIALS_SQL, lot_id, [h or "" for h in held])
        cogs = await conn.fetch(
            """
            SELECT c.*, u.document, u.mfr_lot, u.serial, u.est_unit_cost FROM cogs AS c
            JOIN usage AS u ON u.usage_id = c.usage_id
            WHERE c.lot_id = $1 ORDER BY c.seq
            """,
            lot_id,
        )
    with localcontext(EXACT):  # amounts of up to 33 digits, more than the default keeps
        # A return to vendor is no cost of goods sold: its reconciliation is listed, not summed.
        cogs_total = sum(
            (c["amount"] for c in cogs if c["source"] in COGS_ACTIONS), start=Decimal(0)
        )
    rules = _quarantines(row["quarantines"])
    head = LotDetail(
        lot_id=row["lot_id"],
        lic=row["lic"],
        description=row["description"] or "",
        uom=row["uom"] or "Each",
        transaction_id=row["document"],
        line_no=row["line_no"],
        date=row["received_on"],
        office=row["office"],
        kind=row["kind"],
        parent_order=row["reference"],
        vendor=row["vendor"],
        bin=row["bin"],
        serialized=bool(row["serialized"]),
        track_mfr_lot=bool(row["track_mfr_lot"]),
        status=row["status"],
        valuation=_valuation(row, list(held.values())),
        quarantined=bool(rules),
        quarantines=rules,
        mfr_lots=[_mfr_lot_out(m, held) for m in mfr],
        serials=[],
        cogs=[],
        cogs_total=cogs_total,
    )
    return Found(
        head, {"serials": (SerialRecord, _in_parts(serials)), "cogs": (CogsEntry, _in_parts(cogs))}
    )


async def serial(conn: Reader, lic: str, number: str) -> SerialOut:
    async with snapshot(conn):
        records = await conn.fetch(_SERIAL_RECORDS, lic, number)
        if not records:
            raise NotFound(
                f"serial {shown(number)} of item {shown(lic)} is not known to the ledger"
            )
        history = await conn.fetch(
            _TRACE_SELECT + " WHERE t.lic = $1 AND t.serial = $2 ORDER BY t.occurred_on, t.seq",
            lic,
            number,
        )
        now = records[0]
        rule = None
        if now["status"] in _IN_STOCK:  # the rules hold stock on hand only
            held = await conn.fetch(HELD_IN_LOT_SQL, now["lot_id"])
            rule = next((h for h in held if h["mfr_lot"] == now["mfr_lot"]), None)
    rows = [SerialRecord(**_fields(r, SerialRecord, {"quarantined"})) for r in records]
    if rule is not None:
        shown_held: dict[str, Any] = {"quarantined": True}
        if rows[0].status == "available":  # no sale may take it
            shown_held["status"] = "quarantined"
        rows[0] = rows[0].model_copy(update=shown_held)
    return SerialOut(
        lic=lic,
        serial=number,
        status=rows[0].status,
        quarantined=rule is not None,
        quarantine_id=None if rule is None else rule["quarantine_id"],
        quarantine_reason=None if rule is None else rule["reason"],
        vendor=rows[0].vendor,
        current=rows[0],
        records=rows,
        history=[TraceEvent(**_fields(h, TraceEvent)) for h in history],
    )


async def trace(
    conn: Reader,
    lic: str,
    *,
    mfr_lot: str | None = None,
    serial: str | None = None,
    lot_id: str | None = None,
) -> Found[TraceOut]:
    """Every transaction record of a manufacturer lot, serial or inventory lot of one LIC.

    `conn` must be in a `snapshot` held until the answer's events are read: they are read
    through a cursor, a part at a time as they are sent (a trace of years may hold millions),
    and the head (origins, customers) is summed up by the database in the same snapshot."""
    item = await conn.fetchrow("SELECT description, uom, serialized FROM items WHERE lic = $1", lic)
    where, args = _where(
        {"t.lic": lic, "t.mfr_lot": mfr_lot, "t.serial": serial, "t.lot_id": lot_id}
    )
    cursor = await conn.cursor(f"{_TRACE_SELECT} {where} ORDER BY t.occurred_on, t.seq", *args)
    first = await cursor.fetch(PART_ROWS)
    if not first:
        what = " ".join(
            f"{name} {shown(val)}"
            for name, val in (("manufacturer lot", mfr_lot), ("serial", serial), ("lot", lot_id))
            if val is not None
        )
        raise NotFound(f"no transactions of item {shown(lic)} for {what}")
    by_office = await conn.fetch(_TRACE_BALANCE.format(where=where), *args)
    recipients = await conn.fetch(_RECIPIENTS.format(where=where), *args)
    # An item without serials has none to list (R2: it cannot gain them once it has records),
    # and a lot's trace of it would read each record again to find that out.
    held: dict[str, list[str]] = {}
    if item is None or item["serialized"]:
        held = {
            r["customer"]: r["serials"]
            for r in await conn.fetch(_SERIALS_HELD.format(where=where), *args)
        }
    origins = await conn.fetch(
        f"SELECT l.*, {_UNIT_COST} AS unit_cost FROM lots AS l"
        " WHERE l.lot_id = ANY($1::text[]) ORDER BY l.received_on, l.lot_id",
        sorted({lot_id for o in by_office for lot_id in o["lot_ids"] or ()}),
    )
    # Sorted here, not by the database's collation: as the answer always sorted customers.
    shipped_to = sorted(
        (_recipient(r, held.get(r["customer"], [])) for r in recipients),
        key=lambda r: r.customer,
    )
    head = TraceOut(
        lic=lic,
        description=item["description"] if item else "",
        uom=item["uom"] if item else "Each",
        mfr_lot=mfr_lot,
        serial=serial,
        lot_id=lot_id,
        origins=[LotOrigin(**_fields(o, LotOrigin)) for o in origins],
        customers=[r.customer for r in shipped_to],
        recipients=shipped_to,
        accounted=_accounted(by_office, shipped_to),
        events=[],
    )
    return Found(head, {"events": (TraceEvent, _fetched(cursor, first))})


def _accounted(by_office: Sequence[asyncpg.Record], recipients: list[Recipient]) -> TraceBalance:
    """Where the traced units went (`_TRACE_BALANCE`, per office), summed."""
    with localcontext(EXACT):
        sums = {name: sum((o[name] for o in by_office), start=Decimal(0)) for name in _BALANCE_SUMS}
        at_customers = sum((r.held for r in recipients), start=Decimal(0))
    return TraceBalance(
        **sums,
        at_customers=at_customers,
        on_hand_by_office=[
            OfficeOnHand(office=o["office"], on_hand=o["on_hand"])
            for o in sorted(by_office, key=lambda o: o["office"])
            if o["on_hand"]
        ],
    )


def _recipient(row: asyncpg.Record, serials_held: list[str]) -> Recipient:
    """A customer of the trace (`_RECIPIENTS`), with the serials they hold (`_SERIALS_HELD`),
    sorted here as the customers are, by code point, not by the database's collation. What
    they hold is those serials, one unit each, and what they may hold of units without one,
    so `held` and `serials_held` always agree."""
    held = row["unidentified_held"] + len(serials_held)
    return Recipient(
        **_fields(row, Recipient, {"held", "serials_held"}),
        held=held,
        serials_held=sorted(serials_held),
    )


@dataclass(frozen=True, slots=True)
class FoundItems:
    """The trace of a manufacturer lot in every item that has it: `head` with no items, and
    each item's trace, read one after another as the answer is sent (in one snapshot)."""

    head: ItemTraces
    traces: AsyncIterator[Found[TraceOut]]


async def lot_in_items(conn: Reader, mfr_lot: str, gtin: str | None = None) -> FoundItems:
    """Every item that received manufacturer lot `mfr_lot` (only those with `gtin`, if named),
    by LIC, each traced as `trace` traces one. The items are found through the manufacturer
    lots (index mfr_lots_by_mfr_lot, or the items' GTIN index first); each trace reads its own
    item's records through (lic, mfr_lot), so the answer costs what its items' traces cost.

    `conn` must be in a `snapshot` held until the answer is sent, as for `trace`."""
    if gtin is None:
        found = await conn.fetch(
            "SELECT DISTINCT lic FROM mfr_lots WHERE mfr_lot = $1 ORDER BY lic", mfr_lot
        )
    else:
        found = await conn.fetch(
            "SELECT DISTINCT i.lic FROM items AS i"
            " JOIN mfr_lots AS m ON m.lic = i.lic AND m.mfr_lot = $1"
            " WHERE i.gtin14 = $2 ORDER BY i.lic",
            mfr_lot,
            gtin14(gtin),
        )
    if not found:
        which = "no item" if gtin is None else f"no item with GTIN {shown(gtin)}"
        raise NotFound(f"{which} has manufacturer lot {shown(mfr_lot)} in the ledger")
    lics = [row["lic"] for row in found]
    first = await trace(conn, lics[0], mfr_lot=mfr_lot)  # what the API times, as for one item

    async def traces() -> AsyncIterator[Found[TraceOut]]:
        yield first
        for lic in lics[1:]:
            yield await trace(conn, lic, mfr_lot=mfr_lot)

    return FoundItems(ItemTraces(mfr_lot=mfr_lot, gtin=gtin, items=[]), traces())


async def usage(
    conn: Reader,
    lic: str | None,
    *,
    lot_id: str | None,
    mfr_lot: str | None,
    serial: str | None,
    limit: int,
    offset: int,
    after: str | None = None,
    document: str | None = None,
) -> Page[UsageOut]:
    """The usage records of an item or of a document (or both), as `usage_query` reads them;
    an empty page of an item or document the ledger does not know is NotFound."""
    sql, args = usage_query(
        lic, lot_id=lot_id, mfr_lot=mfr_lot, serial=serial, document=document, after=after
    )
    rows = await conn.fetch(sql, *args, limit, offset)
    if not rows:
        if lic is not None:
            await _known_item(conn, lic)
        if document is not None:
            await _known_document(conn, document)
    last = rows[-1] if len(rows) == limit else None
    return Page(
        model_rows(UsageOut, rows),
        None if last is None else _token(last["used_on"], last["seq"]),
    )


def usage_query(
    lic: str | None,
    *,
    lot_id: str | None,
    mfr_lot: str | None,
    serial: str | None,
    document: str | None = None,
    after: str | None = None,
) -> tuple[str, list[Any]]:
    """The usage records of an item (and lot, manufacturer lot or serial) or of a document
    (a shipment, adjustment, customer return, …; with `lic`, that item's of it), oldest first
    as `/trace` lists them: by the date used, then in recording order, so pages are stable
    (seq is unique); `after` (a token of this list) starts past a record. Each filter has an
    index in that order (usage_by_lic, _lot, _mfr_lot, _serial, _document), which the row
    comparison `after` adds reads from. Each record comes with its reconciled cost and
    whether it is final (`_RECONCILED_USAGE`), read for the page's records only, through
    cogs_by_usage. The limit and offset are the last two parameters."""
    where, args = _where(
        {
            "lic": lic,
            "document": document,
            "lot_id": lot_id,
            "mfr_lot": mfr_lot,
            "serial": serial,
        }
    )
    params: list[Any] = list(args)
    if after is not None:
        used_on, seq = _untoken(after, (dt.date, int))
        where += f" AND (used_on, seq) > (${len(params) + 1}::date, ${len(params) + 2}::bigint)"
        params += [used_on, seq]
    n = len(params)
    sql = (
        f"SELECT u.*, {_RECONCILED_USAGE} FROM usage AS u {where}"
        f" ORDER BY used_on, seq LIMIT ${n + 1} OFFSET ${n + 2}"
    )
    return sql, params


# -- documents --------------------------------------------------------------------------------


async def document(
    conn: Reader,
    document_id: str,
    *,
    limit: int,
    offset: int,
    after: str | None = None,
) -> tuple[Found[DocumentRecords], str | None]:
    """Every transaction record naming `document_id`, across its items: the summary of them
    all (`_DOCUMENT_ITEMS`) and a page of them with the usage each wrote, read in one
    snapshot; and, when the page is full, the `after` token of the next. A document with no
    records is NotFound, on every page."""
    sql, args = document_records_query(document_id, after=after)
    async with snapshot(conn):
        items = await conn.fetch(_DOCUMENT_ITEMS, document_id)
        if not items:
            latest = await conn.fetch(_DOCUMENT_LATEST, document_id, list(POSTINGS))
            raise _unknown_document(document_id, latest)
        rows = await conn.fetch(sql, *args, limit, offset)
        answers = await conn.fetch(_DOCUMENT_ANSWERS, document_id, list(POSTINGS))
    summed = [
        DocumentItem(**_fields(i, DocumentItem, {"description", "uom"}), **_item_names(i))
        for i in items
    ]
    with localcontext(EXACT):  # amounts of up to 33 digits, more than the default keeps
        totals = {
            name: sum((getattr(i, name) for i in summed), start=Decimal(0))
            for name in (
                "quantity_in",
                "quantity_out",
                "cost_in",
                "cost_out",
                "usage_cost",
                "usage_cost_reconciled",
                "revaluation",
                "reconciliation",
            )
        }
    head = DocumentRecords(
        document=document_id,
        record_count=sum(i.record_count for i in summed),
        first_date=min(i["first_date"] for i in items),
        last_date=max(i["last_date"] for i in items),
        # Sorted here, not by the database's collation, as a trace's customers are.
        event_types=sorted({kind for i in items for kind in i["event_types"]}),
        counterparties=sorted({c for i in items for c in i["counterparties"] or ()}),
        **totals,
        warnings=_answer_warnings(answers),
        items=summed,
        records=[],
    )
    last = rows[-1] if len(rows) == limit else None
    token = None if last is None else _token(last["date"], last["seq"])
    return Found(head, {"records": (DocumentRecord, _in_parts(rows))}), token


# The usage row a transaction record (`t`) wrote, found by primary key, as `RecordUsage`: one
# JSON object, its numbers as text so every digit is kept (a composite value cannot carry the
# reconciled cost beside the row's columns).
_RECORD_USAGE = f"""
SELECT json_build_object(
    'usage_id', u.usage_id, 'source', u.source, 'quantity', u.quantity::text,
    'unit_cost', u.unit_cost::text, 'est_unit_cost', u.est_unit_cost::text,
    'total_cost', u.total_cost::text, 'used_on', u.used_on,
    'reconciled_cost', r.reconciled_cost::text, 'cost_final', r.cost_final
)
FROM usage AS u CROSS JOIN LATERAL (SELECT {_RECONCILED_USAGE}) AS r
WHERE u.usage_id = t.txn_id
"""


# The dashboard's latest answer of a document, of each kind it is known as (receipt, shipment,
# adjustment: an id may name more than one), through the primary key (kind, document).
# A document without records: its latest answers as the dashboard keeps them, each with its
# first problem's reason (a refusal's), by primary key and the refusals' (message_id, problem_no).
_DOCUMENT_LATEST = """
SELECT d.kind, d.status, coalesce(r.reason_code, d.reason_code) AS reason_code,
       d.occurred_at, r.reason
FROM ops_documents AS d
LEFT JOIN LATERAL (
    SELECT reason_code, reason FROM ops_refusals AS r WHERE r.message_id = d.message_id
    ORDER BY r.problem_no LIMIT 1
) AS r ON true
WHERE d.kind = ANY($2::text[]) AND d.document = $1
ORDER BY d.occurred_at DESC
"""

_DOCUMENT_ANSWERS = """
SELECT kind, warnings FROM ops_documents WHERE kind = ANY($2::text[]) AND document = $1
ORDER BY kind
"""


def _answer_warnings(answers: Sequence[asyncpg.Record]) -> list[WarningOut] | None:
    """The warnings the document's answers carried (`_DOCUMENT_ANSWERS`); None when the
    dashboard keeps no answer of it (none, or pruned past its retention)."""
    if not answers:
        return None
    return [WarningOut(**w) for a in answers for w in a["warnings"]]


def document_records_query(document_id: str, *, after: str | None = None) -> tuple[str, list[Any]]:
    """A document's transaction records, oldest first as `/trace` lists them (business date,
    then recording order: seq is unique, so pages are stable), each with the usage row it
    wrote (the usage row with its id, found by primary key, record by record, with its
    reconciled cost: `_RECORD_USAGE`). Read off the
    index transactions_by_document in that order, from the cursor `after` on; the limit and
    offset are the last two parameters."""
    where = "WHERE t.document = $1"
    params: list[Any] = [document_id]
    if after is not None:
        occurred_on, seq = _untoken(after, (dt.date, int))
        where += " AND (t.occurred_on, t.seq) > ($2::date, $3::bigint)"
        params += [occurred_on, seq]
    n = len(params)
    sql = (
        f"SELECT {_TRACE_COLUMNS}, t.seq,"
        f" ({_RECORD_USAGE}) AS usage"
        f" {_TRACE_FROM} {where} ORDER BY t.occurred_on, t.seq"
        f" LIMIT ${n + 1} OFFSET ${n + 2}"
    )
    return sql, params


def _item_names(row: asyncpg.Record) -> dict[str, str]:
    """The item's description and unit of measure (an item the ledger has no
    `ItemUpserted` of: as a new item's)."""
    return {"description": row["description"] or "", "uom": row["uom"] or "Each"}


# -- purchase orders (R16) --------------------------------------------------------------------

# PO lines as `PoLineSummary` shows them. A line's cost is final as its lots' is (`value`):
# closed with an actual cost applied; a reopened PO's lots keep the cost applied, not final.
_PO_LINE = "p.*, p.closed AND p.applied_unit_cost IS NOT NULL AS cost_is_final"
_PO_LINES = f"SELECT {_PO_LINE} FROM purchase_orders AS p"
# A PO line's lots: the purchase lots of its LIC naming the PO (the lots a closing prices,
# `repository`), in receipt order, as a lot's share of its line is counted (`lot`).
_PRICES = "o.kind = 'purchase' AND o.reference = p.po AND o.lic = p.lic"
_PO_LOTS = f"""
SELECT p.po, p.lic, o.lot_id, o.document, o.office, o.received_on, o.received_qty
FROM unnest($1::text[], $2::text[]) AS p(po, lic)
JOIN lots AS o ON {_PRICES}
ORDER BY {_RECEIPT_ORDER}
"""
# What returns to vendor (R14) took from lots $1, each of PO line ($2, $3): their usage records,
# found through the partial index usage_vendor_returns_by_lot (a lot's sales are never read),
# each valued at the cost the vendor credits (`schemas._CREDIT_VALUE`): what it was booked at
# plus the closings' `vendor_return_reconciliation` entries for it (through cogs_by_usage).
_VENDOR_RETURNED = """
SELECT p.po, p.lic, u.lot_id, u.document, u.used_on, u.counterparty, u.quantity,
       u.total_cost + coalesce((
           SELECT sum(c.amount) FROM cogs AS c
           WHERE c.usage_id = u.usage_id AND c.kind = 'vendor_return_reconciliation'
       ), 0) AS value
FROM unnest($1::text[], $2::text[], $3::text[]) AS p(lot_id, po, lic)
JOIN usage AS u ON u.lot_id = p.lot_id AND u.source = 'vendor_return'
"""
_RETURNED_BY_LOT = f"""
SELECT lot_id, sum(quantity) AS qty, sum(value) AS value
FROM ({_VENDOR_RETURNED}) AS r
GROUP BY lot_id
"""
# The returns themselves, one per document and date, the first $4 of each line (oldest first),
# each with how many the line has.
_RETURNS_BY_LINE = f"""
SELECT * FROM (
    SELECT po, lic, document, used_on AS returned_on, counterparty AS vendor,
           sum(quantity) AS quantity, sum(value) AS value,
           row_number() OVER (PARTITION BY po, lic ORDER BY used_on, document, counterparty) AS n,
           count(*) OVER (PARTITION BY po, lic) AS all_returns
    FROM ({_VENDOR_RETURNED}) AS r
    GROUP BY po, lic, document, used_on, counterparty
) AS x
WHERE n <= $4
ORDER BY po, lic, n
"""
RETURNS_SHOWN = 100
"""The returns to vendor a PO line lists (`returns_to_vendor_count` says how many it has)."""
# The PO lines that price no lot (no receipt named the PO for the LIC: a typo, or a receipt
# still to come), the longest since their last update first: the first $1, each with how
# many there are.
_UNMATCHED_PO_LINES = f"""
SELECT {_PO_LINE}, count(*) OVER () AS all_lines
FROM purchase_orders AS p
WHERE NOT EXISTS (SELECT 1 FROM lots AS o WHERE {_PRICES})
ORDER BY p.updated_at, p.po, p.lic
LIMIT $1
"""


async def purchase_order(conn: Reader, po: str) -> PurchaseOrderOut:
    """A PO's lines, by LIC, each with the lots it prices."""
    async with snapshot(conn):
        rows = await conn.fetch(f"{_PO_LINES} WHERE p.po = $1 ORDER BY p.lic", po)
        if not rows:
            raise NotFound(f"purchase order {shown(po)} is not known to the ledger")
        lines = await _po_lines(conn, rows)
    return PurchaseOrderOut(po=po, lines=lines)


async def purchase_orders(
    conn: Reader,
    closed: bool | None,
    limit: int,
    offset: int,
    after: str | None = None,
) -> Page[PoLineOut]:
    """PO lines by PO and LIC, each with the lots it prices; `closed` only the closed (or
    open) ones; `after` (a token of this list) starts past a line."""
    conditions: list[str] = []
    args: list[Any] = []
    if closed is not None:
        args.append(closed)
        conditions.append(f"p.closed = ${len(args)}")
    if after is not None:
        args += _untoken(after, (str, str))
        conditions.append(f"(p.po, p.lic) > (${len(args) - 1}, ${len(args)})")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    async with snapshot(conn):
        rows = await conn.fetch(
            f"{_PO_LINES} {where} ORDER BY p.po, p.lic"
            f" LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
            *args,
            limit,
            offset,
        )
        lines = await _po_lines(conn, rows)
    last = rows[-1] if len(rows) == limit else None
    return Page(lines, None if last is None else _token(last["po"], last["lic"]))


async def unmatched_po_lines(conn: Reader, limit: int) -> tuple[int, list[PoLineSummary]]:
    """How many PO lines price no lot, and the first `limit` of them (`_UNMATCHED_PO_LINES`)."""
    rows = await conn.fetch(_UNMATCHED_PO_LINES, limit)
    return (rows[0]["all_lines"] if rows else 0), model_rows(PoLineSummary, rows)


PoKey = tuple[str, str]
"""(po, lic)"""
_NONE_RETURNED = (Decimal(0), Decimal(0))


@dataclass(frozen=True)
class _VendorReturns:
    """What returns to vendor took from some PO lines' lots: (quantity, value) by lot, and
    each line's first `RETURNS_SHOWN` returns, each row with how many the line has."""

    by_lot: dict[str, tuple[Decimal, Decimal]]
    by_line: dict[PoKey, list[asyncpg.Record]]


async def _po_lines(conn: Reader, rows: Sequence[asyncpg.Record]) -> list[PoLineOut]:
    """The PO lines `rows` with the lots each prices and what returns to vendor took from
    them (one query for the lots of them all, two for their returns)."""
    if not rows:
        return []
    lots = await conn.fetch(_PO_LOTS, [r["po"] for r in rows], [r["lic"] for r in rows])
    returned = await _vendor_returns(conn, lots)
    priced: dict[PoKey, list[PoLotOut]] = {}
    for lot in lots:
        qty, _ = returned.by_lot.get(lot["lot_id"], _NONE_RETURNED)
        out = PoLotOut(
            **_fields(lot, PoLotOut, {"returned_to_vendor_qty"}), returned_to_vendor_qty=qty
        )
        priced.setdefault((lot["po"], lot["lic"]), []).append(out)
    return [_po_line(r, priced.get((r["po"], r["lic"]), []), returned) for r in rows]


async def _vendor_returns(conn: Reader, lots: Sequence[asyncpg.Record]) -> _VendorReturns:
    """What returns to vendor took from `lots` (`_PO_LOTS` rows)."""
    if not lots:
        return _VendorReturns({}, {})
    args = ([x["lot_id"] for x in lots], [x["po"] for x in lots], [x["lic"] for x in lots])
    totals = await conn.fetch(_RETURNED_BY_LOT, *args)
    by_lot = {r["lot_id"]: (r["qty"], r["value"]) for r in totals}
    by_line: dict[PoKey, list[asyncpg.Record]] = {}
    if by_lot:  # else no return took from these lots: nothing to list
        for r in await conn.fetch(_RETURNS_BY_LINE, *args, RETURNS_SHOWN):
            by_line.setdefault((r["po"], r["lic"]), []).append(r)
    return _VendorReturns(by_lot, by_line)


def _po_line(row: asyncpg.Record, lots: list[PoLotOut], returned: _VendorReturns) -> PoLineOut:
    returns = returned.by_line.get((row["po"], row["lic"]), [])
    with localcontext(EXACT):  # quantities and values are exact, however many lots add up
        received = sum((lot.received_qty for lot in lots), start=Decimal(0))
        by_lot = [returned.by_lot.get(lot.lot_id, _NONE_RETURNED) for lot in lots]
        returned_qty = sum((qty for qty, _ in by_lot), start=Decimal(0))
        returned_value = sum((value for _, value in by_lot), start=Decimal(0))
    return PoLineOut(
        **_fields(row, PoLineSummary),
        received_qty=received,
        returned_to_vendor_qty=returned_qty,
        returned_to_vendor_value=returned_value,
        returns_to_vendor=model_rows(PoVendorReturnOut, returns),
        returns_to_vendor_count=returns[0]["all_returns"] if returns else 0,
        lots=lots,
    )


async def _known_item(conn: Reader, lic: str) -> None:
    """NotFound unless the ledger knows the item: an empty page of a list filtered by an
    unknown LIC (a typo) is a 404 at every offset, not an empty list read as "nothing more"."""
    if await conn.fetchval("SELECT 1 FROM items WHERE lic = $1", lic) is None:
        raise NotFound(f"item {shown(lic)} is not known to the ledger")


async def _known_office(conn: Reader, office: str) -> None:
    """NotFound unless some inventory lot or stock in no lot is at the office: a mistyped
    office is a 404, not a valuation of nothing read as an empty warehouse."""
    known = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM lots WHERE office = $1)"
        " OR EXISTS (SELECT 1 FROM unallocated WHERE office = $1)",
        office,
    )
    if not known:
        raise NotFound(f"no stock was ever at office {shown(office)}: offices are case-sensitive")


async def _known_document(conn: Reader, document: str) -> None:
    """NotFound unless a transaction record names the document, as `_known_item` for a LIC
    (through the index transactions_by_document)."""
    found = await conn.fetchval("SELECT 1 FROM transactions WHERE document = $1 LIMIT 1", document)
    if found is None:
        raise _unknown_document(document)


def _unknown_document(document: str, latest: Sequence[asyncpg.Record] = ()) -> NotFound:
    """No record names the document; when the dashboard keeps an answer of it (`latest`), say
    which: a refused document writes no record, and its refusal is the answer wanted."""
    said = f"document {shown(document)} is not known to the ledger: no transaction record names it"
    answers = [_latest_answer(a) for a in latest]
    if answers:
        said += (
            f"; its latest answer, as the dashboard (/ops/summary) keeps it: {'; '.join(answers)}"
        )
    return NotFound(said)


def _latest_answer(answer: asyncpg.Record) -> str:
    """One of `_DOCUMENT_LATEST`'s rows as a clause: "ReceiptRejected at 2026-11-23T08:30:00Z,
    UNKNOWN_ITEM: item X is not known"."""
    said = f"{answer['status']} at {json_time(answer['occurred_at'], 'seconds')}"
    if answer["reason_code"]:
        said += f", {answer['reason_code']}"
    if answer["reason"]:
        said += f": {answer['reason']}"
    return said


async def _known_gtin(conn: Reader, gtin: str) -> None:
    """NotFound unless an item has the GTIN, as `_known_item` for a LIC."""
    if await conn.fetchval("SELECT 1 FROM items WHERE gtin14 = $1 LIMIT 1", gtin14(gtin)) is None:
        raise NotFound(f"no item with GTIN {shown(gtin)} is known to the ledger")


async def ping(conn: Reader) -> None:
    await conn.fetchval("SELECT 1")


# -- paging -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page(Generic[Row]):
    """A page of a list and, when it is full, the `after` token of the page that follows."""

    rows: list[Row]
    after: str | None


class BadCursor(ValueError):
    """An `after` token that is not one this list gave; the message says why."""


_BIGINT = 2**63 - 1


def _token(*key: dt.date | int | str) -> str:
    """The sort key of a page's last row as an opaque token: base64url (no padding) of a JSON
    list, so ids holding commas, slashes, `%`, quotes or any script travel in a URL intact."""
    plain = [k.isoformat() if isinstance(k, dt.date) else k for k in key]
    text = json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _untoken(token: str, shape: tuple[type, ...]) -> list[Any]:
    """The sort key a `_token` of this shape holds, each part checked as the list's own keys
    are (an identifier as the contract takes it, a date, a bigint): a token made by hand must
    be a 422 naming `after`, never a database error."""
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        key = json.loads(raw.decode())
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[…" nested too deep
        raise BadCursor("after is not a cursor this list gave") from exc
    if not isinstance(key, list) or len(key) != len(shape):
        raise BadCursor("after is not a cursor of this list")
    return [_key_part(part, kind) for part, kind in zip(key, shape, strict=True)]


def _key_part(part: object, kind: type) -> object:
    try:
        if kind is int and type(part) is int and 0 <= part <= _BIGINT:
            return part
        if kind is dt.date and isinstance(part, str):
            return dt.date.fromisoformat(part)
        if kind is str and isinstance(part, str) and normalize_identifier(part) == part:
            return part
    except ValueError as exc:
        raise BadCursor(f"after holds an invalid {kind.__name__}: {exc}") from exc
    raise BadCursor(f"after is not a cursor of this list: {part!r:.40} is no {kind.__name__}")


# -- COGS of a period (R10, R16) -------------------------------------------------------------

# The COGS entries dated in a period ($1 to $2, both included), summed by item in one pass:
# `usage` entries (a usage record's cost as booked: + used, − reversed) and a PO closing's
# `reconciliation`s, those of COGS usage (`source` in $3, COGS_ACTIONS, exactly as a lot's
# `cogs_total` counts); a return to vendor's `vendor_return_reconciliation`s apart, with the
# return's own usage records (no COGS entry, R14). Read through cogs_by_date and
# usage_vendor_returns_by_date (migration 021), from the index alone: the cost follows the
# period's entries. `{lic}` is empty or a condition on $4, so each form has its own plan.
# What caused the COGS (`CogsCauses`): the usage sources each cause sums.
COGS_CAUSES = {
    "sales": ("shipment", "customer_return"),
    "losses": ("loss",),
    "counts": ("count",),
}


def _by_cause() -> str:
    """`_COGS_BY_ITEM`'s columns of each cause: quantity, usage, reconciliation and cogs."""
    columns = []
    for cause, sources in COGS_CAUSES.items():
        of = f"e.source IN ({', '.join(repr(s) for s in sources)})"
        columns += [
            f"coalesce(sum(e.quantity) FILTER (WHERE {of} AND e.kind = 'usage'), 0)"
            f" AS {cause}_quantity",
            f"coalesce(sum(e.amount) FILTER (WHERE {of} AND e.kind = 'usage'), 0) AS {cause}_usage",
            f"coalesce(sum(e.amount) FILTER (WHERE {of} AND e.kind <> 'usage'), 0)"
            f" AS {cause}_reconciliation",
            f"coalesce(sum(e.amount) FILTER (WHERE {of}), 0) AS {cause}_cogs",
        ]
    return ",\n           ".join(columns)


_COGS_BY_ITEM = f"""
SELECT c.*, coalesce(i.description, '') AS description, coalesce(i.uom, 'Each') AS uom
FROM (
    SELECT e.lic,
           coalesce(sum(e.quantity) FILTER (WHERE e.sold AND e.kind = 'usage'), 0) AS quantity,
           coalesce(sum(e.amount) FILTER (WHERE e.sold AND e.kind = 'usage'), 0) AS usage,
           coalesce(sum(e.amount) FILTER (WHERE e.sold AND e.kind <> 'usage'), 0)
             AS reconciliation,
           coalesce(sum(e.amount) FILTER (WHERE e.sold), 0) AS cogs,
           coalesce(sum(e.quantity) FILTER (WHERE NOT e.sold AND e.kind = 'usage'), 0)
             AS returned_quantity,
           coalesce(sum(e.amount) FILTER (WHERE NOT e.sold AND e.kind = 'usage'), 0)
             AS returned_usage,
           coalesce(sum(e.amount) FILTER (WHERE NOT e.sold AND e.kind <> 'usage'), 0)
             AS returned_reconciliation,
           coalesce(sum(e.amount) FILTER (WHERE NOT e.sold), 0) AS returned_total,
           {_by_cause()}
    FROM (
        SELECT lic, kind, source = ANY($3::text[]) AS sold, source, quantity, amount
        FROM cogs
        WHERE entered_on BETWEEN $1 AND $2 {{lic}}
        UNION ALL
        SELECT lic, 'usage', false, 'vendor_return', quantity, total_cost
        FROM usage
        WHERE source = 'vendor_return' AND used_on BETWEEN $1 AND $2 {{lic}}
    ) AS e
    GROUP BY e.lic
) AS c
LEFT JOIN items AS i ON i.lic = c.lic
ORDER BY c.lic
"""


async def cogs_of_period(
    conn: Reader, first: dt.date, last: dt.date, lic: str | None = None
) -> CogsPeriod:
    """The cost of goods sold from `first` to `last` (both included), by item and in all
    (`_COGS_BY_ITEM`); of item `lic` alone when named, an item the ledger does not know being
    NotFound."""
    args: list[Any] = [first, last, sorted(COGS_ACTIONS)]
    if lic is not None:
        args.append(lic)
    sql = _COGS_BY_ITEM.format(lic="" if lic is None else "AND lic = $4")
    rows = await conn.fetch(sql, *args)
    if not rows and lic is not None:
        await _known_item(conn, lic)
    items = [
        CogsItem(lic=r["lic"], description=r["description"], uom=r["uom"], **_cogs_figures(r))
        for r in rows
    ]
    with localcontext(EXACT):  # sums of 33-digit amounts: more than the default context keeps
        total = {name: sum((r[name] for r in rows), start=Decimal(0)) for name in _COGS_SUMMED}
    return CogsPeriod(
        from_=first, to=last, lic=lic, total=CogsFigures(**_cogs_figures(total)), items=items
    )


_COGS_SUMMED = (
    "quantity",
    "usage",
    "reconciliation",
    "cogs",
    "returned_quantity",
    "returned_usage",
    "returned_reconciliation",
    "returned_total",
    *(f"{cause}_{figure}" for cause in COGS_CAUSES for figure in CogsCause.model_fields),
)
"""The columns of `_COGS_BY_ITEM` with figures, added up for the period's total."""


def _cogs_figures(sums: Mapping[str, Decimal] | asyncpg.Record) -> dict[str, Any]:
    """`CogsFigures`' fields from a row of `_COGS_BY_ITEM` (or their totals)."""
    return {
        "quantity": sums["quantity"],
        "usage": sums["usage"],
        "reconciliation": sums["reconciliation"],
        "cogs": sums["cogs"],
        "vendor_returns": VendorReturnFigures(
            quantity=sums["returned_quantity"],
            usage=sums["returned_usage"],
            reconciliation=sums["returned_reconciliation"],
            total=sums["returned_total"],
        ),
        "causes": CogsCauses(
            **{
                cause: CogsCause(**{f: sums[f"{cause}_{f}"] for f in CogsCause.model_fields})
                for cause in COGS_CAUSES
            }
        ),
    }


# -- stock value as of a day ------------------------------------------------------------------

# Stock and its value at the end of day $1, read back from now: each lot's stock then is its
# stock now less what its records dated after the day moved (R15: every change of stock is a
# record, each unit in exactly one), at its unit cost then: now's less the difference each PO
# closing dated after the day made (a closing's `cost_change` records of a lot all carry it as
# `unit_cost`, one closing one event; each dated no earlier than the lot's receipt). A lot's
# value is not read off its records' costs: a close dated before a sale but recorded after it
# (a backdated close) revalues only what was left when recorded, and corrects the sale's cost
# in COGS; the lot's stock on the days between was worth the actual cost all the same. Stock
# in no lot (R12) moves at its records' costs. A recent day reads few records
# (transactions_by_date).
_VALUATION_AS_OF = f"""
WITH later AS MATERIALIZED (
    SELECT t.lic, t.office, t.lot_id, t.event_type, t.event_id, t.stock_change, t.unit_cost
    FROM transactions AS t WHERE t.occurred_on > $1 {{records}}
), moved AS (
    SELECT g.lot_id, sum(g.stock_change) AS moved FROM later AS g
    WHERE g.lot_id IS NOT NULL GROUP BY g.lot_id
), revalued AS (
    SELECT c.lot_id, sum(c.difference) AS difference FROM (
        SELECT DISTINCT g.lot_id, g.event_id, g.unit_cost AS difference FROM later AS g
        WHERE g.event_type = 'cost_change'
    ) AS c GROUP BY c.lot_id
), stock (lic, office, in_lots, lots_value, unallocated, unallocated_value) AS (
    SELECT l.lic, l.office, l.current_qty - coalesce(m.moved, 0),
           (l.current_qty - coalesce(m.moved, 0))
             * ({_UNIT_COST} - coalesce(r.difference, 0)),
           0, 0
    FROM lots AS l
    LEFT JOIN moved AS m ON m.lot_id = l.lot_id
    LEFT JOIN revalued AS r ON r.lot_id = l.lot_id
    WHERE (l.status = 'open' OR m.lot_id IS NOT NULL) {{lots}}
    UNION ALL
    SELECT u.lic, u.office, 0, 0, u.quantity, u.value FROM unallocated AS u WHERE true {{un}}
    UNION ALL
    SELECT g.lic, g.office, 0, 0, -g.stock_change, -(g.stock_change * g.unit_cost)
    FROM later AS g WHERE g.lot_id IS NULL
)
SELECT s.lic, i.description, i.uom, s.office, sum(s.in_lots) AS in_lots,
       sum(s.lots_value) AS value, sum(s.unallocated) AS unallocated,
       sum(s.unallocated_value) AS unallocated_value
FROM stock AS s JOIN items AS i ON i.lic = s.lic
GROUP BY s.lic, i.description, i.uom, s.office
HAVING sum(s.in_lots) <> 0 OR sum(s.lots_value) <> 0 OR sum(s.unallocated) <> 0
    OR sum(s.unallocated_value) <> 0
ORDER BY s.lic, s.office
"""


async def valuation_as_of(
    conn: Reader, as_of: dt.date, lic: str | None = None, office: str | None = None
) -> StockValuation:
    """Stock and its value at the end of `as_of`, by item and office and in all
    (`_VALUATION_AS_OF`); of item `lic` and at `office` alone when named, an item the ledger
    does not know being NotFound."""
    args: list[Any] = [as_of]
    conditions = []
    for column, wanted in (("lic", lic), ("office", office)):
        if wanted is not None:
            args.append(wanted)
            conditions.append(f"{column} = ${len(args)}")

    def where(alias: str) -> str:
        return "".join(f" AND {alias}.{condition}" for condition in conditions)

    sql = _VALUATION_AS_OF.format(lots=where("l"), un=where("u"), records=where("t"))
    async with conn.transaction():
        # The planner prices the BRIN scan of the later records as if they lay all over the
        # table and reads the whole table instead (25 M records: 15 s against 2 s through the
        # index, for a month back). Records come in nearly in date order: the index is right.
        await conn.execute("SET LOCAL enable_seqscan = off")
        rows = await conn.fetch(sql, *args)
    if not rows and lic is not None:
        await _known_item(conn, lic)
    if not rows and office is not None:
        await _known_office(conn, office)
    by_item: dict[str, list[asyncpg.Record]] = {}
    for r in rows:  # (by LIC, then office)
        by_item.setdefault(r["lic"], []).append(r)
    items = []
    for item_lic, offices in by_item.items():
        at = [OfficeStockValue(office=r["office"], **_stock_value(r)) for r in offices]
        items.append(
            ItemStockValue(
                lic=item_lic,
                description=offices[0]["description"],
                uom=offices[0]["uom"],
                offices=at,
                **_stock_value(_summed(at)),
            )
        )
    total = _stock_value(_summed(items))
    return StockValuation(
        as_of=as_of, lic=lic, office=office, total=StockValueFigures(**total), items=items
    )


def _stock_value(row: Mapping[str, Decimal] | asyncpg.Record) -> dict[str, Decimal]:
    """`StockValueFigures`' fields from a row of `_VALUATION_AS_OF` (or sums of them)."""
    in_lots, unallocated = row["in_lots"], row["unallocated"]
    value, unallocated_value = row["value"], row["unallocated_value"]
    with localcontext(EXACT):
        return {
            "on_hand": in_lots + unallocated,
            "value": value,
            "unallocated": unallocated,
            "unallocated_value": unallocated_value,
            "total_value": value + unallocated_value,
        }


def _summed(parts: Sequence[StockValueFigures]) -> dict[str, Decimal]:
    """Figures of `parts` added up, as a row of `_VALUATION_AS_OF` holds them."""
    with localcontext(EXACT):
        unallocated = sum((p.unallocated for p in parts), Decimal(0))
        return {
            "in_lots": sum((p.on_hand for p in parts), Decimal(0)) - unallocated,
            "value": sum((p.value for p in parts), Decimal(0)),
            "unallocated": unallocated,
            "unallocated_value": sum((p.unallocated_value for p in parts), Decimal(0)),
        }


# A period's stock movements by kind of record ($1 to $2, both included), at booked cost.
_MOVEMENTS = """
SELECT t.lic, t.office, t.event_type, sum(t.stock_change) AS quantity,
       sum(t.stock_change * t.unit_cost) AS value
FROM transactions AS t
WHERE t.occurred_on BETWEEN $1 AND $2 AND t.stock_change <> 0 {records}
GROUP BY t.lic, t.office, t.event_type
"""
# `Movements`' fields by the records' event type.
MOVEMENT_OF = {
    "receipt": "receipts",
    "beginning_balance": "beginning_balances",
    "shipment": "shipments",
    "customer_return": "customer_returns",
    "vendor_return": "vendor_returns",
    "loss": "losses",
    "count": "counts",
}
_NO_STOCK = StockValueFigures(
    on_hand=Decimal(0),
    value=Decimal(0),
    unallocated=Decimal(0),
    unallocated_value=Decimal(0),
    total_value=Decimal(0),
)


async def roll_forward(
    conn: Reader, first: dt.date, last: dt.date, lic: str | None = None, office: str | None = None
) -> StockRollForward:
    """Stock from `first` to `last`: opening (as of the day before), the period's movements by
    kind of record at booked cost, the revaluation (the rest of the change in value: PO
    closings), closing; by item and office and in all."""
    opening = await valuation_as_of(conn, first - dt.timedelta(days=1), lic, office)
    closing = await valuation_as_of(conn, last, lic, office)
    args: list[Any] = [first, last]
    conditions = ""
    for column, wanted in (("lic", lic), ("office", office)):
        if wanted is not None:
            args.append(wanted)
            conditions += f" AND t.{column} = ${len(args)}"
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")  # as `valuation_as_of`
        rows = await conn.fetch(_MOVEMENTS.format(records=conditions), *args)
    moved: dict[tuple[str, str], dict[str, tuple[Decimal, Decimal]]] = {}
    for r in rows:
        moved.setdefault((r["lic"], r["office"]), {})[MOVEMENT_OF[r["event_type"]]] = (
            r["quantity"],
            r["value"],
        )
    ends = {"opening": opening, "closing": closing}
    at: dict[tuple[str, str], dict[str, StockValueFigures]] = {}
    names: dict[str, tuple[str, str]] = {}
    for end, valuation in ends.items():
        for item in valuation.items:
            names[item.lic] = (item.description, item.uom)
            for o in item.offices:
                at.setdefault((item.lic, o.office), {})[end] = o
    missing = sorted({key[0] for key in moved} - set(names))
    if missing:
        for r in await conn.fetch(
            "SELECT lic, description, uom FROM items WHERE lic = ANY($1::text[])", missing
        ):
            names[r["lic"]] = (r["description"], r["uom"])
    items: list[ItemRollForward] = []
    for item_lic in sorted({key[0] for key in [*at, *moved]}):
        offices = [
            OfficeRollForward(office=where, **_rolled(at.get(key, {}), moved.get(key, {})))
            for where in sorted({k[1] for k in [*at, *moved] if k[0] == item_lic})
            for key in [(item_lic, where)]
        ]
        description, uom = names.get(item_lic, ("", "Each"))
        items.append(
            ItemRollForward(
                lic=item_lic,
                description=description,
                uom=uom,
                offices=offices,
                **_summed_roll(offices),
            )
        )
    return StockRollForward(
        from_=first,
        to=last,
        lic=lic,
        office=office,
        total=RollForward(**_summed_roll(items)),
        items=items,
    )


def _rolled(
    ends: Mapping[str, StockValueFigures], moved: Mapping[str, tuple[Decimal, Decimal]]
) -> dict[str, Any]:
    """`RollForward`'s fields of one item at one office."""
    opening = ends.get("opening", _NO_STOCK)
    closing = ends.get("closing", _NO_STOCK)
    movements = {
        name: Movement(quantity=q, value=v)
        for name in MOVEMENT_OF.values()
        for q, v in [moved.get(name, (Decimal(0), Decimal(0)))]
    }
    with localcontext(EXACT):
        revaluation = (
            closing.total_value
            - opening.total_value
            - sum((m.value for m in movements.values()), Decimal(0))
        )
    return {
        "opening": StockValueFigures(**opening.model_dump(exclude={"office"})),
        "movements": Movements(**movements),
        "revaluation": revaluation,
        "closing": StockValueFigures(**closing.model_dump(exclude={"office"})),
    }


def _summed_roll(parts: Sequence[RollForward]) -> dict[str, Any]:
    """`RollForward`'s fields of `parts` added up."""
    with localcontext(EXACT):
        zero = Decimal(0)

        def end(which: str) -> StockValueFigures:
            figures = [getattr(p, which) for p in parts]
            return StockValueFigures(
                **{
                    f: sum((getattr(x, f) for x in figures), zero)
                    for f in StockValueFigures.model_fields
                }
            )

        movements = Movements(
            **{
                name: Movement(
                    quantity=sum((getattr(p.movements, name).quantity for p in parts), zero),
                    value=sum((getattr(p.movements, name).value for p in parts), zero),
                )
                for name in MOVEMENT_OF.values()
            }
        )
        return {
            "opening": end("opening"),
            "movements": movements,
            "revaluation": sum((p.revaluation for p in parts), zero),
            "closing": end("closing"),
        }


# -- helpers ----------------------------------------------------------------------------------


def _where(filters: dict[str, str | None]) -> tuple[str, list[str]]:
    """A WHERE clause of equalities for the filters given (column names are constants).

    Only given filters become conditions, so each combination gets its own statement and plan
    and the partial indexes are used (an `$n IS NULL OR col = $n` would defeat them).
    """
    given = [(column, val) for column, val in filters.items() if val is not None]
    if not given:
        return "", []
    clause = " AND ".join(f"{column} = ${i}" for i, (column, _) in enumerate(given, 1))
    return f"WHERE {clause}", [val for _, val in given]


async def _in_parts(rows: list[asyncpg.Record]) -> Parts:
    """Rows already read, a part at a time."""
    for start in range(0, len(rows), PART_ROWS):
        yield rows[start : start + PART_ROWS]


async def _fetched(cursor: asyncpg.cursor.Cursor[asyncpg.Record], first: Sequence[Any]) -> Parts:
    """`first`, then the cursor's next rows, a part at a time, each read when the one before
    it has been taken (so one part is held at a time, not the whole answer)."""
    part = first
    del first  # else this frame would hold the first part to the end
    while part:
        yield part
        if len(part) < PART_ROWS:
            return
        part = await cursor.fetch(PART_ROWS)


def model_rows(model: type[Row], rows: Sequence[asyncpg.Record]) -> list[Row]:
    """Each row as the response model (its columns the model has)."""
    return [model(**_fields(r, model)) for r in rows]


def _fields(
    row: asyncpg.Record, model: type[Any], skip: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    """The record's columns the response model has (a select may carry more)."""
    return {name: row[name] for name in model.model_fields if name not in skip}


def _valuation(row: asyncpg.Record, held: Sequence[asyncpg.Record] = ()) -> Valuation:
    """The lot's sections; `held`: its stock in quarantine (`HELD_IN_LOT_SQL`)."""
    share = _po_share(row)
    figures = LotFigures(
        received_qty=row["received_qty"],
        used_qty=row["used_qty"],
        allocated_qty=row["allocated_qty"],
        est_unit_cost=row["est_unit_cost"],
        act_unit_cost=row["act_unit_cost"],
        ordered_qty=share.ordered_qty,
        purchased_qty=share.purchased_qty,
        po_reopened=row["po_closed"] is False,
        kind=row["kind"],
        quarantined_qty=sum((h["qty"] for h in held), start=Decimal(0)),
        quarantined_allocated_qty=sum((h["allocated"] for h in held), start=Decimal(0)),
    )
    v = value(figures)
    return Valuation(
        unit_cost=v.unit_cost,
        est_unit_cost=figures.est_unit_cost,
        act_unit_cost=figures.act_unit_cost,
        cost_is_final=v.cost_is_final,
        ordered=_maybe(v.ordered),
        purchased=_figure(v.purchased),
        purchased_remaining=_maybe(v.purchased_remaining),
        received=_figure(v.received),
        received_remaining=_maybe(v.received_remaining),
        accrued=_figure(v.accrued),
        used=_figure(v.used),
        current=_figure(v.current),
        allocated=_figure(v.allocated),
        available=_figure(v.available),
        quarantined=_figure(v.quarantined),
    )


def _office_stock(row: asyncpg.Record, held: asyncpg.Record | None) -> OfficeStock:
    """The office's stock and its lots' value; `held`: its stock in quarantine
    (`HELD_BY_OFFICE_SQL`), if any."""
    stock = StockAtOffice(
        office=row["office"],
        in_lots=row["in_lots"],
        allocated=row["allocated"],
        unallocated=row["unallocated"],
    )
    if held is not None:
        stock = replace(
            stock,
            quarantined=held["quarantined"],
            quarantined_allocated=held["quarantined_allocated"],
        )
    return OfficeStock(
        office=stock.office,
        on_hand=stock.on_hand,
        allocated=stock.allocated,
        available=stock.available,
        quarantined=stock.quarantined,
        expired=row["expired"],
        unallocated=stock.unallocated,
        value=row["value"],
        unallocated_value=row["unallocated_value"],
    )


def _po_share(row: asyncpg.Record) -> PoShare:
    """The lot's share of its PO line's ordered and purchased quantities (R7)."""
    lot_ids: list[str] | None = row["lot_ids"]
    if not lot_ids:  # no PO update names the lot's line (or not a purchase lot)
        return PoShare(row["ordered_qty"], row["purchased_qty"])
    shares = share_po_line(row["ordered_qty"], row["purchased_qty"], row["received"])
    return shares[lot_ids.index(row["lot_id"])]


def _figure(f: Figure) -> FigureOut:
    return FigureOut(quantity=f.quantity, value=f.value)


def _maybe(f: Figure | None) -> FigureOut | None:
    return None if f is None else _figure(f)
