"""Trace latency with millions of usage rows: `python -m services.ledger.bench DSN [--usage N]`.

Fills a fresh database's `ledger` schema with synthetic history (set-based `generate_series`,
not the consumer path: this measures reads), then answers traces of random manufacturer lots
and serials through the read API (in-process ASGI, JSON and CSV) and prints p50/p99.

Shape: `--lots` inventory lots over 1,000 LICs, each lot one manufacturer lot; every usage row
is a shipment with its allocation (two transaction records) and one COGS entry; every other
usage row is of a serialized unit. A trace of one manufacturer lot returns its receipt and
about 2 × usage / lots events.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time

import asyncpg
import httpx

from services.ledger.api import create_api
from services.ledger.app import MIGRATIONS, SCHEMA
from shared import db

_FILL = """
INSERT INTO items (lic, description, uom, track_mfr_lot, serialized, perishable, est_unit_cost)
SELECT 'LIC-' || i, 'Item ' || i, 'Each', true, false, true, 2.5
FROM generate_series(0, 999) AS i;

INSERT INTO lots (lot_id, lic, office, kind, reference, document, line_no, received_on,
                  est_unit_cost, received_qty, used_qty, event_id)
SELECT 'L-' || i, 'LIC-' || (i % 1000), 'AI', 'purchase', 'PO-' || (i / 10), 'IN-' || i, 1,
       date '2024-01-01' + (i % 300), 2.5, 1000000, 0, 'r-' || i
FROM generate_series(0, {lots} - 1) AS i;

INSERT INTO mfr_lots (lot_id, mfr_lot, lic, expires_on, received_qty)
SELECT 'L-' || i, 'M-' || i, 'LIC-' || (i % 1000), date '2026-01-01', 1000000
FROM generate_series(0, {lots} - 1) AS i;

INSERT INTO transactions (txn_id, lic, lot_id, mfr_lot, serial, expires_on, event_type, record,
                          quantity, stock_change, unit_cost, cost, office, document, line_no,
                          counterparty, reference, occurred_on, event_id)
SELECT 'r-' || i || '/0', 'LIC-' || (i % 1000), 'L-' || i, 'M-' || i, NULL, date '2026-01-01',
       'receipt', 'lot', 1000000, 1000000, 2.5, 2500000, 'AI', 'IN-' || i, 1, NULL,
       'PO-' || (i / 10), date '2024-01-01' + (i % 300), 'r-' || i
FROM generate_series(0, {lots} - 1) AS i;

INSERT INTO transactions (txn_id, lic, lot_id, mfr_lot, serial, expires_on, event_type, record,
                          quantity, stock_change, unit_cost, cost, office, document, line_no,
                          counterparty, reference, occurred_on, event_id)
SELECT kind || '-' || u || '/0', 'LIC-' || ((u % {lots}) % 1000), 'L-' || (u % {lots}),
       'M-' || (u % {lots}), CASE WHEN u % 2 = 0 THEN 'S-' || u END, date '2026-01-01',
       CASE kind WHEN 'a' THEN 'allocation' ELSE 'shipment' END,
       CASE WHEN u % 2 = 0 THEN 'serial' ELSE 'lot' END,
       1, CASE kind WHEN 'a' THEN 0 ELSE -1 END, 2.5, 2.5, 'AI', 'OUT-' || u, 1,
       'Customer ' || (u % 5000), NULL, date '2024-02-01' + (u % 300), kind || '-' || u
FROM generate_series(0, {usage} - 1) AS u, (VALUES ('a'), ('s')) AS k(kind);

INSERT INTO usage (usage_id, lic, lot_id, mfr_lot, serial, expires_on, source, quantity,
                   unit_cost, est_unit_cost, total_cost, office, document, line_no,
                   counterparty, used_on, event_id)
SELECT 's-' || u || '/0', 'LIC-' || ((u % {lots}) % 1000), 'L-' || (u % {lots}),
       'M-' || (u % {lots}), CASE WHEN u % 2 = 0 THEN 'S-' || u END, date '2026-01-01',
       'shipment', 1, 2.5, 2.5, 2.5, 'AI', 'OUT-' || u, 1, 'Customer ' || (u % 5000),
       date '2024-02-01' + (u % 300), 's-' || u
FROM generate_series(0, {usage} - 1) AS u;

INSERT INTO cogs (entry_key, lic, lot_id, usage_id, kind, source, quantity, unit_cost, amount,
                  entered_on, event_id)
SELECT 'usage:s-' || u || '/0', 'LIC-' || ((u % {lots}) % 1000), 'L-' || (u % {lots}),
       's-' || u || '/0', 'usage', 'shipment', 1, 2.5, 2.5, date '2024-02-01' + (u % 300),
       's-' || u
FROM generate_series(0, {usage} - 1) AS u;

ANALYZE;
"""


async def fill(dsn: str, usage: int, lots: int) -> float:
    await db.migrate(dsn, SCHEMA, db.migration_files(MIGRATIONS))
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        started = time.perf_counter()
        await conn.execute(_FILL.format(usage=int(usage), lots=int(lots)))
        return time.perf_counter() - started
    finally:
        await conn.close()


async def measure(dsn: str, usage: int, lots: int, samples: int) -> None:
    pool = await db.create_pool(dsn, SCHEMA)
    app = create_api(lambda: pool)
    rng = random.Random(7)
    timings: dict[str, list[float]] = {"mfr_lot json": [], "mfr_lot csv": [], "serial json": []}
    events: list[int] = []
    try:
        counts = await pool.fetchrow(
            "SELECT (SELECT count(*) FROM usage) AS usage,"
            " (SELECT count(*) FROM transactions) AS transactions"
        )
        assert counts is not None
        print(f"rows: usage {counts['usage']:,}, transactions {counts['transactions']:,}")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as api:
            for _ in range(samples):
                lot = rng.randrange(lots)
                lic = f"LIC-{lot % 1000}"
                for label, params in (
                    ("mfr_lot json", {"lic": lic, "mfr_lot": f"M-{lot}"}),
                    ("mfr_lot csv", {"lic": lic, "mfr_lot": f"M-{lot}", "format": "csv"}),
                ):
                    started = time.perf_counter()
                    response = await api.get("/trace", params=params)
                    timings[label].append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
                    if label == "mfr_lot json":
                        events.append(len(response.json()["events"]))
                unit = rng.randrange(usage // 2) * 2
                params = {"lic": f"LIC-{(unit % lots) % 1000}", "serial": f"S-{unit}"}
                started = time.perf_counter()
                response = await api.get("/trace", params=params)
                timings["serial json"].append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
    finally:
        await pool.close()
    print(f"events per mfr-lot trace: mean {statistics.mean(events):.0f}")
    for label, values in timings.items():
        values.sort()
        p50 = values[len(values) // 2] * 1000
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))] * 1000
        print(f"GET /trace {label:13s} n={len(values)}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms")


async def amain(args: argparse.Namespace) -> None:
    if not args.no_fill:
        seconds = await fill(args.dsn, args.usage, args.lots)
        print(f"filled {args.usage:,} usage rows over {args.lots:,} lots in {seconds:.0f} s")
    await measure(args.dsn, args.usage, args.lots, args.samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dsn", help="a fresh database (its ledger schema is filled)")
    parser.add_argument("--usage", type=int, default=2_000_000)
    parser.add_argument("--lots", type=int, default=50_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--no-fill", action="store_true", help="measure an already filled one")
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
