"""The test infrastructure itself: a real broker, a real PostgreSQL, the contract's topics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared import stack
from shared.contracts import topics as contract
from tests.fixtures.infra import (
    Infra,
    LotlineEnv,
    json_values,
    kafka_publish,
    kafka_read_until,
)


async def test_broker_round_trips_a_message_and_postgres_answers(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    env = lotline_env()
    marker = uuid.uuid4().hex
    value = f'{{"marker": "{marker}"}}'.encode()

    await kafka_publish(env.bootstrap, env.settings.topics.receipts, "doc-1", value)
    records = await kafka_read_until(
        env.bootstrap,
        env.settings.topics.receipts,
        lambda rs: any(r.value == value for r in rs),
        timeout=20,
    )

    (record,) = [r for r in records if r.value == value]
    assert record.key == b"doc-1"
    assert json_values([record]) == [{"marker": marker}]
    conn = await asyncpg.connect(env.dsn)
    try:
        assert await conn.fetchval("select 1") == 1
        assert await conn.fetchval("select current_database()") == env.database
    finally:
        await conn.close()


async def test_ensure_topics_creates_every_contract_topic(
    infra: Infra, lotline_env: Callable[..., LotlineEnv]
) -> None:
    env = lotline_env()  # creates the topics under a fresh prefix
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap, **infra.kafka_options)
    await admin.start()
    try:
        names = [env.settings.topics.name(t) for t in contract.ALL]
        described = await admin.describe_topics(names)
    finally:
        await admin.close()

    partitions = {d["topic"]: len(d["partitions"]) for d in described if d["error_code"] == 0}
    assert set(partitions) == set(names)
    assert partitions[env.settings.topics.commands] >= 8
    assert partitions[env.settings.topics.events] >= 8
    assert all(count >= 1 for count in partitions.values())


async def test_each_test_gets_its_own_database_and_topics(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    first, second = lotline_env(topics=False), lotline_env(topics=False)

    assert first.database != second.database
    assert first.topic_prefix != second.topic_prefix
    assert first.env["DATABASE_URL"] == first.dsn
    assert first.env["LOTLINE_TOPIC_PREFIX"] == first.topic_prefix


# -- lotline up and the broker: ports that are taken, services that must be started -----------


def test_the_embedded_postgresql_autovacuums_every_few_seconds(tmp_path: Path) -> None:
    """Plans cached while a fresh deployment's tables were empty are replaced once autovacuum
    analyzes the grown tables: every 5 s here, not the default minute (`SERVER_SETTINGS`)."""
    postgres = stack.start_postgres(tmp_path)
    try:

        async def naptime() -> str:
            conn = await asyncpg.connect(postgres.dsn)
            try:
                return str(await conn.fetchval("SHOW autovacuum_naptime"))
            finally:
                await conn.close()

        assert stack.run_sync(naptime()) == stack.SERVER_SETTINGS["autovacuum_naptime"] == "5s"
    finally:
        postgres.stop()


def test_start_broker_refuses_a_port_another_broker_answers_on(tmp_path: Path) -> None:
    other = stack.start_broker(log_path=tmp_path / "other.log")
    try:
        with pytest.raises(stack.StackError, match=f"port {other.port} .*already in use"):
            joined = stack.start_broker(other.port, log_path=tmp_path / "broker.log")
            joined.stop()  # the old behaviour: a handle on the other broker
        assert stack.broker_answers("127.0.0.1", other.port)  # the other one is untouched
    finally:
        other.stop()


def test_start_broker_needs_its_own_process_to_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the up-front check (a race, say), an answer from another process is not enough."""
    other = stack.start_broker(log_path=tmp_path / "other.log")
    monkeypatch.setattr(stack, "port_taken", lambda _host, _port: None, raising=False)
    try:
        with pytest.raises(stack.StackError, match=f"another process answers on port {other.port}"):
            joined = stack.start_broker(other.port, log_path=tmp_path / "broker.log", timeout=20)
            joined.stop()
    finally:
        other.stop()


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _three_free_ports() -> int:
    """A port P with P, P + 1 and P + 2 free on 127.0.0.1."""
    for _ in range(50):
        port = stack.free_port()
        if port + 2 <= 65535 and all(_free(port + i) for i in range(3)):
            return port
    raise AssertionError("no three consecutive free ports")


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_lotline_up_is_up_once_started_with_metrics_on_three_ports(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    env = lotline_env(KAFKA_SESSION_TIMEOUT_MS="3000", KAFKA_HEARTBEAT_INTERVAL_MS="500")
    metrics = _three_free_ports()
    api = f"http://127.0.0.1:{env.settings.http_port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "up"],
        env={**env.env, "METRICS_PORT": str(metrics)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 180
        while not any("lotline is up" in line for line in lines):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        # "up" means started: the read API and the three metrics servers answer right now.
        assert _get(f"{api}/healthz") == 200, "".join(lines)
        for offset in range(3):
            assert _get(f"http://127.0.0.1:{metrics + offset}/metrics") == 200, "".join(lines)
        output = "".join(lines)
        for name in ("receiving", "shipping", "allocation", "ledger"):
            assert output.index(f"{name} started") < output.index("lotline is up")
        for name, offset in (("receiving", 0), ("shipping", 1), ("allocation", 2)):
            assert f"{name} http://127.0.0.1:{metrics + offset}/metrics" in output

        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, "".join(lines)
        reader.join(10)
        assert "services stopped (receiving=0, shipping=0, allocation=0, ledger=0)" in "".join(
            lines
        )
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
