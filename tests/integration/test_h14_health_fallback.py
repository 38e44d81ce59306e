"""`lotline health SCHEMA` with only LOTLINE_DATA_DIR set checks the stack `lotline up` runs
from there, as `send` and `watch` find it: the broker its `stack.json` names and the embedded
PostgreSQL of that folder (never started by the check)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import cli, stack
from shared.config import Settings
from tests.fixtures.infra import Infra


@pytest.fixture
def only_the_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No lotline variable but LOTLINE_DATA_DIR, as in a shell beside `lotline up`."""
    for field in Settings.model_fields.values():
        if field.alias:
            monkeypatch.delenv(field.alias, raising=False)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monkeypatch.setenv("LOTLINE_DATA_DIR", str(data_dir))
    return data_dir


@pytest.fixture
def embedded(only_the_data_dir: Path) -> Iterator[stack.EmbeddedPostgres]:
    """The embedded PostgreSQL of the data dir, running, with receiving's schema migrated."""
    postgres = stack.start_postgres(only_the_data_dir)
    try:
        stack.run_sync(stack.migrate_all(postgres.dsn, ["receiving"]))
        yield postgres
    finally:
        postgres.stop(force=True)


def _health(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["health", "receiving"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_health_with_only_the_data_dir_checks_the_running_stack(
    infra: Infra,
    only_the_data_dir: Path,
    embedded: stack.EmbeddedPostgres,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # What `lotline up` notes while it runs (this process stands for it: its pid is alive).
    running = Settings(KAFKA_BOOTSTRAP_SERVERS=infra.bootstrap)
    stack.write_stack_file(only_the_data_dir, running)

    code, err = _health(capsys)

    assert code == 0, err


def test_health_without_a_running_stack_names_the_folder_it_looked_in(
    only_the_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _health(capsys)

    assert code == 2
    assert f"no `lotline up` is running from {only_the_data_dir.resolve()}" in err


def test_health_says_when_the_embedded_postgresql_is_not_running(
    infra: Infra, only_the_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The broker answers, but nothing runs on the data dir's PostgreSQL (a stack with a
    DATABASE_URL of its own, or its database gone): unhealthy, and not started by the check."""
    running = Settings(KAFKA_BOOTSTRAP_SERVERS=infra.bootstrap)
    stack.write_stack_file(only_the_data_dir, running)

    code, err = _health(capsys)

    assert code == 1
    pgdata = only_the_data_dir.resolve() / "postgres"
    assert f"no embedded PostgreSQL runs in {pgdata}" in err
    assert stack.running_postgres_dsn(only_the_data_dir) is None
