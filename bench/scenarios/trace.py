"""Scenario 5: trace at scale, the recall investigation.

The ledger of a fresh deployment is filled to `usage_rows` usage rows by the bulk loader of
`bench.ledger_loader` (a template block decided and recorded by the real allocation and ledger
processes, replicated with COPY), over 1,000 LICs (half lot-tracked perishable, half serialized).
Then the ledger process serves the read API and this process times, one at a time:

- `GET /healthz`: the HTTP floor of the ledger's read API (the ceiling traces are divided by);
- `GET /trace?lic=&mfr_lot=` of random manufacturer lots (forward: receipt → every allocation
  and shipment, about 2 × SHIPMENTS / 2 + 1 records each);
- `GET /trace?lic=&serial=` of random serials (backward: where one unit came from and went);
- `GET /valuation?as_of=` (stock on hand and its value at the end of a day, read back from now
  off the records dated after it) of every item and of one LIC, as of the last day any record
  is dated (nothing to read back), a month before it (a month of records) and the day before
  the first (every record: the worst case); a few calls of each, fewer once that day's calls
  took `VALUATION_BUDGET` seconds. Every answer must be the stock the loaded blocks hold that
  day (`ledger_loader.on_hand_as_of`), and as of the last day `GET /items`' figures too.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

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
# GET /valuation as of each day: at most this many timed calls, none started once that day's
# calls took VALUATION_BUDGET seconds (a read back of millions of records takes seconds).
VALUATION_DAYS = (
    ("the last day", 10),
    ("a month before the last", 5),
    ("the day before the first", 3),
)
VALUATION_BUDGET = 5.0
VALUATION_TIMEOUT = 300.0  # seconds one call may take before the scenario gives up
MONTH = timedelta(days=30)


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
            note=f"{loaded.seconds:.0f} s; UNLOGGED tables, the indexes the scenario's queries"
            f" use built after COPY, {CONNECTIONS} connections",
        )
        result.details["checkpoint_seconds"] = await _settle(deployment.dsn)
        ctx.progress.step("trace: GET /trace and GET /valuation")
        records = loader.records_by_day(template, blocks, groups)
        await _query(ctx, result, deployment, blocks, groups, records)
    finally:
        await deployment.drop()
    result.details["notes"] = [
        "Loaded by bench/ledger_loader.py: a template block recorded by the real allocation and"
        " ledger processes, replicated with COPY into UNLOGGED tables (autovacuum off), every"
        " row the ledger consumer writes. Of the migration's indexes, the ones the scenario's"
        f" queries can use are rebuilt ({', '.join(sorted(loader.TRACE_INDEXES))}), and the"
        f" tables they read analyzed ({', '.join(loader.TRACE_READS)}); the others are not"
        " built: no query here can use them. The consumer's inbox rows are not written (no"
        " read uses them).",
        "Each query asks for a different random manufacturer lot or serial; one query at a time,"
        f" after a CHECKPOINT (the load's dirty pages written out) and {WARM_UP_QUERIES} untimed"
        " traces of each kind (other keys) that warm the new process.",
        "GET /valuation as of each day: after one untimed call of each scope as of the last day,"
        f" up to {', '.join(str(calls) for _, calls in VALUATION_DAYS)} calls as of each day in"
        f" turn, none started once that day's calls took {VALUATION_BUDGET:.0f} s. The days are"
        " the loaded records' own (the last any is dated, 30 days before, the day before the"
        " first); the LIC is one holding stock a month before the last. No target: report only."
        " Each answer was checked: as of each day, every item's stock and value are what the"
        " loaded blocks hold then (the block received that day: its group's LICs,"
        f" {loader.UNITS['lot']} or {loader.UNITS['serial']} units at {loader.UNIT_COST} each;"
        " nothing as of the last day or before the first), and as of the last day they are"
        " GET /items' figures.",
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
    client: httpx.AsyncClient, path: str, params: dict[str, str], timeout: float | None = None
) -> tuple[float, Any]:
    """Seconds the answer took, and its body; BenchError unless it is 200."""
    started = time.perf_counter()
    if timeout is None:
        response = await client.get(path, params=params)
    else:
        response = await client.get(path, params=params, timeout=timeout)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise BenchError(
            f"GET {path} {params} answered {response.status_code}: {response.text[:300]}"
        )
    return elapsed, response.json()


def _events(body: Any) -> int:
    return len(body.get("events", [])) if isinstance(body, dict) else 0


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
    ctx: Context,
    result: ScenarioResult,
    deployment: Deployment,
    blocks: int,
    groups: int,
    records: Mapping[date, int],
) -> None:
    days = valuation_days(records)
    month = days[1].day
    lic = min(
        loader.on_hand_as_of(month, blocks, groups, ctx.sizes.trace_lics_per_kind),
        default=loader.lot_lic(0, 0),
    )
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
                elapsed, body = await _timed_get(client, "/trace", params)
                lots.append(elapsed)
                lot_sizes.append(_events(body))
                params = {
                    "lic": loader.serial_lic(block % groups, lic_n),
                    "serial": loader.serial(block, lic_n, rng.randrange(loader.SHIPMENTS)),
                }
                elapsed, body = await _timed_get(client, "/trace", params)
                serials.append(elapsed)
                serial_sizes.append(_events(body))
            ctx.progress.note("GET /valuation")
            valued = await _valuations(client, days, lic)
            _, items = await _timed_get(client, "/items", {"limit": "100000"})
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
    checks = []
    for v in valued:
        held = loader.on_hand_as_of(v.as_of.day, blocks, groups, ctx.sizes.trace_lics_per_kind)
        if v.lic is not None:
            held = {v.lic: held[v.lic]} if v.lic in held else {}
        checks.append(_checked(f"as of {v.as_of.day}, {v.scope}", v.answer, held))
    checks.append(_checked_against_items(days[0].day, valued[0].answer, items))
    result.details["valuation"] = {
        "lic": lic,
        "days": {
            d.label: {"as_of": d.day.isoformat(), "records_read_back": d.records} for d in days
        },
        "queries": {v.name: stats.summary_ms(v.seconds) for v in valued},
        "checks": checks,
    }
    valuation_figures(result, valued, sum(records.values()))


@dataclass(frozen=True)
class AsOf:
    """A day GET /valuation is timed as of."""

    label: str  # which day it is, for the figures' names
    day: date
    calls: int  # at most, timed
    records: int  # dated after it: the records an answer reads back


@dataclass(frozen=True)
class Valued:
    """The timed calls of GET /valuation as of one day, of every item or of one LIC."""

    as_of: AsOf
    lic: str | None
    seconds: list[float]
    answer: Any  # the first call's body (every call asks the same)

    @property
    def scope(self) -> str:
        return "every item" if self.lic is None else "one LIC"

    @property
    def name(self) -> str:
        return f"valuation of {self.scope} as of {self.as_of.label}"


def valuation_days(records: Mapping[date, int]) -> list[AsOf]:
    """The days GET /valuation is timed as of, from the loaded records' dates (how many are
    dated each day): the last day any is dated, a month before it (never before the first) and
    the day before the first, each with the records dated after it."""
    first, last = min(records), max(records)
    days = (last, max(first, last - MONTH), first - timedelta(days=1))
    return [
        AsOf(label, day, calls, sum(n for on, n in records.items() if on > day))
        for (label, calls), day in zip(VALUATION_DAYS, days, strict=True)
    ]


async def _valuations(client: httpx.AsyncClient, days: Sequence[AsOf], lic: str) -> list[Valued]:
    """Time GET /valuation as of each day, of every item then of `lic`: up to the day's calls,
    none started once they took VALUATION_BUDGET seconds."""
    scopes: list[dict[str, str]] = [{}, {"lic": lic}]
    for scope in scopes:  # untimed: the first call of each statement prepares it
        await _timed_get(client, "/valuation", {"as_of": days[0].day.isoformat(), **scope})
    valued = []
    for scope in scopes:
        for as_of in days:
            params = {"as_of": as_of.day.isoformat(), **scope}
            seconds: list[float] = []
            answer: Any = None
            while len(seconds) < as_of.calls and sum(seconds) < VALUATION_BUDGET:
                elapsed, body = await _timed_get(client, "/valuation", params, VALUATION_TIMEOUT)
                seconds.append(elapsed)
                answer = body if answer is None else answer
            valued.append(Valued(as_of, scope.get("lic"), seconds, answer))
    return valued


def valuation_problem(answer: Any, held: Mapping[str, int]) -> str | None:
    """What is wrong with a GET /valuation answer where the ledger holds `held` (units by LIC,
    each at the loader's unit cost, at one office), or None: every item's on hand and value,
    and the total's."""
    want = {lic: (Decimal(units), units * loader.UNIT_COST) for lic, units in held.items()}
    got = {i["lic"]: (_number(i["on_hand"]), _number(i["total_value"])) for i in answer["items"]}
    wrong = sorted(lic for lic in want.keys() | got.keys() if want.get(lic) != got.get(lic))
    if wrong:
        lic = wrong[0]
        return (
            f"{len(wrong)} item(s) wrong, such as {lic}: (on hand, value) {_pair(got.get(lic))},"
            f" expected {_pair(want.get(lic))}"
        )
    total = (_number(answer["total"]["on_hand"]), _number(answer["total"]["total_value"]))
    expected = (
        sum((u for u, _ in want.values()), Decimal(0)),
        sum((v for _, v in want.values()), Decimal(0)),
    )
    if total != expected:
        return f"total (on hand, value) {_pair(total)}, expected {_pair(expected)}"
    return None


def items_problem(answer: Any, items: Sequence[Any]) -> str | None:
    """What differs between a GET /valuation answer as of a day on or after every record's
    date and GET /items' figures (the contract: the same, every digit), or None."""
    now = {
        i["lic"]: (
            _number(i["on_hand"]),
            _number(i["value"]) + _number(i.get("unallocated_value", 0)),
        )
        for i in items
    }
    now = {lic: figures for lic, figures in now.items() if any(figures)}
    then = {i["lic"]: (_number(i["on_hand"]), _number(i["total_value"])) for i in answer["items"]}
    wrong = sorted(lic for lic in now.keys() | then.keys() if now.get(lic) != then.get(lic))
    if wrong:
        lic = wrong[0]
        return (
            f"{len(wrong)} item(s) differ, such as {lic}: (on hand, value) {_pair(then.get(lic))},"
            f" GET /items {_pair(now.get(lic))}"
        )
    return None


def _checked(what: str, answer: Any, held: Mapping[str, int]) -> str:
    """`what`'s answer checked against `held` (BenchError if wrong), as the results say it."""
    problem = valuation_problem(answer, held)
    if problem is not None:
        raise BenchError(f"GET /valuation {what} is wrong: {problem}")
    units = sum(held.values())
    return (
        f"{what}: {units:,} units worth {units * loader.UNIT_COST:,} in {len(held)} item(s),"
        " as the loaded blocks hold"
    )


def _checked_against_items(day: date, answer: Any, items: Sequence[Any]) -> str:
    problem = items_problem(answer, items)
    if problem is not None:
        raise BenchError(f"GET /valuation as of {day}, every item, is not GET /items': {problem}")
    return f"as of {day}, every item: GET /items' figures for all {len(items):,} items"


def valuation_figures(result: ScenarioResult, valued: Sequence[Valued], records: int) -> None:
    """p50 and p99 of each day's calls, absolute and against the read API's floor."""
    for v in valued:
        times = stats.summary_ms(v.seconds)
        result.figure(
            f"{v.name} p50",
            times["p50_ms"],
            "ms",
            ceiling="http_floor_p50_ms",
            note=f"as of {v.as_of.day}: {v.as_of.records:,} of {records:,} records read back;"
            f" {len(v.seconds)} call(s)",
        )
        result.figure(f"{v.name} p99", times["p99_ms"], "ms", ceiling="http_floor_p99_ms")


def _number(value: Any) -> Decimal:
    """A figure of the read API (a decimal string, or a JSON number) as a Decimal."""
    return Decimal(str(value))


def _pair(figures: tuple[Decimal, Decimal] | None) -> str:
    return "none" if figures is None else f"({figures[0]}, {figures[1]})"
