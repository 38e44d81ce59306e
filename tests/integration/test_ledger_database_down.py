"""The read API while the ledger's database does not answer (restarting, say): 503 naming
it, as `/healthz` answers, never a bare 500; the dashboard a page that keeps reloading. Both
say where the ledger connects (never its password) and what failed, in plain words."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.ledger.api import create_api

PASSWORD = "s3cret-h17"


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@asynccontextmanager
async def _api_on(dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    # min_size=0: the pool connects on first use, as a running ledger's pool reconnects.
    pool = await asyncpg.create_pool(dsn, min_size=0)
    transport = httpx.ASGITransport(app=create_api(lambda: pool))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as client:
            yield client
    finally:
        await pool.close()


@pytest.fixture
def port() -> int:
    return _closed_port()


@pytest.fixture
async def api(port: int) -> AsyncIterator[httpx.AsyncClient]:
    async with _api_on(f"postgresql://lotline:{PASSWORD}@127.0.0.1:{port}/ledger") as client:
        yield client


async def test_reads_answer_503_naming_the_database(api: httpx.AsyncClient, port: int) -> None:
    for url in ("/items/X", "/ops/summary", "/trace?lic=X&mfr_lot=M"):
        response = await api.get(url)
        assert response.status_code == 503, (url, response.text)
        assert response.json() == {
            "detail": f"the database does not answer at 127.0.0.1:{port}/ledger:"
            " connection refused (ConnectionRefusedError)",
            "address": f"127.0.0.1:{port}/ledger",
            "error": "ConnectionRefusedError",
            "reason": "connection refused (ConnectionRefusedError)",
        }, url
        assert PASSWORD not in response.text
    assert (await api.get("/healthz")).status_code == 503


async def test_the_dashboard_says_so_once_and_keeps_reloading(
    api: httpx.AsyncClient, port: int
) -> None:
    response = await api.get("/dashboard")

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert (
        "<strong>The ledger's database does not answer</strong> at"
        f" <code>127.0.0.1:{port}/ledger</code>: connection refused (ConnectionRefusedError)."
    ) in page
    assert page.lower().count("does not answer") == 1, page
    assert PASSWORD not in page
    assert '<meta http-equiv="refresh" content="5">' in page


@pytest.mark.parametrize(
    ("query", "seconds"),
    [("?refresh=17", 17), ("?refresh=3600", 3600), ("?refresh=0", 5), ("?refresh=soon", 5)],
)
async def test_the_outage_page_reloads_as_often_as_the_dashboard_was_asked(
    api: httpx.AsyncClient, query: str, seconds: int
) -> None:
    """`?refresh=` as the dashboard takes it (1 to 3600 s); one the dashboard would refuse
    leaves the page reloading at the default, so it still comes back by itself."""
    page = (await api.get(f"/dashboard{query}")).text

    assert f'<meta http-equiv="refresh" content="{seconds}">' in page
    assert f"This page reloads every {seconds} s." in page


async def test_a_missing_unix_socket_is_named_by_its_path(tmp_path: Path) -> None:
    dsn = f"postgresql://lotline:{PASSWORD}@/ledger?host={tmp_path}&port=6543"
    socket_file = f"{tmp_path}/.s.PGSQL.6543"
    async with _api_on(dsn) as api:
        answer = await api.get("/items/X")
        page = (await api.get("/dashboard")).text

    assert answer.status_code == 503
    assert answer.json() == {
        "detail": f"the database does not answer at {socket_file} (database ledger):"
        " no such socket file (FileNotFoundError)",
        "address": f"{socket_file} (database ledger)",
        "error": "FileNotFoundError",
        "reason": "no such socket file (FileNotFoundError)",
    }
    assert f"<code>{socket_file} (database ledger)</code>: no such socket file" in page
    assert "Errno" not in page and "FileNotFoundError(" not in page
    assert PASSWORD not in page and PASSWORD not in answer.text
