"""`lotline migrate` against a real PostgreSQL that refuses it, and an embedded one that cannot
start: one line naming the database and what to check, exit 1, never a traceback; a refused
connection at once (no start-up wait)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shared.db import dsn_address
from shared.stack import database_dsn, run_sync
from tests.fixtures.infra import LotlineEnv


def _lotline(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=240,  # the start-up wait is 60 s: a refusal must not wait it out
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr.splitlines()


def test_migrate_names_a_database_that_does_not_exist(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    env = lotline_env(topics=False)
    missing = database_dsn(env.dsn, f"{env.database}_missing")

    code, lines = _lotline({**env.env, "DATABASE_URL": missing}, "migrate")

    assert code == 1
    assert lines[-1].startswith(
        f"lotline migrate: the database at {dsn_address(missing)} does not exist ("
    ), lines
    assert f'CREATE DATABASE "{env.database}_missing"' in lines[-1]
    assert not any("database.waiting" in line for line in lines)  # refused: no wait


def test_migrate_names_a_user_the_database_does_not_know(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    env = lotline_env(topics=False)
    parts = urlsplit(env.dsn)
    server = parts.netloc.rpartition("@")[2]
    stranger = urlunsplit(parts._replace(netloc=f"lotline_nobody_x:secret-pw@{server}"))

    code, lines = _lotline({**env.env, "DATABASE_URL": stranger}, "migrate")

    assert code == 1
    assert lines[-1].startswith(
        f"lotline migrate: the database at {dsn_address(stranger)} refused"
    ), lines
    assert "lotline_nobody_x" in lines[-1] and "secret-pw" not in "\n".join(lines)
    assert not any("database.waiting" in line for line in lines)


def test_an_embedded_postgresql_that_cannot_start_is_named(
    lotline_env: Callable[..., LotlineEnv], tmp_path: Path
) -> None:
    """A data dir whose `postgres` is not a PostgreSQL data folder (here: a file)."""
    env = lotline_env(topics=False)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "postgres").write_text("not a data folder")
    environ = {k: v for k, v in env.env.items() if k != "DATABASE_URL"}

    code, lines = _lotline({**environ, "LOTLINE_DATA_DIR": str(data_dir)}, "migrate")

    assert code == 1
    assert lines[-1].startswith(
        f"lotline migrate: the embedded PostgreSQL in {data_dir / 'postgres'} did not start"
        " (initdb exited with 1)"
    ), lines


def test_migrate_names_a_user_that_may_not_create_the_schemas(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """A DATABASE_URL of a user without CREATE on the database (not its owner)."""
    env = lotline_env(topics=False)
    role = f"lotline_reader_{env.database[-10:]}"
    run_sync(_admin(env.dsn, f"CREATE ROLE {role} LOGIN PASSWORD 'reader-pw'"))
    try:
        parts = urlsplit(env.dsn)
        server = parts.netloc.rpartition("@")[2]
        reader = urlunsplit(parts._replace(netloc=f"{role}:reader-pw@{server}"))

        code, lines = _lotline({**env.env, "DATABASE_URL": reader}, "migrate")

        assert code == 1
        assert lines[-1].startswith(
            f"lotline migrate: the database at {dsn_address(reader)} does not let user {role}"
            " migrate schema receiving (permission denied"
        ), lines
        assert "reader-pw" not in "\n".join(lines)
    finally:
        run_sync(_admin(env.dsn, f"DROP ROLE IF EXISTS {role}"))


async def _admin(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
