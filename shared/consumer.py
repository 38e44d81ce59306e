"""The transactional batch consumer every lotline service uses (DESIGN.md §6).

For each batch FastStream hands us, in ONE Postgres transaction:
  1. fence: store the partitions' next offsets, only if our assignment epoch is still current;
  2. inbox: record the batch's message ids and keep only those never processed; an upstream
     message's row keeps a digest of its document, so an id already processed that comes
     again with ANOTHER document is told from a redelivery: not applied, but dead-lettered;
  3. call the service's handler (state changes + outbox rows);
  4. bytes that are not a message go to the dead-letter topic through the same outbox; a
     document that fails its schema but names its type and ids is also answered with its
     refusal (the route's `refuse` hook), once: its message id goes into the inbox too; a
     route's `on_refused` hook acts on it first, in record order with the route's handler.
An upstream message without `occurred_at` takes its Kafka record's timestamp, so a replay
decides the same way as the first delivery. One whose record key is not its document id is
processed all the same, and counted and logged once committed (`_check_key`).
Then wake the outbox relay. Offsets go to Kafka about once a second, off the hot path: only a
hint for lag monitoring, since on assignment we seek to the offsets stored in Postgres.
Every LAG_EVERY_SECONDS, also off the hot path, the consumer publishes its own lag (the
partitions' end offsets, asked of the broker, minus its positions) and how long it has been
stalled behind it (`_watch_lag`), so a consumer stuck with work waiting (its database down, a
batch retried, a hung handler) is told from one with nothing to do.

Errors, mapped to acknowledgement here and nowhere else:
  - invalid bytes: dead-lettered, acknowledged, the partition moves on;
  - transient database errors and constraint conflicts: the unit of work is retried with backoff;
  - anything else (a bug, or a message that trips one): the batch is split and each message is
    retried alone; the one that still fails is dead-lettered with the error, never skipped silently;
  - fenced (a newer owner holds the partition): nothing is written, nothing acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Generic, NamedTuple, TypeVar, Union, cast

import asyncpg
import orjson
import structlog
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from prometheus_client import Counter, Gauge, Histogram
from pydantic import BaseModel, TypeAdapter
from pydantic_core import ErrorDetails, PydanticUndefined

from shared.config import Settings
from shared.contracts.codec import (
    MAX_EVENT_BYTES,
    MAX_MESSAGE_BYTES,
    InvalidMessage,
    decode,
    loads,
)
from shared.contracts.invalid import Refuser, problems
from shared.contracts.types import normalize_identifier
from shared.contracts.upstream import document_key, key_matches
from shared.db import CONFLICT_ERRORS, TRANSIENT_ERRORS, is_transient, lock_names
from shared.kafka import IdlePace
from shared.outbox import TYPE_HEADER, Outbox, OutboxRelay, OutboxRow, channel_for, write_outbox

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Test hook (crash tests only): SIGKILL this process right after committing this message id.
_KILL_AFTER_COMMIT = os.environ.get("LOTLINE_FAULT_KILL_AFTER_COMMIT", "")

BATCHES = Counter(
    "lotline_batches_total",
    "Batches committed (consumer: the service's Kafka consumer, one per service)",
    ["consumer"],
)
MESSAGES = Counter(
    "lotline_messages_total",
    "Records read, each counted once, by outcome. consumer: the route that read it (the name "
    "keying its topic's inbox and stored offsets). outcome: processed; duplicate (its "
    "message_id was processed before: no effect); passed_over (a message type the route does "
    "not read); refused (failed its schema but named its type and ids: answered with its "
    "refusal, and its bytes dead-lettered too); dead_lettered (to the dead-letter topic "
    "unanswered: not a message, failed its schema unidentified or answered before, or failed "
    "processing); reused_id (an upstream message_id processed before, now with a different "
    "document: not applied, dead-lettered)",
    ["consumer", "outcome"],
)
OUTCOMES = ("processed", "duplicate", "passed_over", "refused", "dead_lettered", "reused_id")
KEY_MISMATCHES = Counter(
    "lotline_upstream_key_mismatch_total",
    "Upstream documents processed whose record key is not their document id (a null key "
    "included): accepted all the same, but a producer keying them so loses the per-document "
    "partition order the contract's key gives (docs/contract.md, Topics). Counted once, when "
    "first processed; each is logged as consumer.key_mismatch",
    ["topic", "type"],
)
BATCH_SECONDS = Histogram(
    "lotline_batch_seconds",
    "Time to process one batch (consumer: the service's Kafka consumer)",
    ["consumer"],
)
LAG = Gauge(
    "lotline_consumer_lag_records",
    "Records behind, per assigned partition: the partition's end offset (asked of the broker "
    "every few seconds) minus the consumer's next offset (committed to PostgreSQL with its last "
    "batch, or the stored one it sought to on assignment; records it passes over unread count "
    "as read). consumer: the service's Kafka consumer. Removed when the partition is revoked",
    ["consumer", "topic", "partition"],
)
STALLED = Gauge(
    "lotline_consumer_stalled_seconds",
    "While any of the consumer's partitions lags: seconds since it last committed a batch "
    "(or was last seen caught up); 0 when caught up. Lag > 0 with this growing: stuck "
    "(database down, a batch retried, a hung handler); lag 0: idle",
    ["consumer"],
)
# How often the lag is measured, and how long a measurement waits for the broker's answer
# (past it, the round is skipped: logged, the gauges keep their last values).
LAG_EVERY_SECONDS = 5.0
LAG_ASK_SECONDS = 5.0
# How much of a dead-lettered record's key, message id and JSON its log line reads or keeps.
LOG_KEY_BYTES = 200
LOG_ID_CHARS = 200
PEEK_BYTES = 1024 * 1024


MAX_CONFLICT_RETRIES = 5
# How long claiming an assignment retries a transient database error before giving up (the
# next batch of the partition tries again).
CLAIM_SECONDS = 30.0


class Fenced(Exception):
    """A newer assignment owns one of the batch's partitions: this process is a zombie."""


@dataclass(frozen=True)
class Inbound(Generic[T]):
    """One valid message and where it came from."""

    message: T
    topic: str
    partition: int
    offset: int
    key: bytes | None


class UnitOfWork:
    """What a handler gets: the transaction's connection and the outbox to emit into."""

    def __init__(self, conn: asyncpg.Connection, outbox: Outbox) -> None:
        self.conn = conn
        self.outbox = outbox
        # The outbox's refusals are counted and logged once committed (shared.outbox).
        self.committed: list[Callable[[], None]] = [outbox.report_refusals]

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the transaction has committed (never if it rolls back): the
        place to update in-memory state that must only ever reflect committed rows."""
        self.committed.append(callback)


Handler = Callable[[UnitOfWork, list[Inbound[T]]], Awaitable[None]]
Locks = Callable[[asyncpg.Connection, list[T]], Awaitable[Iterable[str]]]
Locker = Callable[[asyncpg.Connection, list[str]], Awaitable[None]]


@dataclass(frozen=True)
class Refused:
    """A document that failed its schema but named its ids, answered by its route's `refuse`
    hook in this transaction: what a route's `on_refused` hook gets."""

    message_id: str  # normalized: its inbox key
    document: dict[str, Any]  # the decoded JSON object, as sent (not validated)
    topic: str
    partition: int
    offset: int
    key: bytes | None


RefusedHandler = Callable[[UnitOfWork, list[Refused]], Awaitable[None]]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: TransactionalConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._owner.forget(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        try:
            await self._owner.claim(assigned)
        except Exception:
            # aiokafka would only log it too. The partitions stay assigned but unclaimed, and
            # on_batch claims them before it reads any of their records.
            log.exception("consumer.claim_failed", consumer=self._owner.name)


@dataclass(frozen=True)
class Route(Generic[T]):
    """One topic a service reads, and what it does with it.

    `name` keys the topic's inbox rows and stored offsets, so each topic keeps its own
    exactly-once bookkeeping while one Kafka consumer serves them all.
    """

    name: str
    topic: str
    adapter: TypeAdapter[T]
    handler: Handler[T]
    # Message types (the `type` header our relay sets) the handler reads; records of other
    # types are passed over without being parsed. None: every record.
    accepts: frozenset[str] | None = None
    on_assign: Callable[[], None] | None = None
    payload_doc: Any = None
    # Answers a document that failed validation but is identifiable (see shared.contracts.invalid):
    # called only on that path, never for bytes that are not a JSON object; its refusals are
    # written with the dead letter. None: dead letter only.
    refuse: Refuser | None = None
    # Acts, in the batch's transaction, on the documents `refuse` answers in it (their ids new
    # to the inbox: never again on redelivery), just before their refusals are written. The
    # route's records are then handled in record order: the valid messages before such a
    # document go to `handler` (in a call of their own) before it, those after it after its
    # refusal. None: refusals are written with the other dead letters, before any handler runs.
    on_refused: RefusedHandler | None = None
    # Reads the topic's raw records itself instead of decoding them with `adapter` (for
    # `inventory.dlq`, whose records are not messages): returns what the handler gets, whose
    # `message_id` is the inbox key; must not raise. A record of such a route is never
    # dead-lettered (one that fails is logged and passed over), so a reader of the dead-letter
    # topic cannot feed its own input.
    read: Callable[[ConsumerRecord], T] | None = None
    # A topic nobody waits on (the ledger's dashboard feeds): read by a consumer of its own
    # that fetches every `poll_ms`, so its partitions do not cost the broker a fetch every
    # KAFKA_FETCH_MAX_WAIT_MS alongside the hot path's. None: the service's main consumer.
    poll_ms: int | None = None
    # The locks the handler may take for these messages in its transaction, in its service's
    # terms (what the consumer's `lock` takes: by default advisory lock names,
    # `shared.db.lock_names`), read in that transaction before the handlers' own reads. The
    # consumer takes every route's at once, in one statement, before any handler runs: two
    # transactions that each read two topics then never wait for each other in turn (a
    # deadlock), as taking them route by route could. A handler takes its own locks in one
    # statement (the consumer leaves a batch of one such route's messages to it).
    locks: Locks[T] | None = None


@dataclass
class _Dead:
    """A record bound for the dead-letter topic, and the refusal that answers it, if any."""

    record: ConsumerRecord
    reason: str
    message_id: str | None = None  # set with `refusals`: the inbox key of the answered message
    refusals: list[OutboxRow] = field(default_factory=list)
    noted: list[Any] = field(default_factory=list)  # the refusals' `Outbox.refusals`
    fresh: bool = False  # the message id was new to the inbox: the refusal goes out
    # For the log line only: the record's JSON object if decoding read one; `peek`: whether
    # its bytes may still hold one (decoding did not get that far).
    document: dict[str, Any] | None = None
    peek: bool = True
    reused: bool = False  # a valid message under an id processed with another document


class _Keyed(NamedTuple):
    """A record that takes an inbox row: a valid message, or a refused document."""

    name: str  # its route's, keying the inbox
    message_id: str
    digest: bytes | None  # of its document (`document_digest`); None: one of lotline's own
    record: ConsumerRecord
    unit: tuple[Route[Any], Inbound[Any]] | _Dead


# What the inbox says of a keyed record: never processed; processed before (or earlier in the
# batch) with the same document; processed with a different one.
_NEW, _DUPLICATE, _REUSED = "new", "duplicate", "reused"


class TransactionalConsumer:
    """One Kafka consumer (one group) per service, over all the topics it reads: every idle
    consumer costs the broker a fetch each `fetch_max_wait_ms`, so a service runs just one."""

    def __init__(
        self,
        *,
        name: str,
        routes: Sequence[Route[Any]],
        pool: asyncpg.Pool,
        relay: OutboxRelay,
        schema: str,
        settings: Settings,
        description: str = "",
        lock: Locker = lock_names,
    ) -> None:
        self.name = name
        self._lock = lock
        self._routes = {route.topic: route for route in routes}
        if len(self._routes) != len(routes):
            raise ValueError(f"{name}: one route per topic")
        self._pool = pool
        self._relay = relay
        self._channel = channel_for(schema)
        self._settings = settings
        self._description = description
        topics = settings.topics
        own = {topics.commands, topics.events, topics.status}
        self._max_bytes = {
            t: MAX_EVENT_BYTES if t in own else MAX_MESSAGE_BYTES for t in self._routes
        }
        self._own = {t: t in own for t in self._routes}
        self._epochs: dict[tuple[str, int], int] = {}
        self._next: dict[tuple[str, int], int] = {}
        # Partitions Kafka assigned us (claimed or not): records of one without an epoch must
        # be claimed, never passed over. One claim at a time: the listener's and on_batch's.
        self._assigned: set[tuple[str, int]] = set()
        self._claiming = asyncio.Lock()
        self._claim_seconds = CLAIM_SECONDS
        self._subscriber: Any = None
        self._hint_task: asyncio.Task[None] | None = None
        self._closed = False
        # Batches being handled, and since when none is (loop time): stopping waits for the
        # batches in flight (database work) before it starts counting the broker's silence.
        self._in_flight = 0
        self.idle_since = 0.0
        self._hint_interval = 1.0
        self._lag_task: asyncio.Task[None] | None = None
        self._lag_interval = LAG_EVERY_SECONDS
        # Since when (monotonic) the consumer has not moved on: its last commit, or the last
        # round that found it caught up (else an idle hour would read as an hour stalled the
        # moment a record arrives). Partitions whose lag label set is shown; whether any lagged
        # at the last answer.
        self._progressed_at = time.monotonic()
        self._shown: set[tuple[str, int]] = set()
        self._lagging = False
        self._lag_known = True
        self.processed = 0
        # Per topic, per outcome: its route's counters, made once (and shown at 0 from the start).
        self._counted = {
            route.topic: {outcome: MESSAGES.labels(route.name, outcome) for outcome in OUTCOMES}
            for route in routes
        }

    @property
    def topics(self) -> list[str]:
        return list(self._routes)

    # -- wiring -----------------------------------------------------------------------------

    def register(self, broker: KafkaBroker) -> None:
        """Subscribe with an explicit group and manual acknowledgement (never ack-first)."""

        async def handle(batch: Any) -> None:
            await self.on_batch(batch)

        # FastStream builds the AsyncAPI payload from this annotation; the broker runs with
        # apply_types=False and our decoder hands over the raw records, which we parse ourselves
        # so that one bad message goes to the dead-letter topic instead of failing the batch.
        docs = [r.payload_doc for r in self._routes.values() if r.payload_doc is not None]
        handle.__annotations__["batch"] = list[Union[tuple(docs)]] if docs else Any  # type: ignore[misc]  # noqa: UP007
        self._subscriber = broker.subscriber(
            *self._routes,
            # The prefix keeps test deployments sharing one broker out of each other's groups.
            group_id=f"{self._settings.topic_prefix}{self.name}",
            batch=True,
            max_records=self._settings.kafka_max_batch,
            batch_timeout_ms=self._settings.kafka_fetch_max_wait_ms,
            fetch_max_wait_ms=self._settings.kafka_fetch_max_wait_ms,
            auto_offset_reset="earliest",
            session_timeout_ms=self._settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=self._settings.kafka_heartbeat_interval_ms,
            ack_policy=AckPolicy.MANUAL,
            listener=_Listener(self),
            decoder=_keep_raw,
            max_partition_fetch_bytes=MAX_EVENT_BYTES,
            fetch_max_bytes=MAX_EVENT_BYTES,
            title=f"{self.name}:{','.join(self._routes)}",
            description=self._description,
        )
        self._subscriber(handle)
        busy, idle = (
            self._settings.kafka_fetch_max_wait_ms,
            self._settings.kafka_idle_fetch_max_wait_ms,
        )
        if idle > busy:
            self._subscriber.idle_pace = IdlePace(busy, idle, self._wanted)

    # -- assignment -------------------------------------------------------------------------

    async def claim(self, assigned: Sequence[TopicPartition]) -> None:
        """Bump each partition's epoch (fencing the previous owner), seek to the stored offset.

        A transient database error is retried with backoff for up to CLAIM_SECONDS, then raised:
        the partitions stay assigned but unclaimed, and on_batch claims them again before it
        reads any of their records."""
        assigned = [tp for tp in assigned if tp.topic in self._routes]
        if not assigned:
            return
        self._assigned.update((tp.topic, tp.partition) for tp in assigned)
        self._ensure_lag_task()
        async with self._claiming:
            await self._claim(assigned)

    async def _claim(self, assigned: Sequence[TopicPartition]) -> None:
        for route in self._routes.values():
            if route.on_assign is not None and any(tp.topic == route.topic for tp in assigned):
                # Another process may have owned these partitions meanwhile: caches start over.
                route.on_assign()
        rows = await self._bump_epochs(assigned)
        consumer = self._subscriber.consumer if self._subscriber is not None else None
        for row in rows:
            key = (row["topic"], row["partition"])
            if key not in self._assigned:
                continue  # revoked while we claimed: not ours to read, nor to seek
            self._epochs[key] = row["epoch"]
            tp = TopicPartition(row["topic"], row["partition"])
            if row["next_offset"] is not None:
                self._next[key] = row["next_offset"]
                if consumer is not None:
                    consumer.seek(tp, row["next_offset"])
            else:
                self._next[key] = 0
                if consumer is not None:
                    await consumer.seek_to_beginning(tp)
        log.info(
            "consumer.assigned", consumer=self.name, partitions=[list(k) for k in self._epochs]
        )

    async def _bump_epochs(self, assigned: Sequence[TopicPartition]) -> list[asyncpg.Record]:
        """The claim's one query, retried with backoff while the database is unreachable."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._claim_seconds
        delay = 0.05
        while True:
            # A partition revoked while we waited is another process's to claim now.
            current = [tp for tp in assigned if (tp.topic, tp.partition) in self._assigned]
            if not current:
                return []
            try:
                async with self._pool.acquire() as conn:
                    return list(
                        await conn.fetch(
                            "INSERT INTO consumer_offsets (consumer, topic, partition, epoch)"
                            " SELECT n, t, p, 1"
                            " FROM unnest($1::text[], $2::text[], $3::int[]) AS u(n, t, p)"
                            " ON CONFLICT (consumer, topic, partition)"
                            " DO UPDATE SET epoch = consumer_offsets.epoch + 1"
                            " RETURNING topic, partition, next_offset, epoch",
                            [self._routes[tp.topic].name for tp in current],
                            [tp.topic for tp in current],
                            [tp.partition for tp in current],
                        )
                    )
            except Exception as exc:
                if not is_transient(exc) or loop.time() + delay > deadline:
                    raise
                log.warning(
                    "consumer.claim_retrying", consumer=self.name, error=repr(exc), delay=delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def forget(self, revoked: Sequence[TopicPartition]) -> None:
        for tp in revoked:
            self._assigned.discard((tp.topic, tp.partition))
            self._epochs.pop((tp.topic, tp.partition), None)
            self._next.pop((tp.topic, tp.partition), None)
        self._hide_lag({(tp.topic, tp.partition) for tp in revoked})

    # -- processing -------------------------------------------------------------------------

    async def on_batch(self, msg: KafkaMessage) -> None:
        self._in_flight += 1
        try:
            await self._on_batch(msg)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self.idle_since = asyncio.get_running_loop().time()

    @property
    def busy(self) -> bool:
        """Whether a batch is being handled now."""
        return self._in_flight > 0

    async def _on_batch(self, msg: KafkaMessage) -> None:
        records: tuple[ConsumerRecord, ...] = msg.raw_message
        started = time.perf_counter()
        self._ensure_hint_task()
        self._ensure_lag_task()
        unclaimed = {
            (r.topic, r.partition)
            for r in records
            if (r.topic, r.partition) in self._assigned
            and (r.topic, r.partition) not in self._epochs
        }
        if unclaimed:
            await self._claim_late(unclaimed, records)
        fresh = [r for r in records if self._is_new(r) and (r.topic, r.partition) not in unclaimed]
        if fresh and not any(map(self._wanted, fresh)):
            # Nothing here for us: move on without a transaction. The stored offsets lag
            # behind until the next wanted record; after a restart these are passed over again.
            for key, offset in _next_offsets(fresh).items():
                self._next[key] = offset
            self._progressed_at = time.monotonic()
            self.processed += len(fresh)
            self._count_passed_over(fresh)
            fresh = []
        if fresh:
            with BATCH_SECONDS.labels(self.name).time():
                try:
                    await self._process_resiliently(fresh)
                except Fenced:
                    log.warning("consumer.fenced", consumer=self.name)
                    return
                except Exception:
                    # Never let FastStream move on past a batch we did not commit: rewind to
                    # the stored offsets so the batch is fetched again.
                    log.exception("consumer.batch_not_committed", consumer=self.name)
                    self._rewind(fresh)
                    await asyncio.sleep(1.0)
                    return
        if records:
            log.debug(
                "consumer.batch",
                consumer=self.name,
                size=len(records),
                new=len(fresh),
                age_ms=round(time.time() * 1000 - min(r.timestamp for r in records)),
                ms=round((time.perf_counter() - started) * 1000, 1),
            )

    # -- Kafka offset commits: a hint for lag monitoring, off the hot path -----------------------

    def _ensure_hint_task(self) -> None:
        # Not once closed: a batch between `close` and the broker's stop would start one that
        # nobody cancels.
        if self._closed:
            return
        if self._hint_task is None or self._hint_task.done():
            self._hint_task = asyncio.create_task(self._commit_hints(), name=f"hints-{self.name}")

    async def _commit_hints(self) -> None:
        """Commit the positions stored in Postgres to Kafka about once a second.

        Postgres is the authority (we seek to it on assignment); the Kafka commit only lets
        standard tools show consumer lag, so it never waits on the hot path.
        """
        last: dict[tuple[str, int], int] = {}
        while True:
            await asyncio.sleep(self._hint_interval)
            await self.commit_hints(last)

    async def commit_hints(self, last: dict[tuple[str, int], int] | None = None) -> None:
        consumer = self._subscriber.consumer if self._subscriber is not None else None
        if consumer is None:
            return
        current = {k: v for k, v in self._next.items() if k in self._epochs}
        changed = {k: v for k, v in current.items() if last is None or last.get(k) != v}
        if not changed:
            return
        try:
            await consumer.commit({TopicPartition(t, p): o for (t, p), o in changed.items()})
            if last is not None:
                last.update(changed)
        except Exception as exc:  # a rebalance may refuse it; the next round tries again
            log.info("consumer.hint_skipped", consumer=self.name, error=str(exc))

    async def close(self, patience: float | None = None) -> bool:
        """Stop the hint task after one last commit of the stored positions, waiting at most
        `patience` seconds for it (None: as long as it takes); whether it finished. A broker
        gone never answers (aiokafka looks for the group coordinator forever): the hint is
        only a hint, the positions are stored in Postgres."""
        self._closed = True
        for task in (self._hint_task, self._lag_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # A stopped consumer reports no lag: its partitions go to another process's.
        self._hide_lag(set(self._shown))
        with contextlib.suppress(KeyError):
            STALLED.remove(self.name)
        try:
            await asyncio.wait_for(self.commit_hints(), patience)
        except TimeoutError:
            log.warning("consumer.last_hint_abandoned", consumer=self.name, after=patience)
            return False
        return True

    # -- lag: records behind and time stalled, off the hot path ----------------------------------

    def _ensure_lag_task(self) -> None:
        # Only for a consumer subscribed on a broker (none without one to ask), never once closed.
        if self._closed or self._subscriber is None:
            return
        if self._lag_task is None or self._lag_task.done():
            self._lag_task = asyncio.create_task(self._watch_lag(), name=f"lag-{self.name}")

    async def _watch_lag(self) -> None:
        """Measure the lag every `_lag_interval` seconds until cancelled. A round the broker
        does not answer is logged (once, until one answers again) and skipped: the lag gauges
        keep their last values and the stalled time goes on from the last known lag."""
        while True:
            try:
                await self.measure_lag()
                if not self._lag_known:
                    log.info("consumer.lag_known", consumer=self.name)
                self._lag_known = True
            except Exception as exc:
                if self._lag_known:
                    log.info("consumer.lag_unknown", consumer=self.name, error=repr(exc))
                self._lag_known = False
                self._update_stalled()
            await asyncio.sleep(self._lag_interval)

    async def measure_lag(self) -> dict[tuple[str, int], int]:
        """Records behind per assigned partition (end offset minus position), set on the
        gauges with the stalled time; raises when the broker does not answer within
        LAG_ASK_SECONDS. Asks the broker only: a database outage does not blind it."""
        consumer = self._subscriber.consumer if self._subscriber is not None else None
        lag: dict[tuple[str, int], int] = {}
        if consumer is not None and self._assigned:
            ends, known = await asyncio.wait_for(
                self._broker_offsets(consumer, sorted(self._assigned)), LAG_ASK_SECONDS
            )
            # Read after the broker answered, as they stand now: partitions revoked meanwhile
            # are left out, positions that moved on count.
            ends = {k: v for k, v in ends.items() if k in self._assigned}
            positions = {
                k: max(known.get(k, 0), self._next.get(k, 0) if k in self._epochs else 0)
                for k in ends
            }
            lag = records_behind(ends, positions)
        for (topic, partition), behind in lag.items():
            LAG.labels(self.name, topic, str(partition)).set(behind)
        self._hide_lag(self._shown - set(lag))
        self._shown = set(lag)
        self._lagging = any(lag.values())
        self._update_stalled()
        return lag

    async def _broker_offsets(
        self, consumer: Any, partitions: Sequence[tuple[str, int]]
    ) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
        """The partitions' end offsets (one request for all), and where each partition not
        claimed yet stands (its claim failed or is running: the database did not answer), as
        the broker knows: the group's committed offset hint, else the partition's beginning."""
        tps = [TopicPartition(t, p) for t, p in partitions]
        answered = await consumer.end_offsets(tps)
        # The embedded broker answers a partition's end as its last batch's first offset + 1, a
        # batch short when that batch holds several records; the high watermark its answer to
        # our last fetch of the partition carried is exact, if older (none fetched while
        # records read wait to be handled). The later of the two.
        ends = {(tp.topic, tp.partition): max(answered[tp], _highwater(consumer, tp)) for tp in tps}
        unclaimed = [tp for tp in tps if (tp.topic, tp.partition) not in self._epochs]
        known: dict[tuple[str, int], int] = {}
        if unclaimed:
            hints = await asyncio.gather(*(consumer.committed(tp) for tp in unclaimed))
            for tp, hint in zip(unclaimed, hints, strict=True):
                if hint:
                    known[(tp.topic, tp.partition)] = hint
        # A position of 0 (none stored) may be before the first record the broker still holds.
        start = [
            tp
            for tp in tps
            if not known.get((tp.topic, tp.partition))
            and not self._next.get((tp.topic, tp.partition))
        ]
        if start:
            first = await consumer.beginning_offsets(start)
            for tp, offset in first.items():
                known[(tp.topic, tp.partition)] = offset
        return ends, known

    def _update_stalled(self) -> None:
        """Set the stalled gauge from the last known lag; caught up, that is progress too."""
        now = time.monotonic()
        if not self._lagging:
            self._progressed_at = now  # caught up: nothing was waiting on it
        STALLED.labels(self.name).set(now - self._progressed_at if self._lagging else 0.0)

    def _hide_lag(self, partitions: set[tuple[str, int]]) -> None:
        for topic, partition in partitions & self._shown:
            with contextlib.suppress(KeyError):
                LAG.remove(self.name, topic, str(partition))
        self._shown -= partitions

    async def abandon_broker(self) -> None:
        """Close the Kafka consumer's connections at once: its requests to a broker that does
        not answer (leaving the group) fail now instead of after their timeout."""
        consumer = self._subscriber.consumer if self._subscriber is not None else None
        client = getattr(consumer, "_client", None)
        if client is not None:
            await client.close()

    async def _claim_late(
        self, unclaimed: set[tuple[str, int]], records: Sequence[ConsumerRecord]
    ) -> None:
        """Records of partitions assigned to us but not claimed (the claim at assignment failed,
        or is still running): claim them now, never pass them over. None of their records is
        read in this batch: it was fetched before the claim seeks to the stored offsets, and if
        the claim fails we seek back to where the batch began, so they all come again."""
        try:
            async with self._claiming:
                # The listener's claim may have finished while we waited for it.
                pending = [
                    TopicPartition(t, p)
                    for t, p in sorted(unclaimed)
                    if (t, p) in self._assigned and (t, p) not in self._epochs
                ]
                if pending:
                    log.warning(
                        "consumer.claiming_late",
                        consumer=self.name,
                        partitions=[[tp.topic, tp.partition] for tp in pending],
                    )
                    await self._claim(pending)
        except Exception:
            log.exception("consumer.claim_failed", consumer=self.name)
            self._seek_back(records, unclaimed)
            await asyncio.sleep(1.0)

    def _seek_back(
        self, records: Sequence[ConsumerRecord], partitions: set[tuple[str, int]]
    ) -> None:
        """Fetch these partitions' records of the batch again (they have no stored offset yet)."""
        consumer = self._subscriber.consumer if self._subscriber is not None else None
        if consumer is None:
            return
        first: dict[tuple[str, int], int] = {}
        for r in records:
            key = (r.topic, r.partition)
            if key in partitions and key in self._assigned:
                first[key] = min(first.get(key, r.offset), r.offset)
        for (topic, partition), offset in first.items():
            consumer.seek(TopicPartition(topic, partition), offset)

    def _rewind(self, records: Sequence[ConsumerRecord]) -> None:
        consumer = self._subscriber.consumer if self._subscriber is not None else None
        if consumer is None:
            return
        for topic, partition in {(r.topic, r.partition) for r in records}:
            offset = self._next.get((topic, partition))
            if offset is not None:
                consumer.seek(TopicPartition(topic, partition), offset)

    def _wanted(self, record: ConsumerRecord) -> bool:
        accepts = self._routes[record.topic].accepts
        if accepts is None:
            return True
        kind = _type_header(record)
        return kind is None or kind in accepts

    def _is_new(self, record: ConsumerRecord) -> bool:
        key = (record.topic, record.partition)
        return key in self._epochs and record.offset >= self._next.get(key, 0)

    async def _process_resiliently(self, records: list[ConsumerRecord]) -> None:
        try:
            await self._with_retries(records, None)
        except Fenced:
            raise
        except Exception as exc:
            if len(records) == 1:
                log.exception("consumer.message_failed", consumer=self.name)
                await self._with_retries(records, f"processing failed: {exc!r}")
                return
            log.warning("consumer.batch_failed_splitting", consumer=self.name, error=repr(exc))
            for record in records:
                await self._process_resiliently([record])

    async def _with_retries(self, records: list[ConsumerRecord], poison: str | None) -> None:
        """Retry the unit of work: forever while the database is unreachable; a few times on a
        constraint conflict (a racing zombie loses the next round), then treat it as a bug."""
        delay = 0.05
        conflicts = 0
        while True:
            try:
                await self._commit_unit(records, poison)
                return
            except (*TRANSIENT_ERRORS, *CONFLICT_ERRORS) as exc:
                if isinstance(exc, CONFLICT_ERRORS):
                    conflicts += 1
                    if conflicts > MAX_CONFLICT_RETRIES:
                        raise
                elif not is_transient(exc):
                    raise  # deterministic (asyncpg's DataError): a bug, split and dead-lettered
                log.warning("consumer.retrying", consumer=self.name, error=repr(exc), delay=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                if not all((r.topic, r.partition) in self._epochs for r in records):
                    raise Fenced() from exc

    async def _commit_unit(self, records: list[ConsumerRecord], poison: str | None) -> None:
        """One transaction: fence + offsets, inbox, each topic's handler, dead letters (with the
        refusals answering identifiable documents), outbox."""
        outbox = Outbox(service=self.name)
        # In record order, what takes an inbox row: a valid message, or a refused document.
        keyed: list[_Keyed] = []
        dead: list[_Dead] = []
        passed_over: list[ConsumerRecord] = []
        for record in records:
            if poison is not None:
                dead.append(_Dead(record, poison))
                continue
            if not self._wanted(record):
                passed_over.append(record)
                continue
            route = self._routes[record.topic]
            if route.read is not None:
                raw = Inbound(
                    route.read(record), record.topic, record.partition, record.offset, record.key
                )
                keyed.append(
                    _Keyed(route.name, _message_id(raw.message), None, record, (route, raw))
                )
                continue
            own = self._own[record.topic]
            value = record.value or b""
            digest: bytes | None = None
            try:
                message = decode(
                    route.adapter, value, max_bytes=self._max_bytes[record.topic], own=own
                )
                if not own:
                    digest = message_digest(message)
            except InvalidMessage as exc:
                entry = self._refused(route, record, exc)
                dead.append(entry)
                if entry.message_id is not None:
                    if exc.document is not None:
                        digest = document_digest(exc.document, value)
                    keyed.append(_Keyed(route.name, entry.message_id, digest, record, entry))
                continue
            if not own and "occurred_at" not in message.model_fields_set:
                _stamp(message, record.timestamp)
            inbound = Inbound(message, record.topic, record.partition, record.offset, record.key)
            keyed.append(_Keyed(route.name, _message_id(message), digest, record, (route, inbound)))
        next_offsets = _next_offsets(records)
        new: list[tuple[Route[Any], Inbound[Any]]] = []
        committed: list[Callable[[], None]] = []
        async with self._pool.acquire() as proxy, proxy.transaction():
            conn = cast(asyncpg.Connection, proxy)  # the proxy forwards every call
            seen = await self._fence_and_dedupe(conn, next_offsets, keyed)
            reused: list[_Dead] = []
            # Per route with an `on_refused` hook, in record order: its new messages and the
            # documents answered now, whose refusals are written in that order, not up front.
            ordered: dict[str, list[Inbound[Any] | _Dead]] = {}
            for entry_key, status in zip(keyed, seen, strict=True):
                unit = entry_key.unit
                if isinstance(unit, _Dead):
                    unit.fresh = status == _NEW
                    route = self._routes[unit.record.topic]
                    if unit.fresh and unit.refusals and route.on_refused is not None:
                        ordered.setdefault(route.topic, []).append(unit)
                elif status == _NEW:
                    new.append(unit)
                    if unit[0].on_refused is not None:
                        ordered.setdefault(unit[0].topic, []).append(unit[1])
                elif status == _REUSED:
                    reused.append(_reused_id(entry_key))
            if reused:  # dead letters in record order
                order = {id(record): i for i, record in enumerate(records)}
                dead = sorted([*dead, *reused], key=lambda entry: order[id(entry.record)])
            await self._take_locks(conn, new, ordered)
            later = {id(unit) for units in ordered.values() for unit in units}
            for entry in dead:
                if id(entry) not in later:
                    self._dead_letter(outbox, entry)
            for route in self._routes.values():  # topics in a fixed order, each in offset order
                if route.on_refused is not None:
                    committed += await self._in_record_order(
                        conn, outbox, route, ordered.get(route.topic, [])
                    )
                    continue
                mine = [inbound for r, inbound in new if r is route]
                if mine:
                    uow = UnitOfWork(conn, outbox)
                    await route.handler(uow, mine)
                    committed += uow.committed
            await write_outbox(conn, outbox.rows, self._channel)
        for callback in committed:
            callback()
        outbox.report_refusals()  # the dead letters' refusals, when no handler ran
        if _KILL_AFTER_COMMIT and any(_message_id(m.message) == _KILL_AFTER_COMMIT for _, m in new):
            # Fault-injection hook for the crash tests: die after the commit, before the relay
            # publishes and before the Kafka offset commit.
            os.kill(os.getpid(), signal.SIGKILL)
        for key, offset in next_offsets.items():
            self._next[key] = offset
        self._progressed_at = time.monotonic()
        self._relay.wake()
        self.processed += len(records)
        BATCHES.labels(self.name).inc()
        for route in self._routes.values():
            processed = sum(r is route for r, _ in new)
            received = sum(k.name == route.name and not isinstance(k.unit, _Dead) for k in keyed)
            not_applied = sum(e.reused and e.record.topic == route.topic for e in dead)
            counted = self._counted[route.topic]
            counted["processed"].inc(processed)
            counted["duplicate"].inc(received - processed - not_applied)
        if passed_over:
            self._count_passed_over(passed_over)
        for _, inbound in new:
            _check_key(inbound)
        for entry in dead:
            # One outcome each: an answered document is `refused` (dead-lettered as well); a
            # raw-record route's failure is passed over, never dead-lettered (`_dead_letter`).
            route = self._routes[entry.record.topic]
            outcome = (
                "passed_over"
                if route.read is not None
                else "reused_id"
                if entry.reused
                else "refused"
                if entry.fresh
                else "dead_lettered"
            )
            self._counted[route.topic][outcome].inc()
            if entry.reused:
                log.warning(
                    "consumer.message_id_reused",
                    consumer=route.name,
                    topic=entry.record.topic,
                    partition=entry.record.partition,
                    offset=entry.record.offset,
                    key=_loggable_key(entry.record.key),
                    message_id=entry.message_id,
                    reason=entry.reason[:500],
                )

    async def _take_locks(
        self,
        conn: asyncpg.Connection,
        new: list[tuple[Route[Any], Inbound[Any]]],
        ordered: dict[str, list[Inbound[Any] | _Dead]],
    ) -> None:
        """Every route's declared locks at once (`Route.locks`), when more than the one
        declaring handler's one statement may lock in the batch: two routes' handlers, or an
        `on_refused` hook (its own locks, rows) run before, after or between handler calls.
        A handler alone takes its own in one statement, which cannot wait in turn for
        another's."""
        declaring = {id(route): route for route, _ in new if route.locks is not None}
        hooked = any(isinstance(unit, _Dead) for units in ordered.values() for unit in units)
        if not declaring or (len(declaring) < 2 and not hooked):
            return
        names: list[str] = []
        for route in declaring.values():
            assert route.locks is not None
            names += await route.locks(conn, [inbound.message for r, inbound in new if r is route])
        if names:
            await self._lock(conn, names)

    async def _in_record_order(
        self,
        conn: asyncpg.Connection,
        outbox: Outbox,
        route: Route[Any],
        units: Sequence[Inbound[Any] | _Dead],
    ) -> list[Callable[[], None]]:
        """A route with an `on_refused` hook: each run of its new messages to its handler, each
        run of documents answered now to the hook and then their dead letters and refusals, in
        record order. Returns the units of work's after-commit callbacks."""
        committed: list[Callable[[], None]] = []
        start = 0
        while start < len(units):
            end = start
            refused = isinstance(units[start], _Dead)
            while end < len(units) and isinstance(units[end], _Dead) == refused:
                end += 1
            uow = UnitOfWork(conn, outbox)
            if refused:
                entries = cast(list[_Dead], units[start:end])
                assert route.on_refused is not None
                await route.on_refused(
                    uow,
                    [
                        Refused(
                            cast(str, e.message_id),
                            e.document or {},
                            e.record.topic,
                            e.record.partition,
                            e.record.offset,
                            e.record.key,
                        )
                        for e in entries
                    ],
                )
                for entry in entries:
                    self._dead_letter(outbox, entry)
            else:
                await route.handler(uow, cast(list[Inbound[Any]], units[start:end]))
            committed += uow.committed
            start = end
        return committed

    def _count_passed_over(self, records: Sequence[ConsumerRecord]) -> None:
        by_topic: dict[str, int] = {}
        for record in records:
            by_topic[record.topic] = by_topic.get(record.topic, 0) + 1
        for topic, count in by_topic.items():
            self._counted[topic]["passed_over"].inc(count)

    def _refused(self, route: Route[Any], record: ConsumerRecord, exc: InvalidMessage) -> _Dead:
        """The dead letter for an invalid record and, when the route's hook can answer the
        document, its refusals. Building them never stops the partition: if the hook (or
        encoding what it built) fails, the record is dead-lettered only."""
        entry = _Dead(record, exc.reason, document=exc.document, peek=self._own[record.topic])
        if route.refuse is None or exc.document is None or exc.error is None:
            return entry
        try:
            answers = route.refuse(exc.document, exc.error.errors(include_url=False))
            if not answers:
                return entry
            message_id = normalize_identifier(exc.document["message_id"])
            rows = Outbox()
            for topic, key, message in answers:
                rows.emit(topic, key, message)
        except Exception:
            log.exception(
                "consumer.refusal_failed",
                consumer=route.name,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            return entry
        entry.message_id, entry.refusals, entry.noted = message_id, rows.rows, rows.refusals
        return entry

    async def _fence_and_dedupe(
        self,
        conn: asyncpg.Connection,
        next_offsets: dict[tuple[str, int], int],
        keyed: Sequence[_Keyed],
    ) -> list[str]:
        """One round trip: store the partitions' next offsets if our epochs are still current
        (else Fenced: the transaction is rolled back) and record the batch's message ids, with
        their documents' digests, in the inbox, per topic. Returns, per entry, _NEW (its id was
        never processed: the first of a repeat inside the batch is new), _DUPLICATE or, for an
        id processed with a different document (digests both known and unequal), _REUSED.
        Stored digests are read, in a second round trip, only when the batch has a repeat."""
        keys = list(next_offsets)
        try:
            epochs = [self._epochs[k] for k in keys]
        except KeyError:
            raise Fenced() from None
        names = [k.name for k in keyed]
        ids = [k.message_id for k in keyed]
        row = await conn.fetchrow(
            "WITH fence AS ("
            "  UPDATE consumer_offsets AS o SET next_offset = v.next_offset"
            "  FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::bigint[])"
            "    AS v(consumer, topic, partition, next_offset, epoch)"
            "  WHERE o.consumer = v.consumer AND o.topic = v.topic"
            "    AND o.partition = v.partition AND o.epoch = v.epoch"
            "  RETURNING 1),"
            " fresh AS ("
            "  INSERT INTO inbox (consumer, message_id, digest)"
            "  SELECT * FROM unnest($6::text[], $7::text[], $8::bytea[])"
            "  ON CONFLICT DO NOTHING RETURNING consumer, message_id)"
            " SELECT (SELECT count(*) FROM fence) AS owned,"
            "        ARRAY(SELECT consumer FROM fresh) AS consumers,"
            "        ARRAY(SELECT message_id FROM fresh) AS ids",
            [self._routes[k[0]].name for k in keys],
            [k[0] for k in keys],
            [k[1] for k in keys],
            [next_offsets[k] for k in keys],
            epochs,
            names,
            ids,
            [k.digest for k in keyed],
        )
        if row is None or row["owned"] != len(keys):
            raise Fenced()
        fresh = set(zip(row["consumers"], row["ids"], strict=True))
        result = []
        repeats = []  # indexes of repeats whose document can be compared
        for i, entry in enumerate(keyed):
            key = (entry.name, entry.message_id)
            if key in fresh:
                result.append(_NEW)
                fresh.discard(key)  # a repeat inside the batch is one too
            else:
                result.append(_DUPLICATE)
                if entry.digest is not None:
                    repeats.append(i)
        if repeats:
            # The rows are visible to this statement, those this batch just wrote included: a
            # repeat inside the batch is compared with its first occurrence.
            stored = {
                (r["consumer"], r["message_id"]): r["digest"]
                for r in await conn.fetch(
                    "SELECT consumer, message_id, digest FROM inbox"
                    " WHERE (consumer, message_id) IN"
                    "  (SELECT * FROM unnest($1::text[], $2::text[]))",
                    [keyed[i].name for i in repeats],
                    [keyed[i].message_id for i in repeats],
                )
            }
            for i in repeats:
                was = stored.get((keyed[i].name, keyed[i].message_id))
                if was is not None and bytes(was) != keyed[i].digest:
                    result[i] = _REUSED
        return result

    def _dead_letter(self, outbox: Outbox, entry: _Dead) -> None:
        record, reason = entry.record, entry.reason
        route = self._routes.get(record.topic)
        if route is not None and route.read is not None:
            log.error(
                "consumer.raw_record_passed_over",
                consumer=route.name,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                reason=reason[:500],
            )
            return
        answered = None
        if entry.refusals:
            answered = "already answered (message_id seen before)"
            if entry.fresh:
                outbox.rows.extend(entry.refusals)
                outbox.refusals.extend(entry.noted)
                answered = ",".join(
                    r.headers.get(TYPE_HEADER, "") for r in entry.refusals if r.headers
                )
        log.warning(
            "consumer.dead_letter",
            consumer=self._routes[record.topic].name if record.topic in self._routes else self.name,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=_loggable_key(record.key),
            message_id=entry.message_id or _loggable_id(entry),
            reason=reason[:500],
            answered=answered,
        )
        headers = {
            "error": reason[:2000],
            "source_topic": record.topic,
            "source_partition": str(record.partition),
            "source_offset": str(record.offset),
            # With topic, partition and offset, names the record for good: a broker that keeps
            # topics in memory (the embedded one) reuses offsets after a restart.
            "source_timestamp": str(record.timestamp),
            "consumer": self._routes[record.topic].name
            if record.topic in self._routes
            else self.name,
        }
        if answered is not None:
            headers["answered"] = answered
        for name, value in record.headers or ():
            # Kafka allows a header without a value (aiokafka: None): kept, as empty.
            headers.setdefault(f"original_{name}", (value or b"").decode("utf-8", "replace"))
        # Headers are stored as jsonb, which has no NUL: one in an upstream header would fail
        # the dead letter itself and stall the partition.
        headers = {_no_nul(k): _no_nul(v) for k, v in headers.items()}
        outbox.emit_raw(self._settings.topics.dlq, record.key, record.value or b"", headers)


def unanswered(kind: str, *ids: str) -> Refuser:
    """The hook for a document kind the contract gives no answer topic (`PurchaseOrderUpdated`):
    dead letter only, plus a structured warning naming the document and what is wrong with it."""

    def refuse(raw: dict[str, Any], errors: Sequence[ErrorDetails]) -> None:
        if raw.get("type") != kind:
            return None
        found = problems(raw, errors)
        log.warning(
            "consumer.invalid_document_unanswered",
            type=kind,
            message_id=str(raw.get("message_id"))[:200],
            **{name: str(raw.get(name))[:200] for name in ids},
            problems=[
                {"reason_code": p.reason_code.value, "reason": p.reason, "offending": p.offending}
                for p in found[:20]
            ],
        )
        return None

    return refuse


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST_MS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)


def _stamp(message: Any, timestamp_ms: int | None) -> None:
    """Give an upstream message that left out `occurred_at` its Kafka record's timestamp: the
    same on every redelivery, unlike the consumer's clock. A record without one (-1) keeps the
    reading time. Written in place (the models are frozen, and validating again costs).

    A timestamp past 9999-12-31 (any int64 is a legal CreateTime) is clamped to that day's last
    millisecond rather than refused or replaced by the clock: the contract makes the record's
    timestamp the message's time, and clamping keeps a replay deciding as the first delivery
    did; it is also the latest `occurred_at` a sender could have written itself, so nothing
    downstream sees a time a valid message could not carry."""
    if timestamp_ms is None or timestamp_ms <= 0:
        return
    stamp = _EPOCH + timedelta(milliseconds=min(timestamp_ms, _LATEST_MS))
    message.__dict__["occurred_at"] = stamp
    message.__pydantic_fields_set__.add("occurred_at")


def _check_key(inbound: Inbound[Any]) -> None:
    """Count and log an upstream document whose record key is not its document id. Called for
    committed new messages only, so a redelivery or a retried batch is not counted again. The
    document is processed all the same: refusing valid documents for their key would turn a
    producer's misconfiguration into an outage, where the key only costs their order."""
    message = inbound.message
    expected = document_key(message)
    if expected is None or key_matches(inbound.key, expected):
        return
    KEY_MISMATCHES.labels(inbound.topic, message.type).inc()
    log.warning(
        "consumer.key_mismatch",
        topic=inbound.topic,
        partition=inbound.partition,
        offset=inbound.offset,
        message_id=_message_id(message),
        type=message.type,
        expected_key=expected,
        key=_key_text(inbound.key),
    )


def _key_text(key: bytes | None) -> str | None:
    """A record key for a log line beside the text it should have been (`expected_key`), so a
    log query can compare them: its text when it is UTF-8 (repr'd when it holds a control or
    other unprintable character, as a logged id is), else `_loggable_key`'s repr of its bytes
    (`b'\\xffBOLT'`); clipped; a null key None."""
    if key is None:
        return None
    try:
        text = bytes(key).decode("utf-8")
    except UnicodeDecodeError:
        return _loggable_key(key)
    shown = text[:LOG_KEY_BYTES]
    shown = shown if shown.isprintable() else repr(shown)
    return shown if len(text) <= LOG_KEY_BYTES else f"{shown}… ({len(key)} bytes)"


def _loggable_key(key: bytes | None) -> str | None:
    """A record key for a log line: clipped, and repr'd (hostile bytes print as escapes)."""
    if key is None:
        return None
    shown = repr(bytes(key[:LOG_KEY_BYTES]))
    return shown if len(key) <= LOG_KEY_BYTES else f"{shown}… ({len(key)} bytes)"


def _loggable_id(entry: _Dead) -> str | None:
    """The message_id a dead-lettered record's bytes name, if they are a JSON object naming one
    (a string or an integer), for its log line: nothing in the bytes is trusted, nothing
    raises. Bytes decoding could not read as an object are not read again; bytes over
    PEEK_BYTES not at all."""
    try:
        document = entry.document
        value = entry.record.value
        if document is None and entry.peek and value and len(value) <= PEEK_BYTES:
            parsed = loads(bytes(value), max_bytes=PEEK_BYTES)
            document = parsed if isinstance(parsed, dict) else None
        raw = document.get("message_id") if document is not None else None
        if isinstance(raw, int | Decimal) and not isinstance(raw, bool):
            raw = str(raw)
        if not isinstance(raw, str):
            return None
        raw = raw[:LOG_ID_CHARS]
        return raw if raw.isprintable() else repr(raw)
    except Exception:
        return None


def _no_nul(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def _message_id(message: Any) -> str:
    return str(message.message_id)


# Not part of what identifies a document: its time (an upstream re-sending the same document
# with a fresh `occurred_at` is redelivering it) and its message_id (the inbox key itself, which
# is compared normalized: " m1 " is "m1").
_NOT_DIGESTED = frozenset({"occurred_at", "message_id"})
DIGEST_BYTES = 16
_INT64 = 2**63


def message_digest(message: BaseModel) -> bytes:
    """A digest of what a valid upstream message says, as validation reads it: identifiers
    normalized and trimmed, a quantity sent as text or as a number alike, fields in their
    declared order, without `occurred_at` and `message_id`. So the same document re-sent with
    other whitespace, key order or number rendering, or a new `occurred_at`, digests the same.
    Which fields were sent counts where leaving one out is not sending its default
    (`PurchaseOrderUpdated.closed`: left out keeps the PO as it was, `false` reopens it);
    a field whose default is None reads the same sent as null or left out."""
    body = message.model_dump(exclude=set(_NOT_DIGESTED))
    fields = type(message).model_fields
    body["\x00sent"] = sorted(
        name
        for name in message.model_fields_set - _NOT_DIGESTED
        if fields[name].default not in (None, PydanticUndefined)
    )
    text = orjson.dumps(body, default=_canonical_number, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(text, digest_size=DIGEST_BYTES).digest()


def document_digest(document: dict[str, Any], raw: bytes) -> bytes:
    """The digest of an invalid upstream document (one that names its id), which validation
    could not read: what identifies it, not its rendering: its decoded JSON
    object without `occurred_at` and `message_id`, keys sorted at every level, a number by its
    value (1, 1.0 and 1.00 alike), so the same document re-sent with other whitespace, another
    key order or a new `occurred_at` digests the same. `raw`, the record's bytes, is digested
    instead only if the object cannot be rendered at all (never for a valid message)."""
    body = {k: v for k, v in document.items() if k not in _NOT_DIGESTED}
    try:
        try:
            text = orjson.dumps(body, default=_canonical_number, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            # What orjson refuses but a parsed document may hold: an integer past 64 bits, a
            # lone surrogate from a \ud800 escape.
            text = json.dumps(
                body, default=_canonical_number, sort_keys=True, separators=(",", ":")
            ).encode()
    except Exception:  # nested deeper than the renderer goes: the bytes as sent
        text = b"\x00raw:" + raw
    return hashlib.blake2b(text, digest_size=DIGEST_BYTES).digest()


def _canonical_number(value: Any) -> Any:
    """A decimal (the parser reads every non-integer number as one) by its value: an integral
    one as the integer, any other as its normalized text."""
    if isinstance(value, Decimal) and value.is_finite():
        if value == value.to_integral_value() and abs(value) < _INT64:
            return int(value)
        return str(value.normalize())
    raise TypeError(f"{type(value).__name__} is not JSON")


def _reused_id(entry: _Keyed) -> _Dead:
    """The dead letter of a valid message whose id was processed with another document."""
    return _Dead(
        entry.record,
        f"message_id {entry.message_id} was already processed with a different document:"
        " this one was not applied",
        message_id=entry.message_id,
        reused=True,
        peek=False,
    )


def _type_header(record: ConsumerRecord) -> str | None:
    for name, value in record.headers or ():
        if name == TYPE_HEADER:
            # A `type` header without a value (Kafka allows it; aiokafka gives None) names no
            # type: the record is parsed, as one without the header is, never passed over.
            return None if value is None else bytes(value).decode("utf-8", "replace")
    return None


def _highwater(consumer: Any, tp: TopicPartition) -> int:
    """The partition's high watermark as the consumer's last fetch of it answered (0: none
    yet, or no longer assigned)."""
    try:
        return int(consumer.highwater(tp) or 0)
    except Exception:  # aiokafka asserts the partition is assigned
        return 0


def records_behind(
    ends: dict[tuple[str, int], int], positions: dict[tuple[str, int], int]
) -> dict[tuple[str, int], int]:
    """Per partition, how many records lie between its position and its end offset (never
    below 0: the position may have moved past an end asked a moment before). A partition
    without a position counts from 0."""
    return {key: max(0, end - max(positions.get(key, 0), 0)) for key, end in ends.items()}


def _next_offsets(records: Sequence[ConsumerRecord]) -> dict[tuple[str, int], int]:
    result: dict[tuple[str, int], int] = {}
    for record in records:
        key = (record.topic, record.partition)
        result[key] = max(result.get(key, 0), record.offset + 1)
    return result


async def _keep_raw(msg: KafkaMessage) -> Any:
    return msg
