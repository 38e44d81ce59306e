"""Scenario 2: allocation alone, with one and with two allocation processes.

N per-LIC commands are pre-loaded on a fresh `inventory.commands` (lotline's own producer and
partitioner, key = LIC) over the scenario's LICs, one third each plain, lot-tracked perishable
(three manufacturer lots with different expiry dates) and serialized: UpsertItem and
ReceiveStock for every LIC, then AllocateLine + ShipLine pairs of one unit round-robin over the
LICs. Only then do the allocation processes start. An observer counts the events on
`inventory.events` by `command_id` until every command is answered.

decisions/s = (commands answered after the first answer's instant) / (last − first answer),
answer times being the events' broker timestamps (set by allocation's outbox relay when it
publishes; a batch published at once shares one, and the first batch, decided before the span
began, is not counted). The time from process start (imports, migrations, group join) to the
first answer is reported separately.
"""

from __future__ import annotations

import time
from collections import Counter

import orjson

from bench import stats, workload
from bench.infra import Services, cpu_delta, new_deployment, wait_until
from bench.kafka_io import Record, Tail, publish, topic_sizes
from bench.report import ScenarioResult, Target
from bench.scenarios import Context
from bench.sizes import Sizes
from shared.kafka import make_producer

PROCESSES = (1, 2)


def steps(_sizes: Sizes) -> int:
    return 2 * len(PROCESSES)


async def run(ctx: Context, result: ScenarioResult) -> None:
    for copies in PROCESSES:
        await _measure(ctx, result, copies)


async def _measure(ctx: Context, result: ScenarioResult, copies: int) -> None:
    label = f"{copies} process" + ("es" if copies > 1 else "")
    deployment = await new_deployment(ctx.infra, f"allocation{copies}")
    services: Services | None = None
    answered: dict[str, float] = {}
    outcomes: Counter[str] = Counter()

    def on_event(record: Record, _seen_at: float) -> None:
        event = orjson.loads(record.value or b"{}")
        command_id = event.get("command_id")
        if command_id is not None and command_id not in answered:
            answered[command_id] = record.timestamp / 1000
            outcomes[event.get("reason_code") or event.get("type", "?")] += 1

    topics = deployment.topics
    tail = Tail(
        deployment.infra.bootstrap, deployment.infra.kafka_options, [topics.events], on_event
    )
    try:
        ctx.progress.step(f"allocation ({label}): pre-load commands")
        items = workload.lics(ctx.sizes.lics)
        commands = workload.allocation_commands(ctx.sizes.allocation_commands, items)
        expected = len(commands)
        producer = make_producer(deployment.settings)
        await producer.start()
        try:
            await publish(producer, topics.commands, commands)
        finally:
            await producer.stop()
        await tail.start()
        ctx.progress.step(f"allocation ({label}): deciding {expected:,} commands")
        started = time.time()
        stack_before = ctx.infra.cpu_seconds()
        services = Services(deployment, ["allocation"], copies=copies)

        async def all_answered() -> tuple[bool, object]:
            tail.check()
            ctx.progress.note(f"{len(answered):,}/{expected:,} answered")
            return len(answered) >= expected, f"{len(answered):,} of {expected:,} commands answered"

        await wait_until(
            f"every command answered on {topics.events}",
            all_answered,
            timeout=ctx.sizes.scenario_timeout / 2 - 30,
            services=services,
            interval=0.2,
        )
        cpu = services.cpu_seconds()
        stack_cpu = cpu_delta(stack_before, ctx.infra.cpu_seconds())
    finally:
        if services is not None:
            await services.stop(grace=1.0)
        await tail.stop()
    times = sorted(answered.values())
    rate = stats.span_rate(times)
    target = (
        Target("ratio>=", 0.5, "allocation alone ≥ 50 % of the one-hop pipeline ceiling")
        if copies == 1
        else None
    )
    result.figure(
        f"allocation decisions/s, {label}",
        rate,
        "decisions/s",
        ceiling="pipeline_msgs_s",
        target=target,
        note=f"{expected:,} commands over {len(items):,} LICs",
    )
    result.figure(
        f"allocation start → first decision, {label}", times[0] - started if times else None, "s"
    )
    result.details[f"processes_{copies}"] = {
        "commands": expected,
        "answered": len(answered),
        "outcomes": dict(outcomes),
        "decide_seconds": times[-1] - times[0] if times else None,
        "service_cpu_seconds": cpu,
        "stack_cpu_seconds": stack_cpu,
        "cpu_ms_per_decision": {k: round(v * 1000 / expected, 3) for k, v in cpu.items()},
    }
    held = await topic_sizes(
        deployment.infra.bootstrap, deployment.infra.kafka_options, [topics.commands, topics.events]
    )
    for topic, count in held.items():
        result.topics_held[topic] = count
    await deployment.drop()
