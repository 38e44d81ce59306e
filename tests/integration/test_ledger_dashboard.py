"""The operations dashboard on the real broker and PostgreSQL: document answers, refusals and
dead letters published to their topics show on `/ops/summary` and `/dashboard`, once however
often they are delivered, hostile text escaped, a binary megabyte dead letter only previewed,
and the ledger never dead-lettering a record of the dead-letter topic it reads."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import asyncpg
import httpx
from aiokafka import ConsumerRecord

from services.ledger import operations, service, translate
from services.ledger.api import create_api
from services.ledger.app import DASHBOARD_POLL_MS, create_runtime
from services.ledger.translate import StatusNotice
from shared.consumer import Inbound, UnitOfWork
from shared.contracts import status as s
from shared.contracts.codec import encode
from shared.contracts.events import CommandRejected
from shared.contracts.reasons import ReasonCode
from shared.outbox import Outbox
from shared.service import ServiceRuntime
from tests.fixtures.infra import LotlineEnv, kafka_publish_many, kafka_read_until
from tests.integration.test_ledger import CAM, FOOD, Wire, mv, pool
from tests.integration.test_ledger_service import consumed, rewind

__all__ = ["pool"]

HOSTILE = '<script>alert("pwn")</script>&<b>'
MB = 1024 * 1024


def _status_messages() -> list[s.StatusMessage]:
    problem = s.LineProblem(
        line_no=2,
        lic=CAM,
        reason_code=ReasonCode.SERIAL_COUNT_MISMATCH,
        reason=f"2 serials for 3 units: {HOSTILE}",
        offending=HOSTILE,
    )
    return [
        s.ReceiptPosted(message_id="st-1", shipment_id="R-1", lines=[]),
        s.ReceiptRejected(message_id="st-2", shipment_id=HOSTILE, problems=[problem]),
        s.ShipmentAllocated(message_id="st-3", shipment_id="S-1", lines=[]),
        s.ShipmentShipped(message_id="st-4", shipment_id="S-1", lines=[]),
    ]


def _events(today: date) -> list[Any]:
    w = Wire()
    lot = [mv("L-1", 10, "2.00", mfr_lot="M-1", expires_on=today + timedelta(days=10))]
    sold = [mv("L-1", 3, "2.00", mfr_lot="M-1", expires_on=today + timedelta(days=10))]
    rejected = CommandRejected(
        message_id="rej-1",
        command_id="c",
        lic=FOOD,
        command_type="AdjustStock",
        adjustment_id="ADJ-7",
        reason_code=ReasonCode.LOT_QTY_EXCEEDS_USED,
        reason="adjusted quantity exceeds the previously used quantity",
        offending=HOSTILE,
    )
    return [
        w.item(FOOD, track_mfr_lot=True, perishable=True),
        w.received(FOOD, "L-1", 10, "2.00", lot, po="PO-1", on=today),
        *w.sale(FOOD, "S-1", sold, customer="Montboro", on=today),
        rejected,
    ]


def _dlq_headers(offset: int, error: str) -> list[tuple[str, bytes]]:
    return [
        ("error", error.encode()),
        ("source_topic", b"inventory.receipts"),
        ("source_partition", b"1"),
        ("source_offset", str(offset).encode()),
        ("consumer", b"receiving"),
        ("original_note", "\u202e\x00evil".encode()),
    ]


async def _rows(env: LotlineEnv) -> dict[str, int]:
    conn = await asyncpg.connect(env.dsn)
    try:
        return {
            table: await conn.fetchval(f"SELECT count(*) FROM ledger.{table}")
            for table in ("ops_documents", "ops_refusals", "ops_dead_letters", "ops_progress")
        }
    finally:
        await conn.close()


async def _summary_and_page(runtime: ServiceRuntime) -> tuple[dict[str, Any], str]:
    app = create_api(lambda: runtime.pool)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ledger"
    ) as api:
        summary = await api.get("/ops/summary", params={"limit": 50})
        page = await api.get("/dashboard")
        schema = (await api.get("/openapi.json")).json()
    assert summary.status_code == 200, summary.text
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "OpsSummary" in schema["components"]["schemas"]
    return summary.json(), page.text


async def test_dashboard_shows_answers_refusals_and_dead_letters_once(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """§2, §6: every document answer, refusal and dead letter through Kafka, each delivered
    twice (the same message id, the same dead-lettered source record), then a full replay from
    offset 0: the page shows each once, escaped; the dead-letter topic holds only what was
    dead-lettered (the ledger's reader never adds to it)."""
    env = lotline_env()
    topics = env.settings.topics
    today = datetime.now(UTC).date()
    answers = _status_messages()
    status_records = [(m.shipment_id, encode(m)) for m in answers] * 2  # each delivered twice
    status_records.append(("R-9", b"\xff not a status"))  # the ledger dead-letters this one
    events = _events(today)
    huge = b"\x00\x01BIN\xff" + os.urandom(2 * MB)

    runtime = create_runtime(env.settings)
    await runtime.start()
    try:
        # The dashboard's feeds have a consumer of their own, fetching every DASHBOARD_POLL_MS:
        # the main consumer's fetches (every KAFKA_FETCH_MAX_WAIT_MS) never cover them.
        assert [(c.name, sorted(c.topics)) for c in runtime.consumers] == [
            ("ledger", sorted([topics.events, topics.costs])),
            (f"ledger-every-{DASHBOARD_POLL_MS}ms", sorted([topics.status, topics.dlq])),
        ]
        assert runtime.consumers[1]._settings.kafka_fetch_max_wait_ms == DASHBOARD_POLL_MS
        await kafka_publish_many(env.bootstrap, topics.status, status_records)
        await kafka_publish_many(
            env.bootstrap, topics.events, [(e.lic, encode(e)) for e in events * 2]
        )
        await kafka_publish_many(
            env.bootstrap,
            topics.dlq,
            [("R-5", huge)],
            headers=_dlq_headers(5, "message of 2097158 bytes exceeds 1 bytes"),
            max_request_size=4 * MB,
        )
        hostile = [(HOSTILE, HOSTILE.encode())] * 2  # one dead letter, relayed twice
        await kafka_publish_many(
            env.bootstrap, topics.dlq, hostile, headers=_dlq_headers(6, f"bad: {HOSTILE}")
        )
        await consumed(env, "ledger-status", len(status_records))
        await consumed(env, "ledger", len(events) * 2)
        await consumed(env, "ledger-dlq", 3 + 1)  # ours and the ledger's own dead letter
        summary, page = await _summary_and_page(runtime)
    finally:
        await runtime.stop()

    counts = {(c["kind"], c["status"]): c["documents"] for c in summary["documents_by_status"]}
    assert counts == {
        ("receipt", "ReceiptPosted"): 1,
        ("receipt", "ReceiptRejected"): 1,
        ("shipment", "ShipmentShipped"): 1,
    }
    reasons = {r["reason_code"]: r["refusals"] for r in summary["refusals_by_reason"]}
    assert reasons == {"SERIAL_COUNT_MISMATCH": 1, "LOT_QTY_EXCEEDS_USED": 1}
    refusal = next(r for r in summary["latest_refusals"] if r["document"] == HOSTILE)
    assert (refusal["type"], refusal["line_no"], refusal["offending"]) == (
        "ReceiptRejected",
        2,
        HOSTILE,
    )
    adjustment = next(r for r in summary["latest_refusals"] if r["document"] == "ADJ-7")
    assert adjustment["type"] == "CommandRejected:AdjustStock" and adjustment["lic"] == FOOD

    letters = summary["latest_dead_letters"]
    assert len(letters) == 3
    binary = next(d for d in letters if d["payload_bytes"] == len(huge))
    assert binary["preview"].startswith("\\x00\\x01BIN\\xff") and binary["preview"].endswith("…")
    assert len(binary["preview"]) < 2000 and binary["source_offset"] == "5"
    assert binary["headers"]["original_note"] == "\\u202e\\x00evil"
    own = next(d for d in letters if d["consumer"] == "ledger-status")
    assert own["source_topic"] == topics.status and own["preview"] == "\\xff not a status"

    ledger = summary["ledger"]
    assert ledger["last_event"] is not None and ledger["last_event"]["lag_seconds"] >= 0
    assert ledger["usage_records_today"] == 1
    assert [(x["mfr_lot"], Decimal(x["current_qty"])) for x in ledger["expiring"]] == [
        ("M-1", Decimal(7))
    ]

    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;pwn&quot;)&lt;/script&gt;&amp;&lt;b&gt;" in page
    assert '<meta http-equiv="refresh"' in page and "SERIAL_COUNT_MISMATCH" in page
    assert "\\x00\\x01BIN" in page and len(page) < 200_000

    dlq = await kafka_read_until(env.bootstrap, topics.dlq, lambda rs: len(rs) >= 4)
    await asyncio.sleep(1)  # anything the ledger would add after its own dead letter
    again = await kafka_read_until(env.bootstrap, topics.dlq, lambda rs: len(rs) >= 4)
    assert len(dlq) == len(again) == 4

    before = await _rows(env)
    await rewind(env)
    replay = create_runtime(env.settings)
    await replay.start()
    try:
        await consumed(env, "ledger-status", len(status_records))
        await consumed(env, "ledger", len(events) * 2)
        # The replayed garbage status record is dead-lettered again: the same source record.
        await consumed(env, "ledger-dlq", 3 + 2)
        replayed, _ = await _summary_and_page(replay)
    finally:
        await replay.stop()

    assert await _rows(env) == before
    assert replayed["documents_by_status"] == summary["documents_by_status"]
    assert replayed["refusals_by_reason"] == summary["refusals_by_reason"]
    assert len(replayed["latest_dead_letters"]) == 3


def _notice(n: int, at: datetime) -> Inbound[StatusNotice]:
    notice = StatusNotice(
        type="ReceiptRejected",
        message_id=f"m-{n}",
        occurred_at=at,
        shipment_id=f"R-{n}",
        reason_code="LOT_REQUIRED",
        reason="lot required",
    )
    return Inbound(notice, "inventory.status", 0, n, None)


async def test_prune_keeps_the_latest_rows_and_drops_old_ones(pool: asyncpg.Pool) -> None:
    """Growth is bounded: the latest documents, refusals and dead letters stay, older ones go,
    and nothing answered before the retention window is kept."""
    now = datetime.now(UTC)
    batch = [_notice(99, now - timedelta(days=30))]
    batch += [_notice(n, now - timedelta(minutes=10 - n)) for n in range(8)]
    async with pool.acquire() as conn, conn.transaction():
        await service.record_status(UnitOfWork(cast(asyncpg.Connection, conn), Outbox()), batch)
    letters = [
        Inbound(
            translate.read_dead_letter(
                ConsumerRecord("dlq", 0, n, 0, 0, None, b"x", None, 0, 1, [])
            ),
            "inventory.dlq",
            0,
            n,
            None,
        )
        for n in range(5)
    ]
    async with pool.acquire() as conn, conn.transaction():
        await service.record_dead_letters(
            UnitOfWork(cast(asyncpg.Connection, conn), Outbox()), letters
        )
    async with pool.acquire() as conn:
        await operations.prune(conn, documents=3, refusals=3, dead_letters=3)
        dead = await conn.fetchval(
            "SELECT array_agg(dlq_offset ORDER BY seq) FROM ops_dead_letters"
        )
        documents = await conn.fetch("SELECT document FROM ops_documents ORDER BY document")
        refusals = await conn.fetch("SELECT document FROM ops_refusals ORDER BY document")

    assert [r["document"] for r in documents] == ["R-5", "R-6", "R-7"]
    assert [r["document"] for r in refusals] == ["R-5", "R-6", "R-7"]
    assert dead == [2, 3, 4]
