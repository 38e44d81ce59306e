"""Booking a sale of many serials against a real PostgreSQL (DESIGN.md §7, R10, R15): the
ledger reads, records and writes it in memory proportionate to its rows, never holding
copies of them. A sale of 100,000 serials took the ledger to 484 MB, close to its 500 MB
limit: each movement read as a pydantic model (1.3 KB), a COGS entry kept beside every usage
row, and every table's COPY records listed whole before writing.

Memory is measured with tracemalloc (Python's allocations, deterministic for one interpreter),
per movement, with room for the interpreter's variation: no timing."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from services.ledger import repository, translate
from services.ledger.app import create_runtime
from services.ledger.domain.model import Entries, Fact, Known
from services.ledger.domain.recording import record
from shared.config import Settings
from shared.contracts import events as e
from shared.contracts.codec import decode, encode
from tests.integration.test_ledger import CAM, Wire, mv, pool
from tests.integration.test_ledger import record as record_batch

__all__ = ["pool"]  # the fixture, for pytest

D = Decimal
UNITS = 20_000  # past repository.COPY_MIN_ROWS: the rows go in by COPY, as a big sale's do
MB = 1 << 20
WRITING = 5 * MB
"""The most writing a sale's rows may hold at once, whatever its size: COPY's send buffers
(about 2 MB here); listing a table's records at once took 8 MB for UNITS."""
SHIP_ON = date(2024, 2, 5)


def _serials() -> list[e.Movement]:
    return [mv("L1", 1, "12.5", serial=f"S{n:06d}", mfr_lot="M1") for n in range(UNITS)]


def _shipped(w: Wire) -> e.LineShipped:
    return w.shipped(CAM, "OUT-1", _serials(), customer="ACME", on=SHIP_ON)


@contextmanager
def _traced() -> Iterator[Callable[[], tuple[int, int]]]:
    """Python's allocations inside the block: (still held, most held at once) since it began."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    held: list[tuple[int, int]] = []
    try:
        yield lambda: held[0]
    finally:
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        held.append((current - base, peak - base))


def _ledger_adapter() -> Any:
    """The adapter the ledger's consumer reads `inventory.events` with."""
    runtime = create_runtime(Settings(KAFKA_BOOTSTRAP_SERVERS="localhost:9092"))
    (route,) = [r for r in runtime.routes if r.name == "ledger"]
    return route.adapter


def test_the_ledger_reads_a_big_sales_movements_in_a_fraction_of_a_models_memory() -> None:
    """§7: the events route's reading of a 20,000-serial shipment holds about 0.35 KB per
    movement (a pydantic model held 1.3 KB), and reads every field as the contract does."""
    adapter = _ledger_adapter()
    data = encode(_shipped(Wire()))

    with _traced() as held:
        event = decode(adapter, data, max_bytes=64 << 20, own=True)
    kept, _ = held()

    assert kept / UNITS < 600, f"{kept / UNITS:.0f} bytes per movement read"
    assert isinstance(event, e.LineShipped)
    first = event.movements[0]
    assert (first.lot_id, first.mfr_lot, first.serial, first.quantity, first.unit_cost) == (
        "L1",
        "M1",
        "S000000",
        D(1),
        D("12.5"),
    )


def test_recording_a_big_sale_keeps_one_row_per_record_and_no_cogs_copies() -> None:
    """§7, R10: the rows of a 20,000-serial shipment (a usage and a transaction record and a
    serial's state each) take under 1 KB per movement; the COGS entries, one per usage, are
    derived from the usage rows as they are written (kept, they took 0.5 KB more each)."""
    fact = translate.to_fact(_shipped(Wire()))
    assert isinstance(fact, Fact)

    with _traced() as held:
        entries = record(Known(), [fact])
    kept, _ = held()

    assert kept / UNITS < 1000, f"{kept / UNITS:.0f} bytes per movement recorded"
    assert (len(entries.usage), len(entries.transactions), entries.count_cogs()) == (
        UNITS,
        UNITS,
        UNITS,
    )
    assert [c.amount for c in entries.cogs] == [D("12.5")] * UNITS


async def _sold(pool: asyncpg.Pool) -> Entries:
    """The receipt and allocation of UNITS serials booked; the shipment's entries, recorded."""
    w = Wire()
    serials = _serials()
    await record_batch(
        pool,
        w.item(CAM, serialized=True, track_mfr_lot=True),
        w.received(CAM, "L1", UNITS, "12.5", serials, po="PO-1", on=date(2024, 2, 1)),
        w.allocated(CAM, "OUT-1", serials, customer="ACME", on=SHIP_ON),
    )
    fact = translate.to_fact(_shipped(w))
    assert isinstance(fact, Fact)
    return record(Known(), [fact])


async def test_a_big_sale_is_written_by_copy_without_listing_its_records(
    pool: asyncpg.Pool,
) -> None:
    """§7: writing a 20,000-serial shipment's rows (by COPY) builds each row's record as it
    is sent, not a list of a table's records at once, so it holds no more than `WRITING`;
    and it writes every usage, transaction and COGS entry at its cost."""
    entries = await _sold(pool)

    async with pool.acquire() as conn, conn.transaction():
        with _traced() as held:
            await repository.write_entries(conn, entries)  # type: ignore[arg-type]
    _, peak = held()

    assert peak < WRITING, f"{peak / MB:.1f} MB held while writing"
    async with pool.acquire() as conn:
        usage = await conn.fetchrow(
            "SELECT count(*) AS n, sum(total_cost) AS cost FROM ledger.usage"
            " WHERE document = 'OUT-1'"
        )
        cogs = await conn.fetchrow(
            "SELECT count(*) AS n, sum(amount) AS amount, min(entry_key) AS first"
            " FROM ledger.cogs WHERE kind = 'usage'"
        )
        shipped = await conn.fetchval(
            "SELECT count(*) FROM ledger.transactions WHERE event_type = 'shipment'"
            " AND stock_change = -1 AND cost = 12.5"
        )
    assert usage is not None and cogs is not None
    assert (usage["n"], usage["cost"]) == (UNITS, D("12.5") * UNITS)
    assert (cogs["n"], cogs["amount"]) == (UNITS, D("12.5") * UNITS)
    assert cogs["first"] == f"usage:{entries.usage[0].usage_id}"
    assert shipped == UNITS
