"""Scenario 4: serial-heavy receipts, and the sale of one of them, the case where peers time out.

On a fresh deployment with the four services running (warmed up by a one-serial receipt), one
ShipmentReceived line of N serials typed as a span (`SP0000001...SP0100000`), then one of N
listed serials, each on its own serialized LIC; then a document of two lines, N/2 serials each
as spans on two LICs, which allocation holds until both are accepted (received whole or not at
all: one more round trip and the kept events). Measured: publish → ReceiptPosted (the status
record's broker timestamp), publish → the ledger holding all N serials (polled every 250 ms),
and each service's peak resident memory while the receipt went through (sampled every 50 ms).
After the span receipt, the way out: one sale of all N serials without picks (allocation takes
them first-in-first-out) and its ship request, measured publish → ShipmentAllocated, ship
request → ShipmentShipped and ship request → the ledger holding N usage records (each status
and decision event then lists N serial movements, about 11 MB for 100,000).

The time is compared with the floor of writing N rows with COPY at the ceiling rate.
"""

from __future__ import annotations

import time

import asyncpg
from aiokafka import AIOKafkaProducer

from bench import workload
from bench.infra import BenchError, Services, new_deployment, wait_until
from bench.kafka_io import Tail, plain_producer, publish, topic_sizes
from bench.pathwatch import (
    ALLOCATED,
    FAILED,
    RECEIPT_POSTED,
    RECEIPT_REJECTED,
    SHIP_REFUSED,
    SHIPPED,
    StatusBook,
)
from bench.report import ScenarioResult, Target
from bench.scenarios import Context
from bench.sizes import Sizes

SERVICES = ("receiving", "shipping", "allocation", "ledger")
RSS_LIMIT_MB = 500


Line = tuple[str, int, str | list[str]]
"""A receipt line: LIC, quantity, serials."""
BIG, BIG2 = "SER-BIG", "SER-BIG2"


def steps(_sizes: Sizes) -> int:
    return 7


def _receipt(shipment_id: str, lines: list[Line]) -> bytes:
    return workload.encode(
        "ShipmentReceived",
        message_id=f"rcv-{shipment_id}",
        shipment_id=shipment_id,
        office=workload.OFFICE,
        source="purchase",
        reference=shipment_id,
        received_on=workload.RECEIVED_ON,
        lines=[
            {
                "line_no": n,
                "lic": lic,
                "quantity": quantity,
                "unit_cost": "9.50",
                "serials": serials,
            }
            for n, (lic, quantity, serials) in enumerate(lines, start=1)
        ],
    )


async def run(ctx: Context, result: ScenarioResult) -> None:
    n = ctx.sizes.receipt_serials
    if "copy_rows_s" in ctx.ceilings:
        floor = n / ctx.ceilings["copy_rows_s"]["value"]
        ctx.ceiling(f"copy_floor_{n}_s", floor, "s", f"COPY of {n:,} rows at the COPY ceiling")
    half = n // 2
    cases: list[tuple[str, list[Line]]] = [
        ("span", [(BIG, n, f"SP{1:07d}...SP{n:07d}")]),
        ("list", [(BIG, n, [f"SL{i:07d}" for i in range(1, n + 1)])]),
        (
            "2 spans",
            [
                (BIG, half, f"SA{1:07d}...SA{half:07d}"),
                (BIG2, n - half, f"SB{1:07d}...SB{n - half:07d}"),
            ],
        ),
    ]
    failures = []
    for label, lines in cases:
        try:
            await _receive(ctx, result, label, lines)
        except BenchError as exc:
            failures.append(f"{label} of {n:,}: {exc}")
            result.figure(
                f"{label} of {n:,}: publish → ReceiptPosted",
                None,
                "s",
                target=Target("value<=", 5.0, f"{n:,}-serial receipt posted in ≤ 5 s"),
                note=f"not posted within {ctx.sizes.receipt_patience:.0f} s: see the error",
                missed=True,
            )
    if failures:
        raise BenchError("\n".join(failures))


async def _receive(ctx: Context, result: ScenarioResult, label: str, lines: list[Line]) -> None:
    """One receipt of N serials on its own fresh deployment (a failure cannot spill over)."""
    n = ctx.sizes.receipt_serials
    key = label.replace(" ", "_")
    deployment = await new_deployment(ctx.infra, f"serials_{key}")
    topics = deployment.topics
    book = StatusBook()
    tail = Tail(ctx.infra.bootstrap, ctx.infra.kafka_options, [topics.status], book.on_record)
    services = Services(deployment, SERVICES)
    producer = plain_producer(ctx.infra.bootstrap, ctx.infra.kafka_options)
    conn: asyncpg.Connection | None = None
    patience = ctx.sizes.receipt_patience
    try:
        await tail.start()
        await producer.start()
        conn = await asyncpg.connect(deployment.dsn)
        ctx.progress.step(f"serial receipt ({label}): items and warm-up")
        items = [workload.Lic(code, "serial") for code in ("SER-WARM", BIG, BIG2)]
        await publish(
            producer,
            topics.items,
            [(i.code, workload.upsert_item(i, f"item-{i.code}")) for i in items],
        )
        await _await_items(conn, len(items), services)
        await publish(
            producer, topics.receipts, [("PO-WARM", _receipt("PO-WARM", [("SER-WARM", 1, "W1")]))]
        )
        await _await_status(book, "PO-WARM", tail, services, timeout=60)
        ctx.progress.step(f"serial receipt: {n:,} serials ({label})")
        services.reset_peaks()
        shipment_id = f"PO-{key.upper()}"
        body = _receipt(shipment_id, lines)
        published = time.time()
        await publish(producer, topics.receipts, [(shipment_id, body)])
        try:
            posted = await _await_status(book, shipment_id, tail, services, timeout=patience)
            lics = [lic for lic, _, _ in lines]
            recorded = await _await_ledger(conn, "serials", lics, n, services, timeout=patience)
        finally:
            peaks = services.peak_rss_mb()
            worst = max(peaks, key=lambda k: peaks[k])
            result.figure(
                f"{label} of {n:,}: peak RSS (largest: {worst})",
                peaks[worst],
                "MB",
                target=Target("value<=", RSS_LIMIT_MB, f"no service above {RSS_LIMIT_MB} MB RSS"),
                note=", ".join(f"{k} {v:.0f}" for k, v in peaks.items()),
            )
            result.details[f"{label} peak_rss_mb"] = peaks
            result.details[f"{label} service_cpu_seconds"] = services.cpu_seconds()
        result.figure(
            f"{label} of {n:,}: publish → ReceiptPosted",
            posted - published,
            "s",
            ceiling=f"copy_floor_{n}_s",
            target=Target("value<=", 5.0, f"{n:,}-serial receipt posted in ≤ 5 s"),
            note=f"{len(body):,} B document"
            + (f", {len(lines)} lines held until all were accepted" if len(lines) > 1 else ""),
        )
        result.figure(
            f"{label} of {n:,}: publish → ledger holds every serial",
            recorded - published,
            "s",
            ceiling=f"copy_floor_{n}_s",
        )
        if label == "span":
            await _ship_all(ctx, result, conn, book, tail, services, producer, n)
        result.details[label] = {
            "serials": n,
            "lines": len(lines),
            "document_bytes": len(body),
            "posted_s": posted - published,
            "ledger_s": recorded - published,
        }
        held = await topic_sizes(
            ctx.infra.bootstrap,
            ctx.infra.kafka_options,
            [topics.receipts, topics.commands, topics.events, topics.status],
        )
        result.topics_held.update({f"{label}: {t}": c for t, c in held.items()})
    finally:
        if conn is not None:
            await conn.close()
        await producer.stop()
        await tail.stop()
        await services.stop(grace=1.0)
        await deployment.drop()


async def _ship_all(
    ctx: Context,
    result: ScenarioResult,
    conn: asyncpg.Connection,
    book: StatusBook,
    tail: Tail,
    services: Services,
    producer: AIOKafkaProducer,
    n: int,
) -> None:
    """The way out: one sale of all N serials of the receipt, without picks (allocation takes
    them first-in-first-out), then its ship request. Measured: publish → ShipmentAllocated,
    ship request → ShipmentShipped, ship request → the ledger holding N usage records."""
    ctx.progress.step(f"serial shipment: {n:,} serials")
    patience = ctx.sizes.receipt_patience
    shipment_id = "SO-BIG"
    request = workload.encode(
        "ShipmentRequested",
        message_id=f"req-{shipment_id}",
        shipment_id=shipment_id,
        office=workload.OFFICE,
        kind="sale",
        customer="Customer BIG",
        ship_on=workload.SHIP_ON,
        lines=[{"line_no": 1, "lic": BIG, "quantity": n}],
    )
    services.reset_peaks()
    published = time.time()
    await publish(producer, services.deployment.topics.shipments, [(shipment_id, request)])
    allocated = await _await_answer(
        book, shipment_id, ALLOCATED, (FAILED,), tail, services, timeout=patience
    )
    asked = time.time()
    await publish(
        producer,
        services.deployment.topics.shipments,
        [(shipment_id, workload.ship_request(shipment_id, asked))],
    )
    shipped = await _await_answer(
        book, shipment_id, SHIPPED, (SHIP_REFUSED,), tail, services, timeout=patience
    )

    recorded = await _await_ledger(
        conn, "usage", [BIG], n, services, timeout=patience, what="usage records"
    )
    peaks = services.peak_rss_mb()
    worst = max(peaks, key=lambda k: peaks[k])
    result.figure(f"sale of {n:,} serials: publish → ShipmentAllocated", allocated - published, "s")
    result.figure(f"sale of {n:,} serials: ship request → ShipmentShipped", shipped - asked, "s")
    result.figure(
        f"sale of {n:,} serials: ship request → ledger holds every usage record",
        recorded - asked,
        "s",
    )
    result.figure(
        f"sale of {n:,} serials: peak RSS (largest: {worst})",
        peaks[worst],
        "MB",
        target=Target("value<=", RSS_LIMIT_MB, f"no service above {RSS_LIMIT_MB} MB RSS"),
        note=", ".join(f"{k} {v:.0f}" for k, v in peaks.items()),
    )


async def _await_answer(
    book: StatusBook,
    shipment_id: str,
    wanted: str,
    refusals: tuple[str, ...],
    tail: Tail,
    services: Services,
    *,
    timeout: float,
) -> float:
    """The broker timestamp of the document's `wanted` status; one of `refusals` (or another
    status) instead is an error."""

    async def answered() -> tuple[bool, object]:
        tail.check()
        seen = book.seen.get(shipment_id, {})
        return wanted in seen or any(r in seen for r in refusals), sorted(seen) or "no status yet"

    await wait_until(f"the status of {shipment_id}", answered, timeout=timeout, services=services)
    at = book.at(shipment_id, wanted)
    if at is None:
        refused = [r for r in refusals if book.at(shipment_id, r)]
        if refused:
            raise BenchError(f"{shipment_id}: {refused[0]}, {book.reasons.get(shipment_id)}")
        raise BenchError(f"{shipment_id} answered with {sorted(book.seen[shipment_id])}")
    return at[0]


async def _await_items(conn: asyncpg.Connection, wanted: int, services: Services) -> None:
    async def known() -> tuple[bool, object]:
        try:
            count = await conn.fetchval("SELECT count(*) FROM receiving.items")
        except asyncpg.UndefinedTableError:
            return False, "receiving has not migrated yet"
        return count >= wanted, f"{count} items known to receiving"

    await wait_until("the items in receiving's read model", known, timeout=60, services=services)


async def _await_status(
    book: StatusBook, shipment_id: str, tail: Tail, services: Services, *, timeout: float
) -> float:
    return await _await_answer(
        book, shipment_id, RECEIPT_POSTED, (RECEIPT_REJECTED,), tail, services, timeout=timeout
    )


async def _await_ledger(
    conn: asyncpg.Connection,
    table: str,
    lics: list[str],
    n: int,
    services: Services,
    *,
    timeout: float,
    what: str = "serials",
) -> float:
    """When the ledger's `table` holds `n` rows of `lics` (polled every 250 ms)."""

    async def recorded() -> tuple[bool, object]:
        held = await conn.fetchval(
            f"SELECT count(*) FROM ledger.{table} WHERE lic = ANY($1::text[])", lics
        )
        return held >= n, f"{held:,} {what} in the ledger"

    await wait_until(
        f"the ledger to hold the {n:,} {what} of {', '.join(lics)}",
        recorded,
        timeout=timeout,
        services=services,
        interval=0.25,
    )
    return time.time()
