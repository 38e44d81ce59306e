"""The allocation repository stores exactly the state the domain decided: what is saved loads
back equal, row for row, across every table (items, lots, manufacturer lots, units,
allocations, customer shipments, unallocated stock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any, cast

import asyncpg
import pytest

from services.allocation.app import MIGRATIONS, SCHEMA
from services.allocation.domain import model as d
from services.allocation.domain.decide import decide_all
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


async def test_saved_state_loads_back_equal_in_every_table(pool: asyncpg.Pool) -> None:
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
