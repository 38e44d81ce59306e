"""The dashboard tells the whole month-end story, on a real PostgreSQL: adjustments that posted
are listed with the documents (kind `adjustment`, with their item, kind and quantity), and a
refusal that a later posting of the same document superseded (a corrected resend of the same
`adjustment_id`, a receipt version, a shipment shipped at last) is shown so, not as an open
problem; one recorded after its document posted, or of a document never posted, stays open."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import asyncpg
import httpx

from services.ledger import service
from services.ledger.app import MIGRATIONS, SCHEMA
from services.ledger.translate import StatusNotice
from shared import db
from shared.consumer import Inbound, UnitOfWork
from shared.contracts.events import CommandRejected, InventoryAdjusted
from shared.contracts.reasons import ReasonCode
from shared.outbox import Outbox
from tests.fixtures.infra import LotlineEnv
from tests.integration.test_ledger import Wire, api, get, mv, pool, record

__all__ = ["api", "pool"]

BOLT = "BOLT-H15"
NOW = datetime.now(UTC).replace(microsecond=0)


def _at(minutes_ago: int) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _refused(adjustment: str, minutes_ago: int, *, n: int = 1) -> CommandRejected:
    return CommandRejected(
        message_id=f"rej-{adjustment}-{n}",
        occurred_at=_at(minutes_ago),
        command_id="c",
        lic=BOLT,
        command_type="AdjustStock",
        adjustment_id=adjustment,
        reason_code=ReasonCode.INVALID_QUANTITY,
        reason="quantity must not be 0",
        offending="0",
    )


def _posted(w: Wire, adjustment: str, minutes_ago: int, quantity: int = -3) -> InventoryAdjusted:
    adjusted = w.adjusted(
        BOLT, adjustment, "count", [mv(None, quantity, "2")], on=date(2026, 1, 31)
    )
    return adjusted.model_copy(update={"occurred_at": _at(minutes_ago)})


async def _answered(pool: asyncpg.Pool, *notices: dict[str, Any]) -> None:
    """Receiving's and shipping's answers through the `inventory.status` handler."""
    batch = [
        Inbound(StatusNotice.model_validate(n), "inventory.status", 0, i, None)
        for i, n in enumerate(notices)
    ]
    async with pool.acquire() as conn, conn.transaction():
        await service.record_status(UnitOfWork(cast(asyncpg.Connection, conn), Outbox()), batch)


def _notice(type_: str, document: str, minutes_ago: int, **refusal: str) -> dict[str, Any]:
    return {
        "type": type_,
        "message_id": f"{document}-{type_}-{minutes_ago}",
        "occurred_at": _at(minutes_ago),
        "shipment_id": document,
        **refusal,
    }


async def test_an_adjustment_that_posted_is_listed_with_the_documents(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """A count of −3 and a beginning balance: both among the latest documents (newest first)
    and counted by latest answer; the page names the item, kind and quantity."""
    w = Wire()
    opening = w.adjusted(
        BOLT, "BB-1", "beginning_balance", [mv("BB-1/BB", 5, "2")], on=date(2026, 1, 1)
    )
    await record(
        pool, w.item(BOLT), opening.model_copy(update={"lot_id": "BB-1/BB", "occurred_at": _at(30)})
    )
    await record(pool, _posted(w, "CNT-1", 10))

    summary = await get(api, "/ops/summary")
    page = (await api.get("/dashboard")).text

    assert [
        (d["kind"], d["document"], d["status"], d["lic"], d["adjustment_kind"], d["quantity"])
        for d in summary["latest_documents"]
    ] == [
        ("adjustment", "CNT-1", "InventoryAdjusted", BOLT, "count", "-3"),
        ("adjustment", "BB-1", "InventoryAdjusted", BOLT, "beginning_balance", "5"),
    ]
    assert summary["documents_by_status"] == [
        {"kind": "adjustment", "status": "InventoryAdjusted", "documents": 2}
    ]
    assert (
        "<td>adjustment</td><td>CNT-1</td><td>InventoryAdjusted</td><td></td>"
        f"<td>{BOLT}</td><td>count -3</td>" in page
    )


async def test_a_refused_adjustment_resent_and_posted_is_shown_superseded(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """ADJ-1 refused, then resent corrected (a new message, the same adjustment_id) and posted:
    its refusal names the posting. ADJ-2, refused and never posted, is open; ADJ-3 posted, then
    a version of it refused: that refusal came after, it is open."""
    w = Wire()
    await record(pool, w.item(BOLT), _refused("ADJ-1", 50), _refused("ADJ-2", 45))
    await record(pool, _posted(w, "ADJ-1", 40), _posted(w, "ADJ-3", 35))
    await record(pool, _refused("ADJ-3", 30))

    summary = await get(api, "/ops/summary")
    page = (await api.get("/dashboard")).text

    refusals = {
        r["document"]: (r["superseded_by"], r["superseded_at"] and _time(r["superseded_at"]))
        for r in summary["latest_refusals"]
    }
    assert refusals == {
        "ADJ-1": ("InventoryAdjusted", _at(40)),
        "ADJ-2": (None, None),
        "ADJ-3": (None, None),
    }
    assert summary["superseded_refusals_in_window"] == 1
    assert summary["refusals_by_reason"] == [
        {"reason_code": "INVALID_QUANTITY", "refusals": 3, "problems": 3}
    ]
    assert f"superseded by InventoryAdjusted at {_at(40).isoformat()}</td>" in page
    assert page.count("<td>open</td>") == 2
    assert "since superseded by a later posting of their document (not open problems): 1" in page


async def test_a_posting_recorded_before_the_refusal_it_supersedes_still_supersedes_it(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """A corrected resend may name another item (the LIC was the mistake): its posting and the
    refusal ride different partitions, and the ledger may record the posting first. What
    counts is when each was answered."""
    w = Wire()
    await record(pool, w.item(BOLT), _posted(w, "ADJ-1", 5))
    await record(pool, _refused("ADJ-1", 20))

    summary = await get(api, "/ops/summary")

    assert [r["superseded_by"] for r in summary["latest_refusals"]] == ["InventoryAdjusted"]


async def test_receipts_and_shipments_follow_the_same_rule(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R-2 refused, then a corrected version posted: superseded. R-1 posted, then a version of
    it refused: open (it stays posted). S-1 refused allocation, then shipped: superseded.
    S-2 refused allocation, then allocated, not shipped yet: open."""
    problem = {"reason_code": "LOT_REQUIRED", "reason": "no lot"}
    await _answered(
        pool,
        _notice("ReceiptRejected", "R-2", 50, **problem),
        _notice("ReceiptPosted", "R-1", 50),
        _notice("ShipmentAllocationFailed", "S-1", 50, reason_code="INSUFFICIENT_STOCK"),
        _notice("ShipmentAllocationFailed", "S-2", 50, reason_code="INSUFFICIENT_STOCK"),
    )
    await _answered(
        pool,
        _notice("ReceiptPosted", "R-2", 40),
        _notice("ReceiptRejected", "R-1", 40, **problem),
        _notice("ShipmentAllocated", "S-1", 40),
        _notice("ShipmentShipped", "S-1", 30),
        _notice("ShipmentAllocated", "S-2", 30),
    )

    summary = await get(api, "/ops/summary")

    assert sorted(
        (r["document"], r["type"], r["superseded_by"]) for r in summary["latest_refusals"]
    ) == [
        ("R-1", "ReceiptRejected", None),
        ("R-2", "ReceiptRejected", "ReceiptPosted"),
        ("S-1", "ShipmentAllocationFailed", "ShipmentShipped"),
        ("S-2", "ShipmentAllocationFailed", None),
    ]
    assert summary["superseded_refusals_in_window"] == 2


async def test_an_items_refusal_is_never_taken_for_an_adjustment_named_like_it(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """An item's refusal is listed under its LIC: an adjustment whose id is that LIC posting
    later does not supersede it (nor does one refused naming no adjustment id)."""
    w = Wire()
    item_refused = CommandRejected(
        message_id="rej-item",
        occurred_at=_at(50),
        command_id="c",
        lic=BOLT,
        command_type="UpsertItem",
        reason_code=ReasonCode.TRACKING_LOCKED,
        reason="tracking locked",
    )
    nameless = item_refused.model_copy(
        update={"message_id": "rej-nameless", "command_type": "AdjustInventory"}
    )
    await record(pool, w.item(BOLT), item_refused, nameless)
    await record(pool, _posted(w, BOLT, 10))

    summary = await get(api, "/ops/summary")

    assert [(r["type"], r["superseded_by"]) for r in summary["latest_refusals"]] == [
        ("CommandRejected:AdjustStock", None),
        ("CommandRejected:UpsertItem", None),
    ]


async def test_refusals_kept_before_the_upgrade_learn_the_kind_of_document_they_refused(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """Migration 017: a refusal recorded by an older ledger is joined to its document as one
    recorded today is (an adjustment's refused naming no adjustment id, shown under its LIC,
    names none)."""
    env = lotline_env(topics=False)
    files = db.migration_files(MIGRATIONS)
    before = [f for f in files if f.parent != MIGRATIONS or not f.name.startswith("017")]
    await db.migrate(env.dsn, SCHEMA, before)
    pool = await db.create_pool(env.dsn, SCHEMA)
    try:
        await pool.execute(
            "INSERT INTO ops_refusals (message_id, problem_no, type, document, lic,"
            " reason_code, reason, occurred_at) VALUES"
            " ('m1', 0, 'ReceiptRejected', 'R-1', NULL, 'LOT_REQUIRED', 'r', now()),"
            " ('m2', 0, 'ShipmentShipRefused', 'S-1', NULL, 'SHIPMENT_INCOMPLETE', 'r', now()),"
            " ('m3', 0, 'CommandRejected:AdjustStock', 'ADJ-1', 'B', 'INVALID_QUANTITY', 'r',"
            "  now()),"
            " ('m4', 0, 'CommandRejected:AdjustStock', 'B', 'B', 'INVALID_QUANTITY', 'r', now()),"
            " ('m5', 0, 'CommandRejected:UpsertItem', 'B', 'B', 'TRACKING_LOCKED', 'r', now())"
        )

        await db.migrate(env.dsn, SCHEMA, files)

        rows = await pool.fetch("SELECT message_id, document_kind FROM ops_refusals ORDER BY 1")
        assert [(r["message_id"], r["document_kind"]) for r in rows] == [
            ("m1", "receipt"),
            ("m2", "shipment"),
            ("m3", "adjustment"),
            ("m4", None),
            ("m5", None),
        ]
    finally:
        await pool.close()
