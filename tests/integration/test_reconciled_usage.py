"""Pricing a credit memo or an invoice from the ledger after the PO closed (R16): each usage
record `GET /usage` and `GET /documents/{id}` list carries its reconciled cost (booked + the
closings' reconciliation entries for it), its unit cost and whether it is final; a document's
summary adds them up. The ledger's handlers and read API on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from services.ledger import queries
from services.ledger.api import create_api
from services.ledger.schemas import per_unit
from tests.integration.test_ledger import Wire, api, get, mv, pool, record, record_costs

__all__ = ["api", "pool"]
D = Decimal
EV = "EV-ITEM"
RECEIVED, SHIPPED, RETURNED, CLOSED = (date(2024, 6, d) for d in (1, 3, 5, 10))


def _scenario(w: Wire) -> list[Any]:
    """PO-EV-1 received 40 at 2.00 into L-EV; SO-EV-1 ships 30 (60.00) and ACME returns 5 of
    them naming SO-EV-1 (−10.00); RTV-EV returns 2 to the vendor (4.00); 10 counted in
    under a beginning balance (no PO)."""
    return [
        w.item(EV),
        w.received(EV, "L-EV", 40, "2.00", [mv("L-EV", 40, "2.00")], po="PO-EV-1", on=RECEIVED),
        w.sale(EV, "SO-EV-1", [mv("L-EV", 30, "2.00")], customer="ACME", on=SHIPPED),
        w.returned(EV, "SO-EV-1", [mv("L-EV", 5, "2.00")], customer="ACME", on=RETURNED),
        w.vendor_return(EV, "RTV-EV", [mv("L-EV", 2, "2.00")], vendor="Acme Oil", on=RETURNED),
    ]


def _close(w: Wire, cost: str) -> Any:
    at = datetime(CLOSED.year, CLOSED.month, CLOSED.day, 12, tzinfo=UTC)
    return w.po("PO-EV-1", EV, act_unit_cost=D(cost), closed=True, occurred_at=at)


def _priced(u: dict[str, Any]) -> tuple[Any, ...]:
    return (
        u["source"],
        u["quantity"],
        u["total_cost"],
        u["reconciled_cost"],
        u["reconciled_unit_cost"],
        u["cost_final"],
    )


async def test_usage_shows_its_reconciled_cost_once_the_po_closed(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """Before the close each record's reconciled cost is its booked cost, not final; closed at
    2.20, the sale is 66.00 (+6.00), the customer return −11.00 (−1.00), the return to vendor
    4.40 (its vendor_return_reconciliation +0.40), each final; booked costs unchanged."""
    w = Wire()
    await record(pool, *_scenario(w))

    before = await get(api, "/usage", document="SO-EV-1")
    assert [_priced(u) for u in before] == [
        ("shipment", "30", "60.00", "60.00", "2.00", False),
        ("customer_return", "-5", "-10.00", "-10.00", "2.00", False),
    ]

    await record_costs(pool, _close(w, "2.20"))

    by_document = await get(api, "/usage", document="SO-EV-1")
    by_item = await get(api, "/usage", lic=EV)
    assert [_priced(u) for u in by_document] == [
        ("shipment", "30", "60.00", "66.00", "2.20", True),
        ("customer_return", "-5", "-10.00", "-11.00", "2.20", True),
    ]
    assert [_priced(u) for u in by_item] == [
        ("shipment", "30", "60.00", "66.00", "2.20", True),
        ("customer_return", "-5", "-10.00", "-11.00", "2.20", True),
        ("vendor_return", "2", "4.00", "4.40", "2.20", True),
    ]
    # The lot's cogs holds exactly those corrections.
    lot = await get(api, "/lots/L-EV")
    assert sorted((c["kind"], c["amount"]) for c in lot["cogs"] if c["kind"] != "usage") == [
        ("reconciliation", "-1.00"),
        ("reconciliation", "6.00"),
        ("vendor_return_reconciliation", "0.40"),
    ]


async def test_a_document_prices_its_usage_at_the_reconciled_cost(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """`/documents/SO-EV-1`: each record's usage carries the reconciled cost; the summary, whole
    and per item, adds them up (66.00 − 11.00) beside usage_cost (60.00 − 10.00)."""
    w = Wire()
    await record(pool, *_scenario(w))
    await record_costs(pool, _close(w, "2.20"))

    found = await get(api, "/documents/SO-EV-1")

    usage = [r["usage"] for r in found["records"] if r["usage"] is not None]
    assert [_priced(u) for u in usage] == [
        ("shipment", "30", "60.00", "66.00", "2.20", True),
        ("customer_return", "-5", "-10.00", "-11.00", "2.20", True),
    ]
    assert (found["usage_cost"], found["usage_cost_reconciled"]) == ("50.00", "55.00")
    [item] = found["items"]
    assert (item["lic"], item["usage_cost"], item["usage_cost_reconciled"]) == (
        EV,
        "50.00",
        "55.00",
    )


async def test_a_reopened_po_and_a_lot_of_no_po_are_not_final(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """A reopened PO keeps its reconciliation but its cost is no longer final; stock counted
    in under a beginning balance (no PO) is never final and reconciles nothing."""
    w = Wire()
    await record(pool, *_scenario(w))
    await record_costs(pool, _close(w, "2.20"))
    await record_costs(pool, w.po("PO-EV-1", EV, closed=False))
    await record(
        pool,
        w.adjusted(EV, "BB-EV", "beginning_balance", [mv("L-BB", 10, "3.00")], on=RECEIVED),
        w.sale(EV, "SO-EV-2", [mv("L-BB", 3, "3.00")], customer="ACME", on=SHIPPED),
    )

    reopened = await get(api, "/usage", document="SO-EV-1")
    no_po = await get(api, "/usage", document="SO-EV-2")

    assert [(u["reconciled_cost"], u["cost_final"]) for u in reopened] == [
        ("66.00", False),
        ("-11.00", False),
    ]
    assert [_priced(u) for u in no_po] == [("shipment", "3", "9.00", "9.00", "3.00", False)]


def test_the_reconciled_unit_cost_divides_exactly_and_is_null_for_no_quantity() -> None:
    assert per_unit(D("66.00"), D(30)) == D("2.20")
    assert per_unit(D(1), D(3)) == D("0." + "3" * 60)  # 60 digits, not the default 28
    assert per_unit(D("1"), D(0)) is None


async def test_reconciliations_are_read_through_cogs_by_usage(pool: asyncpg.Pool) -> None:
    """Each listed usage record's entries come off cogs_by_usage (a usage's few), and the
    lists still read their own index in order, unsorted."""
    async with pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")
        await conn.execute("SET enable_sort = off")
        plans: dict[str, str] = {}
        for name, (sql, args) in {
            "usage": queries.usage_query(
                None, lot_id=None, mfr_lot=None, serial=None, document="X"
            ),
            "usage of item": queries.usage_query(EV, lot_id=None, mfr_lot=None, serial=None),
            "records": queries.document_records_query("X"),
        }.items():
            rows = await conn.fetch(f"EXPLAIN {sql}", *args, 10, 0)
            plans[name] = "\n".join(r[0] for r in rows)
        summary = await conn.fetch(f"EXPLAIN {queries._DOCUMENT_ITEMS}", "X")
        plans["summary"] = "\n".join(r[0] for r in summary)

    for name, plan in plans.items():
        assert "cogs_by_usage" in plan, (name, plan)
        assert "Seq Scan" not in plan, (name, plan)
    for name in ("usage", "usage of item", "records"):
        assert "Sort" not in plans[name], plans[name]


def test_openapi_describes_the_reconciled_cost_quarantined_stock_and_a_pos_usage() -> None:
    """The OpenAPI: usage records show their reconciled fields (the unit cost too, computed);
    `/items/{lic}` names its `quarantined` stock; `/usage?document=` says a PO lists none."""
    spec = create_api(lambda: None).openapi()
    schemas = spec["components"]["schemas"]
    for name in ("UsageOut", "RecordUsage"):
        props = schemas[name]["properties"]
        assert {"reconciled_cost", "reconciled_unit_cost", "cost_final"} <= set(props), name
    item = " ".join(spec["paths"]["/items/{lic}"]["get"]["description"].split())
    assert "quarantined (the lots' stock on hand a quarantine in force holds" in item
    [document] = [
        p for p in spec["paths"]["/usage"]["get"]["parameters"] if p["name"] == "document"
    ]
    assert "a PO writes none" in document["description"]


async def test_a_po_s_document_shows_the_journal_of_its_closing(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R16: `/documents/PO-EV-1` after the close at 2.20 (0.20 over the 2.00 booked): its
    lot's 13 units still on hand gained 2.60 (`revaluation`, its cost_change record); the
    usage it had reconciled +5.40 (sale +6.00, customer return −1.00, return to vendor
    +0.40: `reconciliation`); together the closing's whole variance on the 40 received,
    40 × 0.20 = 8.00."""
    w = Wire()
    await record(pool, *_scenario(w))
    await record_costs(pool, _close(w, "2.20"))

    found = await get(api, "/documents/PO-EV-1")

    assert (found["revaluation"], found["reconciliation"]) == ("2.60", "5.40")
    assert D(found["revaluation"]) + D(found["reconciliation"]) == 40 * D("0.20")
    (item,) = found["items"]
    assert (item["revaluation"], item["reconciliation"]) == ("2.60", "5.40")
