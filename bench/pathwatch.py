"""What scenario 3 watches while documents flow: statuses, events and the ledger's progress.

- `StatusBook` tails `inventory.status`: when each shipment was allocated, refused, shipped
  (the status record's broker timestamp, i.e. when shipping's outbox relay published it, and
  when this process saw it), and which receipts were posted. Shipments allocated in the run
  being measured are handed to `on_allocated` (the ship-request forwarder).
- `EventClock` tails `inventory.events`: the broker timestamp of every (partition, offset).
- `LedgerWatch` polls the ledger's stored consumer positions (every 50 ms) and its usage row
  count (every 500 ms). Ledger lag of an event = first poll that sees the ledger's position past
  it − the event's broker timestamp (so it carries up to one poll interval of error).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from bench.kafka_io import Record
from bench.stats import summary_ms

ALLOCATED, FAILED = "ShipmentAllocated", "ShipmentAllocationFailed"
SHIPPED, SHIP_REFUSED = "ShipmentShipped", "ShipmentShipRefused"
RECEIPT_POSTED, RECEIPT_REJECTED = "ReceiptPosted", "ReceiptRejected"


@dataclass
class StatusBook:
    """Every status seen, by shipment id: {type: (broker timestamp, seen at)}."""

    seen: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    on_allocated: Callable[[str], None] | None = None

    def on_record(self, record: Record, seen_at: float) -> None:
        status = orjson.loads(record.value or b"{}")
        shipment_id, kind = status.get("shipment_id"), status.get("type")
        if not shipment_id or not kind:
            return
        mine = self.seen.setdefault(shipment_id, {})
        if kind in mine:
            return  # a status published again (at least once) is the same status
        mine[kind] = (record.timestamp / 1000, seen_at)
        if kind in (FAILED, SHIP_REFUSED, RECEIPT_REJECTED):
            self.reasons[shipment_id] = _reason(status)
        if kind == ALLOCATED and self.on_allocated is not None:
            self.on_allocated(shipment_id)

    def count(self, kind: str, ids: list[str]) -> int:
        return sum(1 for i in ids if kind in self.seen.get(i, {}))

    def at(self, shipment_id: str, kind: str) -> tuple[float, float] | None:
        return self.seen.get(shipment_id, {}).get(kind)


def _reason(status: dict[str, object]) -> str:
    code = status.get("reason_code")
    if code:
        return str(code)
    problems = status.get("problems")
    if isinstance(problems, list) and problems and isinstance(problems[0], dict):
        return str(problems[0].get("reason_code", "?"))
    return "?"


@dataclass
class HopClock:
    """When the last AllocateLine command (`inventory.commands`) and the last LineAllocated
    event (`inventory.events`) of each shipment were published: the hop-by-hop breakdown."""

    commanded: dict[str, float] = field(default_factory=dict)
    decided: dict[str, float] = field(default_factory=dict)

    def on_command(self, record: Record, _seen_at: float) -> None:
        self._note(record, b"AllocateLine", self.commanded)

    def on_event(self, record: Record, _seen_at: float) -> None:
        self._note(record, b"LineAllocated", self.decided)

    @staticmethod
    def _note(record: Record, kind: bytes, into: dict[str, float]) -> None:
        if record.value is None or kind not in record.value[:40]:
            return
        shipment_id = orjson.loads(record.value).get("shipment_id")
        if shipment_id:
            into[shipment_id] = max(into.get(shipment_id, 0.0), record.timestamp / 1000)


async def outbox_breakdown(
    dsn: str,
    topics: Any,
    sent: list[tuple[str, int, float]],
    hops: HopClock,
) -> dict[str, dict[str, float | int | None]]:
    """Inside each hop, from the services' outbox rows (kept 10 minutes after sending):
    `created_at` is when the deciding transaction began (now() is the transaction's start),
    `sent_at` when the relay marked the row published. So per hop: input published → decision
    transaction began ("wait"), and transaction began → published ("commit + relay")."""
    published = {shipment_id: at for shipment_id, _, at in sent}
    wanted = (
        ("shipping", topics.commands, "AllocateLine", published),
        ("allocation", topics.events, "LineAllocated", hops.commanded),
        ("shipping", topics.status, "ShipmentAllocated", hops.decided),
    )
    labels = ("shipping (request)", "allocation", "shipping (answer)")
    conn = await asyncpg.connect(dsn)
    result: dict[str, dict[str, float | int | None]] = {}
    try:
        for label, (schema, topic, kind, inputs) in zip(labels, wanted, strict=True):
            # The last row of each shipment: the one that completed its hop.
            rows = await conn.fetch(
                f"""
                SELECT DISTINCT ON (shipment_id) shipment_id,
                       extract(epoch FROM created_at)::float8 AS began,
                       extract(epoch FROM sent_at)::float8 AS sent
                FROM (
                    SELECT convert_from(payload, 'UTF8')::jsonb ->> 'shipment_id' AS shipment_id,
                           created_at, sent_at
                    FROM {schema}.outbox
                    WHERE topic = $1 AND sent_at IS NOT NULL
                      AND position($2::bytea IN substring(payload FROM 1 FOR 40)) > 0
                ) AS rows
                ORDER BY shipment_id, created_at DESC
                """,
                topic,
                kind.encode(),
            )
            waits, relays = [], []
            for row in rows:
                if row["shipment_id"] in inputs:
                    waits.append(row["began"] - inputs[row["shipment_id"]])
                    relays.append(row["sent"] - row["began"])
            for name, values in (("wait", waits), ("commit + relay", relays)):
                summary = summary_ms(values)
                result[f"{label}: {name}"] = {k: summary[k] for k in ("count", "p50_ms", "p99_ms")}
    finally:
        await conn.close()
    return result


@dataclass
class EventClock:
    """Broker timestamps of the events, per partition, in offset order."""

    offsets: dict[int, list[int]] = field(default_factory=dict)
    stamps: dict[int, list[float]] = field(default_factory=dict)
    hops: HopClock | None = None

    def on_record(self, record: Record, seen_at: float) -> None:
        self.offsets.setdefault(record.partition, []).append(record.offset)
        self.stamps.setdefault(record.partition, []).append(record.timestamp / 1000)
        if self.hops is not None:
            self.hops.on_event(record, seen_at)

    def end(self) -> dict[int, int]:
        return {p: offsets[-1] + 1 for p, offsets in self.offsets.items() if offsets}

    def since(self, marks: dict[int, int]) -> list[tuple[int, int, float]]:
        """(partition, offset, timestamp) of events at or after `marks` (next offsets)."""
        found = []
        for p, offsets in self.offsets.items():
            first = bisect.bisect_left(offsets, marks.get(p, 0))
            found += [(p, offsets[i], self.stamps[p][i]) for i in range(first, len(offsets))]
        return found


class LedgerWatch:
    """Polls the ledger's progress from its database (positions every 50 ms, usage every 0.5 s)."""

    def __init__(self, dsn: str, events_topic: str) -> None:
        self._dsn = dsn
        self._topic = events_topic
        self.positions: list[tuple[float, dict[int, int]]] = []
        self.usage: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self._dsn)
        self._task = asyncio.create_task(self._run(), name="bench-ledger-watch")

    async def _run(self) -> None:
        tick = 0
        try:
            while True:
                rows = await self._conn.fetch(
                    "SELECT partition, next_offset FROM ledger.consumer_offsets"
                    " WHERE consumer = 'ledger' AND topic = $1 AND next_offset IS NOT NULL",
                    self._topic,
                )
                self.positions.append(
                    (time.time(), {r["partition"]: r["next_offset"] for r in rows})
                )
                if tick % 10 == 0:
                    count = await self._conn.fetchval("SELECT count(*) FROM ledger.usage")
                    self.usage.append((time.time(), int(count)))
                tick += 1
                await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            raise
        except asyncpg.UndefinedTableError:
            await asyncio.sleep(0.5)  # the ledger has not migrated yet
            self._task = asyncio.create_task(self._run(), name="bench-ledger-watch")
        except BaseException as exc:
            self.error = exc

    def check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"polling the ledger's progress failed: {self.error!r}")

    def caught_up(self, ends: dict[int, int]) -> bool:
        if not self.positions:
            return False
        latest = self.positions[-1][1]
        return all(latest.get(p, 0) >= end for p, end in ends.items())

    def lag_seconds(self, events: list[tuple[int, int, float]]) -> list[float]:
        """For each event, first poll time with the ledger past it − the event's timestamp."""
        lags: list[float] = []
        by_partition: dict[int, list[tuple[int, float]]] = {}
        for partition, offset, stamp in events:
            by_partition.setdefault(partition, []).append((offset, stamp))
        for partition, stamped in by_partition.items():
            i = 0  # positions only grow, so each later offset is passed at a later poll
            for offset, stamp in sorted(stamped):
                while i < len(self.positions) and not (
                    self.positions[i][0] >= stamp
                    and self.positions[i][1].get(partition, 0) > offset
                ):
                    i += 1
                if i == len(self.positions):
                    break
                lags.append(max(0.0, self.positions[i][0] - stamp))
        return lags

    def unrecorded(self, events: list[tuple[int, int, float]]) -> list[float]:
        """Timestamps of the events the ledger's last known position has not passed."""
        latest = self.positions[-1][1] if self.positions else {}
        return [stamp for partition, offset, stamp in events if latest.get(partition, 0) <= offset]

    def usage_rate(self, since: float) -> tuple[int, float | None]:
        """(usage rows added after `since`, rows/s while they were being added)."""
        samples = [(t, n) for t, n in self.usage if t >= since]
        if len(samples) < 2:
            return 0, None
        base = samples[0][1]
        growing = [(t, n) for t, n in samples if n > base]
        added = samples[-1][1] - base
        if not growing:
            return added, None
        first_growth = max(t for t, n in samples if n == base)
        last = min(t for t, n in samples if n == samples[-1][1])
        return added, added / (last - first_growth) if last > first_growth else None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self._conn.close()
