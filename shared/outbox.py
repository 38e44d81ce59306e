"""Transactional outbox: events are rows written with the decision, published by a relay.

One relay per service schema is active at a time, so the events of one key leave in the order
they were decided. Its lease is a session-level Postgres advisory lock: held as long as the
relay's connection lives, released by the server the moment the process dies, so a successor
takes over at once. A leader that is alive but stuck (a paused process, a blocked event loop)
would hold it forever: the leader renews a heartbeat (`outbox_lease`) every few seconds, and a
waiting process that finds it older than LEASE_SECONDS ends the stuck leader's backend, which
releases the lock to it. The stuck process, once it runs again, finds its connection gone and
waits its turn; what it was publishing goes out again (consumers are idempotent).

The leader reads unsent rows in id order, publishes them, then marks them
sent (with its next read, or on its own when no commit follows within 50 ms). A leader that
dies between publishing and marking leaves its rows unsent; the next leader publishes them
again, first, before anything newer (at least once; consumers are idempotent by `message_id`).

A record the broker refuses for good (larger than the topic takes, say) would stop every row
behind it, forever. The relay retries such rows one by one and parks the one still refused: its
row stays in the table with the broker's error (`parked`; never purged), a notice naming it goes
to the dead-letter topic, and the rows behind it are published. A partition's rows go out as a
chain of record batches, each sent once the one before it is in: a refused batch's rows, sent
again alone, still reach the broker before the rows behind them, and a batch that fails
otherwise (the broker away) ends its partition's chain for the round, so no row of a key
overtakes an earlier one.

Stopping, the relay drains what is committed, and gives up (the rows stay unsent for the next
leader) once a round has not finished for BROKER_STOP_SECONDS: a broker gone.

Observability. A message emitted with a `reason_code` (a business refusal: `ReceiptRejected`,
`CommandRejected`, …) is noted by `emit` (a reference to the model, nothing parsed) and, once
the unit of work committed (`Outbox.report_refusals`, never after a rollback), counted in
`lotline_refusals_total` and logged once (`refusal`, at INFO). The relay leader keeps
`lotline_outbox_unsent_rows` and `lotline_outbox_oldest_unsent_seconds` from the rows it reads
each poll anyway (a count query at most every few seconds, and only while it is behind).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import Counter, Gauge
from pydantic import BaseModel

from shared.contracts.codec import encode
from shared.db import json_rows
from shared.kafka import BROKER_STOP_SECONDS

log = structlog.get_logger(__name__)

PARTITIONER = DefaultPartitioner()

PUBLISHED = Counter("lotline_outbox_published_total", "Outbox rows published", ["schema"])
PARKED = Counter(
    "lotline_outbox_parked_total", "Outbox rows the broker refused for good, parked", ["schema"]
)
UNSENT = Gauge(
    "lotline_outbox_unsent_rows",
    "Outbox rows committed and not yet published, as the relay leader last read them (0 when "
    "drained; 0 in a process that does not lead its service's relay)",
    ["service"],
)
OLDEST_UNSENT = Gauge(
    "lotline_outbox_oldest_unsent_seconds",
    "Age of the oldest outbox row committed and not yet published, as of the relay leader's "
    "last read; keeps growing while the relay is stuck (0 when drained, or not leading)",
    ["service"],
)
REFUSALS = Counter(
    "lotline_refusals_total",
    "Business refusals (messages carrying a reason_code) put in the outbox, counted once their "
    "transaction committed",
    ["service", "type", "reason_code"],
)
# With a full batch read, the relay counts what is left at most this often.
COUNT_EVERY_SECONDS = 5.0
COUNT_UNSENT_SQL = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
# How much of an offending value and a reason a `refusal` log line keeps.
LOG_OFFENDING_CHARS = 200
LOG_REASON_CHARS = 500

# Broker answers no retry can change: the record itself is refused. Anything else (the broker
# away, a leader moving) is retried as before, however long it takes.
REFUSED_RECORD = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    CorruptRecordException,
)
PARK_SQL = "UPDATE outbox SET parked = $2 WHERE id = $1"

# Every message lotline publishes names its type in this header, so a consumer can pass over
# the types it does not read without parsing them (a receipt's event can be megabytes).
TYPE_HEADER = "type"

# Only the lease holder publishes, so reading the unsent rows needs no row locks or claim writes.
# The rows published last time are marked sent by the same statement (one round trip, not two);
# its read sees them still unsent (one snapshot), hence the exclusion.
MARK_AND_READ_SQL = """
WITH marked AS (
    UPDATE outbox SET sent_at = to_timestamp($3) WHERE id = ANY($2::bigint[])
)
SELECT id, topic, key, payload, headers, created_at FROM outbox
WHERE sent_at IS NULL AND NOT (id = ANY($2::bigint[])) ORDER BY id LIMIT $1
"""
MARK_SQL = "UPDATE outbox SET sent_at = to_timestamp($2) WHERE id = ANY($1::bigint[])"
# With rows published but not yet marked, how long the relay waits for a next commit to mark
# them with before it marks them on their own.
MARK_DELAY_SECONDS = 0.05

# Stopping, the relay drains while its rounds finish, for DRAIN_SECONDS at most; a round that
# takes longer than its patience (BROKER_STOP_SECONDS: the broker gone) ends the drain there.
DRAIN_SECONDS = 10.0

# Rows of the outbox, and message ids of the inbox, deleted per statement once out of retention.
PURGE_CHUNK = 10_000

# The leader's heartbeat: renewed this often, by a task of its own; a leader silent for
# LEASE_SECONDS (its event loop blocked or the process paused that long) is taken for stuck
# and its backend ended.
RENEW_SECONDS = 2.0
LEASE_SECONDS = 20.0
RENEW_SQL = """
INSERT INTO outbox_lease (id, pid, renewed_at) VALUES (1, pg_backend_pid(), now())
ON CONFLICT (id) DO UPDATE SET pid = EXCLUDED.pid, renewed_at = EXCLUDED.renewed_at
"""
HEARTBEAT_SQL = "UPDATE outbox_lease SET renewed_at = now() WHERE id = 1 AND pid = $1"
# Ends the backend holding the relay's advisory lock, only if it is the one whose heartbeat is
# stale (a new leader has another pid until its first renewal, made as it takes the lock).
# A bigint advisory key shows in pg_locks as classid (high half), objid (low half), objsubid 1.
END_STUCK_LEADER_SQL = """
SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN outbox_lease s ON s.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND s.renewed_at < now() - make_interval(secs => $3)
"""


@dataclass(frozen=True)
class OutboxRow:
    topic: str
    key: bytes | None
    payload: bytes
    headers: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class _RefusalShape:
    """Where a message class carries its refusal: on itself (`reason_code`), or on a nested
    problem (`ShipmentCancelled.refused`); and which of the ids it answers it has."""

    nested: str | None
    ids: tuple[str, ...]


_ANSWERED_IDS = ("answers", "command_id", "shipment_id", "adjustment_id", "lic", "line_no")
"""Ids a refusal's log line names when the message has them: `answers` (the upstream message
id a status answers) and `command_id` (the command an event decides) lead back to what was sent."""
_SHAPES: dict[type, _RefusalShape | None] = {}
_UNSEEN = _RefusalShape("", ())


def _shape(cls: type) -> _RefusalShape | None:
    """Computed once per message class (the hot path pays a dict lookup per `emit`)."""
    fields = getattr(cls, "model_fields", {})
    if "reason_code" in fields:
        nested = None
    elif "refused" in fields:
        nested = "refused"
    else:
        return None
    return _RefusalShape(nested, tuple(name for name in _ANSWERED_IDS if name in fields))


@dataclass
class Outbox:
    """Rows collected during one unit of work, written with one statement at its end.

    `refusals`: the messages emitted with a reason code, reported by `report_refusals` (the
    unit of work's after-commit hook) under `service` (None: the service the process logs as).
    """

    rows: list[OutboxRow] = field(default_factory=list)
    service: str | None = None
    refusals: list[tuple[BaseModel, _RefusalShape]] = field(default_factory=list)

    def emit(self, topic: str, key: str | None, message: BaseModel) -> None:
        kind = getattr(message, "type", None)
        headers = {TYPE_HEADER: kind} if isinstance(kind, str) else None
        self.rows.append(OutboxRow(topic, key.encode() if key else None, encode(message), headers))
        shape = _SHAPES.get(type(message), _UNSEEN)
        if shape is _UNSEEN:
            shape = _SHAPES[type(message)] = _shape(type(message))
        if shape is not None:
            # Noted, not read: what it says is read once the unit of work committed.
            source: Any = message if shape.nested is None else getattr(message, shape.nested)
            if source is not None and source.reason_code is not None:
                self.refusals.append((message, shape))

    def emit_raw(
        self, topic: str, key: bytes | None, payload: bytes, headers: dict[str, str]
    ) -> None:
        self.rows.append(OutboxRow(topic, key, payload, headers))

    def report_refusals(self) -> None:
        """Count and log the refusals emitted, now that their transaction committed. Each
        once: a second call (several units of work share one outbox) finds none left."""
        if not self.refusals:
            return
        refusals, self.refusals = self.refusals, []
        service = self.service or _service_logging()
        for message, shape in refusals:
            try:
                _report_refusal(service, message, shape)
            except Exception:  # reporting must never undo, or fail, a committed unit
                log.exception("outbox.refusal_report_failed", type=getattr(message, "type", None))


def _service_logging() -> str:
    """The service this process logs as (`shared.logs.configure` binds it)."""
    return str(structlog.contextvars.get_contextvars().get("service") or "unknown")


def _report_refusal(service: str, message: BaseModel, shape: _RefusalShape) -> None:
    source: Any = message if shape.nested is None else getattr(message, shape.nested)
    kind = str(getattr(message, "type", type(message).__name__))
    code = str(getattr(source.reason_code, "value", source.reason_code))
    ids: dict[str, Any] = {}
    for name in shape.ids:
        value = getattr(message, name, None)
        if value is not None:
            ids[name] = value
    problems = getattr(source, "problems", None) or ()
    # The line a document-level refusal is about: its first problem's (or the nested one's).
    first = problems[0] if problems else (source if shape.nested is not None else None)
    if first is not None:
        for name in ("lic", "line_no"):
            value = getattr(first, name, None)
            if value is not None:
                ids.setdefault(name, value)
    if problems:
        ids["problems"] = len(problems)
    REFUSALS.labels(service, kind, code).inc()
    log.info(
        "refusal",
        service=service,
        type=kind,
        message_id=getattr(message, "message_id", None),
        reason_code=code,
        reason=_clip(getattr(source, "reason", None), LOG_REASON_CHARS),
        offending=_clip(getattr(source, "offending", None), LOG_OFFENDING_CHARS),
        **ids,
    )


def _clip(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


async def write_outbox(conn: asyncpg.Connection, rows: Sequence[OutboxRow], channel: str) -> None:
    if not rows:
        return
    # The notification is delivered at commit: it wakes the relay leader, whichever process
    # it runs in. One statement, one round trip. A row's topic and headers travel as one JSON
    # text (asyncpg checks every array element against collections.abc, and sent a jsonb
    # element through a Python codec call); key and payload stay bytea, bytes as they are.
    # Headers are never the JSON null, so `nullif` gives NULL exactly for none.
    await conn.execute(
        "WITH rows AS (INSERT INTO outbox (topic, key, payload, headers)"
        " SELECT r->>0, k, p, nullif(r->1, 'null')"
        " FROM unnest($1::text[]::jsonb[], $2::bytea[], $3::bytea[]) AS v(r, k, p))"
        " SELECT pg_notify($4, '')",
        json_rows((r.topic, r.headers) for r in rows),
        [r.key for r in rows],
        [r.payload for r in rows],
        channel,
    )


def channel_for(schema: str) -> str:
    return f"lotline_outbox_{schema}"


class OutboxRelay:
    """Publishes committed outbox rows to Kafka, in id order, while this process leads."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        schema: str,
        *,
        batch_size: int = 2000,
        poll_seconds: float = 0.5,
        retention_seconds: float = 600,
        inbox_retention_seconds: float = 30 * 86400,
        dead_letter_topic: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self._dead_letter_topic = dead_letter_topic
        self._lease_seconds = lease_seconds
        self.leading = False  # holds the lease: this process publishes the service's rows
        self._retention = retention_seconds
        self._inbox_retention = inbox_retention_seconds
        self._pool = pool
        self._producer = producer
        self._schema = schema
        self._batch_size = batch_size
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        # Published, not yet marked sent: ids and when their publishing was acknowledged.
        self._unmarked: list[int] = []
        self._published_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._drained = False  # the last round of a drain found nothing left
        self._progress_at = 0.0  # when a round last finished (loop time)
        self._lock_key = int.from_bytes(
            hashlib.sha256(f"outbox:{schema}".encode()).digest()[:8], "big", signed=True
        )
        self.published = 0
        # What the last read found unsent (the gauges): how many, the oldest one's commit time.
        self._unsent = 0
        self._oldest: float | None = None
        self._next_count = 0.0
        self._gauged = False
        self._unsent_gauge = UNSENT.labels(schema)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._schema}")

    async def stop(self, patience: float = BROKER_STOP_SECONDS) -> bool:
        """Drain: publish what is committed, then stop; whether everything went out.

        Gives up once no round has finished for `patience` seconds (a broker that died or
        does not answer: a publish would wait out aiokafka's request timeout, 40 s, again and
        again), or after DRAIN_SECONDS in all: the relay is cancelled, and what it had not
        published stays unsent for the next leader. Never raises, so the service still closes
        its producer and pool and exits cleanly."""
        self._stopping = True
        self._wake.set()
        task = self._task
        if task is None:
            return True
        loop = asyncio.get_running_loop()
        self._progress_at = loop.time()
        deadline = self._progress_at + DRAIN_SECONDS
        while not task.done():
            wait = min(self._progress_at + patience, deadline) - loop.time()
            if wait <= 0:
                break
            await asyncio.wait({task}, timeout=wait)
        if not task.done():
            log.warning(
                "outbox.drain_abandoned",
                schema=self._schema,
                unsent=self._unsent,
                patience=patience,
                drain_seconds=DRAIN_SECONDS,
            )
            task.cancel()
            await asyncio.wait({task})
        elif not task.cancelled() and task.exception() is not None:
            log.error("outbox.relay_ended", schema=self._schema, error=repr(task.exception()))
        return self._drained

    async def _run(self) -> None:
        while True:
            try:
                await self._lead()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox.relay_failed")
                if self._stopping:
                    return
                await asyncio.sleep(1)

    async def _lead(self) -> None:
        async with self._pool.acquire() as proxy:
            conn = cast(asyncpg.Connection, proxy)  # the proxy forwards every call
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                self._not_leading()
                if self._stopping:
                    self._drained = True  # the leader's to drain, not ours
                    return
                # Another process leads; our commits' wake-ups are its business (NOTIFY).
                await self.end_stuck_leader(conn)
                await asyncio.sleep(1.0)
            self.leading = True
            heartbeat: asyncio.Task[None] | None = None
            try:
                await self.renew(conn)
                # Renewed by a task of its own, on another connection: a long round (a slow
                # broker, a purge waiting on a lock) is not a stuck leader; a stuck loop is.
                heartbeat = asyncio.create_task(self._heartbeat(conn.get_server_pid()))
                await conn.add_listener(channel_for(self._schema), self._on_notify)
                await self._relay(conn)
            finally:
                self.leading = False
                if heartbeat is not None:
                    heartbeat.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await heartbeat
                try:
                    await conn.remove_listener(channel_for(self._schema), self._on_notify)
                    await conn.execute("SELECT pg_advisory_unlock($1)", self._lock_key)
                except BaseException:
                    # The pool hands connections back without a reset (db.create_pool): one
                    # still holding the lease must not go back to it. (One the server ended,
                    # a stuck leader's, may already be gone: nothing to close then.)
                    with contextlib.suppress(Exception):
                        conn.terminate()
                    raise

    async def renew(self, conn: asyncpg.Connection) -> None:
        """The leader's heartbeat: this backend (`conn`'s, holding the lock) leads, as of now."""
        await conn.execute(RENEW_SQL)

    async def _heartbeat(self, leader_pid: int) -> None:
        """Renew the lease of the leading backend every RENEW_SECONDS while this loop runs."""
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                await self._pool.execute(HEARTBEAT_SQL, leader_pid)
            except Exception as exc:  # the database away: the next beat tries again
                log.info("outbox.heartbeat_failed", schema=self._schema, error=str(exc))

    async def end_stuck_leader(self, conn: asyncpg.Connection) -> bool:
        """End the leading backend if its heartbeat is older than LEASE_SECONDS; whether one
        was ended (its lock is then free for the next try)."""
        key = self._lock_key & 0xFFFF_FFFF_FFFF_FFFF
        ended = await conn.fetchval(
            END_STUCK_LEADER_SQL, key >> 32, key & 0xFFFF_FFFF, self._lease_seconds
        )
        if ended:
            log.warning("outbox.stuck_leader_ended", schema=self._schema, after=self._lease_seconds)
        return bool(ended)

    async def _relay(self, conn: asyncpg.Connection) -> None:
        next_purge = 0.0
        while True:
            # Cleared before reading: a commit that lands after this wakes us again,
            # one that lands before is in what we read.
            self._wake.clear()
            sent = await self.publish_once(conn)
            now = self._progress_at = asyncio.get_running_loop().time()
            if now >= next_purge:
                # Sent rows are kept a while for operators, then dropped; so are
                # message ids older than any redelivery. A chunk at a time, publishing in
                # between: after the retention was lowered, one DELETE of millions of rows
                # would hold the relay (every service's events) for as long as it ran.
                purged = await self.purge(conn, self._retention)
                purged = max(purged, await self.purge_inbox(conn, self._inbox_retention))
                next_purge = now if purged >= PURGE_CHUNK else now + 60
            if sent == self._batch_size:
                continue  # a full batch: more may be waiting
            if self._stopping:
                if sent:
                    continue  # draining: until nothing is left
                await self.mark_published(conn)
                self._drained = True
                return
            # Not another read right away (it would find nothing): wait to be woken,
            # or poll, for rows of other processes' consumers. What was just published is
            # marked by the next read, or on its own if no commit comes soon.
            if self._unmarked and not await self._sleep(MARK_DELAY_SECONDS):
                await self.mark_published(conn)
            if not self._wake.is_set():
                await self._sleep(self._poll)

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float) -> bool:
        """Wait to be woken, at most `seconds`; whether we were."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        return self._wake.is_set()

    async def mark_published(self, conn: asyncpg.Connection) -> None:
        """Mark the rows published last as sent (the next read would have)."""
        if self._unmarked:
            await conn.execute(MARK_SQL, self._unmarked, self._published_at)
            self._unmarked = []

    async def publish_once(self, conn: asyncpg.Connection) -> int:
        """Mark what was published last, read and publish the next batch; returns how many rows
        were sent. They are marked sent by the next call (or `mark_published`)."""
        started = time.perf_counter()
        rows = await conn.fetch(
            MARK_AND_READ_SQL, self._batch_size, self._unmarked, self._published_at
        )
        self._unmarked = []
        await self._gauge_unsent(conn, rows)
        if not rows:
            return 0
        # One chain of record batches per partition, the partitions side by side: a batch is
        # sent once the one before it, same partition, is in (or, refused, its rows are, one
        # by one), so no row overtakes an earlier one of its key.
        chains = await self._record_batches(rows)
        results = await asyncio.gather(
            *(self._publish_chain(place, chain) for place, chain in chains.items()),
            return_exceptions=True,
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            # The broker away, say: nothing is marked, every row goes again next round.
            raise failed[0]
        for refused in results:
            for row, error in cast(list[tuple[asyncpg.Record, Exception]], refused):
                await self._park(conn, row, error)
        self._unmarked = [r["id"] for r in rows]
        self._published_at = time.time()
        log.debug(
            "outbox.published", rows=len(rows), ms=round((time.perf_counter() - started) * 1000, 1)
        )
        self.published += len(rows)
        PUBLISHED.labels(self._schema).inc(len(rows))
        if len(rows) < self._batch_size:
            self._unsent, self._oldest = 0, None  # all that was unsent when we read
        else:
            self._unsent = max(self._unsent - len(rows), 0)  # the next read comes at once
        self._unsent_gauge.set(self._unsent)
        return len(rows)

    async def _gauge_unsent(self, conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> None:
        """The lag gauges from what the poll read: a batch not full is every unsent row; behind
        a full one, what is left is counted at most every COUNT_EVERY_SECONDS."""
        unsent = len(rows)
        if unsent == self._batch_size:
            now = time.monotonic()
            if now >= self._next_count:
                self._next_count = now + COUNT_EVERY_SECONDS
                unsent = int(await conn.fetchval(COUNT_UNSENT_SQL))
            else:
                unsent = max(unsent, self._unsent)
        self._unsent = unsent
        self._oldest = rows[0]["created_at"].timestamp() if rows else None
        self._unsent_gauge.set(unsent)
        if not self._gauged:
            # The age is read at scrape time: it grows while a publish hangs.
            OLDEST_UNSENT.labels(self._schema).set_function(self._oldest_age)
            self._gauged = True

    def _oldest_age(self) -> float:
        oldest = self._oldest
        return 0.0 if oldest is None else max(time.time() - oldest, 0.0)

    def _not_leading(self) -> None:
        """Another process leads (and reports): this one shows nothing unsent."""
        if self._unsent or self._oldest is not None:
            self._unsent, self._oldest = 0, None
            self._unsent_gauge.set(0)

    async def _publish_chain(
        self, place: tuple[str, int], chain: list[tuple[Any, list[asyncpg.Record]]]
    ) -> list[tuple[asyncpg.Record, Exception]]:
        """Publish one partition's record batches in order, each once the one before is in. A
        batch the broker refuses goes again row by row, before the batches behind it; returns
        the rows still refused alone, with the broker's error, for the caller to park. Any
        other failure ends the chain (raised): the batches behind it are not sent."""
        topic, partition = place
        refused: list[tuple[asyncpg.Record, Exception]] = []
        for batch, batch_rows in chain:
            # Closed, a batch is complete: the producer sends it at once instead of waiting out
            # its linger for records that will never come (1.4 ms of every hop on the
            # embedded broker, where a publish takes 1 ms).
            batch.close()
            try:
                await (await self._producer.send_batch(batch, topic, partition=partition))
            except REFUSED_RECORD:
                for row in batch_rows:
                    alone = self._producer.create_batch()
                    _append(alone, row)
                    alone.close()
                    try:
                        await (await self._producer.send_batch(alone, topic, partition=partition))
                    except REFUSED_RECORD as error:
                        refused.append((row, error))
        return refused

    async def _park(self, conn: asyncpg.Connection, row: asyncpg.Record, error: Exception) -> None:
        reason = f"the broker refused the record: {error!r}"
        log.error(
            "outbox.parked",
            schema=self._schema,
            outbox_id=row["id"],
            topic=row["topic"],
            bytes=len(row["payload"]),
            error=reason,
        )
        await conn.execute(PARK_SQL, row["id"], reason)
        PARKED.labels(self._schema).inc()
        if self._dead_letter_topic is None:
            return
        # The notice, not the record (it would be refused again): where to find it.
        headers = {
            **(row["headers"] or {}),
            "error": reason[:2000],
            "source_topic": row["topic"],
            "outbox_schema": self._schema,
            "outbox_id": str(row["id"]),
            "payload_bytes": str(len(row["payload"])),
        }
        await self._producer.send_and_wait(
            self._dead_letter_topic,
            value=b"",
            key=row["key"],
            headers=[(k, str(v).encode()) for k, v in headers.items()],
        )

    async def _record_batches(
        self, rows: Sequence[asyncpg.Record]
    ) -> dict[tuple[str, int], list[tuple[Any, list[asyncpg.Record]]]]:
        """The rows as record batches, per (topic, partition), in row order: `send()` costs a
        future and an accumulator round per message, which at thousands of events a second was
        a tenth of a service's CPU. Partitions are chosen exactly as `send()` would
        (`PARTITIONER`: aiokafka's murmur2, every lotline producer's)."""
        producer = self._producer
        chains: dict[tuple[str, int], list[tuple[Any, list[asyncpg.Record]]]] = {}
        partitions: dict[str, list[int]] = {}
        for row in rows:
            topic, key = row["topic"], row["key"]
            if topic not in partitions:
                partitions[topic] = sorted(await producer.partitions_for(topic))
            partition = PARTITIONER(key, partitions[topic], partitions[topic])
            chain = chains.setdefault((topic, partition), [])
            if not chain or not _append(chain[-1][0], row):
                # The first, or the last one is full: a new one (a first record always fits,
                # whatever its size).
                batch = producer.create_batch()
                _append(batch, row)
                chain.append((batch, []))
            chain[-1][1].append(row)
        return chains

    @staticmethod
    async def purge(
        conn: asyncpg.Connection, older_than_seconds: float, limit: int = PURGE_CHUNK
    ) -> int:
        """Delete up to `limit` rows sent before the retention; how many went."""
        result = await conn.execute(
            "DELETE FROM outbox WHERE id = ANY(ARRAY(SELECT id FROM outbox"
            " WHERE sent_at < now() - make_interval(secs => $1) AND parked IS NULL LIMIT $2))",
            older_than_seconds,
            limit,
        )
        return int(result.split()[-1])

    @staticmethod
    async def purge_inbox(
        conn: asyncpg.Connection, older_than_seconds: float, limit: int = PURGE_CHUNK
    ) -> int:
        """Delete up to `limit` message ids processed before the retention; how many went."""
        result = await conn.execute(
            "DELETE FROM inbox AS i USING (SELECT consumer, message_id FROM inbox"
            " WHERE processed_at < now() - make_interval(secs => $1) LIMIT $2) AS d"
            " WHERE i.consumer = d.consumer AND i.message_id = d.message_id",
            older_than_seconds,
            limit,
        )
        return int(result.split()[-1])


def _append(batch: Any, row: asyncpg.Record) -> bool:
    """Add an outbox row's record to a record batch; False if the batch is full."""
    headers = [(k, str(v).encode()) for k, v in (row["headers"] or {}).items()]
    appended = batch.append(key=row["key"], value=row["payload"], timestamp=None, headers=headers)
    return appended is not None
