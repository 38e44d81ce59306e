"""The ledger's read API (DESIGN.md §4): FastAPI over the ledger's own tables, OpenAPI at /docs,
and the operations dashboard (`/dashboard`, its data as JSON at `/ops/summary`).

`create_api` takes where to get the pool from (the service runtime opens it at start-up) and
an optional lifespan that starts and stops the consumers with the HTTP server.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi._compat import ModelField, field_annotation_is_sequence
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from pydantic import AfterValidator, Field, TypeAdapter, ValidationError
from pydantic_core import to_json

from services.ledger import dashboard, operations, queries
from services.ledger.queries import (
    BadCursor,
    Found,
    FoundItems,
    NotFound,
    Page,
    Parts,
    Reader,
    Row,
    model_rows,
)
from services.ledger.schemas import (
    CogsPeriod,
    DocumentRecords,
    ErrorOut,
    Health,
    ItemOut,
    ItemSummary,
    ItemTraces,
    LotDetail,
    LotSummary,
    OpsSummary,
    PoLineOut,
    PurchaseOrderOut,
    Recipient,
    SerialOut,
    StockRollForward,
    StockValuation,
    TraceEvent,
    TraceOut,
    UsageOut,
    plain,
)
from shared import asyncapi
from shared.contracts.types import Date, normalize_identifier
from shared.db import dsn_address
from shared.reasons import shown

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
    "Vendor",
    "Stock change",
    "Reason",
    "Unit cost",
    "Cost",
    "Recorded order",
    "Recorded at",
)
"""The recall spreadsheet's columns: the key data elements, then the lot, its parent order and
its vendor, then which way the stock went (+ in, − out, 0: a count or loss may go either way),
the adjustment's reason and the record's cost, then the order and time the ledger recorded it
(a back-dated document's Date comes before records decided earlier: sort by Recorded order to
see what happened when). Columns are only ever appended, so a sheet's existing columns keep
their places. Quantity is the units a record names: an allocation or a
release holds or frees them without moving any (its Stock change is 0), so the units that moved
are the sum of Stock change; what each customer received is the customer sheet's
(`RECIPIENT_COLUMNS`)."""

RECIPIENT_COLUMNS = (
    "LIC",
    "Description",
    "Manufacturer lot",
    "Serial",
    "Inventory lot",
    "Customer",
    "Shipments",
    "Shipped",
    "Returned",
    "Held",
    "Serials held",
    "Unit of measure",
    "First shipped",
    "Last shipped",
)
"""The recall's customer sheet (`format=csv&part=recipients`): one row per item and customer
shipped any of what was traced (named in the first columns), the trace's `recipients`. "Serials
held" is `serials_held` joined by a space: typed entry (R5) splits serials at every space, so no
serial holds one (an identifier may, a serial may not), and a cell is one line to paste back."""

SERIAL_SEPARATOR = " "
"""Between the serials of a customer sheet's "Serials held" cell (`RECIPIENT_COLUMNS`)."""

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "not known to the ledger"}
}
_PAGED: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND,
    200: {
        "description": "a page of the list",
        "headers": {
            "X-Next-After": {
                "description": "on a full page: the `after` cursor of the next page",
                "schema": {"type": "string"},
            },
            "Link": {
                "description": 'on a full page: `<URL of the next page>; rel="next"`',
                "schema": {"type": "string"},
            },
        },
    },
}


class DatabaseDownOut(ErrorOut):
    """A 503 while the database does not answer: `detail` says it in a sentence, the fields
    beside it name its parts (null on a 503 of a ledger still starting, which has none)."""

    address: str | None = Field(
        None,
        description="where the ledger connects: host:port/database, or a Unix socket's path;"
        " never the user or password (null: not known)",
    )
    error: str | None = Field(None, description="the error's class, e.g. ConnectionRefusedError")
    reason: str | None = Field(
        None, description="what failed, readable: `connection refused`, `no such socket file`…"
    )


_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": DatabaseDownOut, "description": "the database does not answer"}
}


def create_api(pool: PoolSource, *, lifespan: Lifespan | None = None) -> FastAPI:
    app = FastAPI(
        title="lotline ledger",
        version="1",
        description=(
            "Inventory usage, transaction history, COGS, lot valuation and traceability "
            "(recall) of lot-tracked and serialized inventory, answered from the ledger's "
            "own tables. The Kafka contract these tables are recorded from (every topic and "
            "message, generated by FastStream) is the AsyncAPI document at `/asyncapi.json`."
        ),
        lifespan=lifespan,
        dependencies=[Depends(refuse_repeated_parameters)],
    )
    app.state.pool_source = pool

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(BadCursor)
    async def bad_cursor(request: Request, exc: BadCursor) -> JSONResponse:
        # Shaped as FastAPI's own 422s, so a client reads every refused parameter alike.
        problem = {"type": "value_error", "loc": ["query", "after"], "msg": str(exc)}
        return JSONResponse(status_code=422, content={"detail": [problem]})

    async def database_unavailable(request: Request, exc: Exception) -> Response:
        # The database went away (restarting, a network blip): 503, as `/healthz` says, not a
        # bare 500; the dashboard as a page that keeps reloading, so it recovers by itself.
        address = pool_address(request.app.state.pool_source())
        reason = failure(exc)
        if request.url.path == "/dashboard":
            refresh = outage_refresh(request.query_params.get("refresh"))
            page = dashboard.unavailable(reason, address=address, refresh_seconds=refresh)
            return HTMLResponse(page, status_code=503)
        down = DatabaseDownOut(
            detail=f"the database does not answer{_at(address)}: {reason}",
            address=address,
            error=type(exc).__name__,
            reason=reason,
        )
        return JSONResponse(status_code=503, content=down.model_dump())

    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, database_unavailable)
    _routes(app)
    return app


DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    ConnectionError,
    OSError,
    TimeoutError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
)
"""Errors that mean the database is not answering (answered 503, `_UNAVAILABLE`)."""


def failure(exc: BaseException) -> str:
    """Why the database did not answer, as an operator reads it: `connection refused`, `no
    such socket file`, else the error's own words, one line; its class after, to search by."""
    if isinstance(exc, ConnectionRefusedError):
        said = "connection refused"
    elif isinstance(exc, FileNotFoundError):  # a Unix socket's file: the server is not there
        said = "no such socket file"
    elif isinstance(exc, TimeoutError):
        said = "no answer in time"
    elif isinstance(exc, OSError) and exc.strerror:  # "No route to host": without its errno
        said = exc.strerror[:1].lower() + exc.strerror[1:]
    else:
        said = " ".join(str(exc).split())[:200] or "no answer"
    return f"{said} ({type(exc).__name__})"


def pool_address(pool: asyncpg.Pool | None) -> str | None:
    """Where `pool` connects (`database_address` of its DSN), or None when it is not known."""
    # asyncpg keeps the arguments a pool connects with and has no public reader of them.
    args = getattr(pool, "_connect_args", None) or ()
    dsn = args[0] if args else None
    return database_address(dsn) if isinstance(dsn, str) else None


def database_address(dsn: str) -> str:
    """Where a DSN connects, for a message: `host:port/database` as `db.dsn_address` names it
    (never the user or password), a Unix socket as the socket file's path."""
    address = dsn_address(dsn)
    hosts, _, database = address.rpartition("/")
    folder, _, port = hosts.rpartition(":")
    if not folder.startswith("/") or "," in hosts:
        return address
    # libpq's name of the socket in the folder, as asyncpg connects to it.
    socket = folder if ".s.PGSQL." in folder else f"{folder.rstrip('/')}/.s.PGSQL.{port}"
    return f"{socket} (database {database})"


def _at(address: str | None) -> str:
    return "" if address is None else f" at {address}"


DASHBOARD_REFRESH_SECONDS = 5
"""How often the dashboard reloads itself unless `?refresh=` says otherwise."""
Refresh = Annotated[int, Query(ge=1, le=3600, description="seconds")]
_REFRESH: TypeAdapter[int] = TypeAdapter(Refresh)


def outage_refresh(asked: str | None) -> int:
    """The outage page's reload: the `refresh` the dashboard was asked with, validated as the
    dashboard validates it; the dashboard's default when none was asked or it is not valid (the
    page must keep reloading, and a bad value is answered 422 once the database answers)."""
    if asked is None:
        return DASHBOARD_REFRESH_SECONDS
    try:
        return _REFRESH.validate_python(asked)
    except ValidationError:
        return DASHBOARD_REFRESH_SECONDS


async def refuse_repeated_parameters(request: Request) -> None:
    """A parameter that takes one value, given more than once, is 422 naming it and its values
    (FastAPI alone answers with the last one: `/trace?mfr_lot=A&mfr_lot=B` would trace B as if
    that were the question). A parameter declared as a list may repeat; one the route does not
    take is ignored, repeated or not. An app-wide dependency, so it runs first, on every route."""
    query = request.query_params
    if len(query.multi_items()) == len(query):
        return  # no name repeats: the usual request
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    # FastAPI's own test of whether it reads every value of a parameter or only the last.
    single = {
        f.alias
        for f in _query_fields(route.dependant)
        if not field_annotation_is_sequence(f.field_info.annotation)
    }
    problems = [
        _repeated(name, query.getlist(name))
        for name in dict.fromkeys(query.keys())  # in the order sent
        if name in single and len(query.getlist(name)) > 1
    ]
    if problems:
        raise RequestValidationError(problems)


def _query_fields(dependant: Dependant) -> Iterator[ModelField]:
    """The query parameters of a route and of its dependencies."""
    yield from dependant.query_params
    for sub in dependant.dependencies:
        yield from _query_fields(sub)


def _repeated(name: str, values: list[str]) -> dict[str, Any]:
    """The problem of a repeated parameter, shaped as FastAPI's own 422s; the message names
    the first few values, clipped (`input` has them all, as sent)."""
    given = ", ".join(shown(v[:40]) for v in values[:3]) + (", …" if len(values) > 3 else "")
    return {
        "type": "value_error",
        "loc": ("query", name),
        "msg": f"{name} takes one value, given {len(values)}: {given}",
        "input": values,
    }


async def _connection(request: Request) -> AsyncIterator[Reader]:
    pool: asyncpg.Pool | None = request.app.state.pool_source()
    if pool is None:
        raise HTTPException(503, "the ledger is starting: no database connection yet")
    async with pool.acquire() as conn:
        yield conn


Conn = Annotated[Reader, Depends(_connection)]


async def _snapshot(conn: Conn) -> AsyncIterator[Reader]:
    """A connection in one `queries.snapshot` held until the answer has been sent (a
    request-scoped dependency ends after the response): for answers read as they are sent."""
    async with queries.snapshot(conn):
        yield conn


Snapshot = Annotated[Reader, Depends(_snapshot, scope="request")]
# Identifiers are normalized as the contract normalizes the events' (NFC, trimmed; control and
# invisible characters, empty and over-long ones refused with a 422 naming the parameter), so
# a query finds what the events recorded however it was typed (DESIGN.md §6).
_NORMALIZED = AfterValidator(normalize_identifier)
_ID = "NFC-normalized and trimmed, 1 to 128 characters, no control or invisible characters"
Lic = Annotated[str, Query(description=f"line item code; {_ID}"), _NORMALIZED]
OptionalLic = Annotated[str | None, Query(description=f"line item code; {_ID}"), _NORMALIZED]
Gtin = Annotated[
    str | None,
    Query(
        description="an item's GTIN: GTIN-8, -12, -13 or -14 (the same number with leading"
        f" zeros is the same GTIN); {_ID}"
    ),
    _NORMALIZED,
]
SerialNo = Annotated[str, Query(description=f"serial number; {_ID}"), _NORMALIZED]
# PostgreSQL's LIMIT and OFFSET are bigint: a larger number is refused here (422), not there.
BIGINT_MAX = 2**63 - 1
Limit = Annotated[int, Query(ge=1, le=100_000)]
Offset = Annotated[int, Query(ge=0, le=BIGINT_MAX)]
Id = Annotated[str | None, Query(description=_ID), _NORMALIZED]
# Records added while a client pages move an offset's rows (a loss dated last week lists
# before this week's shipments): a cursor past the last row read neither repeats nor skips.
After = Annotated[
    str | None,
    Query(
        max_length=2048,
        description="the cursor a full page gave (its `X-Next-After` header, or the `Link`"
        ' header\'s rel="next" URL): the page after its last row, however many rows were'
        " recorded before it meanwhile; `offset` then counts from there",
    ),
]


def _finite(day: date) -> date:
    # asyncpg sends Python's first and last dates as PostgreSQL's -infinity and infinity, from
    # which no number of days can be counted: refused here, not failed there.
    if day in (date.min, date.max):
        raise ValueError(f"a date after {date.min} and before {date.max}")
    return day


# The day the dashboard reads "today" as (expired, expiring, usage of the day); `YYYY-MM-DD`
# only, as the contract's dates (pydantic alone would read `0` as 1970-01-01).
AsOf = Annotated[
    Annotated[Date, AfterValidator(_finite)] | None,
    Query(
        description="read expiry and the day's usage as of this date (YYYY-MM-DD); "
        "default: today's UTC date"
    ),
]
# A day of a period asked for (`/cogs`): `YYYY-MM-DD` only, as `AsOf`; required.
PeriodDay = Annotated[Date, AfterValidator(_finite)]
LicPath = Annotated[str, Path(description=f"line item code; {_ID}"), _NORMALIZED]
LotPath = Annotated[str, Path(description=f"inventory lot id; {_ID}"), _NORMALIZED]
SerialPath = Annotated[str, Path(description=f"serial number; {_ID}"), _NORMALIZED]
PoPath = Annotated[str, Path(description=f"purchase order (its `po`); {_ID}"), _NORMALIZED]
_DOCUMENT = (
    "a document as the ledger's records name it: a shipment or receipt id, an adjustment id,"
    " a quarantine id, a PO (its cost changes)"
)
DocumentPath = Annotated[str, Path(description=f"{_DOCUMENT}; {_ID}"), _NORMALIZED]
DocumentId = Annotated[
    str | None,
    Query(
        description=f"{_DOCUMENT}: the usage records it wrote (with `lic`, that item's): a"
        " shipment's, adjustment's or customer return's; a receipt, a quarantine or a PO writes"
        " none (a PO's closing writes cost_change records and reconciles the usage of its lots,"
        f" listed under the documents that used them); {_ID}"
    ),
    _NORMALIZED,
]


def _routes(app: FastAPI) -> None:
    @app.get("/items", response_model=list[ItemSummary], responses=_PAGED, tags=["items"])
    async def list_items(
        conn: Conn,
        request: Request,
        response: Response,
        gtin: Gtin = None,
        limit: Limit = 1000,
        offset: Offset = 0,
        after: After = None,
    ) -> list[ItemSummary]:
        """The items the ledger knows, by LIC: flags, GTIN and stock on hand at every office
        (each office's at `/items/{lic}`); `gtin` lists the items with that GTIN (none is 404).
        A full page names the next in `X-Next-After` and `Link` (see `after`)."""
        page = await queries.items(conn, gtin, limit, offset, after)
        return _paged(request, response, page)

    @app.get("/items/{lic:path}", response_model=ItemOut, responses=_NOT_FOUND, tags=["items"])
    async def get_item(lic: LicPath, conn: Conn) -> ItemOut:
        """An item's flags and its stock by office: on hand, allocated, available (what
        shipments can still be allocated from its lots), quarantined (the lots' stock on hand
        a quarantine in force holds, allocated or not, as the dashboard's stock in quarantine
        counts it; not in available) and unallocated (R12)."""
        return await queries.item(conn, lic)

    @app.get("/lots", response_model=list[LotSummary], responses=_PAGED, tags=["lots"])
    async def list_lots(
        conn: Conn,
        request: Request,
        response: Response,
        lic: Id = None,
        status: Literal["open", "closed"] | None = None,
        limit: Limit = 1000,
        offset: Offset = 0,
        after: After = None,
    ) -> list[LotSummary]:
        """Inventory lots, by LIC and status (open while stock remains, closed when used),
        ordered by LIC, date received and lot id; a LIC the ledger does not know is 404.
        A full page names the next in `X-Next-After` and `Link` (see `after`)."""
        page = await queries.lots(conn, lic, status, limit, offset, after)
        return _paged(request, response, page)

    @app.get("/lots/{lot_id:path}", response_model=LotDetail, responses=_NOT_FOUND, tags=["lots"])
    async def get_lot(lot_id: LotPath, conn: Conn) -> Response:
        """A lot's general info; ordered / purchased / received / accrued / used / current
        quantities and values; manufacturer lots; serials with status; COGS entries."""
        found = await queries.lot(conn, lot_id)
        return StreamingResponse(_json_parts(found), media_type="application/json")

    @app.get(
        "/purchase-orders",
        response_model=list[PoLineOut],
        responses=_PAGED,
        tags=["purchase orders"],
    )
    async def list_purchase_orders(
        conn: Conn,
        request: Request,
        response: Response,
        closed: Annotated[
            bool | None, Query(description="only the closed lines (true) or the open ones (false)")
        ] = None,
        limit: Limit = 1000,
        offset: Offset = 0,
        after: After = None,
    ) -> list[PoLineOut]:
        """Every PO line (one LIC of a PO) the ledger's `PurchaseOrderUpdated`s left, by PO and
        LIC: ordered, purchased, received, actual cost, closed and whether its cost is final,
        and the lots it prices (none: no receipt named the PO for that LIC, a misspelled PO or
        a receipt still to come). A full page names the next in `X-Next-After` and `Link`
        (see `after`)."""
        page = await queries.purchase_orders(conn, closed, limit, offset, after)
        return _paged(request, response, page)

    @app.get(
        "/purchase-orders/{po:path}",
        response_model=PurchaseOrderOut,
        responses=_NOT_FOUND,
        tags=["purchase orders"],
    )
    async def get_purchase_order(po: PoPath, conn: Conn) -> PurchaseOrderOut:
        """A PO's lines by LIC, each as `GET /purchase-orders` lists it (a PO id holds a `/`:
        put it in the path as it is)."""
        return await queries.purchase_order(conn, po)

    @app.get(
        "/serials/{lic}/{serial:path}",
        response_model=SerialOut,
        responses=_NOT_FOUND,
        tags=["trace"],
    )
    async def get_serial(lic: LicPath, serial: SerialPath, conn: Conn) -> SerialOut:
        """A serial's status and its full history, from receipt to sale to return (R15)."""
        return await queries.serial(conn, lic, serial)

    @app.get("/serials", response_model=SerialOut, responses=_NOT_FOUND, tags=["trace"])
    async def find_serial(conn: Conn, lic: Lic, serial: SerialNo) -> SerialOut:
        """The same as `/serials/{lic}/{serial}`, for a LIC with a `/` in it (a path cannot
        tell where such a LIC ends)."""
        return await queries.serial(conn, lic, serial)

    @app.get(
        "/trace",
        response_model=TraceOut | ItemTraces,
        responses={
            **_NOT_FOUND,
            200: {
                "content": {"text/csv": {}},
                "description": "JSON (one item's trace, or with no `lic` every item's), or CSV"
                " with format=csv",
            },
        },
        tags=["trace"],
    )
    async def get_trace(
        conn: Snapshot,
        lic: OptionalLic = None,
        mfr_lot: Id = None,
        serial: Id = None,
        lot_id: Id = None,
        gtin: Gtin = None,
        format: Literal["json", "csv"] = "json",
        part: Annotated[
            Literal["events", "recipients"],
            Query(description="the CSV sheet: one row per record, or per customer"),
        ] = "events",
    ) -> Response:
        """Every receipt, allocation, shipment (with customer), adjustment and return of a
        manufacturer lot or serial (or inventory lot) of item `lic`, oldest first, with the
        lots and orders it came from and the customers who received it. A `mfr_lot` without
        `lic` is traced in every item that has it (with `gtin`: the items with that GTIN),
        answered as `{"mfr_lot", "gtin", "items": [each item's trace]}`. `format=csv`: the
        sortable recall spreadsheet, one row per record (`part=recipients`: one per item and
        customer). The events are read as they are sent, a part at a time, in the snapshot
        the head was."""
        _check_trace(lic, mfr_lot, serial, lot_id, gtin, format, part)
        started = time.perf_counter()  # to the answer's head and first part of events
        if lic is None:
            assert mfr_lot is not None  # _check_trace
            many = await queries.lot_in_items(conn, mfr_lot, gtin)
            json_parts, traces = _items_json_parts(many), many.traces
            name = _filename(gtin, mfr_lot)
        else:
            found = await queries.trace(conn, lic, mfr_lot=mfr_lot, serial=serial, lot_id=lot_id)
            json_parts, traces = _json_parts(found), _one(found)
            name = _filename(lic, mfr_lot or serial or lot_id)
        TRACE_SECONDS.labels(format).observe(time.perf_counter() - started)
        if format == "json":
            return StreamingResponse(json_parts, media_type="application/json")
        if part == "recipients":
            sheet, name = _recipients_csv_parts(traces), f"{name}-recipients"
        else:
            sheet = _csv_parts(traces)
        return StreamingResponse(
            sheet,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="trace-{name}.csv"'},
        )

    @app.get("/usage", response_model=list[UsageOut], responses=_PAGED, tags=["usage"])
    async def get_usage(
        conn: Conn,
        request: Request,
        response: Response,
        lic: OptionalLic = None,
        document: DocumentId = None,
        lot_id: Id = None,
        mfr_lot: Id = None,
        serial: Id = None,
        limit: Limit = 1000,
        offset: Offset = 0,
        after: After = None,
    ) -> list[UsageOut]:
        """Inventory usage records of an item or of a document, or of an item in a document
        (+ used, − reversed or unallocated), oldest first as `/trace` lists them: by the date
        used, then in the order recorded. `lic` may be left out when `document` is named. A
        full page names the next in `X-Next-After` and `Link` (see `after`)."""
        if lic is None and document is None:
            problem = {"type": "value_error", "loc": ("query", "lic"), "msg": _USAGE_OF}
            raise RequestValidationError([problem])
        page = await queries.usage(
            conn,
            lic,
            lot_id=lot_id,
            mfr_lot=mfr_lot,
            serial=serial,
            document=document,
            limit=limit,
            offset=offset,
            after=after,
        )
        return _paged(request, response, page)

    @app.get("/cogs", response_model=CogsPeriod, responses=_NOT_FOUND, tags=["usage"])
    async def get_cogs(
        conn: Conn,
        from_: PeriodFrom,
        to: PeriodTo,
        lic: OptionalLic = None,
        # No `office`: a COGS entry does not record one (its usage record does).
    ) -> CogsPeriod:
        """The cost of goods sold of a period (R10, R16), by item (`lic`: one item's) and in
        all: the COGS entries dated in it (their `entered_on`, as each lot's `cogs` lists
        them): `usage` (sales, losses and counts out, less customer returns and counts in,
        at their booked cost), `reconciliation` (PO closings' corrections to the actual cost,
        dated the later of the close and the usage) and `cogs`, their sum, counted as a lot's
        `cogs_total`; returns to vendor, no cost of goods sold, apart (`vendor_returns`)."""
        _check_period(from_, to)
        return await queries.cogs_of_period(conn, from_, to, lic)

    @app.get("/valuation", response_model=StockValuation, responses=_NOT_FOUND, tags=["items"])
    async def get_valuation(
        conn: Conn,
        as_of: Annotated[
            PeriodDay,
            Query(description="the day whose end the stock is valued as of (YYYY-MM-DD)"),
        ],
        lic: OptionalLic = None,
        office: OptionalOffice = None,
    ) -> StockValuation:
        """Stock on hand and its value as of the end of a day (a period's closing stock), by
        item and office and in all (`lic`, `office`: one item's, one office's): read off the
        transaction records dated up to that day (R15), each lot's stock at its unit cost then
        (the estimate until its PO closed, then the actual cost its closing applied), and the
        stock in no lot (R12) at what it came in at. As of today it is `GET /items`' figures;
        the period's cost of goods sold is `GET /cogs`."""
        return await queries.valuation_as_of(conn, as_of, lic, office)

    @app.get("/roll-forward", response_model=StockRollForward, responses=_NOT_FOUND, tags=["items"])
    async def get_roll_forward(
        conn: Conn,
        from_: PeriodFrom,
        to: PeriodTo,
        lic: OptionalLic = None,
        office: OptionalOffice = None,
    ) -> StockRollForward:
        """A period's stock roll-forward (a month's close), by item and office and in all:
        `opening` (`GET /valuation` as of the day before `from`), the period's `movements` by
        kind (receipts, shipments, returns, losses, counts, …) at the cost each was booked at,
        `revaluation` (what PO closings changed the stock's value by: closing − opening − the
        movements) and `closing` (`GET /valuation` as of `to`)."""
        _check_period(from_, to)
        return await queries.roll_forward(conn, from_, to, lic, office)

    @app.get(
        "/documents/{document_id:path}",
        response_model=DocumentRecords,
        responses=_PAGED,
        tags=["trace"],
    )
    async def get_document(
        document_id: DocumentPath,
        conn: Conn,
        request: Request,
        limit: Limit = 1000,
        offset: Offset = 0,
        after: After = None,
    ) -> Response:
        """Every transaction record the ledger holds naming a document (what a shipment
        shipped: its lots, serials, costs and customer; what a receipt, adjustment, customer
        return or quarantine did), across its items: a summary of them all, by item, and a
        page of the records, oldest first as `/trace` lists them (business date, then the
        order recorded), each with the usage record it wrote. A document id may hold a `/`:
        put it in the path as it is. A full page names the next in `X-Next-After` and `Link`
        (see `after`)."""
        found, next_after = await queries.document(
            conn, document_id, limit=limit, offset=offset, after=after
        )
        return StreamingResponse(
            _json_parts(found),
            media_type="application/json",
            headers=_next_page(request, next_after),
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

    @app.get(
        "/asyncapi.json",
        response_class=Response,
        responses={
            200: {"content": {"application/json": {}}, "description": "the AsyncAPI document"}
        },
        tags=["docs"],
    )
    def get_asyncapi() -> Response:
        """The AsyncAPI document of lotline's Kafka contract (DESIGN.md §4): every topic and
        the messages it carries, generated from the contract models."""
        # A plain `def`: the first call builds the document in the thread pool, not the loop.
        return Response(content=asyncapi_json(), media_type="application/json")

    @app.get("/ops/summary", response_model=OpsSummary, responses=_UNAVAILABLE, tags=["operations"])
    async def ops_summary(
        conn: Conn,
        limit: Annotated[int, Query(ge=1, le=500, description="rows per latest-list")] = 20,
        window_hours: Annotated[int, Query(ge=1, le=24 * 31)] = 24,
        expiring_days: Annotated[int, Query(ge=0, le=3660)] = 30,
        as_of: AsOf = None,
    ) -> OpsSummary:
        """Whether documents are flowing and what is being refused and why: documents by
        latest answer, refusals by reason code and the latest ones, the latest dead letters
        (headers and a short escaped preview), and the ledger's own health, its expiry and
        usage read as of `as_of` (`ledger.as_of`), and the PO lines that price no lot."""
        return await _summary(
            conn, limit=limit, window_hours=window_hours, expiring_days=expiring_days, as_of=as_of
        )

    @app.get(
        "/dashboard",
        response_class=HTMLResponse,
        responses={**_UNAVAILABLE, 200: {"content": {"text/html": {}}}},
        tags=["operations"],
    )
    async def get_dashboard(
        conn: Conn,
        limit: Annotated[int, Query(ge=1, le=500)] = 20,
        refresh: Refresh = DASHBOARD_REFRESH_SECONDS,
        as_of: AsOf = None,
    ) -> HTMLResponse:
        """The operations dashboard: `/ops/summary` as one page that reloads itself (as of
        the same `as_of`, if one was asked)."""
        found = await _summary(conn, limit=limit, as_of=as_of)
        page = dashboard.render(found, refresh_seconds=refresh, as_of=as_of, limit=limit)
        return HTMLResponse(page)

    @app.get("/metrics", response_class=Response, tags=["operations"])
    async def metrics() -> Response:
        """Prometheus metrics of this process (consumers, rows written, trace latency)."""
        return Response(content=generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _summary(
    conn: Reader,
    *,
    limit: int,
    as_of: date | None,
    window_hours: int = 24,
    expiring_days: int = 30,
) -> OpsSummary:
    """`operations.summary` with the PO lines that price no lot (`limit` of them), read in
    the same snapshot (the summary's own transaction joins this one)."""
    async with queries.snapshot(conn):
        found = await operations.summary(
            conn,
            limit=limit,
            window_hours=window_hours,
            expiring_days=expiring_days,
            as_of=as_of,
        )
        unmatched, first = await queries.unmatched_po_lines(conn, limit)
    ledger = found.ledger.model_copy(
        update={"unmatched_po_lines": unmatched, "unmatched_po": first}
    )
    return found.model_copy(update={"ledger": ledger})


_USAGE_OF = "name a lic or a document (or both) whose usage records to list"

COGS_PERIOD_DAYS = 366
"""The longest period `/cogs` sums, in days (both ends counted): a leap year; a longer one,
tens of millions of entries at once, is asked year by year."""

# A period asked for (`/cogs`, `/roll-forward`): its first and last day, both required.
PeriodFrom = Annotated[
    PeriodDay, Query(alias="from", description="the period's first day (YYYY-MM-DD)")
]
PeriodTo = Annotated[
    PeriodDay,
    Query(
        description="its last day (YYYY-MM-DD), included; at most"
        f" {COGS_PERIOD_DAYS} days from `from` on, both counted"
    ),
]
OptionalOffice = Annotated[str | None, Query(description="an office: its stock alone")]


def _check_period(first: date, last: date) -> None:
    """422 naming `to` unless the period runs forward and is at most `COGS_PERIOD_DAYS` long."""
    days = (last - first).days + 1
    if 1 <= days <= COGS_PERIOD_DAYS:
        return
    msg = (
        f"to ({last}) is before from ({first})"
        if days < 1
        else f"the period is {days} days long (from {first} to {last}): at most"
        f" {COGS_PERIOD_DAYS}, both days counted"
    )
    problem = {"type": "value_error", "loc": ("query", "to"), "msg": msg, "input": str(last)}
    raise RequestValidationError([problem])


def _paged(request: Request, response: Response, page: Page[Row]) -> list[Row]:
    """The page's rows; a full page names the next (`_next_page`)."""
    response.headers.update(_next_page(request, page.after))
    return page.rows


def _next_page(request: Request, after: str | None) -> dict[str, str]:
    """The headers of a full page, whose last row is `after`: `X-Next-After` and `Link` (the
    same query, `after` the cursor, without an `offset`: it counted from the first page)."""
    if after is None:
        return {}
    url = request.url.remove_query_params("offset").include_query_params(after=after)
    return {"X-Next-After": after, "Link": f'<{url}>; rel="next"'}


@functools.cache
def asyncapi_json() -> bytes:
    """`shared.asyncapi.document()` as JSON, built once per process (the contract is code)."""
    return json.dumps(asyncapi.document(), sort_keys=True).encode()


async def _json_parts(found: Found[Any]) -> AsyncIterator[bytes]:
    """`found` as one JSON object, fields in the response model's order, its big lists built
    and serialized `queries.PART_ROWS` rows at a time, the event loop free between parts."""
    plain = found.head.model_dump(mode="json", exclude=set(found.lists))
    separator = b"{"
    for name in type(found.head).model_fields:
        key = separator + to_json(name) + b":"
        separator = b","
        if name not in found.lists:
            yield key + to_json(plain[name])
            continue
        model, parts = found.lists[name]
        yield key + b"["
        n = 0
        async for part in _parts(model, parts):
            items = to_json(part)[1:-1]  # the rows of the part, comma-separated
            yield (b"," + items) if n else items
            n += 1
            await asyncio.sleep(0)
        yield b"]"
    yield b"}"


async def _items_json_parts(found: FoundItems) -> AsyncIterator[bytes]:
    """`found` as one JSON object: its head, then each item's trace as `_json_parts` writes
    one, each read and written only once the one before it has been sent."""
    head = found.head.model_dump(mode="json", exclude={"items"})
    yield to_json(head)[:-1] + b',"items":['  # `items` is the model's last field
    comma = b""  # before each item's trace but the first
    async for trace in found.traces:
        async for chunk in _json_parts(trace):
            yield comma + chunk
            comma = b""
        comma = b","
    yield b"]}"


async def _one(found: Found[TraceOut]) -> AsyncIterator[Found[TraceOut]]:
    yield found


def _check_trace(
    lic: str | None,
    mfr_lot: str | None,
    serial: str | None,
    lot_id: str | None,
    gtin: str | None,
    format: str,
    part: str,
) -> None:
    """A question `/trace` cannot answer is 422 naming the parameter, shaped as FastAPI's own
    (a LIC left out was FastAPI's bare "Field required", whatever else was named)."""
    problem: tuple[str, str] | None = None
    if lic is not None and gtin is not None:
        problem = ("gtin", "gtin picks items as lic does: name one of them")
    elif lic is None and (serial is not None or lot_id is not None):
        what = "serial" if serial is not None else "lot_id"
        problem = ("lic", f"a {what} is traced in one item: name its lic")
    elif mfr_lot is None and serial is None and lot_id is None:
        problem = (
            "mfr_lot",
            "name a mfr_lot to trace (alone, with a lic or with a gtin), or a lic with a"
            " serial or a lot_id",
        )
    elif format == "json" and part != "events":
        problem = ("part", "part picks a CSV sheet (format=csv): the JSON answer holds both")
    if problem is not None:
        name, msg = problem
        raise RequestValidationError([{"type": "value_error", "loc": ("query", name), "msg": msg}])


async def _csv_parts(traces: AsyncIterator[Found[TraceOut]]) -> AsyncIterator[bytes]:
    """The recall spreadsheet: one row per event with the key data elements, item after item;
    dates ISO so the sheet sorts by them. Written `queries.PART_ROWS` events at a time, as
    `_json_parts` does."""
    yield _csv_text([CSV_COLUMNS])
    async for found in traces:
        _, parts = found.lists["events"]
        async for part in _parts(TraceEvent, parts):
            yield _csv_text(_csv_row(found.head, event) for event in part)
            await asyncio.sleep(0)


async def _recipients_csv_parts(traces: AsyncIterator[Found[TraceOut]]) -> AsyncIterator[bytes]:
    """The customer sheet: each item's `recipients`, one row per customer."""
    yield _csv_text([RECIPIENT_COLUMNS])
    async for found in traces:
        yield _csv_text(_recipient_row(found.head, r) for r in found.head.recipients)


async def _parts(model: type[Row], parts: Parts) -> AsyncIterator[list[Row]]:
    """Each part of rows as response models (at most `queries.PART_ROWS` of them)."""
    async for rows in parts:
        yield model_rows(model, rows)


def _csv_text(rows: Iterable[Sequence[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


def _csv_row(found: TraceOut, e: TraceEvent) -> list[str]:
    return [
        _cell(e.lic),
        _cell(found.description),
        _cell(e.mfr_lot),
        _cell(e.serial),
        e.expires_on.isoformat() if e.expires_on else "",
        _number(e.quantity),
        _cell(found.uom),
        e.date.isoformat(),
        _cell(e.office),
        _cell(e.document),
        _cell(e.counterparty),
        e.event_type,
        _cell(e.lot_id),
        _cell(e.reference),
        _cell(e.vendor),
        _number(e.stock_change),
        _cell(e.reason),
        _number(e.unit_cost),
        _number(e.cost),
        str(e.recorded_seq),
        "" if e.recorded_at is None else queries.json_time(e.recorded_at),
    ]


def _recipient_row(found: TraceOut, r: Recipient) -> list[str]:
    return [
        _cell(found.lic),
        _cell(found.description),
        _cell(found.mfr_lot),
        _cell(found.serial),
        _cell(found.lot_id),
        _cell(r.customer),
        str(r.shipments),
        _number(r.shipped),
        _number(r.returned),
        _number(r.held),
        _cell(SERIAL_SEPARATOR.join(r.serials_held)),
        _cell(found.uom),
        r.first_shipped_on.isoformat(),
        r.last_shipped_on.isoformat(),
    ]


def _number(value: Decimal) -> str:
    """A decimal as the JSON answer writes it (`plain`: 7.50 stays 7.50, every digit kept)."""
    return plain(value)


def _cell(text: str | None) -> str:
    """Text as a spreadsheet shows it, never as a formula (identifiers come from upstream)."""
    if not text:
        return ""
    return f"'{text}" if text[0] in "=+-@\t\r" else text


def _filename(*parts: str | None) -> str:
    """What was traced, as a file name's safe characters (its LIC or GTIN, then its lot)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(p for p in parts if p))[:100]


def _unhealthy(database: str) -> JSONResponse:
    return JSONResponse(status_code=503, content={"status": "unavailable", "database": database})
