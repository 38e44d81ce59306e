"""Scenario 5: trace at scale, the recall investigation.

The ledger of a fresh deployment is filled to `usage_rows` usage rows by the bulk loader of
`bench.ledger_loader` (a template block decided and recorded by the real allocation and ledger
processes, replicated with COPY), over 1,000 LICs (half lot-tracked perishable, half serialized).
Then the ledger process serves the read API and this process times, one at a time:

- `GET /healthz`: the HTTP floor of the ledger's read API (the ceiling traces are divided by);
- `GET /trace?lic=&mfr_lot=` of random manufacturer lots (forward: receipt → every allocation
  and shipment, about 2 × SHIPMENTS / 2 + 1 records each);
- `GET /trace?lic=&serial=` of random serials (backward: where one unit came from and went).
"""

from __future__ import annotations

import random
import time

import asyncpg
import httpx
import orjson

from bench import ledger_loader as loader
from bench import stats
from bench.infra import BenchError, Deployment, Services, cpu_seconds, new_deployment, wait_until
from bench.kafka_io import Record, Tail, publish
from bench.pathwatch import EventClock, LedgerWatch
from bench.report import ScenarioResult, Target
from bench.scenarios import Context
from bench.sizes import Sizes
from shared.kafka import make_producer

GROUPS = 10
CONNECTIONS = 2  # the bulk loader's: one per core of the reference machine
WARM_UP_QUERIES = 5  # untimed traces of each kind before the measured ones


def steps(_sizes: Sizes) -> int:
    return 3


async def run(ctx: Context, result: ScenarioResult) -> None:
    per_block = loader.usage_per_block(ctx.sizes.trace_lics_per_kind)
    blocks = max(1, ctx.sizes.usage_rows // per_block)
    groups = min(GROUPS, blocks)
    deployment = await new_deployment(ctx.infra, "trace")
    try:
        ctx.progress.step("trace: template block through allocation and ledger")
        started = time.monotonic()
        template = await _template(ctx, deployment)
        result.details["template_seconds"] = round(time.monotonic() - started, 1)
        result.details["template_rows"] = {t: template.rows(t) for t in loader.TABLES}
        if template.rows("usage") != per_block:
            raise BenchError(
                f"the template block recorded {template.rows('usage')} usage rows,"
                f" expected {per_block}"
            )
        ctx.progress.step(f"trace: bulk load of {blocks * per_block:,} usage rows")
        before = cpu_seconds()
        loaded = await loader.load(
            deployment.dsn,
            template,
            blocks,
            groups,
            on_progress=ctx.progress.note,
            connections=CONNECTIONS,
        )
        result.details["load"] = {
            "rows": loaded.rows,
            "seconds": round(loaded.seconds, 1),
            "copy_seconds": round(loaded.copy_seconds, 1),
            # per task from the backends themselves: exited backends are not yet in the
            # server's process tree when the load returns
            "cpu_seconds": {
                "postgres backends": round(
                    sum(t.get("backend_cpu_seconds", 0) for t in loaded.tasks), 1
                ),
                "bench (this process)": round(cpu_seconds() - before, 1),
            },
            "indexes": loaded.indexes,
            "indexes_not_built": loaded.skipped,
            "tasks": loaded.tasks,
        }
        result.figure(
            "usage rows loaded",
            loaded.rows.get("usage"),
            "rows",
            note=f"{sum(loaded.rows.values()):,} rows in all tables",
        )
        result.figure(
            "bulk load rate (COPY, then indexes and ANALYZE)",
            sum(loaded.rows.values()) / loaded.seconds,
            "rows/s",
            ceiling="copy_rows_s",
            note=f"{loaded.seconds:.0f} s; UNLOGGED tables, the indexes a trace can use"
            f" built after COPY, {CONNECTIONS} connections",
        )
        result.details["checkpoint_seconds"] = await _settle(deployment.dsn)
        ctx.progress.step("trace: GET /trace")
        await _query(ctx, result, deployment, blocks, groups)
    finally:
        await deployment.drop()
    result.details["notes"] = [
        "Loaded by bench/ledger_loader.py: a template block recorded by the real allocation and"
        " ledger processes, replicated with COPY into UNLOGGED tables (autovacuum off), every"
        " row the ledger consumer writes. Of the migration's indexes, the ones the trace's"
        f" queries can use are rebuilt ({', '.join(sorted(loader.TRACE_INDEXES))}), and the"
        f" tables a trace reads analyzed ({', '.join(loader.TRACE_READS)}); the others are not"
        " built: no query here can use them. The consumer's inbox rows are not written (no"
        " read uses them).",
        "Each query asks for a different random manufacturer lot or serial; one query at a time,"
        f" after a CHECKPOINT (the load's dirty pages written out) and {WARM_UP_QUERIES} untimed"
        " traces of each kind (other keys) that warm the new process.",
    ]


async def _template(ctx: Context, deployment: Deployment) -> loader.Template:
    commands = loader.template_commands(ctx.sizes.trace_lics_per_kind)
    expected = {orjson.loads(value)["message_id"] for _, value in commands}
    answered: set[str] = set()
    clock = EventClock()

    def on_event(record: Record, seen_at: float) -> None:
        clock.on_record(record, seen_at)
        answered.add(orjson.loads(record.value or b"{}").get("command_id", ""))

    topics = deployment.topics
    tail = Tail(ctx.infra.bootstrap, ctx.infra.kafka_options, [topics.events], on_event)
    ledger = LedgerWatch(deployment.dsn, topics.events)
    producer = make_producer(deployment.settings)
    services = Services(deployment, ["allocation", "ledger"])
    try:
        await producer.start()
        await publish(producer, topics.commands, commands)
        await tail.start()
        await ledger.start()

        async def recorded() -> tuple[bool, object]:
            tail.check()
            ledger.check()
            done = expected <= answered and ledger.caught_up(clock.end())
            return done, f"{len(expected & answered):,}/{len(expected):,} commands decided"

        await wait_until(
            "the template block decided and recorded",
            recorded,
            timeout=180,
            services=services,
            interval=0.2,
        )
    finally:
        await producer.stop()
        await ledger.stop()
        await tail.stop()
        await services.stop(grace=1.0)
    return await loader.capture(deployment.dsn)


async def _timed_get(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> tuple[float, int]:
    started = time.perf_counter()
    response = await client.get(path, params=params)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise BenchError(
            f"GET {path} {params} answered {response.status_code}: {response.text[:300]}"
        )
    body = response.json()
    return elapsed, len(body.get("events", [])) if isinstance(body, dict) else 0


async def _settle(dsn: str) -> float | None:
    """Write the bulk load's dirty pages out before timing reads (a CHECKPOINT; its seconds, or
    None where the role may not). Left to the checkpointer, gigabytes of them could be flushed
    during the hundred queries: a ledger at steady state has no such backlog."""
    conn = await asyncpg.connect(dsn)
    try:
        started = time.monotonic()
        await conn.execute("CHECKPOINT")
        return round(time.monotonic() - started, 1)
    except asyncpg.InsufficientPrivilegeError:
        return None
    finally:
        await conn.close()


async def _query(
    ctx: Context, result: ScenarioResult, deployment: Deployment, blocks: int, groups: int
) -> None:
    services = Services(deployment, ["ledger"])
    try:
        async with httpx.AsyncClient(base_url=deployment.api, timeout=30) as client:

            async def healthy() -> tuple[bool, object]:
                try:
                    return (await client.get("/healthz")).status_code == 200, "not healthy yet"
                except httpx.TransportError as exc:
                    return False, repr(exc)

            await wait_until("the ledger's read API", healthy, timeout=60, services=services)
            # A few untimed traces first, of other lots and serials: the new process's first
            # requests prepare its statements and warm the app, which no later request pays.
            warm = random.Random(7)
            for _ in range(WARM_UP_QUERIES):
                block = warm.randrange(blocks)
                lic_n = warm.randrange(ctx.sizes.trace_lics_per_kind)
                await client.get(
                    "/trace",
                    params={
                        "lic": loader.lot_lic(block % groups, lic_n),
                        "mfr_lot": loader.mfr_lot(block, "A"),
                    },
                )
                await client.get(
                    "/trace",
                    params={
                        "lic": loader.serial_lic(block % groups, lic_n),
                        "serial": loader.serial(block, lic_n, 0),
                    },
                )
            rng = random.Random(11)
            n = ctx.sizes.trace_queries
            floor = [(await _timed_get(client, "/healthz", {}))[0] for _ in range(n)]
            lots, lot_sizes, serials, serial_sizes = [], [], [], []
            for _ in range(n):
                block = rng.randrange(blocks)
                lic_n = rng.randrange(ctx.sizes.trace_lics_per_kind)
                params = {
                    "lic": loader.lot_lic(block % groups, lic_n),
                    "mfr_lot": loader.mfr_lot(block, rng.choice("AB")),
                }
                elapsed, size = await _timed_get(client, "/trace", params)
                lots.append(elapsed)
                lot_sizes.append(size)
                params = {
                    "lic": loader.serial_lic(block % groups, lic_n),
                    "serial": loader.serial(block, lic_n, rng.randrange(loader.SHIPMENTS)),
                }
                elapsed, size = await _timed_get(client, "/trace", params)
                serials.append(elapsed)
                serial_sizes.append(size)
    finally:
        await services.stop(grace=1.0)
    if min(lot_sizes) == 0 or min(serial_sizes) == 0:
        raise BenchError(
            "a trace came back empty: the loaded ledger does not hold what was asked for"
        )
    health = stats.summary_ms(floor)
    ctx.ceiling(
        "http_floor_p50_ms", health["p50_ms"], "ms", "ledger read API floor p50 (GET /healthz)"
    )
    ctx.ceiling(
        "http_floor_p99_ms", health["p99_ms"], "ms", "ledger read API floor p99 (GET /healthz)"
    )
    lot, one = stats.summary_ms(lots), stats.summary_ms(serials)
    rows = f"{ctx.sizes.usage_rows:,}"
    result.figure(
        "GET /healthz p99 (HTTP floor)", health["p99_ms"], "ms", ceiling="http_floor_p99_ms"
    )
    result.figure(
        "trace of a lot (forward) p50",
        lot["p50_ms"],
        "ms",
        ceiling="http_floor_p50_ms",
        note=f"{sum(lot_sizes) / n:.0f} records per trace",
    )
    result.figure(
        "trace of a lot (forward) p99",
        lot["p99_ms"],
        "ms",
        ceiling="http_floor_p99_ms",
        target=Target("value<=", 50, f"trace of a lot among {rows} usage rows: p99 ≤ 50 ms"),
    )
    result.figure(
        "trace of a serial (backward) p50",
        one["p50_ms"],
        "ms",
        ceiling="http_floor_p50_ms",
        note=f"{sum(serial_sizes) / n:.0f} records per trace",
    )
    result.figure(
        "trace of a serial (backward) p99", one["p99_ms"], "ms", ceiling="http_floor_p99_ms"
    )
    result.details["queries"] = {"healthz": health, "lot": lot, "serial": one}
