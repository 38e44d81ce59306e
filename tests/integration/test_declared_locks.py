"""Shipping and the ledger read two topics in one transaction, and each topic's handler locks
what it touches: shipping the shipments (rows), the ledger the LICs (advisory locks). Taken
topic by topic, two processes whose batches name the same two in opposite orders would each
hold one and wait for the other's (PostgreSQL ends one after a second: a deadlock). So each
route declares what its handler locks (`Route.locks`) and the service's `lock` takes both
topics' at once, before either handler runs (the consumer's side is tested in
test_consumer.py). Here: what the routes declare, taken by the service's `lock`, is exactly
what the handlers then wait for."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from services.ledger import repository as ledger_repository
from services.ledger.app import create_runtime as ledger
from services.shipping.app import MIGRATIONS, SCHEMA
from services.shipping.app import create_runtime as shipping
from services.shipping.repository import PgShippingRepository
from shared import db
from shared.contracts import events as e
from shared.contracts import upstream as u
from shared.service import ServiceRuntime
from tests.fixtures.infra import LotlineEnv

NOW = datetime(2026, 11, 1, tzinfo=UTC)


@asynccontextmanager
async def two_connections(dsn: str, schema: str) -> AsyncIterator[tuple[Any, Any]]:
    first = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    second = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def declared(runtime: ServiceRuntime, conn: Any, batches: dict[str, list[Any]]) -> list[str]:
    """What the runtime's routes declare for these messages, by topic."""
    names: list[str] = []
    for route in runtime.routes:
        if route.topic in batches:
            assert route.locks is not None, f"{route.topic} declares no locks"
            names += await route.locks(conn, batches[route.topic])
    return names


async def waits(conn: Any, take: Callable[[Any], Any]) -> None:
    """`take` (on `conn`, in a transaction of its own) waits for a lock held elsewhere."""
    async with conn.transaction():
        await conn.execute("SET LOCAL lock_timeout = '200ms'")
        with pytest.raises(asyncpg.exceptions.LockNotAvailableError):
            await take(conn)


async def test_shipping_takes_a_batchs_documents_and_answers_shipments_at_once(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """A batch with a picks update for S1 and an answer to S2's command: declared and taken
    together, both shipments are locked, as `load` (documents) and `load_awaiting` (answers)
    lock them."""
    env = lotline_env(topics=False)
    await db.migrate(env.dsn, SCHEMA, db.migration_files(MIGRATIONS))
    runtime = shipping(env.settings)
    topics = env.settings.topics
    picks = u.ShipmentPicksUpdated.model_validate(
        {"message_id": "p", "shipment_id": "S1", "line_no": 1, "occurred_at": NOW}
    )
    answer = e.LineReleased.model_validate(
        {
            "message_id": "a",
            "command_id": "cmd-S2",
            "lic": "L",
            "shipment_id": "S2",
            "line_no": 1,
            "office": "AI",
        }
    )
    item = e.ItemUpserted.model_validate(
        {
            "message_id": "i",
            "command_id": "c",
            "lic": "L",
            "track_mfr_lot": False,
            "serialized": False,
            "perishable": False,
            "est_unit_cost": "1",
        }
    )
    repository = PgShippingRepository()
    async with two_connections(env.dsn, SCHEMA) as (first, second):
        for sid in ("S1", "S2"):
            await first.execute(
                "INSERT INTO shipments (shipment_id, office, kind, ship_on, phase)"
                " VALUES ($1, 'AI', 'sale', $2, 'allocating')",
                sid,
                date(2026, 11, 2),
            )
            await first.execute(
                "INSERT INTO pending_commands (command_id, shipment_id, action, line_no, lic)"
                " VALUES ($1, $2, 'allocate', 1, 'L')",
                f"cmd-{sid}",
                sid,
            )
        async with first.transaction():
            names = await declared(
                runtime, first, {topics.shipments: [picks], topics.events: [answer, item]}
            )
            assert sorted(names) == ["S1", "S2"]
            await runtime.lock(first, names)
            await waits(second, lambda c: repository.load(c, ["S1"]))
            await waits(second, lambda c: repository.load_awaiting(c, ["cmd-S2"]))


async def test_the_ledger_takes_a_batchs_events_and_costs_lics_at_once(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """A batch with an event of LIC A and a cost update of LIC B: declared and taken together,
    both LICs are locked, as `record_events` and `record_costs` lock them; a refusal, which
    records nothing, declares nothing."""
    env = lotline_env(topics=False)
    runtime = ledger(env.settings)
    topics = env.settings.topics
    moved = e.LineReleased.model_validate(
        {
            "message_id": "a",
            "command_id": "c1",
            "lic": "A",
            "shipment_id": "S",
            "line_no": 1,
            "office": "AI",
        }
    )
    refused = e.CommandRejected.model_validate(
        {
            "message_id": "r",
            "command_id": "c2",
            "lic": "REFUSED",
            "command_type": "AllocateLine",
            "reason_code": "INSUFFICIENT_STOCK",
            "reason": "none left",
        }
    )
    cost = u.PurchaseOrderUpdated.model_validate(
        {
            "message_id": "po",
            "po": "PO-1",
            "lic": "B",
            "ordered_quantity": 1,
            "purchased_quantity": 1,
            "act_unit_cost": Decimal("1"),
            "closed": False,
            "occurred_at": NOW,
        }
    )
    async with two_connections(env.dsn, "public") as (first, second), first.transaction():
        names = await declared(
            runtime, first, {topics.events: [moved, refused], topics.costs: [cost]}
        )
        assert sorted(names) == ["A", "B"]
        await runtime.lock(first, names)
        for lic in ("A", "B"):
            await waits(second, lambda c, lic=lic: ledger_repository.lock_lics(c, [lic]))
