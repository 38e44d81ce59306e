"""The runtime every service shares: pool, broker, consumers, outbox relay, lifecycle.

A service supplies its schema, its migrations folder and a function that registers its
consumers; `ServiceRuntime` opens resources in order, drains and closes them in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Collection, Coroutine
from pathlib import Path
from typing import Any, TypeVar, cast

import asyncpg
import prometheus_client
import structlog
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from prometheus_client import Gauge, Histogram
from pydantic import TypeAdapter

from shared import db
from shared.config import Settings
from shared.consumer import (
    Handler,
    Locker,
    Locks,
    RefusedHandler,
    Route,
    TransactionalConsumer,
    UnitOfWork,
)
from shared.contracts.invalid import Refuser
from shared.kafka import (
    ABANDON_SECONDS,
    BROKER_STOP_SECONDS,
    ensure_topics,
    kafka_security,
    make_producer,
    stop_producer,
    wait_for_broker,
)
from shared.outbox import Outbox, OutboxRelay, channel_for, write_outbox

log = structlog.get_logger(__name__)
T = TypeVar("T")
# The broker's logger: a plain one, through the root handler of `shared.logs`. Not FastStream's
# own "faststream.access.kafka", which any broker left with its default logger would take over.
BROKER_LOGGER = "lotline.faststream"

WAITING = Gauge(
    "lotline_oldest_waiting_document_seconds",
    "Age of the oldest document still waiting for allocation's answers (0: none waiting)",
    ["service"],
)


LOOP_LAG = Histogram(
    "lotline_event_loop_lag_seconds",
    "How late the service's event loop ran a timer due every 0.25 s: work that held the loop "
    "that long held up the consumers' heartbeats, the relay and the read API as long (past "
    "KAFKA_SESSION_TIMEOUT_MS the consumer is dropped from its group)",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
LOOP_LAG_EVERY = 0.25

# While a batch is in flight at stop, how often stopping looks whether it is done.
IDLE_CHECK_SECONDS = 0.05


async def watch_loop_lag(service: str, every: float = LOOP_LAG_EVERY) -> None:
    """Observe `LOOP_LAG` until cancelled: how much later than due each timer ran."""
    loop = asyncio.get_running_loop()
    lag = LOOP_LAG.labels(service)
    while True:
        due = loop.time() + every
        await asyncio.sleep(every)
        lag.observe(max(0.0, loop.time() - due))


def make_broker(settings: Settings) -> KafkaBroker:
    """The broker every consumer subscribes on: the producer's security settings, and
    FastStream's service messages through our logging (`shared.logs`) instead of its own
    coloured stdout handler. Its per-message "Received"/"Processed" lines are logged at DEBUG:
    quiet at LOG_LEVEL=INFO; handler errors it logs at ERROR."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers or "localhost:9092",
        apply_types=False,
        enable_idempotence=False,
        security=kafka_security(settings),
        logger=logging.getLogger(BROKER_LOGGER),
        log_level=logging.DEBUG,
    )


class ServiceRuntime:
    def __init__(
        self, settings: Settings, *, schema: str, migrations: Path, lock: Locker = db.lock_names
    ) -> None:
        """`lock`: takes the locks the routes declare (`Route.locks`), in one statement."""
        self.settings = settings
        self.lock = lock
        self.schema = schema
        self.migrations = migrations
        self.broker = make_broker(settings)
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self.relay: OutboxRelay | None = None
        self.routes: list[Route[Any]] = []
        self._descriptions: list[str] = []
        # The main consumer (the routes without `poll_ms`), then one per `poll_ms` declared.
        self.consumer: TransactionalConsumer | None = None
        self.consumers: list[TransactionalConsumer] = []
        self._stopped = asyncio.Event()
        self._waiting_sql: str | None = None
        self._watch_seconds = 15.0
        self._watch: asyncio.Task[None] | None = None
        self._jobs: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._job_tasks: list[asyncio.Task[None]] = []

    def watch_waiting(self, sql: str, every: float = 15.0) -> None:
        """Publish `lotline_oldest_waiting_document_seconds`: `sql` returns the oldest waiting
        document's timestamp (NULL: none). A document waits for as long as a command of its is
        unanswered, which is forever if that command was dead-lettered: operators alert on it."""
        self._waiting_sql = sql
        self._watch_seconds = every

    async def measure_waiting(self) -> float:
        """Seconds the oldest waiting document has waited (0 when none); sets the gauge."""
        assert self.pool is not None and self._waiting_sql is not None
        oldest = await self.pool.fetchval(
            f"SELECT coalesce(extract(epoch FROM now() - ({self._waiting_sql})), 0)::float8"
        )
        seconds = float(oldest)
        WAITING.labels(self.schema).set(seconds)
        return seconds

    async def _watch_waiting(self) -> None:
        while True:
            try:
                await self.measure_waiting()
            except Exception as exc:  # the database may be restarting: try again next round
                log.info("service.watch_failed", error=repr(exc))
            await asyncio.sleep(self._watch_seconds)

    def every(self, seconds: float, job: Callable[[UnitOfWork], Awaitable[bool | None]]) -> None:
        """Run `job` every `seconds` while the service runs, each round in one transaction with
        a unit of work whose outbox rows are written with it (the relay is woken after the
        commit), as the consumer runs a handler. A failed round rolls back and the next one tries
        again. A round that returns True took as much as one round takes, and more is due: the
        next one runs at once (a backlog of held documents goes out at the rate the database
        takes it, not a round per interval). Every process of the service runs it: jobs lock
        the rows they take."""
        name = getattr(job, "__qualname__", repr(job))

        async def rounds() -> None:
            more = False
            while True:
                await asyncio.sleep(0 if more else seconds)
                more = False
                assert self.pool is not None and self.relay is not None
                outbox = Outbox()
                try:
                    async with self.pool.acquire() as proxy, proxy.transaction():
                        uow = UnitOfWork(cast(asyncpg.Connection, proxy), outbox)
                        more = bool(await job(uow))
                        await write_outbox(uow.conn, outbox.rows, channel_for(self.schema))
                except Exception:  # the database may be restarting: the next round tries again
                    log.exception("service.job_failed", job=name)
                    more = False
                    continue
                for callback in uow.committed:
                    callback()
                if outbox.rows:
                    self.relay.wake()

        self._jobs.append(rounds)

    def consume(
        self,
        *,
        name: str,
        topic: str,
        adapter: TypeAdapter[T],
        handler: Handler[T],
        payload_doc: Any = None,
        description: str = "",
        accepts: Collection[str] | None = None,
        on_assign: Callable[[], None] | None = None,
        refuse: Refuser | None = None,
        on_refused: RefusedHandler | None = None,
        poll_ms: int | None = None,
        locks: Locks[T] | None = None,
    ) -> None:
        """Declare a topic this service reads; one consumer serves every declared topic (one
        more for the topics declared with `poll_ms`, read that often: `Route.poll_ms`).

        `name` keys the topic's inbox and stored offsets; `accepts`: the message types the
        handler reads (others are passed over unparsed); `on_assign`: called whenever some of
        the topic's partitions are assigned, before their stored offsets are read; `refuse`:
        answers a document that fails validation but names its type and ids (it is also
        dead-lettered); `on_refused`: acts, in the same transaction, on the documents `refuse`
        answers (`Route.on_refused`); `locks`: the locks the handler may take for its
        messages, taken with every other route's before any handler runs (`Route.locks`).
        """
        self.routes.append(
            Route(
                name=name,
                topic=topic,
                adapter=adapter,
                handler=handler,
                accepts=frozenset(accepts) if accepts is not None else None,
                on_assign=on_assign,
                payload_doc=payload_doc,
                refuse=refuse,
                on_refused=on_refused,
                poll_ms=poll_ms,
                locks=locks,
            )
        )
        if description:
            self._descriptions.append(f"{topic}: {description}")

    async def start(self) -> None:
        # One route per topic and per name across the service's consumers, as within one: a
        # topic read by two would be handled twice.
        for what, values in (
            ("topic", [r.topic for r in self.routes]),
            ("route name", [r.name for r in self.routes]),
        ):
            if len(set(values)) != len(values):
                raise ValueError(f"{self.schema}: one route per {what}: {sorted(values)}")
        dsn = self.settings.require_database()
        await wait_for_broker(self.settings)
        await ensure_topics(self.settings)
        await db.migrate(dsn, self.schema, db.migration_files(self.migrations))
        # One connection more than DB_POOL_SIZE: the outbox relay holds one for as long as it
        # leads or waits for its lease (a session-level lock); with DB_POOL_SIZE=1 it took the
        # only one and the consumers waited for it forever.
        self.pool = await db.create_pool(dsn, self.schema, size=self.settings.db_pool_size + 1)
        self.producer = make_producer(self.settings)
        await self.producer.start()
        self.relay = OutboxRelay(
            self.pool,
            self.producer,
            self.schema,
            inbox_retention_seconds=self.settings.inbox_retention_days * 86400,
            dead_letter_topic=self.settings.topics.dlq,
        )
        self.relay.start()
        polls = sorted({route.poll_ms for route in self.routes}, key=lambda p: p or 0)
        for poll in polls:
            consumer = TransactionalConsumer(
                name=self.schema if poll is None else f"{self.schema}-every-{poll}ms",
                routes=[route for route in self.routes if route.poll_ms == poll],
                pool=self.pool,
                relay=self.relay,
                schema=self.schema,
                settings=self.settings
                if poll is None
                else self.settings.model_copy(update={"kafka_fetch_max_wait_ms": poll}),
                description=" ".join(self._descriptions),
                lock=self.lock,
            )
            consumer.register(self.broker)
            self.consumers.append(consumer)
            if poll is None:
                self.consumer = consumer
        await self.broker.start()
        if self._waiting_sql is not None:
            self._watch = asyncio.create_task(self._watch_waiting(), name="watch-waiting")
        self._job_tasks = [asyncio.create_task(rounds()) for rounds in self._jobs]
        self._job_tasks.append(asyncio.create_task(watch_loop_lag(self.schema)))
        log.info("service.started", schema=self.schema)

    async def stop(self) -> None:
        """Drain: stop consuming (the in-flight batch finishes), publish the outbox, close.

        Each step that waits on the broker waits BROKER_STOP_SECONDS at most, and none once
        one of them found it gone (it died, or the network dropped): the service then closes
        its pool and returns promptly instead of being killed by its process manager. Nothing
        is lost: offsets are stored in Postgres (the Kafka commit is a hint; what was read
        after them is read again, and the inbox drops what was processed), and outbox rows
        not published stay for the next start."""
        for task in [*self._job_tasks, self._watch]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        answered = True  # every step so far finished within its patience

        def patience() -> float:
            return BROKER_STOP_SECONDS if answered else 0.0

        for consumer in self.consumers:
            try:
                answered = await consumer.close(patience()) and answered
            except Exception:
                log.exception("service.consumer_close_failed", consumer=consumer.name)
        answered = await self._stop_consuming(patience()) and answered
        if self.relay is not None:
            answered = await self.relay.stop(patience()) and answered
        if self.producer is not None:
            await stop_producer(self.producer, patience())
        if self.pool is not None:
            await self.pool.close()
        log.info("service.stopped", schema=self.schema, broker_gone=not answered)

    async def _stop_consuming(self, patience: float) -> bool:
        """Stop the broker's subscribers: the batches in flight finish (database work,
        FastStream waits for them), then their consumers leave their groups. Whether that
        finished without waiting on the broker more than `patience` seconds, past which their
        connections are closed under them."""
        stopping = asyncio.ensure_future(self.broker.stop())
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not stopping.done():
            if any(consumer.busy for consumer in self.consumers):
                # A batch still in flight is the database's work, not the broker's silence.
                await asyncio.wait({stopping}, timeout=IDLE_CHECK_SECONDS)
                continue
            quiet = max([started, *(consumer.idle_since for consumer in self.consumers)])
            wait = quiet + patience - loop.time()
            if wait <= 0:
                break
            await asyncio.wait({stopping}, timeout=wait)
        finished = stopping.done()
        if not finished:
            log.warning("service.leave_group_abandoned", schema=self.schema, after=patience)
            for consumer in self.consumers:
                with contextlib.suppress(Exception):
                    await consumer.abandon_broker()
            await asyncio.wait({stopping}, timeout=ABANDON_SECONDS)
            if not stopping.done():
                stopping.cancel()
                await asyncio.wait({stopping})
        if not stopping.cancelled() and stopping.exception() is not None:
            log.info("service.broker_stop_failed", error=repr(stopping.exception()))
        return finished


def tune_gc() -> None:
    """Collect garbage less often: batches allocate many short-lived objects, and with the
    default gen-0 threshold (700) the collector ran every few hundred decoded messages, walking
    long-lived state (allocation's cache) again and again. Objects alive at start-up (modules,
    models) are moved out of the collector's sight for good."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def settings_or_exit(name: str) -> Settings:
    """The settings from the environment; invalid ones are named one per line on stderr (not
    a traceback: a container's log shows what to fix) and the process exits 2."""
    from pydantic import ValidationError

    from shared.config import from_env, setting_problems

    try:
        return from_env()
    except ValidationError as exc:
        for line in setting_problems(exc):
            print(f"{name}: {line}", file=sys.stderr)
        raise SystemExit(2) from None


def serve(name: str, create_runtime: Callable[[Settings], ServiceRuntime]) -> None:
    """The process entry point of a consumer-only service: settings from the environment,
    structured logs, run until SIGINT/SIGTERM."""
    from shared import logs

    settings = settings_or_exit(name)
    logs.configure(name, level=settings.log_level, fmt=settings.log_format)
    if settings.metrics_port:
        # The ledger serves /metrics with its read API; the other services on their own port.
        prometheus_client.start_http_server(settings.metrics_port, addr=settings.http_host)
    runtime = create_runtime(settings)
    tune_gc()
    asyncio.run(run_until_signalled(runtime.start, runtime.stop))


async def run_until_signalled(
    start: Callable[[], Coroutine[Any, Any, None]], stop: Callable[[], Awaitable[None]]
) -> None:
    """Run a service until SIGINT or SIGTERM, then shut it down gracefully."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    # Start-up (waiting for the broker and database, joining groups) can be cut short by a signal.
    starting = asyncio.create_task(start())
    stop_requested = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait({starting, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()
            await stop_requested
    finally:
        starting.cancel()
        stop_requested.cancel()
        await stop()
