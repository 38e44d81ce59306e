"""The operations dashboard's tables (migration 010): set-based writes, pruning, the summary.

Writes are `Part`s (one sub-statement each) so they ride in a statement the batch runs anyway;
inserts are idempotent on their natural keys (the inbox already prevents a second delivery:
this is the backstop). Growth is bounded by `prune`, run by a periodic job, never on the hot
path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import TypeVar

import asyncpg

from services.ledger.domain.operations import (
    AFTER_FINAL,
    FINAL,
    POSTINGS,
    DeadLetter,
    DocumentStatus,
    DocumentWarning,
    Refusal,
)
from services.ledger.quarantine import QUARANTINED_STOCK_SQL
from services.ledger.queries import Reader
from services.ledger.repository import Part
from services.ledger.schemas import (
    DeadLetterOut,
    DocumentOut,
    ExpiredLot,
    ExpiringLot,
    LastEvent,
    LedgerHealth,
    OpsSummary,
    Out,
    QuarantinedStock,
    ReasonCount,
    RefusalOut,
    StatusCount,
)

KEEP_DOCUMENTS = 100_000
KEEP_REFUSALS = 100_000
KEEP_DEAD_LETTERS = 1_000
KEEP_DAYS = 7
PRUNE_SECONDS = 60.0

_M = TypeVar("_M", bound=Out)


def documents_part(statuses: Sequence[DocumentStatus]) -> Part | None:
    """Each document's latest answer (`statuses`: at most one per document); an answer older
    than the one recorded does not replace it (a replay)."""
    if not statuses:
        return None
    return (
        """
        INSERT INTO ops_documents (kind, document, status, reason_code, message_id, occurred_at,
                                   lic, adjustment_kind, quantity, warnings)
        SELECT k, d, s, r, m, o, l, a, q, w::jsonb
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                    $6::timestamptz[], $9::text[], $10::text[], $11::numeric[], $12::text[])
             AS u(k, d, s, r, m, o, l, a, q, w)
        ON CONFLICT (kind, document) DO UPDATE SET
            status = excluded.status, reason_code = excluded.reason_code,
            message_id = excluded.message_id, occurred_at = excluded.occurred_at,
            lic = excluded.lic, adjustment_kind = excluded.adjustment_kind,
            quantity = excluded.quantity, warnings = excluded.warnings, recorded_at = now()
        WHERE excluded.occurred_at >= ops_documents.occurred_at
            AND NOT (ops_documents.status = $7 AND excluded.status = $8)
        """,
        [
            [s.kind for s in statuses],
            [s.document for s in statuses],
            [s.status for s in statuses],
            [s.reason_code for s in statuses],
            [s.message_id for s in statuses],
            [s.occurred_at for s in statuses],
            FINAL,
            AFTER_FINAL,
            [s.lic for s in statuses],
            [s.adjustment_kind for s in statuses],
            [s.quantity for s in statuses],
            [_warnings_json(s.warnings) for s in statuses],
        ],
    )


def _warnings_json(warnings: Sequence[DocumentWarning]) -> str:
    """A document's warnings as `ops_documents.warnings` keeps them: [{code, message}, …]."""
    return json.dumps([{"code": w.code, "message": w.message} for w in warnings])


def refusals_part(refusals: Sequence[Refusal]) -> Part | None:
    if not refusals:
        return None
    return (
        """
        INSERT INTO ops_refusals (message_id, problem_no, type, document, lic, line_no,
                                  reason_code, reason, offending, occurred_at, document_kind)
        SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[],
                             $6::int[], $7::text[], $8::text[], $9::text[], $10::timestamptz[],
                             $11::text[])
        ON CONFLICT (message_id, problem_no) DO NOTHING
        """,
        [
            [r.message_id for r in refusals],
            [r.problem_no for r in refusals],
            [r.type for r in refusals],
            [r.document for r in refusals],
            [r.lic for r in refusals],
            [r.line_no for r in refusals],
            [r.reason_code for r in refusals],
            [r.reason for r in refusals],
            [r.offending for r in refusals],
            [r.occurred_at for r in refusals],
            [r.document_kind for r in refusals],
        ],
    )


def dead_letters_part(letters: Sequence[DeadLetter]) -> Part | None:
    if not letters:
        return None
    return (
        """
        INSERT INTO ops_dead_letters (notice_key, dlq_partition, dlq_offset, dead_at, error,
            source_topic, source_partition, source_offset, consumer, answered, headers,
            record_key, payload_bytes, preview)
        SELECT k, p, o, t, e, st, sp, so, c, a, h::jsonb, rk, n, pv
        FROM unnest($1::text[], $2::int[], $3::bigint[], $4::timestamptz[], $5::text[],
                    $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                    $12::text[], $13::bigint[], $14::text[])
             AS u(k, p, o, t, e, st, sp, so, c, a, h, rk, n, pv)
        ON CONFLICT (notice_key) DO NOTHING
        """,
        [
            [d.message_id for d in letters],
            [d.dlq_partition for d in letters],
            [d.dlq_offset for d in letters],
            [d.dead_at for d in letters],
            [d.error for d in letters],
            [d.source_topic for d in letters],
            [d.source_partition for d in letters],
            [d.source_offset for d in letters],
            [d.consumer for d in letters],
            [d.answered for d in letters],
            [json.dumps(d.headers) for d in letters],
            [d.record_key for d in letters],
            [d.payload_bytes for d in letters],
            [d.preview for d in letters],
        ],
    )


def progress_part(
    topic: str,
    partition: int,
    *,
    message_id: str,
    event_type: str,
    lic: str,
    occurred_at: datetime,
) -> Part:
    """The last event recorded from one partition: one row per partition, so ledger
    processes owning different partitions never wait on each other's row."""
    return (
        """
        INSERT INTO ops_progress (topic, partition, message_id, event_type, lic, occurred_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (topic, partition) DO UPDATE SET
            message_id = excluded.message_id, event_type = excluded.event_type,
            lic = excluded.lic, occurred_at = excluded.occurred_at, recorded_at = now()
        """,
        [topic, partition, message_id, event_type, lic, occurred_at],
    )


PRUNE_SQL = """
WITH refusals AS (
    DELETE FROM ops_refusals
    WHERE seq <= (SELECT max(seq) FROM ops_refusals) - $1
       OR occurred_at < now() - make_interval(days => $4)
), dead AS (
    DELETE FROM ops_dead_letters WHERE seq <= (SELECT max(seq) FROM ops_dead_letters) - $2
), documents AS (
    DELETE FROM ops_documents
    WHERE occurred_at < now() - make_interval(days => $4)
       OR occurred_at <= (SELECT occurred_at FROM ops_documents
                          ORDER BY occurred_at DESC OFFSET $3 LIMIT 1)
)
SELECT 1
"""


async def prune(
    conn: Reader,
    *,
    documents: int = KEEP_DOCUMENTS,
    refusals: int = KEEP_REFUSALS,
    dead_letters: int = KEEP_DEAD_LETTERS,
    days: int = KEEP_DAYS,
) -> None:
    """Keep the latest rows of each table (and none older than `days`), set-based."""
    await conn.execute(PRUNE_SQL, refusals, dead_letters, documents, days)


# -- the summary ------------------------------------------------------------------------------


async def summary(
    conn: Reader,
    *,
    limit: int = 20,
    window_hours: int = 24,
    expiring_days: int = 30,
    as_of: date | None = None,
) -> OpsSummary:
    """Everything the dashboard shows, read in one snapshot. `as_of` is the date expiry and
    "today" are read against: by default the UTC date of the read, never the database's
    `current_date`, which follows the server's time zone."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        now = await conn.fetchval("SELECT now()")
        since = f"now() - make_interval(hours => {int(window_hours)})"
        by_status = await conn.fetch(
            "SELECT kind, status, count(*) AS documents FROM ops_documents"
            f" WHERE occurred_at >= {since} GROUP BY kind, status ORDER BY kind, status"
        )
        documents = await conn.fetch(
            "SELECT kind, document, status, reason_code, occurred_at, lic, adjustment_kind,"
            " quantity, warnings FROM ops_documents ORDER BY occurred_at DESC, document"
            " LIMIT $1",
            limit,
        )
        warned = await conn.fetchval(
            "SELECT count(*) FROM ops_documents"
            f" WHERE occurred_at >= {since} AND warnings <> '[]'::jsonb"
        )
        # A row per problem: a receipt refused for 20 lines is one refusal with 20 problems.
        by_reason = await conn.fetch(
            "SELECT reason_code, count(DISTINCT message_id) AS refusals, count(*) AS problems"
            f" FROM ops_refusals WHERE occurred_at >= {since}"
            " GROUP BY reason_code ORDER BY refusals DESC, problems DESC, reason_code"
        )
        superseded = await conn.fetchval(
            "SELECT count(DISTINCT r.message_id) FROM ops_refusals AS r"
            f" {_superseding(1)} WHERE r.occurred_at >= {since} AND d.document IS NOT NULL",
            _POSTINGS,
        )
        refusals = await conn.fetch(
            "SELECT r.type, r.document, r.lic, r.line_no, r.reason_code, r.offending, r.reason,"
            " r.occurred_at, d.status AS superseded_by, d.occurred_at AS superseded_at"
            " FROM (SELECT * FROM ops_refusals ORDER BY seq DESC LIMIT $1) AS r"
            f" {_superseding(2)} ORDER BY r.seq DESC",
            limit,
            _POSTINGS,
        )
        dead_count = await conn.fetchval(
            f"SELECT count(*) FROM ops_dead_letters WHERE dead_at >= {since}"
        )
        dead = await conn.fetch(
            "SELECT *, record_key AS key FROM ops_dead_letters ORDER BY seq DESC LIMIT $1", limit
        )
        day = as_of if as_of is not None else now.astimezone(UTC).date()
        health = await _health(conn, now, limit, expiring_days, day)
    return OpsSummary(
        generated_at=now,
        window_hours=window_hours,
        documents_by_status=[StatusCount(**r) for r in by_status],
        latest_documents=[DocumentOut(**r) for r in documents],
        refusals_by_reason=[ReasonCount(**r) for r in by_reason],
        latest_refusals=[RefusalOut(**r) for r in refusals],
        superseded_refusals_in_window=superseded,
        documents_with_warnings_in_window=warned,
        dead_letters_in_window=dead_count,
        latest_dead_letters=[
            DeadLetterOut(**{k: r[k] for k in DeadLetterOut.model_fields}) for r in dead
        ],
        ledger=health,
    )


_POSTINGS = sorted(set(POSTINGS.values()))


def _superseding(statuses: int) -> str:
    """The join giving each refusal `r` the answer that superseded it (`d`, else NULLs): its
    document's latest answer when that is the document's posting (`POSTINGS`, the array
    parameter number `statuses`; one status per kind) answered after the refusal. Through the
    documents' primary key (kind, document): a refused adjustment resent and posted, a receipt
    version refused before another posted, a shipment refused before it shipped."""
    return (
        "LEFT JOIN ops_documents AS d ON d.kind = r.document_kind AND d.document = r.document"
        f" AND d.status = ANY(${int(statuses)}::text[]) AND d.occurred_at > r.occurred_at"
    )


# Stock on hand per manufacturer lot of an item at an office (a number received in several
# inventory lots is one lot on the shelf), expired before $1 or expiring up to $2 days after
# it: each side's first $3 rows, each carrying its side's count and value. Expired is before
# the date: a lot expiring on it still ships that day (R9, LOT_EXPIRED).
_MFR_LOT_STOCK_SQL = """
WITH stock AS (
    SELECT m.lic, l.office, m.mfr_lot, m.expires_on,
           m.expires_on < $1::date AS expired,
           $1::date - m.expires_on AS days_expired, m.expires_on - $1::date AS days_left,
           sum(m.received_qty - m.used_qty) AS current_qty,
           sum(m.allocated_qty) AS allocated_qty,
           sum((m.received_qty - m.used_qty) * coalesce(l.act_unit_cost, l.est_unit_cost))
               AS current_value,
           array_agg(m.lot_id ORDER BY l.received_on, l.recorded_at,
                                       l.recorded_seq NULLS FIRST, m.lot_id) AS lot_ids
    FROM mfr_lots AS m JOIN lots AS l ON l.lot_id = m.lot_id
    WHERE m.expires_on <= $1::date + $2::int AND m.received_qty > m.used_qty
    GROUP BY m.lic, l.office, m.mfr_lot, m.expires_on
), ranked AS (
    SELECT *, lot_ids[1] AS lot_id, row_number() OVER in_order AS n,
           count(*) OVER side AS side_lots, sum(current_value) OVER side AS side_value
    FROM stock
    WINDOW side AS (PARTITION BY expired),
           in_order AS (side ORDER BY expires_on, lic, office, mfr_lot)
)
SELECT * FROM ranked WHERE n <= $3 ORDER BY expired DESC, n
"""


async def _health(conn: Reader, now: datetime, limit: int, days: int, as_of: date) -> LedgerHealth:
    last = await conn.fetchrow("SELECT * FROM ops_progress ORDER BY recorded_at DESC LIMIT 1")
    usage = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(total_cost), 0) AS cost FROM usage WHERE used_on = $1",
        as_of,
    )
    assert usage is not None
    stock = await conn.fetch(_MFR_LOT_STOCK_SQL, as_of, days, limit)
    expired = [r for r in stock if r["expired"]]
    expiring = [r for r in stock if not r["expired"]]
    held = await conn.fetch(QUARANTINED_STOCK_SQL, limit)
    return LedgerHealth(
        last_event=None
        if last is None
        else LastEvent(
            message_id=last["message_id"],
            event_type=last["event_type"],
            lic=last["lic"],
            occurred_at=last["occurred_at"],
            recorded_at=last["recorded_at"],
            lag_seconds=(last["recorded_at"] - last["occurred_at"]).total_seconds(),
            # now() is this read's start: a batch committed just before may be a hair later.
            idle_seconds=max(0.0, (now - last["recorded_at"]).total_seconds()),
        ),
        as_of=as_of,
        usage_records_today=usage["n"],
        usage_cost_today=usage["cost"],
        expired_lots=expired[0]["side_lots"] if expired else 0,
        expired_value=expired[0]["side_value"] if expired else 0,
        expired=[_row(ExpiredLot, r) for r in expired],
        expiring_days=days,
        expiring_lots=expiring[0]["side_lots"] if expiring else 0,
        expiring_value=expiring[0]["side_value"] if expiring else 0,
        expiring=[_row(ExpiringLot, r) for r in expiring],
        quarantined_lots=held[0]["all_lots"] if held else 0,
        quarantined_value=held[0]["all_value"] if held else 0,
        quarantined=[_row(QuarantinedStock, r) for r in held],
    )


def _row(model: type[_M], row: asyncpg.Record) -> _M:
    """The row as the model (the columns it has: a select may carry more)."""
    return model(**{name: row[name] for name in model.model_fields})
