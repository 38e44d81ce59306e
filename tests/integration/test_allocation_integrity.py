"""Allocation's I/O edge against the real PostgreSQL: what one unit of work decides from the
state cache, how a batch naming one inventory lot for two items is written, and the constraints
that back the core's quantities up."""

from __future__ import annotations

import json
import uuid
from typing import Any, cast

import asyncpg
import pytest

from services.allocation.service import AllocationService
from shared.consumer import Inbound, UnitOfWork
from shared.outbox import Outbox
from tests.fixtures.infra import LotlineEnv
from tests.integration.test_allocation_cache import _allocate, _command
from tests.integration.test_allocation_cache import setup as setup  # the fixture


def _item(lic: str) -> Inbound[Any]:
    return _command(lic, "UpsertItem", est_unit_cost="1.00")


def _receipt(lic: str, lot_id: str, quantity: int = 2) -> Inbound[Any]:
    shipment_id, line_no = lot_id.rsplit("/", 1)
    return _command(
        lic,
        "ReceiveStock",
        shipment_id=shipment_id,
        line_no=int(line_no),
        lot_id=lot_id,
        office="AI",
        received_on="2026-11-01",
        quantity=quantity,
    )


async def _decide(
    pool: asyncpg.Pool,
    service: AllocationService,
    batch: list[Inbound[Any]],
    *,
    callbacks: bool = True,
) -> list[dict[str, Any]]:
    """One committed unit of work as the consumer runs it; `callbacks=False`: committed, but
    the after-commit callbacks never ran (the COMMIT's answer was lost with the connection, or
    releasing the connection failed: the consumer saw an error and retries)."""
    outbox = Outbox()
    async with pool.acquire() as proxy:
        conn = cast(asyncpg.Connection, proxy)
        async with conn.transaction():
            uow = UnitOfWork(conn, outbox)
            await service.decide_batch(uow, batch)
    if callbacks:
        for callback in uow.committed:
            callback()
    return [json.loads(row.payload) for row in outbox.rows]


async def test_a_commit_whose_answer_was_lost_is_never_decided_over_from_the_cache(
    setup: tuple[LotlineEnv, asyncpg.Pool],
) -> None:
    """R9: no unit is allocated twice. A batch that committed while the consumer saw an error
    (its retry then finds every message in the inbox and decides nothing) must not leave the
    cache holding the state from before it: the next batch would allocate the same stock
    again."""
    env, pool = setup
    service = AllocationService(env.settings)
    lic = f"LOST-{uuid.uuid4().hex[:6]}"
    await _decide(pool, service, [_item(lic), _receipt(lic, f"PO-{lic}/1", 5)])

    first = await _decide(pool, service, [_allocate(lic, 5)], callbacks=False)
    assert [e["type"] for e in first] == ["LineAllocated"]

    (second,) = await _decide(pool, service, [_allocate(lic, 1)])
    assert (second["type"], second.get("reason_code")) == ("CommandRejected", "INSUFFICIENT_STOCK")
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT shipment_id FROM allocations WHERE lic = $1", lic)
    assert len(rows) == 1, "one allocation of the 5 units, not two"


async def test_a_new_lot_named_for_two_items_in_one_batch_goes_to_the_first(
    setup: tuple[LotlineEnv, asyncpg.Pool],
) -> None:
    """Inventory lot ids are unique across items: two items' receipts naming one new lot id in
    the same batch are decided as if one after the other (the second refused, naming the lot
    and the item holding it), not written as two rows of one key (which failed the whole
    batch)."""
    env, pool = setup
    service = AllocationService(env.settings)
    suffix = uuid.uuid4().hex[:6]
    first, second = f"FIRST-{suffix}", f"SECOND-{suffix}"
    lot_id = f"PO-{suffix}/1"
    events = await _decide(
        pool,
        service,
        [_item(first), _item(second), _receipt(first, lot_id), _receipt(second, lot_id)],
    )
    answers = {e["lic"]: e for e in events if e["type"] != "ItemUpserted"}
    assert answers[first]["type"] == "StockReceived"
    refused = answers[second]
    assert (refused["type"], refused["reason_code"], refused["offending"]) == (
        "CommandRejected",
        "INVALID_QUANTITY",
        lot_id,
    )
    assert first in refused["reason"]
    async with pool.acquire() as conn:
        owners = await conn.fetch("SELECT lic FROM inventory_lots WHERE lot_id = $1", lot_id)
    assert [r["lic"] for r in owners] == [first]


async def test_a_lot_held_by_an_item_is_refused_to_another_whichever_comes_first_in_the_batch(
    setup: tuple[LotlineEnv, asyncpg.Pool],
) -> None:
    """The owner's own receipt naming its lot again in the same batch must not hide the lot
    from the other item's check (one lot id, two LICs naming it)."""
    env, pool = setup
    service = AllocationService(env.settings)
    suffix = uuid.uuid4().hex[:6]
    owner, other = f"OWNER-{suffix}", f"OTHER-{suffix}"
    lot_id = f"PO-{suffix}/1"
    await _decide(pool, service, [_item(owner), _item(other), _receipt(owner, lot_id)])

    events = await _decide(pool, service, [_receipt(other, lot_id), _receipt(owner, lot_id)])
    (refused,) = [e for e in events if e["lic"] == other]
    assert (refused["type"], refused["offending"]) == ("CommandRejected", lot_id)
    assert owner in refused["reason"]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT lic FROM inventory_lots WHERE lot_id = $1", lot_id) == (
            owner
        )


@pytest.mark.parametrize(
    ("table", "column"),
    [("inventory_lots", "used"), ("mfr_lots", "used"), ("unallocated", "quantity")],
)
async def test_no_quantity_of_the_state_can_be_written_negative(
    setup: tuple[LotlineEnv, asyncpg.Pool], table: str, column: str
) -> None:
    """DESIGN §6: non-negative quantities are a constraint, the backstop under the core's own
    checks (`draft._check`, `Draft.set_unallocated`) that even a zombie cannot get past."""
    env, pool = setup
    service = AllocationService(env.settings)
    lic = f"NEG-{uuid.uuid4().hex[:6]}"
    await _decide(
        pool,
        service,
        [
            _command(lic, "UpsertItem", track_mfr_lot=True, perishable=False),
            _command(
                lic,
                "ReceiveStock",
                shipment_id=f"PO-{lic}",
                line_no=1,
                lot_id=f"PO-{lic}/1",
                office="AI",
                received_on="2026-11-01",
                quantity=2,
                lots=[{"mfr_lot": "M1", "quantity": 2}],
            ),
        ],
    )
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO unallocated (lic, office, quantity, value) VALUES ($1, 'AI', 1, 1)", lic
        )
        assert await conn.fetchval(f"SELECT count(*) FROM {table} WHERE lic = $1", lic) == 1
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(f"UPDATE {table} SET {column} = -1 WHERE lic = $1", lic)
