"""`lotline up` whose terminal closes (SIGHUP) stops the stack as Ctrl-C does: services, broker
and the embedded PostgreSQL, leaving nothing running on its data dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

import psutil

from shared import stack
from tests.fixtures.infra import LotlineEnv


def test_a_closed_terminal_stops_the_stack_and_its_embedded_postgresql(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    env = lotline_env(KAFKA_SESSION_TIMEOUT_MS="3000", KAFKA_HEARTBEAT_INTERVAL_MS="500")
    environ = {k: v for k, v in env.env.items() if k != "DATABASE_URL"}  # embedded PostgreSQL
    pgdata = env.data_dir / "postgres"
    errors = env.data_dir / "stderr.txt"
    with open(errors, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "up"],
            env=environ,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
            # As from a terminal: a test run under nohup must not hand down its ignored SIGHUP
            # (under nohup, lotline up keeps running, as it should).
            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
        )
    lines: list[str] = []

    def read_until_up() -> None:
        for line in proc.stdout or ():
            lines.append(line)
            if "lotline is up" in line:
                return

    reader = threading.Thread(target=read_until_up, daemon=True)
    reader.start()
    try:
        reader.join(240)
        assert any("lotline is up" in line for line in lines), "".join(lines)
        postmaster = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        started = psutil.Process(proc.pid).children(recursive=True)
        assert {p.cmdline()[-1] for p in started} >= {f"services.{name}" for name in stack.SERVICES}

        # The terminal goes away: nobody reads what `lotline up` says any more, then SIGHUP.
        assert proc.stdout is not None
        proc.stdout.close()
        proc.send_signal(signal.SIGHUP)
        code = proc.wait(120)

        assert code == 0, errors.read_text()  # stopped as asked, not killed by the signal
        assert "Traceback" not in errors.read_text()
        # A clean shutdown removes postmaster.pid; the server process is then on its way out.
        assert not (pgdata / "postmaster.pid").exists()
        assert not _still_running(postmaster, "postgres")
        assert not (env.data_dir / stack.STACK_FILE).exists()
        assert not [p for p in started if p.is_running() and p.status() != "zombie"]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        stack.stop_postgres_at(pgdata)


def _still_running(pid: int, name: str) -> bool:
    """Whether process `pid` named `name` still runs after a generous wait for it to end."""
    try:
        process = psutil.Process(pid)
        if process.name() != name:
            return False  # the pid was reused
        _, alive = psutil.wait_procs([process], timeout=30)
    except psutil.Error:
        return False
    return bool(alive)
