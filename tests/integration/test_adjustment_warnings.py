"""Adjustments accepted all the same, with their warnings, through the real broker and
PostgreSQL: allocation (with its intake) and the ledger run in process, as `lotline up` runs
them. A beginning balance without unit_cost is answered `InventoryAdjusted` saying the estimated
cost it took (`ESTIMATED_COST`); a count at an office typed "Main" for "MAIN" is answered saying
its stock went into no lot and naming the office that has the item (`STOCK_IN_NO_LOT`, R12).
The ledger books both as before: the warnings are an added field it does not need.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
from structlog.testing import capture_logs

from services.allocation.app import create_runtime as allocation
from services.ledger.app import create_runtime as ledger
from tests.fixtures.infra import LotlineEnv
from tests.integration.test_allocation_unknown_items import answers, publish
from tests.integration.test_receiving_unknown_items import running


def count(run: str, name: str, lic: str, office: str, kind: str, quantity: int) -> dict[str, Any]:
    return {
        "type": "AdjustInventory",
        "message_id": f"{name}-{run}",
        "adjustment_id": f"ADJ-{name}-{run}",
        "lic": lic,
        "office": office,
        "kind": kind,
        "quantity": quantity,
        "adjusted_on": "2026-11-30",
        "reason": "month-end count",
    }


async def ledger_row(env: LotlineEnv, sql: str, *args: Any, within: float = 60) -> asyncpg.Record:
    """The first row `sql` finds in the ledger's tables, once the ledger has booked it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    conn = await asyncpg.connect(env.dsn)
    try:
        while True:
            row = await conn.fetchrow(sql, *args)
            if row is not None:
                return row
            assert loop.time() < deadline, f"the ledger never booked: {sql} {args}"
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def test_accepted_adjustments_carry_their_warnings_and_the_ledger_books_them(
    lotline_env: Any,
) -> None:
    with capture_logs() as logs:
        async with running(lotline_env, allocation, ledger, wait=30) as (env, _):
            topics, run = env.settings.topics, uuid.uuid4().hex[:6]
            lic = f"BOLT-{run}"
            item = {
                "type": "UpsertItem",
                "message_id": f"item-{lic}",
                "lic": lic,
                "est_unit_cost": "2.5",
            }
            await publish(env, topics.items, lic, item)
            balance = count(run, "bb", lic, "MAIN", "beginning_balance", 5)
            await publish(env, topics.adjustments, balance["adjustment_id"], balance)
            item_upserted, balanced = await answers(env, lic, 2)
            # Sent once the balance is decided: topics are not ordered with each other.
            mistyped = count(run, "count", lic, "Main", "count", 3)
            await publish(env, topics.adjustments, mistyped["adjustment_id"], mistyped)
            counted = (await answers(env, lic, 3))[2]

            lot_id = f"ADJ-bb-{run}/{lic}/BB"
            lot = await ledger_row(
                env, "SELECT est_unit_cost FROM ledger.lots WHERE lot_id = $1", lot_id
            )
            usage = await ledger_row(
                env,
                "SELECT quantity FROM ledger.usage WHERE lic = $1 AND lot_id IS NULL",
                lic,
            )

    assert item_upserted["type"] == "ItemUpserted"
    assert balanced["type"] == "InventoryAdjusted" and balanced["lot_id"] == lot_id
    (estimated,) = balanced["warnings"]
    assert {k: v for k, v in estimated.items() if k != "message"} == {
        "code": "ESTIMATED_COST",
        "serial": None,
        "mfr_lot": None,
        "expires_on": None,
        "lot_id": lot_id,
        "office": "MAIN",
    }
    assert "estimated unit cost, 2.5 each" in estimated["message"]

    assert counted["type"] == "InventoryAdjusted", counted
    assert counted["office"] == "Main" and counted["unallocated"] == "3"
    (no_lot,) = counted["warnings"]
    assert (no_lot["code"], no_lot["office"], no_lot["lot_id"]) == ("STOCK_IN_NO_LOT", "Main", None)
    for said in ("3 units", "no inventory lot at office Main", "was office MAIN meant?"):
        assert said in no_lot["message"], (said, no_lot["message"])

    assert lot["est_unit_cost"] == 2.5
    assert usage["quantity"] == -3  # R12: unallocated stock is a negative usage record

    # Allocation logs what the clerk was told, as receiving logs a receipt's warnings.
    logged = [e for e in logs if e["event"] == "allocation.adjustment_posted_with_warnings"]
    assert [(e["log_level"], e["lic"], e["office"], e["warnings"]) for e in logged] == [
        ("warning", lic, "MAIN", [{"code": "ESTIMATED_COST", "lot_id": lot_id, "office": "MAIN"}]),
        ("warning", lic, "Main", [{"code": "STOCK_IN_NO_LOT", "office": "Main"}]),
    ]
