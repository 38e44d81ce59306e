"""The ledger's read API (DESIGN.md §4): FastAPI over the ledger's own tables, OpenAPI at /docs.

`create_api` takes where to get the pool from (the service runtime opens it at start-up) and
an optional lifespan that starts and stops the consumers with the HTTP server.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest

from services.ledger import queries
from services.ledger.queries import NotFound, Reader
from services.ledger.schemas import (
    ErrorOut,
    Health,
    ItemOut,
    LotDetail,
    LotSummary,
    SerialOut,
    TraceEvent,
    TraceOut,
    UsageOut,
)

PoolSource = Callable[[], asyncpg.Pool | None]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

TRACE_SECONDS = Histogram("lotline_ledger_trace_seconds", "Time to answer one trace", ["format"])

CSV_COLUMNS = (
    "LIC",
    "Description",
    "Manufacturer lot",
    "Serial",
    "Expiry",
    "Quantity",
    "Unit of measure",
    "Date",
    "Office",
    "Document",
    "Counterparty",
    "Event type",
    "Inventory lot",
    "Reference",
)
"""The recall spreadsheet's columns: the key data elements, then the lot and its parent order."""

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "not known to the ledger"}
}
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "the database does not answer"}
}


def create_api(pool: PoolSource, *, lifespan: Lifespan | None = None) -> FastAPI:
    app = FastAPI(
        title="lotline ledger",
        version="1",
        description=(
            "Inventory usage, transaction history, COGS, lot valuation and traceability "
            "(recall) of lot-tracked and serialized inventory, answered from the ledger's "
            "own tables."
        ),
        lifespan=lifespan,
    )
    app.state.pool_source = pool

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    _routes(app)
    return app


async def _connection(request: Request) -> AsyncIterator[Reader]:
    pool: asyncpg.Pool | None = request.app.state.pool_source()
    if pool is None:
        raise HTTPException(503, "the ledger is starting: no database connection yet")
    async with pool.acquire() as conn:
        yield conn


Conn = Annotated[Reader, Depends(_connection)]
Lic = Annotated[str, Query(min_length=1, max_length=128, description="line item code")]
Limit = Annotated[int, Query(ge=1, le=100_000)]
Offset = Annotated[int, Query(ge=0)]
Id = Annotated[str | None, Query(min_length=1, max_length=128)]


def _routes(app: FastAPI) -> None:
    @app.get("/items/{lic:path}", response_model=ItemOut, responses=_NOT_FOUND, tags=["items"])
    async def get_item(lic: str, conn: Conn) -> ItemOut:
        """An item's flags and its stock by office: on hand, allocated, available."""
        return await queries.item(conn, lic)

    @app.get("/lots", response_model=list[LotSummary], tags=["lots"])
    async def list_lots(
        conn: Conn,
        lic: Id = None,
        status: Literal["open", "closed"] | None = None,
        limit: Limit = 1000,
        offset: Offset = 0,
    ) -> list[LotSummary]:
        """Inventory lots, by LIC and status (open while stock remains, closed when used)."""
        return await queries.lots(conn, lic, status, limit, offset)

    @app.get("/lots/{lot_id:path}", response_model=LotDetail, responses=_NOT_FOUND, tags=["lots"])
    async def get_lot(lot_id: str, conn: Conn) -> LotDetail:
        """A lot's general info; ordered / purchased / received / accrued / used / current
        quantities and values; manufacturer lots; serials with status; COGS entries."""
        return await queries.lot(conn, lot_id)

    @app.get(
        "/serials/{lic}/{serial:path}",
        response_model=SerialOut,
        responses=_NOT_FOUND,
        tags=["trace"],
    )
    async def get_serial(lic: str, serial: str, conn: Conn) -> SerialOut:
        """A serial's status and its full history, from receipt to sale to return (R15)."""
        return await queries.serial(conn, lic, serial)

    @app.get(
        "/trace",
        response_model=TraceOut,
        responses={
            **_NOT_FOUND,
            200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"},
        },
        tags=["trace"],
    )
    async def get_trace(
        conn: Conn,
        lic: Lic,
        mfr_lot: Id = None,
        serial: Id = None,
        lot_id: Id = None,
        format: Literal["json", "csv"] = "json",
    ) -> TraceOut | Response:
        """Every receipt, allocation, shipment (with customer), adjustment and return of a
        manufacturer lot or serial (or inventory lot), oldest first, with the lots and orders
        it came from. `format=csv`: the sortable recall spreadsheet, one row per event."""
        if mfr_lot is None and serial is None and lot_id is None:
            raise HTTPException(422, "name a mfr_lot, a serial or a lot_id to trace")
        started = time.perf_counter()
        found = await queries.trace(conn, lic, mfr_lot=mfr_lot, serial=serial, lot_id=lot_id)
        TRACE_SECONDS.labels(format).observe(time.perf_counter() - started)
        if format == "json":
            return found
        return Response(
            content=recall_csv(found),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{_filename(found)}"'},
        )

    @app.get("/usage", response_model=list[UsageOut], responses=_NOT_FOUND, tags=["usage"])
    async def get_usage(
        conn: Conn,
        lic: Lic,
        lot_id: Id = None,
        mfr_lot: Id = None,
        serial: Id = None,
        limit: Limit = 1000,
        offset: Offset = 0,
    ) -> list[UsageOut]:
        """Inventory usage records of an item (+ used, − reversed or unallocated), oldest
        first."""
        return await queries.usage(
            conn, lic, lot_id=lot_id, mfr_lot=mfr_lot, serial=serial, limit=limit, offset=offset
        )

    @app.get("/healthz", response_model=Health, responses=_UNAVAILABLE, tags=["operations"])
    async def healthz(request: Request) -> Health | JSONResponse:
        """Answers 200 when the database answers."""
        pool: asyncpg.Pool | None = request.app.state.pool_source()
        if pool is None:
            return _unhealthy("starting")
        try:
            async with pool.acquire(timeout=5) as conn:
                await queries.ping(conn)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            return _unhealthy(f"unavailable: {exc!r}")
        return Health(status="ok", database="ok")

    @app.get("/metrics", response_class=Response, tags=["operations"])
    async def metrics() -> Response:
        """Prometheus metrics of this process (consumers, rows written, trace latency)."""
        return Response(content=generate_latest(), media_type=CONTENT_TYPE_LATEST)


def recall_csv(found: TraceOut) -> str:
    """One row per event with the key data elements; dates ISO so the sheet sorts by them."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for event in found.events:
        writer.writerow(_csv_row(found, event))
    return out.getvalue()


def _csv_row(found: TraceOut, e: TraceEvent) -> list[str]:
    return [
        _cell(e.lic),
        _cell(found.description),
        _cell(e.mfr_lot),
        _cell(e.serial),
        e.expires_on.isoformat() if e.expires_on else "",
        format(e.quantity.normalize(), "f"),
        _cell(found.uom),
        e.date.isoformat(),
        _cell(e.office),
        _cell(e.document),
        _cell(e.counterparty),
        e.event_type,
        _cell(e.lot_id),
        _cell(e.reference),
    ]


def _cell(text: str | None) -> str:
    """Text as a spreadsheet shows it, never as a formula (identifiers come from upstream)."""
    if not text:
        return ""
    return f"'{text}" if text[0] in "=+-@\t\r" else text


def _filename(found: TraceOut) -> str:
    parts = [found.lic, found.mfr_lot or found.serial or found.lot_id or ""]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(p for p in parts if p))
    return f"trace-{name[:100]}.csv"


def _unhealthy(database: str) -> JSONResponse:
    return JSONResponse(status_code=503, content={"status": "unavailable", "database": database})
