"""Scale-out under failure (DESIGN.md §6, R4, R9): two allocation processes in one consumer group
while commands stream; one is SIGKILLed and restarted mid-stream, forcing rebalances. Afterwards
every command is decided exactly once, no unit, lot quantity or serial is allocated twice and no
quantity is negative."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from shared import stack
from tests.fixtures.infra import LotlineEnv, json_values, kafka_publish_many, kafka_read_until

FAST_JOIN = {
    "KAFKA_SESSION_TIMEOUT_MS": "3000",
    "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    "KAFKA_MAX_BATCH": "50",
}
UNITS_PER_LIC = 12
LINES_PER_LIC = 16  # more lines than units: some allocations must be refused
CHUNK = 12  # stream commands published at a time


def _msg(kind: str, **fields: Any) -> bytes:
    return json.dumps({"type": kind, "occurred_at": "2026-11-01T10:00:00Z", **fields}).encode()


def _setup(run: str) -> tuple[list[tuple[str, bytes]], list[str]]:
    commands: list[tuple[str, bytes]] = []
    lics = []
    for n in range(12):
        kind = ("plain", "lot", "serial")[n % 3]
        lic = f"{kind}-{run}-{n}"
        lics.append(lic)
        commands.append(
            (
                lic,
                _msg(
                    "UpsertItem",
                    message_id=f"{lic}/item",
                    lic=lic,
                    track_mfr_lot=kind == "lot",
                    serialized=kind == "serial",
                    est_unit_cost="5",
                ),
            )
        )
        receipt: dict[str, Any] = {
            "message_id": f"{lic}/receive",
            "lic": lic,
            "shipment_id": f"PO-{lic}",
            "line_no": 1,
            "lot_id": f"PO-{lic}/1",
            "office": "AI",
            "received_on": "2026-11-01",
            "quantity": UNITS_PER_LIC,
        }
        if kind == "lot":
            receipt["lots"] = [
                {"mfr_lot": "A", "expires_on": "2027-01-01", "quantity": UNITS_PER_LIC // 2},
                {"mfr_lot": "B", "expires_on": "2026-12-01", "quantity": UNITS_PER_LIC // 2},
            ]
        if kind == "serial":
            receipt["serials"] = [f"SN{i:04d}" for i in range(UNITS_PER_LIC)]
        commands.append((lic, _msg("ReceiveStock", **receipt)))
    return commands, lics


def _stream(lics: list[str]) -> list[tuple[str, bytes]]:
    commands = []
    for line in range(1, LINES_PER_LIC + 1):
        for lic in lics:
            fields = {"lic": lic, "shipment_id": f"S-{lic}", "line_no": line}
            commands.append(
                (
                    lic,
                    _msg(
                        "AllocateLine",
                        message_id=f"{lic}/alloc/{line}",
                        office="AI",
                        ship_on="2026-11-15",
                        quantity=1,
                        counterparty="C",
                        **fields,
                    ),
                )
            )
            if line % 2 == 0:
                commands.append((lic, _msg("ShipLine", message_id=f"{lic}/ship/{line}", **fields)))
    return commands


class _Process:
    """One allocation process with a log of its own (JSON, debug): the partitions it holds and
    the commands it committed are read from it, since both processes share one schema."""

    def __init__(self, env: LotlineEnv, name: str) -> None:
        log_dir = env.data_dir / name
        self.log = log_dir / "allocation.log"
        self.topic = env.settings.topics.commands
        environ = {**env.env, "LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}
        self.proc = stack.start_services(environ, ["allocation"], log_dir=log_dir)[0]

    def _events(self, event: str) -> list[dict[str, Any]]:
        entries = []
        for line in self.log.read_bytes().splitlines() if self.log.exists() else []:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("event") == event:
                entries.append(entry)
        return entries

    def held(self) -> set[int]:
        """The command partitions claimed at its latest assignment."""
        assigned = self._events("consumer.assigned")
        return {p for t, p in assigned[-1]["partitions"] if t == self.topic} if assigned else set()

    def committed(self) -> int:
        """Records of the batches it committed (logged only after the commit)."""
        return sum(int(e["new"]) for e in self._events("consumer.batch"))


async def _until(condition: Callable[[], Awaitable[bool]], within: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_two_processes_with_a_kill_decide_every_command_once(lotline_env: Any) -> None:
    env: LotlineEnv = lotline_env(**FAST_JOIN)
    topics = env.settings.topics
    run = uuid.uuid4().hex[:6]
    setup, lics = _setup(run)
    stream = _stream(lics)
    expected = {json.loads(v)["message_id"] for _, v in setup + stream}
    partitions = set(range(env.settings.lic_partitions))

    first, second = _Process(env, "first"), _Process(env, "second")
    procs = [first.proc, second.proc]
    conn = await asyncpg.connect(env.dsn)
    try:
        await kafka_publish_many(env.bootstrap, topics.commands, setup)

        async def decided() -> int:
            try:
                count = await conn.fetchval(
                    "SELECT count(*) FROM allocation.inbox WHERE consumer = 'allocation'"
                )
            except asyncpg.UndefinedTableError:  # not migrated yet
                return 0
            return int(count)

        async def both_hold_their_share() -> bool:
            mine, theirs = first.held(), second.held()
            return bool(mine) and bool(theirs) and not mine & theirs and mine | theirs == partitions

        async def setup_decided() -> bool:
            return await decided() == len(setup)

        assert await _until(both_hold_their_share, 60), (first.held(), second.held())
        assert await _until(setup_decided, 60), await decided()
        committed_before = first.committed()

        async def first_decided_some() -> bool:
            return first.committed() > committed_before

        # The stream arrives in chunks; the first process is killed as soon as it has committed
        # some of it, while the rest is still to come (mid-stream, forcing a rebalance).
        published = 0
        while True:
            assert published < len(stream), "the first process decided none of the stream"
            await kafka_publish_many(
                env.bootstrap, topics.commands, stream[published : published + CHUNK]
            )
            published += CHUNK
            if await _until(first_decided_some, 5):
                break
        # In this order: what its log shows committed is in the inbox when it is counted.
        first_decided = first.committed() - committed_before
        decided_before_kill = await decided()
        first.proc.send_signal(signal.SIGKILL)
        total = len(setup) + len(stream)
        progress = f"{decided_before_kill} of {total} decided, {first_decided} by the killed one"
        assert len(setup) < decided_before_kill < total, progress
        assert 0 < first_decided <= decided_before_kill - len(setup), progress

        rest = stream[published:]
        await kafka_publish_many(env.bootstrap, topics.commands, rest[: len(rest) // 2])
        procs.append(_Process(env, "restarted").proc)
        await kafka_publish_many(env.bootstrap, topics.commands, rest[len(rest) // 2 :])

        def all_answered(records: list[Any]) -> bool:
            return expected <= {e.get("command_id") for e in json_values(records)}

        records = await kafka_read_until(env.bootstrap, topics.events, all_answered, timeout=180)
    finally:
        await conn.close()
        stack.stop_services(procs)

    events = json_values(records)
    # At-least-once publishing may repeat an event, never a decision: one message_id, one answer.
    by_command: dict[str, set[str]] = defaultdict(set)
    for event in events:
        by_command[event["command_id"]].add(event["message_id"])
    assert {c for c in expected if len(by_command[c]) != 1} == set()

    unique = {e["message_id"]: e for e in events}.values()
    allocated = Counter(e["lic"] for e in unique if e["type"] == "LineAllocated")
    assert all(allocated[lic] == UNITS_PER_LIC for lic in lics), allocated
    refused = Counter(
        (e["lic"], e["reason_code"]) for e in unique if e["type"] == "CommandRejected"
    )
    for lic in lics:
        assert refused[(lic, "INSUFFICIENT_STOCK")] == LINES_PER_LIC - UNITS_PER_LIC
    shipped_serials = [
        (e["lic"], m["serial"])
        for e in unique
        if e["type"] == "LineShipped"
        for m in e["movements"]
        if m["serial"]
    ]
    assert len(shipped_serials) == len(set(shipped_serials))

    conn = await asyncpg.connect(env.dsn)
    try:
        lots = await conn.fetch(
            "SELECT lic, on_hand, allocated, used FROM allocation.inventory_lots"
        )
        assert all(r["on_hand"] >= 0 and 0 <= r["allocated"] <= r["on_hand"] for r in lots)
        assert all(r["on_hand"] + r["used"] == UNITS_PER_LIC for r in lots)
        units = await conn.fetch(
            "SELECT lic, serial, count(*) FROM allocation.units"
            " WHERE status IN ('available', 'allocated') GROUP BY lic, serial HAVING count(*) > 1"
        )
        assert units == []
    finally:
        await conn.close()
