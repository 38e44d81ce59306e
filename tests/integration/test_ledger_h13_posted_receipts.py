"""The dashboard's documents by latest answer, across batches, on the real PostgreSQL: a
receipt posted stays posted when a version sent after it is refused (the later batch's
answer does not replace it); any other later answer still does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from services.ledger import operations
from services.ledger.domain.operations import DocumentStatus, document_kind
from tests.integration.test_ledger import pool

__all__ = ["pool"]

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _answer(document: str, status: str, seconds: int) -> DocumentStatus:
    return DocumentStatus(
        kind=document_kind(status),
        document=document,
        status=status,
        reason_code="INVALID_QUANTITY" if status.endswith("Rejected") else None,
        message_id=f"{document}-{status}-{seconds}",
        occurred_at=T0 + timedelta(seconds=seconds),
    )


async def _write(pool: asyncpg.Pool, *answers: DocumentStatus) -> None:
    part = operations.documents_part(list(answers))
    assert part is not None
    sql, args = part
    async with pool.acquire() as conn:
        await conn.execute(sql, *args)


async def test_a_refused_version_does_not_replace_a_posted_receipt(pool: asyncpg.Pool) -> None:
    await _write(pool, _answer("R-1", "ReceiptPosted", 0), _answer("R-2", "ReceiptRejected", 0))
    await _write(pool, _answer("R-1", "ReceiptRejected", 5), _answer("R-2", "ReceiptPosted", 5))

    rows = await pool.fetch("SELECT document, status FROM ops_documents ORDER BY document")
    assert [(r["document"], r["status"]) for r in rows] == [
        ("R-1", "ReceiptPosted"),
        ("R-2", "ReceiptPosted"),
    ]
