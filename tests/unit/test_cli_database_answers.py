"""`lotline` when the database or broker it is pointed at cannot be used: one line naming it
(host:port/dbname, never a password) and what to check, never a traceback.

Nothing here starts PostgreSQL or a broker: nothing listens at the addresses used, or the
driver's answer is played by a stand-in.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shared import cli, db, stack
from shared.config import Settings
from tests.fixtures.documents import receipt_document

PASSWORD = "hunter2"


def _must_not_start(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("lotline started a piece of the stack despite the problem")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No lotline variable from the caller's environment but a broker that is taken as
    answering; no piece of the stack may start; the start-up wait for the database is short."""
    for field in Settings.model_fields.values():
        if field.alias:
            monkeypatch.delenv(field.alias, raising=False)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("LOTLINE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("LEDGER_HTTP_PORT", str(stack.free_port()))
    for name in ("start_postgres", "start_broker", "start_services"):
        monkeypatch.setattr(stack, name, _must_not_start)
    monkeypatch.setattr(
        db, "wait_for_database", functools.partial(db.wait_for_database, timeout=0.5)
    )
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # `lotline up`: not embedded

    async def topics_created(_settings: Settings) -> list[str]:
        return []  # the broker is not what these tests are about

    monkeypatch.setattr(stack, "create_topics", topics_created)
    return data_dir


def _run(
    args: Sequence[str], capsys: pytest.CaptureFixture[str], **env: str
) -> tuple[int, list[str]]:
    """`lotline ARGS` with `env` set: (exit status, stderr lines); never a traceback or the
    password anywhere."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        code = cli.main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert PASSWORD not in out + err
    return code, err.splitlines()


def _nothing_listens() -> int:
    return stack.free_port()


def _args(command: str, tmp_path: Path) -> list[str]:
    """`lotline COMMAND` with what it needs beside the settings."""
    if command == "health":
        return ["health", "ledger"]
    if command == "send":  # a good document: only the settings can be wrong
        document = tmp_path / "receipt.json"
        document.write_text(json.dumps(receipt_document()))
        return ["send", str(document)]
    return [command]


@pytest.mark.parametrize("command", ["migrate", "up"])
def test_a_database_that_does_not_answer_is_named_with_what_to_check(
    clean_env: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """`lotline up` checks a configured database before it starts the embedded broker (the
    guard fails the test otherwise)."""
    port = _nothing_listens()

    code, lines = _run(
        [command], capsys, DATABASE_URL=f"postgresql://lot:{PASSWORD}@127.0.0.1:{port}/stock"
    )

    assert code == 1
    # After the start-up wait's log lines (`database.waiting`), the answer.
    assert lines[-1].startswith(
        f"lotline {command}: the database at 127.0.0.1:{port}/stock does not answer ("
    )
    assert "check the host and port in DATABASE_URL" in lines[-1]


def test_health_names_the_database_that_does_not_answer(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _nothing_listens()

    code, lines = _run(
        ["health", "ledger"],
        capsys,
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{_nothing_listens()}",
        DATABASE_URL=f"postgresql://lot:{PASSWORD}@127.0.0.1:{port}/stock",
    )

    assert code == 1
    assert any(
        line.startswith(f"the database at 127.0.0.1:{port}/stock does not answer") for line in lines
    ), lines


def _refusing(exc: BaseException, calls: list[str]) -> Any:
    async def connect(dsn: str, *_args: Any, **_kwargs: Any) -> Any:
        calls.append(dsn)
        raise exc

    return connect


@pytest.mark.parametrize(
    ("refusal", "said"),
    [
        (
            asyncpg.InvalidPasswordError('password authentication failed for user "lot"'),
            "the database at db.example:6432/stock refused the password of user lot: check"
            " the user and password in DATABASE_URL",
        ),
        (
            asyncpg.InvalidAuthorizationSpecificationError('role "lot" does not exist'),
            "the database at db.example:6432/stock refused user lot (role",
        ),
        (
            asyncpg.InvalidCatalogNameError('database "stock" does not exist'),
            'the database at db.example:6432/stock does not exist (database "stock" does not'
            ' exist): create it (CREATE DATABASE "stock")',
        ),
    ],
    ids=["wrong password", "unknown user", "no such database"],
)
@pytest.mark.parametrize("command", ["migrate", "up"])
def test_a_database_that_refuses_the_connection_is_named_at_once(
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    refusal: BaseException,
    said: str,
) -> None:
    """asyncpg raises a different error for each; none heals by waiting, so the start-up wait
    does not retry them (one connection attempt)."""
    calls: list[str] = []
    monkeypatch.setattr(asyncpg, "connect", _refusing(refusal, calls))
    monkeypatch.setattr(db, "wait_for_database", db.wait_for_database)  # the 60 s one

    code, lines = _run(
        [command], capsys, DATABASE_URL=f"postgresql://lot:{PASSWORD}@db.example:6432/stock"
    )

    assert code == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"lotline {command}: {said}")
    assert len(calls) == 1


@pytest.mark.parametrize("command", ["migrate", "up", "health", "send", "topics"])
@pytest.mark.parametrize(
    "dsn", [f"mysql://lot:{PASSWORD}@db.example/stock", f"lot:{PASSWORD}@db.example/stock"]
)
def test_a_database_url_that_is_no_postgresql_url_is_a_setting_error(
    clean_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, dsn: str
) -> None:
    code, lines = _run(
        _args(command, tmp_path), capsys, DATABASE_URL=dsn, KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9"
    )

    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"lotline {command}: DATABASE_URL='")
    assert "not a PostgreSQL URL" in lines[0]


@pytest.mark.parametrize("command", ["migrate", "up"])
def test_a_database_url_the_driver_cannot_read_is_a_setting_error(
    clean_env: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    dsn = f"postgresql://lot:{PASSWORD}@127.0.0.1:notaport/stock"

    code, lines = _run([command], capsys, DATABASE_URL=dsn)

    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"lotline {command}: DATABASE_URL='postgresql://lot:***@127.0.0.1:notaport/stock':"
        " not a PostgreSQL URL"
    )


@pytest.mark.parametrize("command", ["topics", "up", "health", "send", "demo"])
@pytest.mark.parametrize("servers", ["kafka:xyz", "::::", "kafka:0", "kafka:70000", "a:9092,,"])
def test_kafka_bootstrap_servers_that_are_no_addresses_are_a_setting_error(
    clean_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, servers: str
) -> None:
    code, lines = _run(
        _args(command, tmp_path),
        capsys,
        KAFKA_BOOTSTRAP_SERVERS=servers,
        DATABASE_URL="postgresql://localhost/lotline",
    )

    assert code == 2
    assert lines == [
        f"lotline {command}: KAFKA_BOOTSTRAP_SERVERS={servers!r}: not a list of HOST:PORT"
        " (comma separated, port 1..65535), e.g. kafka-1:9092,kafka-2:9092"
    ]


def test_both_unreadable_addresses_are_reported_at_once(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _run(
        ["up"], capsys, KAFKA_BOOTSTRAP_SERVERS="kafka:xyz", DATABASE_URL="mysql://db/x"
    )

    assert code == 2
    assert [line.split("=")[0] for line in lines] == [
        "lotline up: KAFKA_BOOTSTRAP_SERVERS",
        "lotline up: DATABASE_URL",
    ]


def test_good_addresses_are_still_accepted(clean_env: Path) -> None:
    servers = "kafka-1:9092, kafka-2:9093,[::1]:9094,broker"
    dsn = "postgres://u:p@h1:5432,h2:5433/db?sslmode=require"

    settings = Settings(KAFKA_BOOTSTRAP_SERVERS=servers, DATABASE_URL=dsn)

    assert (settings.kafka_bootstrap_servers, settings.database_url) == (servers, dsn)


@pytest.mark.parametrize(
    ("dsn", "address"),
    [
        (f"postgresql://lot:{PASSWORD}@db:6432/stock", "db:6432/stock"),
        (f"postgresql://lot:{PASSWORD}@db/stock", "db:5432/stock"),
        (f"postgresql://lot:{PASSWORD}@[::1]/stock", "[::1]:5432/stock"),
        ("postgresql://postgres:@/lotline?host=/run/pg", "/run/pg:5432/lotline"),
        (f"postgresql://lot:{PASSWORD}@a:1,b:2/stock", "a:1,b:2/stock"),
        (f"postgresql://lot@db/stock?password={PASSWORD}", "db:5432/stock"),
    ],
)
def test_a_database_is_named_by_its_address_never_its_password(dsn: str, address: str) -> None:
    assert db.dsn_address(dsn) == address
    assert PASSWORD not in db.redact_dsn(dsn)


def test_lotline_is_up_does_not_print_the_database_password(tmp_path: Path) -> None:
    settings = Settings(
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9",
        DATABASE_URL=f"postgresql://lot:{PASSWORD}@db.example:6432/stock",
        LOTLINE_DATA_DIR=tmp_path,
    )

    summary = stack._summary(settings, None, None, ["ledger"], ["ledger"])

    assert "postgresql://lot:***@db.example:6432/stock" in summary
    assert PASSWORD not in summary


@pytest.mark.parametrize("service", ["receiving", "allocation", "ledger"])
def test_a_service_with_unreadable_addresses_names_them_and_exits(service: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env.update(KAFKA_BOOTSTRAP_SERVERS="kafka:xyz", DATABASE_URL=f"mysql://u:{PASSWORD}@db/x")

    done = subprocess.run(
        [sys.executable, "-m", f"services.{service}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert "Traceback" not in done.stderr and PASSWORD not in done.stderr
    assert [line.split("=")[0] for line in done.stderr.splitlines()] == [
        f"{service}: KAFKA_BOOTSTRAP_SERVERS",
        f"{service}: DATABASE_URL",
    ]
