"""The read API's one-value-per-parameter rule without a database: a repeat is refused before
anything is read, and a parameter declared as a list still takes several values."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Query

from services.ledger.api import create_api, refuse_repeated_parameters


async def _get(app: FastAPI, url: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as client:
        return await client.get(url)


async def test_a_repeat_is_refused_before_the_database_is_asked() -> None:
    """No pool yet (the ledger starting): one value is the usual 503; two are the client's
    mistake whatever the database's state, 422."""
    app = create_api(lambda: None)

    once = await _get(app, "/lots?lic=A")
    twice = await _get(app, "/lots?lic=A&lic=B")

    assert once.status_code == 503, once.text
    assert twice.status_code == 422, twice.text
    assert twice.json()["detail"][0]["loc"] == ["query", "lic"]


async def test_a_parameter_declared_as_a_list_may_repeat_beside_one_that_may_not() -> None:
    app = FastAPI(dependencies=[Depends(refuse_repeated_parameters)])

    @app.get("/lots")
    async def lots(
        lic: Annotated[list[str], Query()], status: str | None = None
    ) -> dict[str, object]:
        return {"lic": lic, "status": status}

    many = await _get(app, "/lots?lic=A&lic=B&status=open")
    refused = await _get(app, "/lots?lic=A&lic=B&status=open&status=closed")

    assert many.status_code == 200 and many.json() == {"lic": ["A", "B"], "status": "open"}
    assert refused.status_code == 422
    assert [p["loc"] for p in refused.json()["detail"]] == [["query", "status"]]


async def test_a_parameter_the_route_does_not_take_is_ignored_even_repeated() -> None:
    app = create_api(lambda: None)

    response = await _get(app, "/healthz?verbose=1&verbose=2")

    assert response.status_code == 503  # no pool: answered as without the parameter


async def test_a_long_run_of_values_is_named_in_short() -> None:
    """Every value is kept in `input`; the message names the first few, each clipped."""
    app = create_api(lambda: None)
    values = [f"L-{n}-{'x' * 200}" for n in range(50)]

    response = await _get(app, "/lots?" + "&".join(f"lic={v}" for v in values))

    (problem,) = response.json()["detail"]
    assert problem["input"] == values
    assert "50" in problem["msg"] and len(problem["msg"]) < 400, problem["msg"]
