"""What the read API's 503 and the dashboard's outage page say: where the ledger connects
(never the password) and what failed, in plain words, each said once; and the page reloading as
the dashboard was asked to (its `?refresh=`, validated as the dashboard validates it)."""

from __future__ import annotations

import socket

import asyncpg
import pytest

from services.ledger import api, dashboard

PASSWORD = "s3cret-h17"


@pytest.mark.parametrize(
    ("dsn", "address"),
    [
        (f"postgresql://lot:{PASSWORD}@db:6432/stock", "db:6432/stock"),
        (f"postgresql://lot:{PASSWORD}@db/stock", "db:5432/stock"),
        (f"postgresql://lot:{PASSWORD}@[::1]/stock", "[::1]:5432/stock"),
        (f"postgresql://lot:{PASSWORD}@a:1,b:2/stock", "a:1,b:2/stock"),
        (
            f"postgresql://lot:{PASSWORD}@/lotline?host=/run/pg",
            "/run/pg/.s.PGSQL.5432 (database lotline)",
        ),
        (
            "postgresql://lot@/lotline?host=/run/pg/&port=6543",
            "/run/pg/.s.PGSQL.6543 (database lotline)",
        ),
        (f"postgresql://lot@db/stock?password={PASSWORD}", "db:5432/stock"),
    ],
)
def test_the_database_is_named_by_its_address_or_socket_never_its_password(
    dsn: str, address: str
) -> None:
    assert api.database_address(dsn) == address


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"),
            "connection refused (ConnectionRefusedError)",
        ),
        (
            FileNotFoundError(2, "No such file or directory"),
            "no such socket file (FileNotFoundError)",
        ),
        (TimeoutError(), "no answer in time (TimeoutError)"),
        (socket.gaierror(-2, "Name or service not known"), "name or service not known (gaierror)"),
        (OSError(113, "No route to host"), "no route to host (OSError)"),
        (
            asyncpg.CannotConnectNowError("the database system is starting up"),
            "the database system is starting up (CannotConnectNowError)",
        ),
        (
            asyncpg.InterfaceError("pool is\nclosing"),
            "pool is closing (InterfaceError)",
        ),
    ],
)
def test_a_failure_is_said_in_plain_words_with_its_class(error: Exception, said: str) -> None:
    assert api.failure(error) == said


def test_the_page_says_the_database_does_not_answer_once() -> None:
    page = dashboard.unavailable(
        "connection refused (ConnectionRefusedError)", address="db:5432/<stock>", refresh_seconds=9
    )

    assert page.lower().count("does not answer") == 1
    assert (
        "<strong>The ledger's database does not answer</strong> at <code>db:5432/&lt;stock&gt;"
        "</code>: connection refused (ConnectionRefusedError).</p>"
    ) in page
    assert '<meta http-equiv="refresh" content="9">' in page
    unknown = dashboard.unavailable("no answer in time (TimeoutError)")
    assert "does not answer</strong>: no answer in time (TimeoutError).</p>" in unknown


@pytest.mark.parametrize(
    ("asked", "seconds"),
    [
        (None, 5),
        ("1", 1),
        ("17", 17),
        ("3600", 3600),
        ("0", 5),
        ("3601", 5),
        ("-3", 5),
        ("soon", 5),
        ("", 5),
    ],
)
def test_the_outage_page_reloads_as_the_dashboard_was_asked(
    asked: str | None, seconds: int
) -> None:
    assert api.outage_refresh(asked) == seconds
