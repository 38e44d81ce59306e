"""The ledger gathers a batch's independent writes into one statement (one round trip): each
a sub-statement of one WITH, its parameters renumbered after the ones before it."""

from __future__ import annotations

from typing import Any

from services.ledger.repository import _Writes


class _Recorder:
    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    async def execute(self, sql: str, *args: Any) -> str:
        self.statements.append((sql, args))
        return "OK"


async def test_independent_writes_go_in_one_statement_with_renumbered_parameters() -> None:
    conn: Any = _Recorder()
    writes = _Writes()
    writes.add(
        ("UPDATE a SET x = x + d.v FROM unnest($1::text[], $2::int[]) AS d(k, v)", [[1], [2]])
    )
    writes.add(None)
    writes.add(("INSERT INTO b SELECT * FROM unnest($1::text[])", [["z"]]))
    await writes.run(conn)

    ((sql, args),) = conn.statements
    assert sql == (
        "WITH w0 AS (UPDATE a SET x = x + d.v FROM unnest($1::text[], $2::int[]) AS d(k, v)),"
        " w1 AS (INSERT INTO b SELECT * FROM unnest($3::text[])) SELECT 1"
    )
    assert args == ([1], [2], ["z"])
    await writes.run(conn)  # gathered writes were taken: nothing more to run
    assert len(conn.statements) == 1


async def test_a_single_write_runs_as_it_is() -> None:
    conn: Any = _Recorder()
    writes = _Writes()
    writes.add(("DELETE FROM c WHERE k = ANY($1::text[])", [["k"]]))
    await writes.run(conn)
    assert conn.statements == [("DELETE FROM c WHERE k = ANY($1::text[])", (["k"],))]
