"""`lotline up` supervises its services: one killed once the stack is up is started again, as
first started, and answers again; `lotline up` still exits 1 at the end, naming it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType

import psutil
from aiokafka import ConsumerRecord

from tests.fixtures.infra import LotlineEnv, json_values, kafka_publish, kafka_read_until


class RunningUp:
    """`lotline up` started as a user starts it, its output read as it comes."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "up"],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        for stream, into in ((self.proc.stdout, self.lines), (self.proc.stderr, self.errors)):
            threading.Thread(target=into.extend, args=(stream or (),), daemon=True).start()

    def __enter__(self) -> RunningUp:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 240) -> None:
        """Until `lotline up` has said `text` (it must not end first)."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.proc.poll() is None, self.output + "".join(self.errors)
            assert time.monotonic() < deadline, self.output
            time.sleep(0.1)

    def service(self, name: str) -> psutil.Process:
        """The running process of service `name`."""
        (found,) = [
            p
            for p in psutil.Process(self.proc.pid).children()
            if p.cmdline()[-1:] == [f"services.{name}"] and p.status() != "zombie"
        ]
        return found

    def stop(self) -> int:
        """Ctrl-C; its exit status once it has stopped everything."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(120)


async def _answers(env: LotlineEnv, topic: str, kind: str, key: str) -> None:
    def seen(records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        return any(v.get("type") == kind and key in json.dumps(v) for v in json_values(records))

    await kafka_read_until(env.bootstrap, topic, seen, timeout=90)


async def test_a_killed_service_is_started_again_and_answers(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    env = lotline_env(KAFKA_SESSION_TIMEOUT_MS="3000", KAFKA_HEARTBEAT_INTERVAL_MS="500")
    topics = env.settings.topics
    log = env.data_dir.resolve() / "logs" / "allocation.log"
    with RunningUp(env.env) as up:
        up.wait_for("lotline is up")
        first = up.service("allocation")

        first.kill()
        up.wait_for(f"!! allocation was killed by SIGKILL (log: {log}); restarting in 1 s")
        up.wait_for("   allocation restarted (pid ")
        again = up.service("allocation")
        assert again.pid != first.pid
        # As first started: the same environment (its database, topics) and log file.
        assert again.environ()["DATABASE_URL"] == env.dsn
        assert log.read_text().count('"event": "stack.service_starting"') == 0  # console logs
        assert log.read_text().count("stack.service_starting") == 2

        # It answers: an item upserted upstream is decided by allocation.
        item = {
            "type": "UpsertItem",
            "message_id": "item-after-restart",
            "occurred_at": "2026-11-01T10:00:00Z",
            "lic": "AFTER-RESTART",
            "description": "after a restart",
            "uom": "EA",
            "est_unit_cost": "1",
        }
        await kafka_publish(env.bootstrap, topics.items, "AFTER-RESTART", json.dumps(item).encode())
        await _answers(env, topics.events, "ItemUpserted", "AFTER-RESTART")

        code = up.stop()

    assert code == 1, up.output
    problem = f"service allocation was killed by SIGKILL after the stack was up: see {log}"
    assert [e for e in up.errors if e.startswith("lotline up:")] == [f"lotline up: {problem}\n"]
    assert "allocation=0" in up.output  # the restarted one stopped cleanly
