"""A PO close reconciles returns to vendor too, outside COGS, and dates each entry no earlier
than its usage: the ledger's handlers on a real PostgreSQL, read back through its API (R14,
R16)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from services.ledger.app import MIGRATIONS, SCHEMA
from shared import db
from tests.fixtures.infra import LotlineEnv
from tests.integration.test_ledger import CAM, Wire, api, get, mv, pool, record, record_costs

__all__ = ["api", "pool"]
D = Decimal
OIL = "OIL"
RECEIVED, RETURNED, SOLD = date(2024, 5, 1), date(2024, 5, 3), date(2024, 5, 4)


def _oil(w: Wire) -> list[Any]:
    """The accountant's case: OIL received on PO-400, 10 at 10.00; 2 returned to the vendor,
    3 sold."""
    return [
        w.item(OIL),
        w.received(OIL, "L-400", 10, "10.00", [mv("L-400", 10, "10.00")], po="PO-400", on=RECEIVED),
        w.vendor_return(OIL, "RTV-1", [mv("L-400", 2, "10.00")], vendor="Acme Oil", on=RETURNED),
        w.sale(OIL, "SO-1", [mv("L-400", 3, "10.00")], customer="ACME", on=SOLD),
    ]


def _close(w: Wire, po: str, lic: str, cost: str, on: date | None = None, **more: Any) -> Any:
    at = {} if on is None else {"occurred_at": datetime(on.year, on.month, on.day, 12, tzinfo=UTC)}
    return w.po(po, lic, act_unit_cost=D(cost), closed=True, **at, **more)


async def _entries(pool: asyncpg.Pool, lot_id: str) -> list[tuple[str, str, Decimal, date]]:
    rows = await pool.fetch(
        "SELECT kind, source, amount, entered_on FROM cogs"
        " WHERE lot_id = $1 AND kind <> 'usage' ORDER BY seq",
        lot_id,
    )
    return [(r["kind"], r["source"], r["amount"], r["entered_on"]) for r in rows]


async def _balance(api: httpx.AsyncClient, pool: asyncpg.Pool, lic: str, lot_id: str) -> Decimal:
    """The lot's usage records (`/usage`) and reconciliations, less its used value."""
    usage = await get(api, "/usage", lic=lic, lot_id=lot_id)
    lot = await get(api, f"/lots/{lot_id}")
    reconciled = sum((amount for _, _, amount, _ in await _entries(pool, lot_id)), D(0))
    booked = sum((D(u["total_cost"]) for u in usage), D(0)) + reconciled
    return booked - D(lot["valuation"]["used"]["value"])


async def test_a_close_reconciles_a_return_to_vendor_and_its_lot_balances(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R14, R16: closing PO-400 at 8.00 gives the return to vendor its entry (2 × −2.00, marked
    a vendor_return_reconciliation) beside the sale's (3 × −2.00), so the lot's usage records
    and reconciliations are its used value (5 × 8.00); the same close again adds nothing."""
    w = Wire()
    await record(pool, *_oil(w))
    close = _close(w, "PO-400", OIL, "8.00", ordered_quantity=D(10), purchased_quantity=D(8))

    await record_costs(pool, close)
    await record_costs(pool, _close(w, "PO-400", OIL, "8.00"))

    assert await _entries(pool, "L-400") == [
        ("vendor_return_reconciliation", "vendor_return", D(-4), close.occurred_at.date()),
        ("reconciliation", "shipment", D(-6), close.occurred_at.date()),
    ]
    assert await _balance(api, pool, OIL, "L-400") == 0
    trace = await get(api, "/trace", lic=OIL, lot_id="L-400")
    assert [(t["event_type"], D(t["cost"])) for t in trace["events"]][-1] == ("cost_change", -10)


async def test_cogs_figures_leave_returns_to_vendor_and_their_reconciliations_out(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R14: a return to vendor is no cost of goods sold: the lot's COGS entries and total are
    the sale's alone (3 × 8.00); `/usage` and the dashboard's usage of the day are what they
    were before the close (the records at their booked cost: a reconciliation is no usage)."""
    w = Wire()
    await record(pool, *_oil(w))
    before = {
        "usage": await get(api, "/usage", lic=OIL),
        "returned": (await get(api, "/ops/summary", as_of=RETURNED.isoformat()))["ledger"],
    }

    await record_costs(pool, _close(w, "PO-400", OIL, "8.00"))

    lot = await get(api, "/lots/L-400")
    cogs = [(c["kind"], c["source"], D(c["amount"])) for c in lot["cogs"]]
    assert ("usage", "shipment", 30) in cogs and ("reconciliation", "shipment", -6) in cogs
    assert {source for kind, source, _ in cogs if kind != "vendor_return_reconciliation"} == {
        "shipment"
    }
    assert D(lot["cogs_total"]) == 3 * 8
    # Usage stays at the cost it was booked at; only the reconciled figures move.
    moving = {"reconciled_cost", "reconciled_unit_cost", "cost_final"}
    booked = [
        {k: v for k, v in u.items() if k not in moving} for u in await get(api, "/usage", lic=OIL)
    ]
    assert booked == [{k: v for k, v in u.items() if k not in moving} for u in before["usage"]]
    returned = (await get(api, "/ops/summary", as_of=RETURNED.isoformat()))["ledger"]
    assert (returned["usage_records_today"], returned["usage_cost_today"]) == (
        before["returned"]["usage_records_today"],
        before["returned"]["usage_cost_today"],
    )


async def test_a_serial_returned_to_the_vendor_is_reconciled_to_the_last_millionth(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R14, R16: serials T-005 (returned to the vendor) and T-006 (sold) received at
    100.000001; the PO closes at 100: each gets its −0.000001 and the lot balances."""
    w = Wire()
    t5, t6 = (mv("L-T", 1, "100.000001", serial=s) for s in ("T-005", "T-006"))
    await record(
        pool,
        w.item(CAM, serialized=True),
        w.received(CAM, "L-T", 2, "100.000001", [t5, t6], po="PO-9", on=RECEIVED),
        w.vendor_return(CAM, "RTV-9", [t5], vendor="Axis", on=RETURNED),
        w.sale(CAM, "SO-9", [t6], customer="ACME", on=SOLD),
    )

    await record_costs(pool, _close(w, "PO-9", CAM, "100"))

    assert [(k, s, a) for k, s, a, _ in await _entries(pool, "L-T")] == [
        ("vendor_return_reconciliation", "vendor_return", D("-0.000001")),
        ("reconciliation", "shipment", D("-0.000001")),
    ]
    assert await _balance(api, pool, CAM, "L-T") == 0
    assert D((await get(api, "/lots/L-T"))["cogs_total"]) == 100


async def test_a_correction_reads_back_the_returns_reconciliation_and_corrects_from_it(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R16: PO-400 closed at 8.00, reopened at 9.00 and closed again: the return is corrected
    from what is booked for it (its record and its first entry, 2 × 8.00) to 2 × 9.00."""
    w = Wire()
    await record(pool, *_oil(w))
    await record_costs(pool, _close(w, "PO-400", OIL, "8.00"))
    await record_costs(pool, w.po("PO-400", OIL, act_unit_cost=D(9), closed=False))
    await record_costs(pool, w.po("PO-400", OIL, closed=True))

    assert [(k, a) for k, _, a, _ in await _entries(pool, "L-400")] == [
        ("vendor_return_reconciliation", D(-4)),
        ("reconciliation", D(-6)),
        ("vendor_return_reconciliation", D(2)),
        ("reconciliation", D(3)),
    ]
    assert await _balance(api, pool, OIL, "L-400") == 0


async def test_a_backdated_close_dates_each_entry_no_earlier_than_its_usage(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R16: a close dated 05-02, after the receipt but before the return (05-03) and the sale
    (05-04) it reconciles, dates their entries on their own dates; a usage before the close
    keeps the close's date."""
    w = Wire()
    await record(
        pool,
        *_oil(w),
        w.sale(OIL, "SO-0", [mv("L-400", 1, "10.00")], customer="ACME", on=RECEIVED),
    )

    await record_costs(pool, _close(w, "PO-400", OIL, "8.00", on=date(2024, 5, 2)))

    assert [(s, on) for _, s, _, on in await _entries(pool, "L-400")] == [
        ("vendor_return", RETURNED),
        ("shipment", SOLD),
        ("shipment", date(2024, 5, 2)),
    ]
    dates = {c["source"]: c["entered_on"] for c in (await get(api, "/lots/L-400"))["cogs"]}
    assert dates["vendor_return"] == RETURNED.isoformat()


async def test_migration_reconciles_returns_of_pos_closed_before_it_and_redates_entries(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """R16: a ledger that closed PO-400 (backdated to 05-02) before this version wrote no entry
    for the return and dated the sale's before it: the migration adds the return's entry, to
    the cost the closing applied and keyed by that closing, and takes the sale's date; a
    correction afterwards goes on from there."""
    env = lotline_env(topics=False)
    files = db.migration_files(MIGRATIONS)
    before = [f for f in files if f.parent != MIGRATIONS or not f.name.startswith("014")]
    await db.migrate(env.dsn, SCHEMA, before)
    pool = await db.create_pool(env.dsn, SCHEMA)
    try:
        w = Wire()
        await record(pool, *_oil(w))
        await record_costs(pool, _close(w, "PO-400", OIL, "8.00", on=date(2024, 5, 2)))
        # As the older ledger left it: no entry for the return, the sale's dated at the close.
        await pool.execute("DELETE FROM cogs WHERE source = 'vendor_return'")
        await pool.execute("UPDATE cogs SET entered_on = '2024-05-02' WHERE kind <> 'usage'")

        await db.migrate(env.dsn, SCHEMA, files)

        rows = await pool.fetch(
            "SELECT entry_key, kind, unit_cost, amount, po, entered_on FROM cogs"
            " WHERE kind <> 'usage' ORDER BY kind DESC"
        )
        assert [(r["kind"], r["unit_cost"], r["amount"], r["entered_on"]) for r in rows] == [
            ("vendor_return_reconciliation", D(-2), D(-4), RETURNED),
            ("reconciliation", D(-2), D(-6), SOLD),
        ]
        assert rows[0]["entry_key"].startswith("reconcile:PO-400:OIL:1:") and rows[0]["po"] == (
            "PO-400"
        )
        await record_costs(pool, _close(w, "PO-400", OIL, "9.00"))
        reconciled = await pool.fetchval(
            "SELECT sum(amount) FROM cogs WHERE source = 'vendor_return'"
        )
        assert 2 * 10 + reconciled == 2 * 9  # the return's record and entries
    finally:
        await pool.close()
