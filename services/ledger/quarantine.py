"""Quarantines (QA or recall holds) in the ledger: the rules in force, the transaction records
of the stock each quarantine and release covers (R15), and how the read API and the dashboard
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

from shared.contracts.events import Event, StockQuarantined

Key = tuple[str, str, str, str]
"""(lic, mfr_lot, lot_id, office), '' for any."""


def _key(event: StockQuarantined) -> Key:
    return (event.lic, event.mfr_lot or "", event.lot_id or "", event.office or "")


async def record(
    conn: asyncpg.Connection,
    events: Sequence[StockQuarantined],
    batch: Sequence[Event] = (),
) -> None:
    """Put the batch's quarantines in force and lift its releases (the last word per rule
    wins), and write the transaction records of the stock each one covers (`_TRANSACTIONS_SQL`:
    a serial's unit its own record). The lots were recorded before (an event names only stock
    allocation holds, whose receipts came first); the caller holds the LICs' locks.

    `batch`: the whole batch of events in order, `events` among them, its moves already
    recorded: a serial an event after a hold moved is counted as it was at the hold. Left out,
    serials are counted as they are now (right when nothing after a hold moved its stock)."""
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
    at, later = _order(events, batch)
    # Each item's last event after a hold: a hold placed after it has none after it.
    final = {lic: n for _, lic, n in later}
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
            _reason(event),
            event.quarantined_on,
            event.message_id,
            at.get(event.message_id, _END),
            final.get(event.lic, -1) > at.get(event.message_id, _END),
        )
        for event in events
        for n, stock in enumerate(event.stock)
    ]
    if rows:
        await conn.execute(
            _TRANSACTIONS_SQL, *_columns(rows), *(_columns(later) if later else ([], [], []))
        )


_END = 2**31 - 1
"""A held event's place when the batch is not given: after every other event."""


def _order(
    events: Sequence[StockQuarantined], batch: Sequence[Event]
) -> tuple[dict[str, int], list[tuple[str, str, int]]]:
    """Each held event's place in `batch`, and the batch's other events (message id, LIC,
    place) of an item after its first hold: those whose moves a serial's state at a hold of
    theirs leaves out."""
    held = {event.message_id for event in events}
    at: dict[str, int] = {}
    lics: set[str] = set()
    later: list[tuple[str, str, int]] = []
    for n, event in enumerate(batch):
        if isinstance(event, StockQuarantined) and event.message_id in held:
            at.setdefault(event.message_id, n)
            lics.add(event.lic)
        elif event.lic in lics:
            later.append((event.message_id, event.lic, n))
    return at, later


def _reason(event: StockQuarantined) -> str:
    """A release's record names the quarantine it lifted (its `document` is the release's own
    id): "releases quarantine Q-1: QA passed"."""
    if event.quarantined or event.released_quarantine_id is None:
        return event.reason
    said = f": {event.reason}" if event.reason else ""
    return f"releases quarantine {event.released_quarantine_id}{said}"


# The records of each stock entry ($1–$13: the entries, in the batch's order; $14–$16: the
# batch's events after a hold, `_order`), split as the lot's other records are (see
# `costing.stock_parts`): one per serial in stock in the lot (and manufacturer lot) at the
# event, 1 unit at the serial's unit cost, then one of the lot for the units in no serial (the
# whole entry when none is), at the lot's unit cost (actual once its PO closed), with the
# manufacturer lot's expiry; so the entry's records add up to its stock on hand, and a serial's
# history lists its hold and release. A serial is in stock at the event if it is now, less what
# the batch's events after it moved of it (probed only when there are such events). Ids: the
# entry's `<message_id>/<n>` for the lot's record (as every record was before serials had
# their own), `<message_id>/<n>/serial/<serial>` for a serial's: a redelivery writes none twice.
_TRANSACTIONS_SQL = """
WITH entry AS (
    SELECT s.*, l.reference, coalesce(l.act_unit_cost, l.est_unit_cost, 0) AS unit_cost,
           m.expires_on
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::numeric[],
                $7::text[], $8::text[], $9::text[], $10::date[], $11::text[], $12::int[],
                $13::bool[]) WITH ORDINALITY
         AS s(txn_id, lic, lot_id, mfr_lot, event_type, quantity, office, document, reason,
              occurred_on, event_id, at, has_later, n)
    LEFT JOIN lots AS l ON l.lot_id = s.lot_id
    LEFT JOIN mfr_lots AS m ON m.lot_id = s.lot_id AND m.mfr_lot = s.mfr_lot
), later AS (
    SELECT * FROM unnest($14::text[], $15::text[], $16::int[]) AS x(event_id, lic, at)
), unit AS MATERIALIZED (
    SELECT e.n, sv.serial, coalesce(sv.expires_on, e.expires_on) AS expires_on, sv.unit_cost
    FROM entry AS e
    JOIN serials AS sv ON sv.lot_id = e.lot_id AND sv.lic = e.lic
                      AND sv.mfr_lot IS NOT DISTINCT FROM e.mfr_lot
    LEFT JOIN LATERAL (
        SELECT sum(t.stock_change) AS units FROM transactions AS t
        WHERE e.has_later AND t.lic = sv.lic AND t.serial = sv.serial AND t.lot_id = sv.lot_id
          AND t.event_id IN (SELECT x.event_id FROM later AS x
                             WHERE x.lic = e.lic AND x.at > e.at)
    ) AS moved ON true
    WHERE (sv.status IN ('available', 'allocated'))::int - coalesce(moved.units, 0) > 0
), part AS (
    SELECT n, serial, 1::numeric AS quantity, unit_cost, expires_on FROM unit
    UNION ALL
    SELECT e.n, NULL, e.quantity - coalesce(c.units, 0), e.unit_cost, e.expires_on
    FROM entry AS e
    LEFT JOIN (SELECT n, count(*) AS units FROM unit GROUP BY n) AS c USING (n)
    WHERE c.units IS NULL OR e.quantity <> c.units
)
INSERT INTO transactions (txn_id, lic, lot_id, mfr_lot, serial, expires_on, event_type, record,
                          quantity, stock_change, unit_cost, cost, office, document, line_no,
                          counterparty, reference, reason, occurred_on, event_id)
SELECT e.txn_id || coalesce('/serial/' || p.serial, ''), e.lic, e.lot_id, e.mfr_lot, p.serial,
       p.expires_on, e.event_type, CASE WHEN p.serial IS NULL THEN 'lot' ELSE 'serial' END,
       p.quantity, 0, p.unit_cost, p.quantity * p.unit_cost, e.office, e.document, NULL, NULL,
       e.reference, e.reason, e.occurred_on, e.event_id
FROM part AS p JOIN entry AS e USING (n)
ORDER BY p.n, p.serial IS NULL, p.serial
ON CONFLICT (txn_id) DO NOTHING
"""


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


def held_stock(*, lic: str | None = None, lot_id: str | None = None) -> str:
    """A select of the stock on hand the rules in force hold, of item `lic` or inventory lot
    `lot_id` (SQL expressions: a parameter or an outer column; neither: every item): a row per
    rule and stock it holds, the stock being a manufacturer lot in an inventory lot, or an
    inventory lot without manufacturer lots (`mfr_lot` NULL), with its quantity on hand
    (`qty`), `allocated`, `value`, and the rule (`quarantine_id`, `reason`, `since`, `rule_*`
    its key). The one place stock is matched against the rules, as allocation matches it
    (`Quarantine.covers`): `held_cells` counts each stock once, `rules_of_lot` lists the rules.
    Driven from the rules (few), so it costs nothing while none is in force."""
    scope = " AND ".join(
        f"hl.{column} = {expression}"
        for column, expression in (("lic", lic), ("lot_id", lot_id))
        if expression is not None
    )
    where = f" AND {scope}" if scope else ""
    return f"""
    SELECT hm.lic, hl.office, hm.mfr_lot, hm.lot_id, hl.received_on, hl.recorded_at,
           hm.received_qty - hm.used_qty AS qty, hm.allocated_qty AS allocated,
           (hm.received_qty - hm.used_qty) * coalesce(hl.act_unit_cost, hl.est_unit_cost)
             AS value,
           hq.quarantine_id, hq.reason, hq.since, hq.mfr_lot AS rule_mfr_lot,
           hq.lot_id AS rule_lot_id, hq.office AS rule_office
    FROM quarantines AS hq
    JOIN mfr_lots AS hm ON hm.lic = hq.lic AND hq.mfr_lot IN ('', hm.mfr_lot)
    JOIN lots AS hl ON hl.lot_id = hm.lot_id AND hq.lot_id IN ('', hl.lot_id)
                    AND hq.office IN ('', hl.office)
    WHERE hm.received_qty > hm.used_qty{where}
    UNION ALL
    SELECT hl.lic, hl.office, NULL, hl.lot_id, hl.received_on, hl.recorded_at,
           hl.received_qty - hl.used_qty, hl.allocated_qty,
           (hl.received_qty - hl.used_qty) * coalesce(hl.act_unit_cost, hl.est_unit_cost),
           hq.quarantine_id, hq.reason, hq.since, hq.mfr_lot, hq.lot_id, hq.office
    FROM quarantines AS hq
    JOIN lots AS hl ON hl.lic = hq.lic AND hq.mfr_lot = '' AND hq.lot_id IN ('', hl.lot_id)
                    AND hq.office IN ('', hl.office)
    WHERE hl.received_qty > hl.used_qty{where}
      AND NOT EXISTS (SELECT 1 FROM mfr_lots AS hn WHERE hn.lot_id = hl.lot_id)
    """


def held_cells(*, lic: str | None = None, lot_id: str | None = None) -> str:
    """`held_stock`, each stock once (several rules may hold it): with the first rule holding
    it, by `since` and `quarantine_id`."""
    return f"""
    SELECT DISTINCT ON (h.lot_id, h.mfr_lot) h.*
    FROM ({held_stock(lic=lic, lot_id=lot_id)}) AS h
    ORDER BY h.lot_id, h.mfr_lot, h.since, h.quarantine_id
    """


def rules_of_lot(lot: str) -> str:
    """A select of the rules holding some of the stock on hand of the lot aliased `lot` (a
    `lots` row), as one JSON array (NULL for none; `QuarantineOut` each): for a lateral join.
    A rule whose stock all left the lot (sold before, returned to the vendor) holds none of it:
    the lot is not shown held by it."""
    return f"""
    SELECT jsonb_agg(jsonb_build_object(
               'quarantine_id', q.quarantine_id, 'mfr_lot', nullif(q.mfr_lot, ''),
               'lot_id', nullif(q.lot_id, ''), 'office', nullif(q.office, ''),
               'reason', q.reason, 'since', q.since)
           ORDER BY q.since, q.quarantine_id) AS quarantines
    FROM quarantines AS q
    WHERE (q.lic, q.mfr_lot, q.lot_id, q.office) IN (
        SELECT h.lic, h.rule_mfr_lot, h.rule_lot_id, h.rule_office
        FROM ({held_stock(lot_id=f"{lot}.lot_id")}) AS h)
    """


# Stock on hand in quarantine per manufacturer lot of an item at an office (a plain item's
# lots: per item and office, mfr_lot NULL): its first $1 rows, each carrying the count and
# value of all of them.
QUARANTINED_STOCK_SQL = f"""
WITH cells AS ({held_cells()}
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

# Stock on hand in quarantine of one item per office (`GET /items/{lic}`, $1 the LIC): on
# hand and allocated, each stock counted once.
HELD_BY_OFFICE_SQL = f"""
SELECT office, sum(qty) AS quarantined, sum(allocated) AS quarantined_allocated
FROM ({held_cells(lic="$1")}) AS c GROUP BY office
"""

# Stock on hand in quarantine of one inventory lot ($1): in all, and the first rule holding
# each manufacturer lot (or the lot, mfr_lot NULL) with its stock on hand.
HELD_IN_LOT_SQL = f"""
SELECT mfr_lot, qty, allocated, quarantine_id, reason FROM ({held_cells(lot_id="$1")}) AS c
"""
