"""Quarantines (QA or recall holds) in the ledger: the rules in force, a transaction record per
inventory lot each quarantine and release covers (R15), and how the read API and the dashboard
match stock against the rules.

A rule names a manufacturer lot, an inventory lot or both, at one office or every office (''
= any), as allocation keeps it (`StockQuarantined`). It is a rule, not a quantity: stock of a
manufacturer lot received after its recall is held by it too, so reads match stock against
the rules rather than storing a flag per lot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from shared.contracts.events import StockQuarantined

Key = tuple[str, str, str, str]
"""(lic, mfr_lot, lot_id, office), '' for any."""


def _key(event: StockQuarantined) -> Key:
    return (event.lic, event.mfr_lot or "", event.lot_id or "", event.office or "")


async def record(conn: asyncpg.Connection, events: Sequence[StockQuarantined]) -> None:
    """Put the batch's quarantines in force and lift its releases (the last word per rule
    wins), and write a transaction record per stock entry each one covers: quantity the stock
    on hand, stock change 0, at the lot's unit cost. The lots were recorded before (an event
    names only stock allocation holds, whose receipts came first); the caller holds the LICs'
    locks."""
    if not events:
        return
    last: dict[Key, StockQuarantined] = {}
    for event in events:
        last[_key(event)] = event
    upserts = [e for e in last.values() if e.quarantined]
    deletes = [k for k, e in last.items() if not e.quarantined]
    if upserts:
        await conn.execute(
            "INSERT INTO quarantines"
            " (lic, mfr_lot, lot_id, office, quarantine_id, reason, since, event_id)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
            "   $6::text[], $7::date[], $8::text[])"
            " ON CONFLICT (lic, mfr_lot, lot_id, office) DO UPDATE SET"
            "   quarantine_id = EXCLUDED.quarantine_id, reason = EXCLUDED.reason,"
            "   since = EXCLUDED.since, event_id = EXCLUDED.event_id",
            *_columns([(*_key(e), e.quarantine_id, e.reason) for e in upserts]),
            [e.quarantined_on for e in upserts],
            [e.message_id for e in upserts],
        )
    if deletes:
        await conn.execute(
            "DELETE FROM quarantines WHERE (lic, mfr_lot, lot_id, office) IN"
            " (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]))",
            *_columns(deletes),
        )
    rows = [
        (
            f"{event.message_id}/{n}",
            event.lic,
            stock.lot_id,
            stock.mfr_lot,
            "quarantine" if event.quarantined else "quarantine_release",
            stock.on_hand,
            stock.office,
            event.quarantine_id,
            event.reason,
            event.quarantined_on,
            event.message_id,
        )
        for event in events
        for n, stock in enumerate(event.stock)
    ]
    if rows:
        await conn.execute(_TRANSACTIONS_SQL, *_columns(rows))


# A record per stock entry, in the batch's order, costed at the lot's unit cost (actual once
# its PO closed), with the manufacturer lot's expiry.
_TRANSACTIONS_SQL = """
INSERT INTO transactions (txn_id, lic, lot_id, mfr_lot, serial, expires_on, event_type, record,
                          quantity, stock_change, unit_cost, cost, office, document, line_no,
                          counterparty, reference, reason, occurred_on, event_id)
SELECT s.txn_id, s.lic, s.lot_id, s.mfr_lot, NULL, m.expires_on, s.event_type, 'lot',
       s.quantity, 0, coalesce(l.act_unit_cost, l.est_unit_cost, 0),
       s.quantity * coalesce(l.act_unit_cost, l.est_unit_cost, 0), s.office, s.document, NULL,
       NULL, l.reference, s.reason, s.occurred_on, s.event_id
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::numeric[],
            $7::text[], $8::text[], $9::text[], $10::date[], $11::text[]) WITH ORDINALITY
     AS s(txn_id, lic, lot_id, mfr_lot, event_type, quantity, office, document, reason,
          occurred_on, event_id, n)
LEFT JOIN lots AS l ON l.lot_id = s.lot_id
LEFT JOIN mfr_lots AS m ON m.lot_id = s.lot_id AND m.mfr_lot = s.mfr_lot
ORDER BY s.n
ON CONFLICT (txn_id) DO NOTHING
"""


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


def rules_of_lot(lot: str) -> str:
    """A select of the rules holding any stock of the lot aliased `lot` (a `lots` row), as one
    JSON array (NULL for none; `QuarantineOut` each): for a lateral join."""
    return f"""
    SELECT jsonb_agg(jsonb_build_object(
               'quarantine_id', q.quarantine_id, 'mfr_lot', nullif(q.mfr_lot, ''),
               'lot_id', nullif(q.lot_id, ''), 'office', nullif(q.office, ''),
               'reason', q.reason, 'since', q.since)
           ORDER BY q.since, q.quarantine_id) AS quarantines
    FROM quarantines AS q
    WHERE q.lic = {lot}.lic AND q.lot_id IN ('', {lot}.lot_id) AND q.office IN ('', {lot}.office)
      AND (q.mfr_lot = '' OR EXISTS (SELECT 1 FROM mfr_lots AS qm
                                     WHERE qm.lot_id = {lot}.lot_id AND qm.mfr_lot = q.mfr_lot))
    """


# Stock on hand in quarantine per manufacturer lot of an item at an office (a plain item's
# lots: per item and office, mfr_lot NULL), driven from the rules (few) rather than the stock:
# its first $1 rows, each carrying the count and value of all of them.
QUARANTINED_STOCK_SQL = """
WITH cells AS (
    (SELECT DISTINCT ON (m.lot_id, m.mfr_lot)
            m.lic, l.office, m.mfr_lot, m.lot_id, l.received_on, l.recorded_at,
            m.received_qty - m.used_qty AS qty, m.allocated_qty AS allocated,
            (m.received_qty - m.used_qty) * coalesce(l.act_unit_cost, l.est_unit_cost) AS value,
            q.quarantine_id, q.reason
     FROM quarantines AS q
     JOIN mfr_lots AS m ON m.lic = q.lic AND q.mfr_lot IN ('', m.mfr_lot)
     JOIN lots AS l ON l.lot_id = m.lot_id AND q.lot_id IN ('', l.lot_id)
                   AND q.office IN ('', l.office)
     WHERE m.received_qty > m.used_qty
     ORDER BY m.lot_id, m.mfr_lot, q.since, q.quarantine_id)
    UNION ALL
    (SELECT DISTINCT ON (l.lot_id)
            l.lic, l.office, NULL, l.lot_id, l.received_on, l.recorded_at,
            l.received_qty - l.used_qty, l.allocated_qty,
            (l.received_qty - l.used_qty) * coalesce(l.act_unit_cost, l.est_unit_cost),
            q.quarantine_id, q.reason
     FROM quarantines AS q
     JOIN lots AS l ON l.lic = q.lic AND q.mfr_lot = '' AND q.lot_id IN ('', l.lot_id)
                   AND q.office IN ('', l.office)
     WHERE l.received_qty > l.used_qty
       AND NOT EXISTS (SELECT 1 FROM mfr_lots AS m WHERE m.lot_id = l.lot_id)
     ORDER BY l.lot_id, q.since, q.quarantine_id)
), stock AS (
    SELECT lic, office, mfr_lot, sum(qty) AS current_qty, sum(allocated) AS allocated_qty,
           sum(value) AS current_value,
           array_agg(lot_id ORDER BY received_on, recorded_at, lot_id) AS lot_ids,
           array_agg(DISTINCT quarantine_id ORDER BY quarantine_id) AS quarantine_ids,
           (array_agg(reason ORDER BY received_on, recorded_at, lot_id))[1] AS reason
    FROM cells GROUP BY lic, office, mfr_lot
), ranked AS (
    SELECT *, row_number() OVER (ORDER BY lic, office, mfr_lot NULLS FIRST) AS n,
           count(*) OVER () AS all_lots, sum(current_value) OVER () AS all_value
    FROM stock
)
SELECT * FROM ranked WHERE n <= $1 ORDER BY n
"""
