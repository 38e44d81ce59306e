"""Chaos: a crash at any point loses nothing and repeats nothing (DESIGN §6).

The reconciliation workload (`tests/fixtures/reconcile.py`: ~300 seeded upstream documents of
every kind, a plain-Python model of the rules predicting every answer and every table) goes
through the real stack while its processes are killed:

- each of the four services is SIGKILLed from outside at least once, while a round's
  documents are in flight (after about a third, half and two thirds of the rounds), and
  started again;
- a second allocation process joins part way (a rebalance: partitions move between the two
  while commands are decided), and later one of the two is SIGKILLed (they move again);
- each service also gets the fault-injection hook (`LOTLINE_FAULT_KILL_AFTER_COMMIT`,
  shared/consumer.py): it kills itself right after committing a chosen document's transaction,
  before its relay publishes what the transaction decided; a supervisor starts it again.

Then, once everything settled, the same checks as the reconciliation test: every answer is
the model's, every document got exactly one answer, allocation's tables, the ledger's tables,
the read API and the model agree. Two allowances follow from the design: the outbox relay
publishes at least once, so a message may be on a topic twice (every copy the same bytes, one
message_id); and no decision may be written twice (each message_id once in its service's
outbox).

The workload and the kill schedule (which round, which process, which document a hook waits
for, the delay into the round) follow from `LOTLINE_CHAOS_SEED`; `LOTLINE_CHAOS_ROUNDS` sets
the workload's length. Where a kill lands inside the processing is up to the machine, which is
the point. A failure prints the workload, the kill timeline and where the services' logs are.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from shared import stack
from tests.fixtures.infra import LotlineEnv
from tests.fixtures.reconcile import Planned, check_services, plan, report, send_rounds

SEED = int(os.environ.get("LOTLINE_CHAOS_SEED", "20261102"))
ROUNDS = int(os.environ.get("LOTLINE_CHAOS_ROUNDS", "30"))
# Generous: a round waits while a killed service starts again and its group rebalances; these
# only bound how long a lost answer or a stuck partition takes to fail the test.
ANSWER_WAIT = 120.0
SETTLE = 120.0
FAULT_HOOK = "LOTLINE_FAULT_KILL_AFTER_COMMIT"
SERVICES = ("receiving", "shipping", "allocation", "ledger")
# Restart-friendly: a SIGKILLed member leaves its group when its session times out, and the
# embedded broker completes a join after half of it, so a restart costs a few of these.
RESTART = {"KAFKA_SESSION_TIMEOUT_MS": "1500", "KAFKA_HEARTBEAT_INTERVAL_MS": "300"}


@dataclass
class Slot:
    """One service process the supervisor keeps running (started again whenever it dies)."""

    name: str  # "allocation-2" for the second allocation process
    service: str
    hooks: list[str]  # fault-hook message ids for its next starts, in order
    proc: subprocess.Popen[bytes] | None = None
    hook: str | None = None  # the running process's hook
    wanted: bool = True


@dataclass
class Supervisor:
    """Starts, kills and restarts the services' processes and notes what happened."""

    env: LotlineEnv
    slots: dict[str, Slot] = field(default_factory=dict)
    timeline: list[str] = field(default_factory=list)
    kills: Counter[str] = field(default_factory=Counter)  # per service, from outside or hooked
    failures: list[str] = field(default_factory=list)  # exits no one caused
    began: float = field(default_factory=time.monotonic)

    def note(self, what: str) -> None:
        self.timeline.append(f"{time.monotonic() - self.began:7.2f}s  {what}")

    def start(self, name: str, service: str, hooks: list[str]) -> None:
        self.slots[name] = slot = Slot(name, service, list(hooks))
        self._launch(slot)

    def _launch(self, slot: Slot) -> None:
        environ = dict(self.env.env)
        slot.hook = slot.hooks.pop(0) if slot.hooks else None
        if slot.hook is not None:
            environ[FAULT_HOOK] = slot.hook
        # A log folder per slot: two allocation processes must not write one file.
        log_dir = self.env.data_dir / "logs" / slot.name
        slot.proc = stack.start_services(environ, [slot.service], log_dir=log_dir)[0]
        slot.wanted = True
        hooked = f", dies after committing {slot.hook}" if slot.hook else ""
        self.note(f"start {slot.name} (pid {slot.proc.pid}{hooked})")

    def kill(self, name: str, *, restart: bool = True) -> None:
        """SIGKILL the slot's process (its own process group) and, unless told not to, start
        it again at once."""
        slot = self.slots[name]
        assert slot.proc is not None
        self.reap()  # a process that just died of its hook is restarted, not counted twice
        os.killpg(slot.proc.pid, signal.SIGKILL)
        slot.proc.wait()
        self.kills[slot.service] += 1
        self.note(f"SIGKILL {name} (pid {slot.proc.pid})")
        if restart:
            self._launch(slot)
        else:
            slot.wanted = False

    def reap(self) -> None:
        """Start again every wanted process that died: of its fault hook (expected), or of
        anything else (a failure)."""
        for slot in self.slots.values():
            if not slot.wanted or slot.proc is None or slot.proc.poll() is None:
                continue
            code = slot.proc.returncode
            if code == -signal.SIGKILL and slot.hook is not None:
                self.kills[slot.service] += 1
                self.note(f"{slot.name} (pid {slot.proc.pid}) killed itself after {slot.hook}")
            else:
                self.failures.append(f"{slot.name} (pid {slot.proc.pid}) exited with {code}")
                self.note(f"{slot.name} (pid {slot.proc.pid}) exited with {code}")
            self._launch(slot)

    async def watch(self) -> None:
        while True:
            self.reap()
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        stack.stop_services([s.proc for s in self.slots.values() if s.proc is not None])

    def log_files(self) -> list[str]:
        return sorted(str(p) for p in (self.env.data_dir / "logs").rglob("*.log"))


# -- the schedule --------------------------------------------------------------------------


Action = Callable[[Supervisor], None]


@dataclass
class Schedule:
    """What happens in which round: actions after a delay into the round (while its
    documents are published and decided), and the fault hooks each service starts with."""

    actions: dict[int, list[tuple[float, str, Action]]] = field(default_factory=dict)
    hooks: dict[str, list[str]] = field(default_factory=dict)

    def at(self, number: int, delay: float, what: str, action: Action) -> None:
        self.actions.setdefault(number, []).append((delay, what, action))

    def describe(self) -> Iterator[str]:
        for number, actions in sorted(self.actions.items()):
            for delay, what, _ in actions:
                yield f"round {number} +{delay:.2f}s: {what}"
        for name, ids in sorted(self.hooks.items()):
            yield f"{name} dies after committing {', '.join(ids)}"


def first_doc(rounds: list[list[Planned]], start: int, wanted: Callable[[Planned], bool]) -> str:
    """The message_id of the first document from round `start` on that `wanted` accepts."""
    for planned in rounds[start:]:
        for p in planned:
            if wanted(p):
                return str(p.doc["message_id"])
    raise AssertionError(f"no such document from round {start} on: make the workload longer")


def make_schedule(seed: int, rounds: list[list[Planned]]) -> Schedule:
    """Kill points spread over the workload, jittered by the seed (its own random stream, so
    the workload is the same with or without chaos)."""
    rng = random.Random(f"chaos/{seed}")
    last = len(rounds) - 1
    schedule = Schedule()
    latest = 1

    def near(fraction: float) -> int:
        return max(1, min(last, round(fraction * last) + rng.randint(-1, 1)))

    def then(fraction: float) -> int:
        """Near `fraction`, never before the action scheduled before it (a short workload
        puts several in one round)."""
        nonlocal latest
        latest = max(latest, near(fraction))
        return latest

    def delay() -> float:
        # A round is published once its answer reader is at the topics' ends (about a
        # quarter second in) and decided within a few tenths more: most kills land while
        # its documents are being decided, some just before they are published.
        return round(rng.uniform(0.15, 0.45), 2)

    def kill(name: str, restart: bool = True) -> Action:
        return lambda sup: sup.kill(name, restart=restart)

    def start_second(sup: Supervisor) -> None:
        sup.start("allocation-2", "allocation", schedule.hooks.get("allocation", []))

    def kill_one_allocation(sup: Supervisor) -> None:
        sup.kill(victim, restart=False)

    victim = rng.choice(["allocation", "allocation-2"])
    survivor = "allocation-2" if victim == "allocation" else "allocation"
    schedule.at(then(1 / 3), delay(), "SIGKILL receiving", kill("receiving"))
    schedule.at(then(0.4), delay(), "start a second allocation process", start_second)
    schedule.at(then(1 / 2), delay(), "SIGKILL shipping", kill("shipping"))
    schedule.at(then(0.58), delay(), f"SIGKILL {victim}, not restarted", kill_one_allocation)
    schedule.at(then(2 / 3), delay(), "SIGKILL ledger", kill("ledger"))
    schedule.at(then(0.8), delay(), f"SIGKILL {survivor}", kill(survivor))

    # The fault hook: killed right after committing a document's (or its command's, or its
    # event's) transaction, before the relay publishes what it decided.
    def kind(*types: str) -> Callable[[Planned], bool]:
        return lambda p: p.doc["type"] in types

    receipt = first_doc(rounds, near(1 / 6), kind("ShipmentReceived"))
    shipment = first_doc(rounds, near(0.25), kind("ShipmentShipRequested", "ShipmentRequested"))
    for_ledger = first_doc(rounds, near(0.45), kind("AdjustInventory"))
    for_allocation = first_doc(rounds, near(0.7), kind("AdjustInventory"))
    schedule.hooks = {
        "receiving": [receipt],
        "shipping": [shipment],
        "ledger": [f"adjustment:{for_ledger}#0"],  # its InventoryAdjusted or CommandRejected
        "allocation": [f"adjustment:{for_allocation}"],  # the AdjustStock command
    }
    return schedule


async def epochs(env: LotlineEnv) -> dict[str, int]:
    """How often each consumer's partitions were assigned in all (the fencing epochs)."""
    conn = await asyncpg.connect(env.dsn)
    try:
        out = {}
        for schema in SERVICES:
            total = await conn.fetchval(
                f"SELECT coalesce(sum(epoch), 0) FROM {schema}.consumer_offsets"
            )
            out[schema] = int(total)
        return out
    finally:
        await conn.close()


async def test_nothing_lost_or_repeated_when_services_are_killed(lotline_env: Any) -> None:
    env: LotlineEnv = lotline_env(**RESTART)
    run = plan(SEED, ROUNDS)
    schedule = make_schedule(SEED, run.rounds)
    sup = Supervisor(env)
    for service in SERVICES:
        sup.start(service, service, schedule.hooks.get(service, []))

    round_starts: list[float] = []

    async def during(number: int, planned: list[Planned]) -> None:
        round_starts.append(time.monotonic())
        # In the order scheduled, each `delay` after the one before it.
        for delay, what, action in schedule.actions.get(number, []):
            await asyncio.sleep(delay)
            sup.note(f"round {number}: {what}")
            action(sup)

    watcher = asyncio.create_task(sup.watch())
    try:
        await send_rounds(env, run, during=during, wait=ANSWER_WAIT)
        round_starts.append(time.monotonic())
        problems = await check_services(env, run, settle=SETTLE, after_crashes=True)
        assigned = await epochs(env)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        sup.stop()

    problems += sup.failures
    # The test's own premise: every service was killed at least once.
    problems += [f"{s} was never killed" for s in SERVICES if not sup.kills[s]]
    print(f"\nchaos schedule ({run.label}):")
    for line in schedule.describe():
        print(f"  {line}")
    print("what happened:")
    for line in sup.timeline:
        print(f"  {line}")
    print(f"kills: {dict(sup.kills)}; partition assignments (epochs): {assigned}")
    took = [b - a for a, b in itertools.pairwise(round_starts)]
    print("seconds per round: " + " ".join(f"{n}:{t:.1f}" for n, t in enumerate(took)))
    if problems:
        print("service logs:\n  " + "\n  ".join(sup.log_files()))
    report(run, problems)
