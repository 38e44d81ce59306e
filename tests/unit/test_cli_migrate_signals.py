"""`lotline migrate` on the embedded PostgreSQL, killed or its terminal closed while it works:
it stops the server it started, as on Ctrl-C, instead of leaving it running. Under `nohup`
(SIGHUP ignored) neither it nor `lotline up` stops when the terminal closes.

The server is a stand-in that notes when it is stopped; `lotline migrate` runs as its own
process, so the signal's default action (ending it at once) is what the test would see.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import cli, stack
from shared.config import Settings

_MIGRATE = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from shared import cli, stack

    stopped = Path(sys.argv[1])

    class Postgres:
        dsn = "postgresql://embedded/lotline"

        def stop(self):
            stopped.write_text("stopped")

    async def migrate_all(dsn):
        print("migrating", flush=True)
        await asyncio.sleep(3600)

    stack.start_postgres = lambda data_dir: Postgres()
    stack.migrate_all = migrate_all
    sys.exit(cli.main(["migrate"]))
    """
)


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM], ids=lambda s: s.name)
def test_migrate_stops_the_embedded_postgresql_it_started_when_stopped(
    tmp_path: Path, sig: signal.Signals
) -> None:
    stopped = tmp_path / "stopped"
    env = {k: v for k, v in os.environ.items() if k not in _SETTINGS}
    env["LOTLINE_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen(
        [sys.executable, "-c", _MIGRATE, str(stopped)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        # As from a terminal: a test run under nohup must not hand down its ignored SIGHUP.
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("migrating"):
                break
        proc.send_signal(sig)
        code = proc.wait(60)
        stderr = proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert code == 130, stderr  # interrupted, as with Ctrl-C, not ended by the signal
    assert stopped.exists(), stderr  # the server it started was stopped
    assert "Traceback" not in stderr


_SETTINGS = {field.alias for field in Settings.model_fields.values() if field.alias}


# -- under `nohup` (SIGHUP ignored), a closed terminal stops nothing ---------------------------


@pytest.fixture
def hangup_ignored() -> Iterator[None]:
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGHUP, previous)


def test_up_under_nohup_keeps_sighup_ignored(
    hangup_ignored: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[signal.Signals, Any] = {}

    def ready(*_args: Any, **_kwargs: Any) -> None:
        seen.update({sig: signal.getsignal(sig) for sig in stack.STOP_SIGNALS})
        os.kill(os.getpid(), signal.SIGINT)  # then stop, as Ctrl-C does

    async def prepare(_settings: Settings, *, fresh_broker: bool) -> list[str]:
        return []

    monkeypatch.setattr(stack, "available_services", lambda names=stack.SERVICES: [])
    monkeypatch.setattr(stack, "start_services", lambda *_args, **_kwargs: [])
    monkeypatch.setattr(stack, "_prepare", prepare)
    monkeypatch.setattr(stack, "_await_ready", ready)
    settings = Settings(
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9",
        DATABASE_URL="postgresql://localhost/lotline",
        LOTLINE_DATA_DIR=tmp_path,
    )

    assert stack.up(settings, names=[]) == []

    assert seen[signal.SIGHUP] is signal.SIG_IGN
    assert seen[signal.SIGINT] is seen[signal.SIGTERM]  # lotline up's own stop handler
    assert callable(seen[signal.SIGINT])


def test_migrate_under_nohup_keeps_sighup_ignored(
    hangup_ignored: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[signal.Signals, Any] = {}

    class Postgres:
        dsn = "postgresql://embedded/lotline"

        def stop(self) -> None:
            pass

    async def migrate_all(_dsn: str) -> dict[str, list[str]]:
        seen.update({sig: signal.getsignal(sig) for sig in (signal.SIGHUP, signal.SIGTERM)})
        return {}

    for name in _SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOTLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(stack, "start_postgres", lambda _data_dir: Postgres())
    monkeypatch.setattr(stack, "migrate_all", migrate_all)

    assert cli.main(["migrate"]) == 0

    assert seen == {signal.SIGHUP: signal.SIG_IGN, signal.SIGTERM: signal.default_int_handler}
