"""The read API while the ledger's database does not answer (restarting, say): 503 naming
it, as `/healthz` answers, never a bare 500; the dashboard a page that keeps reloading."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from services.ledger.api import create_api


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    # min_size=0: the pool connects on first use, as a running ledger's pool reconnects.
    pool = await asyncpg.create_pool(
        f"postgresql://lotline@127.0.0.1:{_closed_port()}/ledger", min_size=0
    )
    transport = httpx.ASGITransport(app=create_api(lambda: pool))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as client:
            yield client
    finally:
        await pool.close()


async def test_reads_answer_503_naming_the_database(api: httpx.AsyncClient) -> None:
    for url in ("/items/X", "/ops/summary", "/trace?lic=X&mfr_lot=M"):
        response = await api.get(url)
        assert response.status_code == 503, (url, response.text)
        assert response.json()["detail"].startswith("the database does not answer: "), url
    assert (await api.get("/healthz")).status_code == 503


async def test_the_dashboard_says_so_and_keeps_reloading(api: httpx.AsyncClient) -> None:
    response = await api.get("/dashboard")

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "database does not answer</strong>: the database does not answer: " in page
    assert '<meta http-equiv="refresh" content="5">' in page
