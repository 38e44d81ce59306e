"""PostgreSQL plumbing: a pool per service schema, versioned migrations, retryable errors."""

from __future__ import annotations

import asyncio
import hashlib
import re
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg
import orjson
import structlog

log = structlog.get_logger(__name__)

PLUMBING_DIR = Path(__file__).parent / "migrations"

# Errors worth retrying the unit of work for: the database will likely answer next time.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.LockNotAvailableError,
    ConnectionError,
    OSError,
)
# ...except asyncpg's client-side DataError, an InterfaceError too: a query argument the driver
# cannot encode fails the same way on every try, a bug to dead-letter, not to retry forever.
# (asyncpg 0.32 reports a bad argument as the server-side class asyncpg.DataError, which is not
# transient; this keeps it so should the driver raise the client-side one.)
NOT_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (asyncpg.exceptions._base.DataError,)


# Buckets of a per-key lock (`bucket_lock`): a transaction touching thousands of keys (a receipt
# of 10,000 new items) holds at most this many locks of a kind, where PostgreSQL's shared lock
# table holds some thousands on a default server (max_locks_per_transaction × connections) and
# running out fails the transaction.
LOCK_BUCKETS = 1024


def bucket_lock(kind: str, key: str) -> str:
    """The name of the lock of `key`'s bucket among LOCK_BUCKETS (`lock_names`): stable across
    processes and versions (CRC-32), so every process locks a key under the same name."""
    return f"{kind}#{zlib.crc32(key.encode()) % LOCK_BUCKETS}"


async def lock_names(conn: asyncpg.Connection, names: Iterable[str]) -> None:
    """Wait for, and take until the transaction ends, a transaction-scoped advisory lock per
    name (its key: `hashtextextended(name, 0)`), all in one statement, in key order. Taken
    again in the same transaction, a lock is granted at once."""
    wanted = sorted(set(names))
    if not wanted:
        return
    await conn.execute(
        "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended(n, 0) AS k"
        " FROM unnest($1::text[]) AS n ORDER BY k) AS keys",
        wanted,
    )


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the unit of work may succeed: the database may answer next time."""
    return isinstance(exc, TRANSIENT_ERRORS) and not isinstance(exc, NOT_TRANSIENT_ERRORS)


# A constraint said no: a backstop caught a race (e.g. a zombie consumer). Retry the batch.
CONFLICT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.UniqueViolationError,
    asyncpg.exceptions.CheckViolationError,
    asyncpg.exceptions.ExclusionViolationError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=_json_dumps, decoder=_json_loads, schema="pg_catalog"
    )


def _json_dumps(value: Any) -> str:
    import orjson

    return orjson.dumps(value, default=str).decode()


def _json_loads(value: str) -> Any:
    import orjson

    return orjson.loads(value)


# A server that answers but refuses the connection like this refuses it again (a wrong user or
# password, a database that does not exist): waiting out the start-up backoff would only
# delay the answer. A DSN asyncpg cannot read fails at once too (ValueError).
REFUSED_FOR_GOOD: tuple[type[BaseException], ...] = (
    asyncpg.InvalidAuthorizationSpecificationError,  # wrong password, unknown role, pg_hba
    asyncpg.InvalidCatalogNameError,  # no such database
)


async def wait_for_database(dsn: str, *, timeout: float = 60.0) -> None:
    """Start-up waits for the database with exponential backoff, unless it refused for good."""
    delay = 0.1
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
            await conn.close()
            return
        except REFUSED_FOR_GOOD:
            raise
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.info("database.waiting", error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def redact_dsn(dsn: str) -> str:
    """`dsn` with its password replaced by `***`: what a message may show of DATABASE_URL."""
    if "://" not in dsn:  # no URL: whatever comes before an @ may be a password
        return re.sub(r"^[^/?#]*@", "***@", dsn)
    hidden = re.sub(r"(://[^:/?#@]*:)[^/?#]*@", r"\1***@", dsn)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", hidden)


def dsn_address(dsn: str) -> str:
    """`host:port/dbname` of a PostgreSQL DSN, for messages: never its user or password.

    A server reached over a unix socket (`?host=/path`) shows the socket's folder as its host.
    """
    try:
        parts = urlsplit(dsn)
        query = parse_qs(parts.query)
        hosts = parts.netloc.rpartition("@")[2] or query.get("host", [""])[-1] or "localhost"
        if "," not in hosts and not re.search(r":[^:]*$", hosts.rpartition("]")[2]):
            hosts += f":{query.get('port', ['5432'])[-1]}"
        user = unquote(parts.username or "") or None
        database = unquote(parts.path.lstrip("/")) or query.get("dbname", [user or "?"])[-1]
    except ValueError:
        return "(DATABASE_URL cannot be read)"
    return f"{hosts}/{database}"


def connect_problem(dsn: str, exc: BaseException) -> str:
    """One line for an operator: why the database at `dsn` did not take a connection (`exc`,
    from `asyncpg.connect`) and what to check. Names the server and database, never the
    password."""
    where = dsn_address(dsn)
    database = where.rpartition("/")[2]
    try:
        user = unquote(urlsplit(dsn).username or "") or "(default)"
    except ValueError:
        user = "?"
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return (
            f"the database at {where} refused the password of user {user}: check the user and"
            " password in DATABASE_URL"
        )
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return (
            f"the database at {where} refused user {user} ({exc}): check the user in"
            " DATABASE_URL, and that the server lets it in (pg_hba.conf)"
        )
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return (
            f"the database at {where} does not exist ({exc}): create it (CREATE DATABASE"
            f' "{database}") or fix the database name in DATABASE_URL'
        )
    reason = str(exc) or type(exc).__name__
    return (
        f"the database at {where} does not answer ({reason}): check the host and port in"
        " DATABASE_URL, and that PostgreSQL runs there and accepts connections"
    )


def dsn_problem(dsn: str, exc: ValueError) -> str:
    """One line naming DATABASE_URL (password hidden) when asyncpg cannot read it at all."""
    return (
        f"DATABASE_URL={redact_dsn(dsn)!r}: not a PostgreSQL URL ({exc}); the form is"
        " postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
    )


async def create_pool(dsn: str, schema: str, *, size: int = 4) -> asyncpg.Pool:
    """A pool whose connections see only the service's own schema by default."""
    await wait_for_database(dsn)
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        server_settings={"search_path": schema, "application_name": f"lotline-{schema}"},
        init=_init_connection,
        reset=_keep_session,
    )
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Return a connection to the pool as it is: asyncpg's default reset is one more round
    trip on every release (unlock advisory locks, close cursors, UNLISTEN, RESET ALL), and
    lotline's pooled connections leave none of those behind. An open transaction is still
    rolled back by asyncpg; the outbox relay, the one holder of a session-level lock and a
    LISTEN, undoes both itself or closes its connection (`OutboxRelay._lead`)."""


def migration_files(service_dir: Path) -> list[Path]:
    return [*sorted(PLUMBING_DIR.glob("*.sql")), *sorted((service_dir).glob("*.sql"))]


async def migrate(dsn: str, schema: str, files: Sequence[Path]) -> list[str]:
    """Apply not-yet-applied migration files to `schema`, each in its own transaction.

    Serialized with an advisory lock so several processes starting at once do not race.
    Returns the names applied now.
    """
    await wait_for_database(dsn)
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        lock_key = int.from_bytes(hashlib.sha256(schema.encode()).digest()[:8], "big", signed=True)
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(f'SET search_path TO "{schema}"')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
            for path in files:
                name = (
                    f"{path.parent.parent.name}/{path.name}"
                    if path.parent == PLUMBING_DIR
                    else path.name
                )
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
                applied.append(name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    finally:
        await conn.close()
    if applied:
        log.info("database.migrated", schema=schema, applied=applied)
    return applied


def json_rows(rows: Iterable[Sequence[object]]) -> list[str]:
    """Each row as one JSON text, for a statement reading `unnest($n::text[]::jsonb[]) AS r`
    and casting each column back (`(r->>0)::date`; a jsonb column whole, `r->1`).

    Not one array per column: asyncpg's array encoder checks every element against
    collections.abc (a Python call or two each), which cost more than building the rows. A
    Decimal goes as its `str()`, exactly its digits and scale; a date as ISO text; a jsonb
    value already encoded as an `orjson.Fragment`."""
    dumps = orjson.dumps
    return [dumps(row, default=str).decode() for row in rows]
