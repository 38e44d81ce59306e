"""The operations dashboard's tables (migration 010): set-based writes, pruning, the summary.

Writes are `Part`s (one sub-statement each) so they ride in a statement the batch runs anyway;
inserts are idempotent on their natural keys (the inbox already prevents a second delivery:
this is the backstop). Growth is bounded by `prune`, run by a periodic job, never on the hot
path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from services.ledger.domain.operations import DeadLetter, DocumentStatus, Refusal
from services.ledger.queries import Reader
from services.ledger.repository import Part
from services.ledger.schemas import (
    DeadLetterOut,
    DocumentOut,
    ExpiringLot,
    LastEvent,
    LedgerHealth,
    OpsSummary,
    ReasonCount,
    RefusalOut,
    StatusCount,
)

KEEP_DOCUMENTS = 100_000
KEEP_REFUSALS = 100_000
KEEP_DEAD_LETTERS = 1_000
KEEP_DAYS = 7
PRUNE_SECONDS = 60.0


def documents_part(statuses: Sequence[DocumentStatus]) -> Part | None:
    """Each document's latest answer (`statuses`: at most one per document); an answer older
    than the one recorded does not replace it (a replay)."""
    if not statuses:
        return None
    return (
        """
        INSERT INTO ops_documents (kind, document, status, reason_code, message_id, occurred_at)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::timestamptz[])
        ON CONFLICT (kind, document) DO UPDATE SET
            status = excluded.status, reason_code = excluded.reason_code,
            message_id = excluded.message_id, occurred_at = excluded.occurred_at,
            recorded_at = now()
        WHERE excluded.occurred_at >= ops_documents.occurred_at
        """,
        [
            [s.kind for s in statuses],
            [s.document for s in statuses],
            [s.status for s in statuses],
            [s.reason_code for s in statuses],
            [s.message_id for s in statuses],
            [s.occurred_at for s in statuses],
        ],
    )


def refusals_part(refusals: Sequence[Refusal]) -> Part | None:
    if not refusals:
        return None
    return (
        """
        INSERT INTO ops_refusals (message_id, problem_no, type, document, lic, line_no,
                                  reason_code, reason, offending, occurred_at)
        SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[],
                             $6::int[], $7::text[], $8::text[], $9::text[], $10::timestamptz[])
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
    conn: Reader, *, limit: int = 20, window_hours: int = 24, expiring_days: int = 30
) -> OpsSummary:
    """Everything the dashboard shows, read in one snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        now = await conn.fetchval("SELECT now()")
        since = f"now() - make_interval(hours => {int(window_hours)})"
        by_status = await conn.fetch(
            "SELECT kind, status, count(*) AS documents FROM ops_documents"
            f" WHERE occurred_at >= {since} GROUP BY kind, status ORDER BY kind, status"
        )
        documents = await conn.fetch(
            "SELECT kind, document, status, reason_code, occurred_at FROM ops_documents"
            " ORDER BY occurred_at DESC, document LIMIT $1",
            limit,
        )
        # A row per problem: a receipt refused for 20 lines is one refusal with 20 problems.
        by_reason = await conn.fetch(
            "SELECT reason_code, count(DISTINCT message_id) AS refusals, count(*) AS problems"
            f" FROM ops_refusals WHERE occurred_at >= {since}"
            " GROUP BY reason_code ORDER BY refusals DESC, problems DESC, reason_code"
        )
        refusals = await conn.fetch(
            "SELECT type, document, lic, line_no, reason_code, offending, reason, occurred_at"
            " FROM ops_refusals ORDER BY seq DESC LIMIT $1",
            limit,
        )
        dead_count = await conn.fetchval(
            f"SELECT count(*) FROM ops_dead_letters WHERE dead_at >= {since}"
        )
        dead = await conn.fetch(
            "SELECT *, record_key AS key FROM ops_dead_letters ORDER BY seq DESC LIMIT $1", limit
        )
        health = await _health(conn, now, limit, expiring_days)
    return OpsSummary(
        generated_at=now,
        window_hours=window_hours,
        documents_by_status=[StatusCount(**r) for r in by_status],
        latest_documents=[DocumentOut(**r) for r in documents],
        refusals_by_reason=[ReasonCount(**r) for r in by_reason],
        latest_refusals=[RefusalOut(**r) for r in refusals],
        dead_letters_in_window=dead_count,
        latest_dead_letters=[
            DeadLetterOut(**{k: r[k] for k in DeadLetterOut.model_fields}) for r in dead
        ],
        ledger=health,
    )


async def _health(conn: Reader, now: datetime, limit: int, days: int) -> LedgerHealth:
    last = await conn.fetchrow("SELECT * FROM ops_progress ORDER BY recorded_at DESC LIMIT 1")
    usage = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(total_cost), 0) AS cost FROM usage"
        " WHERE used_on = current_date"
    )
    assert usage is not None
    expiring_sql = (
        " FROM mfr_lots AS m JOIN lots AS l ON l.lot_id = m.lot_id"
        " WHERE m.expires_on BETWEEN current_date AND current_date + $1::int"
        "   AND m.received_qty - m.used_qty > 0"
    )
    expiring_count = await conn.fetchval(f"SELECT count(*) {expiring_sql}", days)
    expiring = await conn.fetch(
        "SELECT m.lic, m.lot_id, m.mfr_lot, l.office, m.expires_on,"
        f" m.received_qty - m.used_qty AS current_qty {expiring_sql}"
        " ORDER BY m.expires_on, m.lic, m.mfr_lot, m.lot_id LIMIT $2",
        days,
        limit,
    )
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
        usage_records_today=usage["n"],
        usage_cost_today=usage["cost"],
        expiring_days=days,
        expiring_lots=expiring_count,
        expiring=[ExpiringLot(**r) for r in expiring],
    )
