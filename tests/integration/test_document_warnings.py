"""Warnings read back: a receipt posted with an expired lot (`ReceiptPosted.warnings`) and an
adjustment posted with warnings (`InventoryAdjusted.warnings`) keep them with their answer, so
the dashboard, `/ops/summary` and `GET /documents/{id}` show them; on a real PostgreSQL,
through the ledger's handlers, as the other dashboard tests."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
import httpx

from services.ledger.domain.operations import MAX_WARNINGS, kept_warnings
from shared.contracts.events import AdjustmentWarning
from tests.integration.test_dashboard_adjustments import _answered, _at, _notice
from tests.integration.test_ledger import Wire, api, get, mv, pool, record

__all__ = ["api", "pool"]

FOOD = "FOOD-H15"
EXPIRED = "Lot M-OLD of FOOD-H15 expired on 2026-01-01, before it was received: <quarantine>"


def _receipt_warning(line_no: int, message: str = EXPIRED) -> dict[str, Any]:
    return {
        "line_no": line_no,
        "lic": FOOD,
        "code": "LOT_EXPIRED_ON_RECEIPT",
        "mfr_lot": "M-OLD",
        "expires_on": "2026-01-01",
        "lot_id": "L-W1",
        "message": message,
    }


async def _story(pool: asyncpg.Pool) -> None:
    """IN-W1 received FOOD and posted with a warning; ADJ-W1 counted 5 in beyond any lot and
    posted with STOCK_IN_NO_LOT; SO-W1 shipped with none."""
    w = Wire()
    adjusted = w.adjusted(FOOD, "ADJ-W1", "count", [mv(None, 5, "2.00")], on=date(2026, 1, 31))
    warning = AdjustmentWarning(code="STOCK_IN_NO_LOT", message="5 added beyond any lot")
    await record(
        pool,
        w.item(FOOD),
        w.received(
            FOOD, "L-W1", 10, "2.00", [mv("L-W1", 10, "2.00")], po="PO-W", shipment="IN-W1",
            on=date(2026, 1, 30),
        ),
        adjusted.model_copy(update={"occurred_at": _at(3), "warnings": [warning]}),
    )  # fmt: skip
    posted = _notice("ReceiptPosted", "IN-W1", 5) | {"warnings": [_receipt_warning(1)]}
    await _answered(pool, posted, _notice("ShipmentShipped", "SO-W1", 1))


async def test_ops_summary_lists_each_documents_warnings_and_counts_them(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    await _story(pool)

    summary = await get(api, "/ops/summary")

    warnings = {d["document"]: d["warnings"] for d in summary["latest_documents"]}
    assert warnings == {
        "SO-W1": [],
        "ADJ-W1": [{"code": "STOCK_IN_NO_LOT", "message": "5 added beyond any lot"}],
        "IN-W1": [{"code": "LOT_EXPIRED_ON_RECEIPT", "message": EXPIRED}],
    }
    assert summary["documents_with_warnings_in_window"] == 2


async def test_the_dashboard_shows_warning_codes_with_their_messages(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    await _story(pool)

    page = (await api.get("/dashboard")).text

    assert "<th>warnings</th>" in page
    escaped = EXPIRED.replace("<", "&lt;").replace(">", "&gt;")
    assert f'<span class=warn title="{escaped}">LOT_EXPIRED_ON_RECEIPT</span>' in page
    assert f"LOT_EXPIRED_ON_RECEIPT: {escaped}" in page  # below, on a click
    assert ">STOCK_IN_NO_LOT</span>" in page
    assert "<quarantine>" not in page
    assert "2 documents posted with warnings in the window" in page


async def test_a_documents_summary_shows_its_answers_warnings_when_kept(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """`/documents/{id}`: the warnings its answer carried; null for a document the dashboard
    keeps no answer of (here: a shipment whose answers it never read)."""
    await _story(pool)
    w = Wire()
    await record(
        pool, w.sale(FOOD, "SO-W2", [mv("L-W1", 1, "2.00")], customer="A", on=date(2026, 2, 1))
    )

    receipt = await get(api, "/documents/IN-W1")
    adjustment = await get(api, "/documents/ADJ-W1")
    unanswered = await get(api, "/documents/SO-W2")

    assert receipt["warnings"] == [{"code": "LOT_EXPIRED_ON_RECEIPT", "message": EXPIRED}]
    assert adjustment["warnings"] == [
        {"code": "STOCK_IN_NO_LOT", "message": "5 added beyond any lot"}
    ]
    assert unanswered["warnings"] is None


async def test_a_later_answer_replaces_the_warnings_and_a_refused_version_keeps_them(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """A receipt version refused after the receipt posted leaves it posted, warnings and all."""
    await _story(pool)
    await _answered(
        pool,
        _notice("ReceiptRejected", "IN-W1", 0, reason_code="RECEIPT_ALREADY_POSTED"),
    )

    summary = await get(api, "/ops/summary")

    [receipt] = [d for d in summary["latest_documents"] if d["document"] == "IN-W1"]
    assert (receipt["status"], len(receipt["warnings"])) == ("ReceiptPosted", 1)


def test_warnings_are_kept_as_the_message_caps_them_and_made_safe() -> None:
    many = [("LOT_EXPIRED_ON_RECEIPT", f"line {n}") for n in range(1, 103)]

    kept = kept_warnings(many)

    assert len(kept) == MAX_WARNINGS == 100
    assert kept[-1].message == "line 100 (2 more warnings not kept)"
    assert kept_warnings([("X", "bad\x00\u202e")])[0].message == "bad\\x00\\u202e"
    assert kept_warnings([]) == ()
