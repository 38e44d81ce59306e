"""Scenario 4: serial-heavy receipts, the case where peers time out.

On a fresh deployment with the four services running (warmed up by a one-serial receipt), one
ShipmentReceived line of N serials typed as a span (`SP0000001...SP0100000`), then one of N
listed serials, each on its own serialized LIC; then a document of two lines, N/2 serials each
as spans on two LICs, which allocation holds until both are accepted (received whole or not at
all: one more round trip and the kept events). Measured: publish → ReceiptPosted (the status
record's broker timestamp), publish → the ledger holding all N serials (polled every 250 ms),
and each service's peak resident memory while the receipt went through (sampled every 50 ms).

The time is compared with the floor of writing N rows with COPY at the ceiling rate.
"""

from __future__ import annotations

import time

import asyncpg

from bench import workload
from bench.infra import BenchError, Services, new_deployment, wait_until
from bench.kafka_io import Tail, plain_producer, publish, topic_sizes
from bench.pathwatch import RECEIPT_POSTED, RECEIPT_REJECTED, StatusBook
from bench.report import ScenarioResult, Target
from bench.scenarios import Context
from bench.sizes import Sizes

SERVICES = ("receiving", "shipping", "allocation", "ledger")
RSS_LIMIT_MB = 500


Line = tuple[str, int, str | list[str]]
"""A receipt line: LIC, quantity, serials."""
BIG, BIG2 = "SER-BIG", "SER-BIG2"


def steps(_sizes: Sizes) -> int:
    return 6


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
            recorded = await _await_ledger(conn, lics, n, services, timeout=patience)
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
    async def answered() -> tuple[bool, object]:
        tail.check()
        return bool(book.seen.get(shipment_id)), "no status yet"

    await wait_until(
        f"the status of receipt {shipment_id}", answered, timeout=timeout, services=services
    )
    if book.at(shipment_id, RECEIPT_REJECTED):
        raise BenchError(f"receipt {shipment_id} was rejected: {book.reasons.get(shipment_id)}")
    posted = book.at(shipment_id, RECEIPT_POSTED)
    if posted is None:
        raise BenchError(f"receipt {shipment_id} answered with {sorted(book.seen[shipment_id])}")
    return posted[0]


async def _await_ledger(
    conn: asyncpg.Connection, lics: list[str], n: int, services: Services, *, timeout: float
) -> float:
    async def recorded() -> tuple[bool, object]:
        held = await conn.fetchval(
            "SELECT count(*) FROM ledger.serials WHERE lic = ANY($1::text[])", lics
        )
        return held >= n, f"{held:,} serials in the ledger"

    await wait_until(
        f"the ledger to hold the {n:,} serials of {', '.join(lics)}",
        recorded,
        timeout=timeout,
        services=services,
        interval=0.25,
    )
    return time.time()
