"""Ledger's composition root: one consumer (events, costs, status, dead letters) and the read
API with the operations dashboard in one process.

The HTTP server (uvicorn, run inside our asyncio program) owns the lifecycle: its lifespan
starts the service runtime (database, migrations, broker, consumers) and stops it, draining the
in-flight batch, when the server shuts down on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import uvicorn
from fastapi import FastAPI
from pydantic import TypeAdapter

from services.ledger import operations, repository, service, translate
from services.ledger.api import Lifespan, create_api
from services.ledger.translate import StatusNotice
from shared import db, logs
from shared.config import Settings
from shared.consumer import Route, unanswered
from shared.contracts.events import InventoryEvent
from shared.contracts.status import StatusMessage
from shared.contracts.upstream import CostMessage, PurchaseOrderUpdated
from shared.service import ServiceRuntime, settings_or_exit, tune_gc

SCHEMA = "ledger"
MIGRATIONS = Path(__file__).parent / "migrations"
# The dashboard's feeds are read by a consumer of their own, this often: nobody waits on them,
# and on the main consumer each fetch (every KAFKA_FETCH_MAX_WAIT_MS) would cover their
# partitions too, costing the broker CPU the hot path needs.
DASHBOARD_POLL_MS = 500

__all__ = [
    "MIGRATIONS",
    "SCHEMA",
    "ReadPool",
    "create_api",
    "create_runtime",
    "main",
    "run",
    "runtime_lifespan",
]


def create_runtime(settings: Settings) -> ServiceRuntime:
    # The events' and the costs' handlers lock LICs (`repository.lock_lics`): a batch takes
    # both topics' locks at once (`Route.locks`).
    runtime = ServiceRuntime(
        settings, schema=SCHEMA, migrations=MIGRATIONS, lock=repository.lock_lics
    )
    topics = settings.topics
    runtime.consume(
        name="ledger",
        topic=topics.events,
        adapter=translate.EVENTS,
        handler=service.record_events,
        locks=service.event_locks,
        payload_doc=InventoryEvent,
        description="Allocation's decisions, recorded as usage, transactions, COGS and lots.",
    )
    runtime.consume(
        name="ledger-costs",
        topic=topics.costs,
        adapter=TypeAdapter(CostMessage),
        handler=service.record_costs,
        locks=service.cost_locks,
        payload_doc=PurchaseOrderUpdated,
        # The contract has no answer topic for cost updates: dead letter plus a warning.
        refuse=unanswered("PurchaseOrderUpdated", "po", "lic"),
        description="PO quantities and actual costs; a close reconciles COGS exactly once.",
    )
    runtime.consume(
        name="ledger-status",
        topic=topics.status,
        adapter=TypeAdapter(StatusNotice),
        handler=service.record_status,
        payload_doc=StatusMessage,
        description="Document answers, for the operations dashboard.",
        poll_ms=DASHBOARD_POLL_MS,
    )
    # Dead letters are raw records, not messages: the route reads them itself and never
    # dead-letters one (ServiceRuntime.consume has no `read` yet, hence the Route).
    runtime.routes.append(
        Route(
            name="ledger-dlq",
            topic=topics.dlq,
            adapter=TypeAdapter(bytes),  # not used: `read` takes the raw record
            handler=service.record_dead_letters,
            read=translate.read_dead_letter,
            poll_ms=DASHBOARD_POLL_MS,
        )
    )
    runtime.every(operations.PRUNE_SECONDS, service.prune_operations)
    return runtime


class ReadPool:
    """The read API's own connections (LEDGER_API_POOL_SIZE). On the runtime's pool, requests
    and consumers would wait for each other: its relay holds a connection for as long as it
    leads, each consumer one per batch, and a few dashboard requests at once took the rest."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        dsn = self._settings.require_database()
        self.pool = await db.create_pool(dsn, SCHEMA, size=self._settings.api_pool_size)

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            await pool.close()


def runtime_lifespan(runtime: ServiceRuntime, reads: ReadPool) -> Lifespan:
    """Start the runtime (it migrates) and open the API's connections before the API answers;
    close them and stop the runtime (draining) after the API stops."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            await reads.open()
            yield
        finally:
            await reads.close()
            await runtime.stop()

    return lifespan


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: `main` installs ours on the running loop, so
    a SIGTERM ends in a graceful shutdown and exit status 0 rather than a re-raised signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def main(settings: Settings | None = None) -> None:
    settings = settings or settings_or_exit("ledger")
    logs.configure("ledger", level=settings.log_level, fmt=settings.log_format)
    runtime = create_runtime(settings)
    reads = ReadPool(settings)
    app = create_api(lambda: reads.pool, lifespan=runtime_lifespan(runtime, reads))
    tune_gc()
    server = _Server(
        uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            lifespan="on",
            log_config=None,
            access_log=False,
        )
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _stop(server))
    await server.serve()
    if not server.started:
        raise SystemExit(1)  # start-up failed (database or broker never answered)


def _stop(server: uvicorn.Server) -> Callable[[], None]:
    """First signal: graceful shutdown. Second: stop waiting for in-flight HTTP requests."""

    def stop() -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    return stop


def run() -> None:
    asyncio.run(main())
