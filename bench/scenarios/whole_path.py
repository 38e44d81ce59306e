"""Scenario 3: the whole path, four services as processes, an upstream publisher process.

At the default sizes each run starts on a fresh deployment (database, topics, the four
services; `--quick` runs share one, in order): items are
published on `inventory.items`, every LIC is stocked by ShipmentReceived documents (serials as
spans), one warm-up shipment goes all the way through. Then the publisher process publishes
ShipmentRequested documents of 1–3 lines (`occurred_at` = publish instant) either as fast as it
can (`fast`) or at a fixed offered rate of lines/s for `rate_seconds`. As each ShipmentAllocated
appears on `inventory.status`, the publisher is asked to send that shipment's
ShipmentShipRequested, as an upstream system would.

A run waits at most `drain_seconds` after publishing ends: a path that cannot keep up is
measured, not waited for. Documents still pending then are counted (their latency so far enters
the percentiles, which become lower bounds), and so are events the ledger has not recorded.
The CPU seconds every process used during the run (services, broker, PostgreSQL, this process's
observers) are reported with the cores they kept busy.

Per run: lines/s allocated ((allocated lines) / (first publish → last ShipmentAllocated)),
publish→ShipmentAllocated latency (status record's broker timestamp − occurred_at: three
consumer hops, shipping → allocation → shipping), ShipmentShipped/s, ship request→shipped
latency, ledger usage records/s, ledger lag (see `bench.pathwatch`), refusals.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from bench import stats, workload
from bench.infra import (
    STUCK_AFTER,
    BenchError,
    Deployment,
    Services,
    cpu_delta,
    new_deployment,
    wait_until,
)
from bench.kafka_io import Record, Tail, plain_producer, publish, topic_sizes
from bench.pathwatch import (
    ALLOCATED,
    FAILED,
    RECEIPT_POSTED,
    RECEIPT_REJECTED,
    SHIP_REFUSED,
    SHIPPED,
    EventClock,
    HopClock,
    LedgerWatch,
    StatusBook,
    outbox_breakdown,
)
from bench.publisher import Publisher
from bench.report import ScenarioResult, Target
from bench.scenarios import Context
from bench.sizes import Sizes

SERVICES = ("receiving", "shipping", "allocation", "ledger")
MEAN_UNITS_PER_LINE = 4 / 3
# The observers read broker timestamps, so how often they fetch changes no latency measured;
# every 100 ms rather than 20 they cost the broker (which the path shares) less: at 100 lines/s
# the bench's own CPU fell from 0.09-0.10 to 0.05-0.06 cores, the broker's 0.45-0.47 to 0.36-0.43.
OBSERVER_FETCH_MAX_WAIT_MS = 100


def steps(sizes: Sizes) -> int:
    return 2 * (1 + len(sizes.rates))


class Path:
    """One deployment with its services and observers."""

    def __init__(self, deployment: Deployment, publisher: Publisher) -> None:
        self.deployment = deployment
        self.publisher = publisher
        self.book = StatusBook()
        self.hops = HopClock()
        self.clock = EventClock(hops=self.hops)
        topics = deployment.topics
        infra = deployment.infra
        # One observer consumer for the three topics: every consumer costs the embedded broker
        # a fetch each fetch_max_wait_ms, CPU the measured services would otherwise have.
        self._observers: dict[str, Callable[[Record, float], None]] = {
            topics.status: self.book.on_record,
            topics.events: self.clock.on_record,
            topics.commands: self.hops.on_command,
        }
        self.tail = Tail(
            infra.bootstrap,
            infra.kafka_options,
            list(self._observers),
            self._seen,
            fetch_max_wait_ms=OBSERVER_FETCH_MAX_WAIT_MS,
        )
        self.ledger = LedgerWatch(deployment.dsn, topics.events)
        self.services: Services | None = None
        self._to_ship: list[str] = []
        self._forwarder: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self) -> None:
        self.services = Services(self.deployment, SERVICES)
        await self.tail.start()
        await self.ledger.start()
        self.book.on_allocated = self._to_ship.append
        self._forwarder = asyncio.create_task(self._forward_ship_requests())

    def _seen(self, record: Record, seen_at: float) -> None:
        self._observers[record.topic](record, seen_at)

    async def _forward_ship_requests(self) -> None:
        topic = self.deployment.topics.shipments
        while True:
            if self._to_ship:
                ids, self._to_ship[:] = list(self._to_ship), []
                self.publisher.submit({"op": "ship", "topic": topic, "ids": ids})
            await asyncio.sleep(0.02)

    def check(self) -> None:
        self.tail.check()
        self.ledger.check()
        if self.services is not None:
            self.services.check()

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._forwarder is not None:
            self._forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._forwarder
        await self.ledger.stop()
        await self.tail.stop()
        if self.services is not None:
            await self.services.stop(grace=1.0)

    async def settle(self, check: Callable[[], bool], deadline: float) -> bool:
        """Wait until `check()` or the monotonic `deadline`; whether it came true."""
        while not check():
            self.check()
            if self.services is not None:
                self.services.check(repeated_errors=STUCK_AFTER)
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def wait(
        self,
        what: str,
        check: Callable[[], bool | Awaitable[bool]],
        seen: Callable[[], object],
        timeout: float,
    ) -> None:
        async def probe() -> tuple[bool, object]:
            self.check()
            done = check()
            if inspect.isawaitable(done):
                done = await done
            return bool(done), seen()

        await wait_until(what, probe, timeout=timeout, services=self.services, interval=0.1)


async def run(ctx: Context, result: ScenarioResult) -> None:
    runs: list[tuple[str, int]] = [("fast", 0)] + [(f"{r}/s", r) for r in ctx.sizes.rates]
    publisher = Publisher(ctx.infra.bootstrap)
    await publisher.start()
    try:
        if ctx.sizes.fresh_path_per_run:
            for label, offered in runs:
                await _runs_on_one_deployment(ctx, result, publisher, [(label, offered)])
        else:
            await _runs_on_one_deployment(ctx, result, publisher, runs)
    finally:
        await publisher.close()
    fresh = (
        "Each run starts on a fresh deployment (database, topics, services)"
        if ctx.sizes.fresh_path_per_run
        else "The runs share one fresh deployment (database, topics, services), one after another"
    )
    result.details["tables"] = [latency_table(result.details, [label for label, _ in runs])]
    result.details["notes"] = [
        f"{fresh}: the embedded broker's fetch cost grows with the messages a topic holds.",
        "Latency = status record's broker timestamp (set when shipping's outbox relay publishes it)"
        " − the request's occurred_at (set by the publisher process just before sending).",
        "Ledger lag = first 50 ms poll that sees the ledger's stored position past an event − the"
        " event's broker timestamp (up to 50 ms of the figure is the poll interval).",
        "Hop by hop: a hop ends when its last output record is published (the relay marks its"
        " outbox row sent); its halves split it at the deciding transaction's start (the outbox"
        " row's created_at). A whole hop counts the documents allocated by the end of the run,"
        " its halves every document that passed it: past saturation the two differ.",
    ]


def _lines_in_run(ctx: Context, offered: int) -> int:
    if offered == 0:
        return ctx.sizes.fast_documents * 3
    return int(offered * ctx.sizes.rate_seconds)


async def _runs_on_one_deployment(
    ctx: Context, result: ScenarioResult, publisher: Publisher, runs: list[tuple[str, int]]
) -> None:
    ctx.progress.step(f"whole path {runs[0][0]}: deploy and stock")
    phases = Phases()
    deployment = await new_deployment(ctx.infra, "path")
    path = Path(deployment, publisher)
    try:
        await path.start()
        phases.mark("deploy")
        items = workload.lics(ctx.sizes.lics)
        lines = sum(_lines_in_run(ctx, offered) for _, offered in runs)
        per_lic = lines * MEAN_UNITS_PER_LINE / len(items)
        units = int(per_lic + 6 * math.sqrt(per_lic) + 10)
        await _stock(ctx, path, items, units, phases)
        phases.mark("stock: receipts posted")
        await _warm_up(path, items)
        phases.mark("warm-up")
        topics = deployment.topics
        watched = [topics.shipments, topics.commands, topics.events, topics.status]
        for n, (label, offered) in enumerate(runs):
            if n:
                ctx.progress.step(f"whole path {label}: (same deployment)")
            ctx.progress.step(f"whole path {label}: measuring")
            assert path.services is not None
            before = {**path.services.cpu_seconds(), **ctx.infra.cpu_seconds()}
            began = time.monotonic()
            figures = await _measure(ctx, path, items, label, offered)
            phases.mark(f"{label}: measure")
            used = cpu_delta(before, {**path.services.cpu_seconds(), **ctx.infra.cpu_seconds()})
            wall = time.monotonic() - began
            figures["cpu_seconds"] = used
            figures["wall_seconds"] = round(wall, 1)
            figures["cores_busy"] = round(sum(used.values()) / wall, 2)
            _report(ctx, result, label, offered, figures)
            if n == len(runs) - 1:
                # Nothing more to measure here: stopped services leave the topics quiet, so
                # counting what they hold ends at once (a busy path kept it reading for seconds).
                await path.stop()
            held = await topic_sizes(ctx.infra.bootstrap, ctx.infra.kafka_options, watched)
            result.topics_held.update({f"after {label}: {t}": n for t, n in held.items()})
            result.details[label]["peak_rss_mb"] = path.services.peak_rss_mb()
            phases.mark(f"{label}: report")
    finally:
        await path.stop()
        await deployment.drop()
        phases.mark("teardown")
        result.details.setdefault("phase_seconds", {})[runs[0][0]] = phases.seconds


class Phases:
    """Wall seconds of each phase of a deployment's life: where the time that is not
    measurement goes."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic()

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = round(now - self._last, 1)
        self._last = now


async def _stock(
    ctx: Context, path: Path, items: list[workload.Lic], units: int, phases: Phases
) -> None:
    deployment = path.deployment
    topics = deployment.topics
    token = deployment.settings.topic_prefix.strip(".")
    producer = plain_producer(deployment.infra.bootstrap, deployment.infra.kafka_options)
    await producer.start()
    try:
        await publish(producer, topics.items, workload.item_messages(items, token))
        await path.wait(
            "the items in receiving's and shipping's read models",
            lambda: _items_known(deployment.dsn, len(items)),
            lambda: "items not yet known to receiving and shipping",
            timeout=90,
        )
        phases.mark("stock: services up, items known")
        receipts = workload.receipt_documents(items, units, token)
        await publish(producer, topics.receipts, receipts)
    finally:
        await producer.stop()
    ids = [shipment_id for shipment_id, _ in receipts]
    await path.wait(
        f"ReceiptPosted for {len(ids)} receipts of {units} units per LIC",
        lambda: (
            path.book.count(RECEIPT_POSTED, ids) + path.book.count(RECEIPT_REJECTED, ids)
            >= len(ids)
        ),
        lambda: f"{path.book.count(RECEIPT_POSTED, ids)} posted",
        timeout=120,
    )
    rejected = [i for i in ids if path.book.at(i, RECEIPT_REJECTED)]
    if rejected:
        reasons = [(i, path.book.reasons.get(i)) for i in rejected[:3]]
        raise BenchError(f"stocking receipts were rejected: {reasons}")


async def _items_known(dsn: str, wanted: int) -> bool:
    """Are the items in receiving's and shipping's read models yet?"""
    conn = await asyncpg.connect(dsn)
    try:
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM receiving.items) AS r,"
            " (SELECT count(*) FROM shipping.items) AS s"
        )
    except asyncpg.UndefinedTableError:
        return False  # not migrated yet
    finally:
        await conn.close()
    return counts is not None and min(counts["r"], counts["s"]) >= wanted


async def _warm_up(path: Path, items: list[workload.Lic]) -> None:
    """One shipment all the way to the ledger: every consumer group has joined."""
    run = "warmup"
    path.publisher.submit(
        {
            "op": "docs",
            "topic": path.deployment.topics.shipments,
            "run": run,
            "count": 2,
            "lics": [(i.code, i.kind) for i in items],
            "seed": 1,
        }
    )
    sent = (await path.publisher.result("docs", 60))["sent"]
    ids = [shipment_id for shipment_id, _, _ in sent]
    await path.wait(
        "the warm-up shipments to be shipped",
        lambda: path.book.count(SHIPPED, ids) == len(ids),
        lambda: {i: sorted(path.book.seen.get(i, {})) for i in ids},
        timeout=90,
    )
    await path.wait(
        "the ledger to record the warm-up shipments",
        lambda: bool(path.ledger.usage) and path.ledger.usage[-1][1] > 0,
        lambda: path.ledger.usage[-1:] or "no usage yet",
        timeout=60,
    )
    path.publisher.submit({"op": "ship_flush"})
    await path.publisher.result("ship", 30)


async def _measure(
    ctx: Context, path: Path, items: list[workload.Lic], label: str, offered: int
) -> dict[str, Any]:
    topics = path.deployment.topics
    run = f"{label.replace('/', 'ps')}-{int(time.time())}"
    marks = path.clock.end()
    started = time.time()
    job: dict[str, Any] = {
        "op": "docs",
        "topic": topics.shipments,
        "run": run,
        "seed": 7,
        "lics": [(i.code, i.kind) for i in items],
    }
    if offered:
        job.update(rate=offered, seconds=ctx.sizes.rate_seconds)
    else:
        job.update(count=ctx.sizes.fast_documents)
    path.publisher.submit(job)
    publish_time = ctx.sizes.rate_seconds if offered else 60
    sent: list[tuple[str, int, float]] = (await path.publisher.result("docs", publish_time + 60))[
        "sent"
    ]
    ids = [shipment_id for shipment_id, _, _ in sent]
    book = path.book

    def decided() -> int:
        return book.count(SHIPPED, ids) + book.count(SHIP_REFUSED, ids) + book.count(FAILED, ids)

    # A path that cannot keep up is measured, not waited for: after the drain window whatever
    # is still pending is reported as pending (and counted in the latency as a lower bound).
    deadline = time.monotonic() + ctx.sizes.drain_seconds
    drained = await path.settle(lambda: decided() >= len(ids), deadline)
    path.publisher.submit({"op": "ship_flush"})
    ship_times: dict[str, float] = (await path.publisher.result("ship", 30))["times"]
    ends = path.clock.end()
    recorded = await path.settle(
        lambda: path.ledger.caught_up(ends), max(deadline, time.monotonic() + 5)
    )
    await asyncio.sleep(0.6)  # one more usage sample after the last write
    figures = _figures(path, sent, ship_times, marks, started)
    figures["drained"] = drained
    figures["ledger_caught_up"] = recorded
    figures["inside_hops"] = await outbox_breakdown(path.deployment.dsn, topics, sent, path.hops)
    return figures


def _figures(
    path: Path,
    sent: list[tuple[str, int, float]],
    ship_times: dict[str, float],
    marks: dict[int, int],
    started: float,
) -> dict[str, Any]:
    book = path.book
    latencies, seen_latencies, allocated_at, ship_latencies, shipped_at = [], [], [], [], []
    allocated_lines = 0
    measured_at = time.time()
    pending = 0
    for shipment_id, lines, published_at in sent:
        allocated = book.at(shipment_id, ALLOCATED)
        if allocated is not None:
            allocated_lines += lines
            latencies.append(allocated[0] - published_at)
            seen_latencies.append(allocated[1] - published_at)
            allocated_at.append(allocated[0])
        elif book.at(shipment_id, FAILED) is None:
            pending += 1  # still waiting: its latency is at least this long
            latencies.append(measured_at - published_at)
            seen_latencies.append(measured_at - published_at)
        shipped = book.at(shipment_id, SHIPPED)
        if shipped is not None and shipment_id in ship_times:
            ship_latencies.append(shipped[0] - ship_times[shipment_id])
            shipped_at.append(shipped[0])
    first_publish = min(p for _, _, p in sent)
    window = (max(allocated_at) - first_publish) if allocated_at else 0
    usage_added, usage_rate = path.ledger.usage_rate(started)
    events = path.clock.since(marks)
    lags = path.ledger.lag_seconds(events)
    unrecorded = path.ledger.unrecorded(events)
    lags += [measured_at - stamp for stamp in unrecorded]
    hops = _hops(path, sent)
    failures = {
        i: book.reasons.get(i, "?")
        for i, _, _ in sent
        if book.at(i, FAILED) or book.at(i, SHIP_REFUSED)
    }
    return {
        "documents": len(sent),
        "lines": sum(lines for _, lines, _ in sent),
        "publish_seconds": max(p for _, _, p in sent) - first_publish,
        "allocated_lines": allocated_lines,
        "lines_per_s": stats.rate(allocated_lines, window),
        "latency": stats.summary_ms(latencies),
        "latency_seen": stats.summary_ms(seen_latencies),
        "shipped": len(shipped_at),
        "shipped_per_s": stats.rate(
            len(shipped_at), (max(shipped_at) - min(ship_times.values())) if shipped_at else 0
        ),
        "ship_latency": stats.summary_ms(ship_latencies),
        "usage_rows": usage_added,
        "usage_per_s": usage_rate,
        "ledger_lag": stats.summary_ms(lags),
        "hops": hops,
        "pending": pending,
        "events_not_recorded": len(unrecorded),
        "refused": len(failures),
        "refusal_reasons": sorted(set(failures.values()))[:5],
    }


def _hops(path: Path, sent: list[tuple[str, int, float]]) -> dict[str, Any]:
    """Where the latency goes: shipping (request → last AllocateLine published), allocation
    (→ last LineAllocated published), shipping again (→ ShipmentAllocated published)."""
    into_shipping, in_allocation, out_of_shipping = [], [], []
    for shipment_id, _, published_at in sent:
        commanded = path.hops.commanded.get(shipment_id)
        decided = path.hops.decided.get(shipment_id)
        allocated = path.book.at(shipment_id, ALLOCATED)
        if commanded is None or decided is None or allocated is None:
            continue
        into_shipping.append(commanded - published_at)
        in_allocation.append(decided - commanded)
        out_of_shipping.append(allocated[0] - decided)
    return {
        "shipping: request → AllocateLine published": stats.summary_ms(into_shipping),
        "allocation: AllocateLine → LineAllocated published": stats.summary_ms(in_allocation),
        "shipping: LineAllocated → ShipmentAllocated published": stats.summary_ms(out_of_shipping),
    }


# Each hop of `_hops`, with its two halves in `outbox_breakdown`.
HOP_PARTS = (
    ("shipping: request → AllocateLine published", "shipping (request)"),
    ("allocation: AllocateLine → LineAllocated published", "allocation"),
    ("shipping: LineAllocated → ShipmentAllocated published", "shipping (answer)"),
)


def latency_table(details: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """Where each run's latency goes, hop by hop: the hop, then its two halves (the input
    waiting to be read and its transaction to begin; the decision committed and published)."""

    def p50_p99(summary: dict[str, Any] | None) -> str:
        if not summary or not summary.get("count"):
            return "–"
        return f"{summary['p50_ms']:,.0f} / {summary['p99_ms']:,.0f}"

    rows = []
    for label in labels:
        run = details.get(label)
        if not isinstance(run, dict) or "hops" not in run:
            continue  # a run that failed
        inside = run.get("inside_hops", {})
        for hop, part in HOP_PARTS:
            rows.append(
                [
                    label,
                    hop,
                    p50_p99(run["hops"].get(hop)),
                    p50_p99(inside.get(f"{part}: wait")),
                    p50_p99(inside.get(f"{part}: commit + relay")),
                ]
            )
    return {
        "title": "Where the latency goes, hop by hop (ms, p50 / p99)",
        "columns": [
            "run",
            "hop",
            "whole hop",
            "input published → its transaction began",
            "transaction began → output published",
        ],
        "rows": rows,
    }


def _report(
    ctx: Context, result: ScenarioResult, label: str, offered: int, f: dict[str, Any]
) -> None:
    result.details[label] = f
    lat, lag = f["latency"], f["ledger_lag"]
    unrecorded = ""
    if f["events_not_recorded"]:
        unrecorded = f"; {f['events_not_recorded']:,} events not yet recorded (a lower bound)"
    note = f"{f['documents']:,} documents, {f['lines']:,} lines in {f['publish_seconds']:.1f} s"
    if f["refused"]:
        note += f"; {f['refused']} refused ({', '.join(f['refusal_reasons'])})"
    if f["pending"]:
        note += (
            f"; {f['pending']:,} documents not allocated {ctx.sizes.drain_seconds:.0f} s after"
            " publishing ended (the path did not keep up: latencies are lower bounds)"
        )
    throughput_target = (
        Target("ratio>=", 0.2, "whole path ≥ 20 % of the one-hop pipeline ceiling")
        if not offered
        else None
    )
    result.figure(
        f"{label}: lines/s allocated",
        f["lines_per_s"],
        "lines/s",
        ceiling="pipeline_msgs_s",
        target=throughput_target,
        note=note,
    )
    for q in ("p50", "p95", "p99"):
        # p50 and p99 against the broker's own p50 and p99 at the same rate (it has no p95)
        ceiling = f"broker_latency_{offered}_{q}_ms" if offered and q != "p95" else None
        target = None
        if q == "p99" and offered:
            target = Target(
                "ratio<=", 3.0, f"p99 publish→ShipmentAllocated ≤ 3× broker p99 at {offered}/s"
            )
        result.figure(
            f"{label}: publish→ShipmentAllocated {q}",
            lat[f"{q}_ms"],
            "ms",
            ceiling=ceiling,
            target=target,
        )
    if offered == 1000 and ctx.infra.kind == "configured":
        result.figure(
            f"{label}: publish→ShipmentAllocated p99 (Apache Kafka)",
            lat["p99_ms"],
            "ms",
            target=Target("value<=", 50, "against Apache Kafka, p99 ≤ 50 ms at 1,000 lines/s"),
        )
    result.figure(
        f"{label}: ShipmentShipped/s",
        f["shipped_per_s"],
        "shipments/s",
        ceiling="pipeline_msgs_s",
        note=f"ship request→shipped p99 {f['ship_latency']['p99_ms']} ms",
    )
    result.figure(
        f"{label}: ledger usage records/s",
        f["usage_per_s"],
        "rows/s",
        ceiling="pipeline_msgs_s",
        note=f"{f['usage_rows']:,} usage rows",
    )
    result.figure(
        f"{label}: ledger lag p99",
        lag["p99_ms"],
        "ms",
        target=Target("value<=", 1000, "ledger lag under 1 s (p99)"),
        note=f"p50 {lag['p50_ms']} ms, max {lag['max_ms']} ms" + unrecorded,
    )
    # Where the machine's cores went while this rate ran: the embedded broker's cost is per
    # request, so at low rates it is a large share.
    wall = f["wall_seconds"]
    split = sorted(f["cpu_seconds"].items(), key=lambda kv: -kv[1])
    result.figure(
        f"{label}: cores busy",
        f["cores_busy"],
        "cores",
        note=", ".join(f"{name} {seconds / wall:.2f}" for name, seconds in split),
    )
