"""The allocation repository stores exactly the state the domain decided: what is saved loads
back equal, row for row, across every table (items, lots, manufacturer lots, units,
allocations, customer shipments, unallocated stock), whether a table's rows go as JSON
parameters or, many of them, by COPY."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any, cast

import asyncpg
import pytest

from services.allocation import repository as allocation_repository
from services.allocation.app import MIGRATIONS, SCHEMA
from services.allocation.domain import model as d
from services.allocation.domain.decide import decide_all, decide_batch
from services.allocation.repository import PgStateRepository
from shared import db
from tests.fixtures.infra import LotlineEnv


@pytest.fixture
async def pool(lotline_env: Any) -> AsyncIterator[asyncpg.Pool]:
    env: LotlineEnv = lotline_env(topics=False)
    await db.migrate(env.dsn, SCHEMA, db.migration_files(MIGRATIONS))
    pool = await db.create_pool(env.dsn, SCHEMA, size=2)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(params=["json", "copy"])
def write_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each table's rows as JSON parameters, or (COPY_MIN_ROWS down to one row) every table's by
    COPY into its scratch table, jsonb columns included."""
    if request.param == "copy":
        monkeypatch.setattr(allocation_repository, "COPY_MIN_ROWS", 1)
    return str(request.param)


def _history(lic: str, *, serialized: bool, lots: bool) -> list[d.Command]:
    day = date(2026, 11, 1)
    receive = d.ReceiveStock(
        message_id=f"{lic}-r",
        lic=lic,
        lot_id=f"PO-{lic}/1",
        office="AI",
        kind="purchase",
        reference=f"PO-{lic}",
        received_on=day,
        quantity=Decimal(4),
        shipment_id=f"PO-{lic}",
        line_no=1,
        mfr_lots=(
            (d.LotEntry(mfr_lot="M1", quantity=Decimal(4), expires_on=date(2027, 1, 1)),)
            if lots
            else ()
        ),
        serials=("A1", "A2", "A3", "A4") if serialized else (),
    )
    line = {"lic": lic, "shipment_id": f"SO-{lic}", "line_no": 1}
    return [
        d.UpsertItem(
            message_id=f"{lic}-i",
            lic=lic,
            description="thing",
            uom="Each",
            track_mfr_lot=lots,
            serialized=serialized,
            est_unit_cost=Decimal("3.50"),
        ),
        receive,
        d.AllocateLine(
            message_id=f"{lic}-a",
            office="AI",
            kind="sale",
            counterparty="C1",
            ship_on=day,
            quantity=Decimal(2),
            **line,  # type: ignore[arg-type]
        ),
        d.ShipLine(message_id=f"{lic}-s", **line),  # type: ignore[arg-type]
        d.AllocateLine(
            message_id=f"{lic}-a2",
            office="AI",
            kind="sale",
            counterparty="C2",
            ship_on=day,
            quantity=Decimal(1),
            lic=lic,
            shipment_id=f"SO2-{lic}",
            line_no=1,
        ),
        d.AdjustStock(
            message_id=f"{lic}-adj",
            lic=lic,
            adjustment_id=f"ADJ-{lic}",
            office="AI",
            kind="count",
            quantity=Decimal(3),
            adjusted_on=day,
        ),
    ]


async def test_saved_state_loads_back_equal_in_every_table(
    pool: asyncpg.Pool, write_path: str
) -> None:
    repository = PgStateRepository()
    cases = {"PLAIN": (False, False), "LOTS": (False, True), "SERIALS": (True, False)}
    async with pool.acquire() as proxy, proxy.transaction():
        conn = cast(asyncpg.Connection, proxy)
        before = await repository.load(conn, list(cases))
        after = {}
        for lic, (serialized, lots) in cases.items():
            after[lic], events = decide_all(
                before[lic], _history(lic, serialized=serialized, lots=lots)
            )
            assert len(events) == 6
        # Two rounds: the second one updates rows written by the first.
        await repository.save(conn, before, after)
        middle = await repository.load(conn, list(cases))
        assert middle == after
        final = {
            lic: decide_all(
                middle[lic],
                [
                    d.ReleaseLine(
                        message_id=f"{lic}-rel", lic=lic, shipment_id=f"SO2-{lic}", line_no=1
                    )
                ],
            )[0]
            for lic in cases
        }
        await repository.save(conn, middle, final)
        assert await repository.load(conn, list(cases)) == final
    assert after["PLAIN"].unallocated or after["PLAIN"].lots  # the adjustment went somewhere
    assert after["SERIALS"].units and after["LOTS"].mfr_lots and after["PLAIN"].shipments


async def test_customer_shipments_load_back_in_key_order(pool: asyncpg.Pool) -> None:
    """R13, §6: a return naming no customer is spread over every customer's shipment rows, so
    a reload must not list them in whatever order the heap holds them (here the order they
    were first shipped, Zed, Acme, then an unnamed sale): in key order, every reload alike.
    And the reloaded state decides that return as the one in memory did."""
    lic = "RET-ORDER"
    day = date(2026, 11, 1)
    commands: list[d.Command] = [
        d.UpsertItem(
            message_id=f"{lic}-i", lic=lic, description="thing", uom="Each",
            track_mfr_lot=False, serialized=False, est_unit_cost=Decimal("3.50"),
        ),
        d.ReceiveStock(
            message_id=f"{lic}-r", lic=lic, lot_id=f"PO-{lic}/1", office="AI", kind="purchase",
            reference=f"PO-{lic}", received_on=day, quantity=Decimal(6),
            shipment_id=f"PO-{lic}", line_no=1,
        ),
    ]  # fmt: skip
    for n, customer in enumerate(["Zed", "Acme", None]):
        line = {"lic": lic, "shipment_id": f"SO{n}", "line_no": 1}
        commands += [
            d.AllocateLine(
                message_id=f"{lic}-a{n}", office="AI", kind="sale", counterparty=customer,
                ship_on=day, quantity=Decimal(2), **line,  # type: ignore[arg-type]
            ),
            d.ShipLine(message_id=f"{lic}-s{n}", **line),  # type: ignore[arg-type]
        ]  # fmt: skip
    back = d.ReturnFromCustomer(
        message_id=f"{lic}-ret", lic=lic, shipment_id="RMA", line_no=1, office="AI",
        customer=None, received_on=day, quantity=Decimal(3),
    )  # fmt: skip
    repository = PgStateRepository()
    async with pool.acquire() as proxy, proxy.transaction():
        conn = cast(asyncpg.Connection, proxy)
        before = await repository.load(conn, [lic])
        after, _ = decide_all(before[lic], commands)
        assert [key[2] for key in after.shipments] == ["Zed", "Acme", ""]
        await repository.save(conn, before, {lic: after})
        loaded = (await repository.load(conn, [lic]))[lic]
    assert loaded == after
    assert [key[2] for key in loaded.shipments] == ["", "Acme", "Zed"]
    in_memory, reloaded = decide_all(after, [back]), decide_all(loaded, [back])
    assert in_memory == reloaded
    returned = {row.customer: row.returned for row in reloaded[0].shipments.values()}
    assert returned == {"": 2, "Acme": 1, "Zed": 0}


@pytest.mark.parametrize("by_touched", [True, False], ids=["touched rows", "row by row"])
async def test_unallocated_stock_loads_back_with_its_value_through_every_change(
    pool: asyncpg.Pool, by_touched: bool
) -> None:
    """R10, R12: unallocated stock is stored with its value. A count beyond any lot inserts
    the row, a count at another cost and a partial loss update it, the last loss deletes it;
    each round loads back equal, saved from the batch's touched rows or compared row by row."""
    lic = f"UN-{by_touched}"

    def count(n: int, quantity: int, cost: str | None = None) -> d.AdjustStock:
        return d.AdjustStock(
            message_id=f"{lic}-{n}", lic=lic, adjustment_id=f"ADJ-{n}", office="AI",
            kind="count" if cost else "loss", quantity=Decimal(quantity),
            adjusted_on=date(2026, 11, 1), unit_cost=Decimal(cost) if cost else None,
        )  # fmt: skip

    item = d.UpsertItem(
        message_id=f"{lic}-i", lic=lic, description="thing", uom="Each", track_mfr_lot=False,
        serialized=False, est_unit_cost=Decimal("9.99"),
    )  # fmt: skip
    rounds: list[tuple[list[d.Command], tuple[Decimal, Decimal] | None]] = [
        ([item, count(1, 1, "3.00")], (Decimal(1), Decimal(3))),
        ([count(2, 2, "3.50")], (Decimal(3), Decimal(10))),
        ([count(3, -1)], (Decimal(2), Decimal("6.666667"))),  # at 3.333333
        ([count(4, -2)], None),  # the last 2 at exactly the 6.666667 left
    ]
    repository = PgStateRepository()
    async with pool.acquire() as proxy, proxy.transaction():
        conn = cast(asyncpg.Connection, proxy)
        state = (await repository.load(conn, [lic]))[lic]
        for commands, expected in rounds:
            batch = decide_batch(state, commands)
            assert not any(isinstance(e, d.CommandRejected) for e in batch.events)
            touched = {lic: batch.touched} if by_touched else None
            await repository.save(conn, {lic: state}, {lic: batch.state}, touched)
            state = (await repository.load(conn, [lic]))[lic]
            assert state == batch.state
            row = state.unallocated.get("AI")
            assert (None if row is None else (row.quantity, row.value)) == expected


async def test_unallocated_stock_from_before_its_value_was_kept_is_worth_the_estimate(
    lotline_env: Any,
) -> None:
    """Migration 006: a row written before unallocated stock kept its value was removed at the
    item's estimated cost, so the migration values it at that; new rows carry their own."""
    env: LotlineEnv = lotline_env(topics=False)
    schema = f"{SCHEMA}_006"
    files = db.migration_files(MIGRATIONS)
    new = [f for f in files if f.name.startswith("006_")]
    assert len(new) == 1
    await db.migrate(env.dsn, schema, [f for f in files if f not in new])
    pool = await db.create_pool(env.dsn, schema, size=1)
    try:
        await pool.execute(
            "INSERT INTO items (lic, description, uom, track_mfr_lot, serialized, perishable,"
            " est_unit_cost) VALUES ('OLD', '', 'Each', false, false, false, 2.5)"
        )
        await pool.execute("INSERT INTO unallocated VALUES ('OLD', 'AI', 4), ('OLD', 'EE', 1)")
        await db.migrate(env.dsn, schema, files)
        async with pool.acquire() as proxy:
            loaded = await PgStateRepository().load(cast(asyncpg.Connection, proxy), ["OLD"])
        assert {o: (r.quantity, r.value) for o, r in loaded["OLD"].unallocated.items()} == {
            "AI": (4, 10),
            "EE": (1, Decimal("2.5")),
        }
    finally:
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


async def test_held_lines_load_back_equal_and_settle_through_the_tables(
    pool: asyncpg.Pool, write_path: str
) -> None:
    """Held stock (lots' and mfr lots' `held`, HELD units, the held lines) round-trips; a
    cancelled receipt's rows are deleted and a confirmed return's updated, as decided."""
    repository = PgStateRepository()
    cases = {"PLAIN": (False, False), "LOTS": (False, True), "SERIALS": (True, False)}
    day = date(2026, 11, 2)
    async with pool.acquire() as proxy, proxy.transaction():
        conn = cast(asyncpg.Connection, proxy)
        before = await repository.load(conn, list(cases))
        held = {}
        for lic, (serialized, lots) in cases.items():
            receipt = d.ReceiveStock(
                message_id=f"{lic}-hr",
                lic=lic,
                lot_id=f"PO-H-{lic}/1",
                office="AI",
                kind="purchase",
                received_on=day,
                quantity=Decimal(2),
                shipment_id=f"PO-H-{lic}",
                line_no=1,
                mfr_lots=(d.LotEntry(mfr_lot="M9", quantity=Decimal(2), expires_on=day),)
                if lots
                else (),
                serials=("H1", "H2") if serialized else (),
                hold=True,
            )
            back = d.ReturnFromCustomer(
                message_id=f"{lic}-hb",
                lic=lic,
                shipment_id=f"RET-{lic}",
                line_no=2,
                office="AI",
                received_on=day,
                quantity=Decimal(1),
                customer="C1",
                lots=(d.LotPick(mfr_lot="M1", quantity=Decimal(1)),) if lots else (),
                serials=("A1",) if serialized else (),
                hold=True,
            )
            # (without its last step, a count that reverses the usage a return needs)
            history = [*_history(lic, serialized=serialized, lots=lots)[:-1], receipt, back]
            held[lic], events = decide_all(before[lic], history)
            assert [type(e).__name__ for e in events[-2:]] == ["LineHeld", "LineHeld"], events
        await repository.save(conn, before, held)
        middle = await repository.load(conn, list(cases))
        assert middle == held
        assert all(len(state.holds) == 2 for state in middle.values())
        final = {}
        for lic in cases:
            final[lic], events = decide_all(
                middle[lic],
                [
                    d.CancelHeld(message_id=f"{lic}-c", lic=lic, command_id=f"{lic}-hr"),
                    d.ConfirmHeld(message_id=f"{lic}-k", lic=lic, command_id=f"{lic}-hb"),
                ],
            )
            assert [type(e).__name__ for e in events] == ["HeldSettled", "HeldSettled"]
        await repository.save(conn, middle, final)
        loaded = await repository.load(conn, list(cases))
        assert loaded == final
        for state in loaded.values():
            assert not state.holds and f"PO-H-{state.lic}/1" not in state.lots
            assert all(lot.held == 0 for lot in state.lots.values())
        assert [u.status for u in loaded["SERIALS"].units.values() if u.serial == "A1"] == [
            d.SerialStatus.AVAILABLE
        ]


_SUB_STATEMENT = r"(INSERT|DELETE) (?:INTO|FROM) (\w+)[^$]*\$(\d+)"


class RecordingConnection:
    """Passes statements through, counting the rows each one was given, by verb and table."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.rows: dict[str, int] = {}
        self.statements = 0

    async def execute(self, sql: str, *args: Any) -> str:
        # One statement may write several tables (a WITH of upserts and deletes): each
        # sub-statement's first array parameter holds its rows.
        for verb, table, first in re.findall(
            r"(INSERT|DELETE) (?:INTO|FROM) (\w+)[^$]*\$(\d+)", sql
        ):
            self.rows[f"{verb} {table}"] = len(args[int(first) - 1])
        self.statements += 1
        return cast(str, await self._conn.execute(sql, *args))


async def test_a_batch_on_a_long_history_writes_only_the_rows_it_changed(
    pool: asyncpg.Pool,
) -> None:
    """A serialized LIC with 300 shipped lines: allocating one more line upserts one lot, the
    line's units and the line, nothing of the history; and what is saved loads back equal."""
    lic = "LONG"
    day = date(2026, 11, 1)
    history: list[d.Command] = [
        d.UpsertItem(
            message_id="i", lic=lic, description="thing", uom="Each", serialized=True,
            track_mfr_lot=False, est_unit_cost=Decimal(1),
        ),
        d.ReceiveStock(
            message_id="r", lic=lic, lot_id="PO-1/1", office="AI", kind="purchase",
            reference="PO-1", received_on=day, quantity=Decimal(700), shipment_id="PO-1",
            line_no=1, serials=tuple(f"U{i:04d}" for i in range(700)),
        ),
    ]  # fmt: skip
    for i in range(300):
        line = {"lic": lic, "shipment_id": f"H{i}", "line_no": 1}
        history.append(
            d.AllocateLine(
                message_id=f"a{i}", office="AI", kind="sale", counterparty="C", ship_on=day,
                quantity=Decimal(2), **line,  # type: ignore[arg-type]
            )
        )  # fmt: skip
        history.append(d.ShipLine(message_id=f"s{i}", **line))  # type: ignore[arg-type]
    repository = PgStateRepository()
    async with pool.acquire() as proxy, proxy.transaction():
        conn = cast(asyncpg.Connection, proxy)
        empty = await repository.load(conn, [lic])
        long = {lic: decide_all(empty[lic], history)[0]}
        await repository.save(conn, empty, long)
        assert len(long[lic].allocations) == 300 and len(long[lic].units) == 700
        decided = decide_batch(
            long[lic],
            [
                d.AllocateLine(
                    message_id="new", lic=lic, shipment_id="NEW", line_no=1, office="AI",
                    kind="sale", counterparty="C", ship_on=day, quantity=Decimal(3),
                ),
                d.AllocateLine(  # refused (more than in stock): writes nothing
                    message_id="big", lic=lic, shipment_id="BIG", line_no=1, office="AI",
                    kind="sale", counterparty="C", ship_on=day, quantity=Decimal(1000),
                ),
            ],
        )  # fmt: skip
        assert isinstance(decided.events[1], d.CommandRejected)
        recording = RecordingConnection(conn)
        after = {lic: decided.state}
        await repository.save(
            cast(asyncpg.Connection, recording), long, after, {lic: decided.touched}
        )
        assert recording.rows == {
            "INSERT inventory_lots": 1,
            "INSERT units": 3,
            "INSERT allocations": 1,
        }
        assert recording.statements == 1, "every table's rows in one round trip"
        assert await repository.load(conn, [lic]) == after


async def test_waiting_sale_lines_load_back_equal_and_go_when_decided(
    pool: asyncpg.Pool, write_path: str
) -> None:
    """A sale line waiting for a held receipt (`domain/waiting.py`) is part of its LIC's state:
    it loads back whole (every field of its command, in its place), and once the receipt is
    confirmed and the line decided, its row is gone."""
    repository = PgStateRepository()
    lic = "WAIT"
    day = date(2026, 11, 2)
    history = _history(lic, serialized=False, lots=False)[:2]  # the item, 4 received
    held = d.ReceiveStock(
        message_id="held",
        lic=lic,
        lot_id="PO-H/1",
        office="AI",
        kind="purchase",
        received_on=day,
        quantity=Decimal(10),
        shipment_id="PO-H",
        line_no=1,
        hold=True,
    )
    sales = [
        d.AllocateLine(
            message_id=f"sale-{n}",
            lic=lic,
            shipment_id=f"SO-W{n}",
            line_no=n,
            office="AI",
            kind="sale",
            counterparty=None if n == 2 else "C1",
            ship_on=day,
            quantity=Decimal("6.5") if n == 1 else Decimal(5),
            min_shelf_life_days=3 * n,
        )
        for n in (1, 2)
    ]
    async with pool.acquire() as proxy, proxy.transaction():
        conn = cast(asyncpg.Connection, proxy)
        before = await repository.load(conn, [lic])
        after = decide_batch(before[lic], [*history, held, *sales])
        assert [type(e).__name__ for e in after.events[-2:]] == ["LineWaiting", "LineWaiting"]
        await repository.save(conn, before, {lic: after.state}, {lic: after.touched})
        middle = await repository.load(conn, [lic])
        assert middle[lic] == after.state
        assert [
            w.command for w in sorted(middle[lic].waiting.values(), key=lambda w: w.seq)
        ] == sales

        # A named-lot line never waits, but the row keeps whatever its command names.
        named = d.WaitingLine(
            command=d.AllocateLine(
                message_id="named",
                lic=lic,
                shipment_id="SO-N",
                line_no=1,
                office="AI",
                kind="sale",
                counterparty="C1",
                ship_on=day,
                quantity=Decimal(2),
                lots=(
                    d.LotPick(mfr_lot="M1", quantity=Decimal(1), lot_id="PO-1/1"),
                    d.LotPick(mfr_lot="M2", quantity=Decimal(1), expires_on=day),
                ),
                serials=("S1", "S2"),
                serial_lots=(("S1", "M1"), ("S2", "M2")),
                reference="PO-1",
            ),
            awaits=("held",),
            seq=9,
        )
        state = middle[lic]
        with_named = replace(state, waiting={**state.waiting, "named": named})
        await repository.save(conn, middle, {lic: with_named})
        assert (await repository.load(conn, [lic]))[lic].waiting["named"] == named
        await repository.save(conn, {lic: with_named}, middle)

        confirm = d.ConfirmHeld(message_id="held/confirm", lic=lic, command_id="held")
        final = decide_batch(middle[lic], [confirm])
        assert [(type(e).__name__, e.command_id) for e in final.events] == [
            ("HeldSettled", "held/confirm"),
            ("LineAllocated", "sale-1"),
            ("LineAllocated", "sale-2"),
        ]
        await repository.save(conn, middle, {lic: final.state}, {lic: final.touched})
        loaded = await repository.load(conn, [lic])
        assert loaded[lic] == final.state and not loaded[lic].waiting
        assert await conn.fetchval("SELECT count(*) FROM waiting_lines") == 0
