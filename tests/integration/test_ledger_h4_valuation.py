"""Lot valuation read through the API for lots no purchase order made (R7, R11)."""

from __future__ import annotations

from datetime import date

import asyncpg
import httpx

from tests.integration.test_ledger import Wire, _figures, api, get, mv, pool, record  # noqa: F401


async def test_lots_no_purchase_made_accrue_nothing_while_a_purchase_lot_accrues(
    pool: asyncpg.Pool,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    """R7, R11: accrued inventory is what was received and not yet purchased (billed). A
    beginning balance (adjustment lot) and a production receipt buy nothing, so nothing of
    them awaits a bill: accrued 0, whatever they received or used. A purchase lot with no
    purchased quantity yet accrues all it received."""
    w = Wire()
    balance = w.adjusted(
        "BOLT", "ADJ-1", "beginning_balance", [mv("ADJ-1/BOLT/BB", 4, "5")], on=date(2024, 1, 2)
    ).model_copy(update={"lot_id": "ADJ-1/BOLT/BB"})
    produced = w.received(
        "BOLT", "MO-1/1", 6, "7", [mv("MO-1/1", 6, "7")], po="MO-1", on=date(2024, 1, 3)
    ).model_copy(update={"kind": "production"})
    bought = w.received(
        "BOLT", "IN-1/1", 2, "10", [mv("IN-1/1", 2, "10")], po="PO-1", on=date(2024, 1, 4)
    )
    await record(pool, w.item("BOLT"), balance, produced, bought)
    await record(
        pool,
        w.sale("BOLT", "OUT-1", [mv("ADJ-1/BOLT/BB", 1, "5")], customer="A", on=date(2024, 1, 5)),
        w.sale("BOLT", "OUT-2", [mv("MO-1/1", 2, "7")], customer="A", on=date(2024, 1, 5)),
    )

    lots = {
        lot_id: _figures((await get(api, f"/lots/{lot_id}"))["valuation"])
        for lot_id in ("ADJ-1/BOLT/BB", "MO-1/1", "IN-1/1")
    }

    assert {
        lot_id: (v["received"], v["accrued"], v["used"], v["current"]) for lot_id, v in lots.items()
    } == {
        "ADJ-1/BOLT/BB": (("4", "20"), ("0", "0"), ("1", "5"), ("3", "15")),
        "MO-1/1": (("6", "42"), ("0", "0"), ("2", "14"), ("4", "28")),
        "IN-1/1": (("2", "20"), ("2", "20"), ("0", "0"), ("2", "20")),
    }
