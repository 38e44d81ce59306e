"""`lotline health SCHEMA`, a container's health check, against a real broker and PostgreSQL:
healthy exactly when the service could connect as configured (every bootstrap server, the
security settings) and its schema is migrated."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shared import cli, stack
from tests.fixtures.infra import Infra, LotlineEnv


def _health(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: LotlineEnv,
    **overrides: str,
) -> tuple[int, str]:
    """`lotline health receiving` in a container of `env` (plus `overrides`)."""
    for name, value in {**env.env, **overrides}.items():
        monkeypatch.setenv(name, value)
    code = cli.main(["health", "receiving"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.fixture
def migrated(lotline_env: Callable[..., LotlineEnv]) -> LotlineEnv:
    env = lotline_env(topics=False)
    stack.run_sync(stack.migrate_all(env.dsn, ["receiving"]))
    return env


def test_health_is_good_when_a_later_bootstrap_server_answers(
    migrated: LotlineEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cluster named by several servers, the first one down (a broker restarting): the
    service connects through the others, so the container is healthy."""
    servers = f"127.0.0.1:{stack.free_port()},{migrated.bootstrap}"

    code, err = _health(monkeypatch, capsys, migrated, KAFKA_BOOTSTRAP_SERVERS=servers)

    assert code == 0, err


def test_health_is_bad_when_the_broker_cannot_be_reached_as_configured(
    infra: Infra,
    migrated: LotlineEnv,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A security protocol the listener does not speak (SSL against a plaintext one, plaintext
    against a secured one): the service cannot connect, so the health check must not say
    healthy because some request was answered."""
    wrong = "PLAINTEXT" if infra.kafka_options else "SSL"
    code, err = _health(monkeypatch, capsys, migrated, KAFKA_SECURITY_PROTOCOL=wrong)

    assert code == 1
    assert f"broker {migrated.bootstrap}" in err


def test_health_is_bad_until_the_schema_is_migrated(
    lotline_env: Callable[..., LotlineEnv],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = lotline_env(topics=False)

    code, err = _health(monkeypatch, capsys, env)

    assert code == 1
    assert "schema receiving is not migrated yet" in err
