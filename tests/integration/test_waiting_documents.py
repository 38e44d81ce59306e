"""A document whose command is never answered (say it was dead-lettered) would wait silently;
receiving and shipping publish the age of their oldest waiting document as a gauge instead,
`lotline_oldest_waiting_document_seconds`, for operators to alert on; allocation publishes the
age of its oldest held receipt line."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from services.allocation.app import MIGRATIONS as ALLOCATION_MIGRATIONS
from services.allocation.app import create_runtime as allocation
from services.receiving.app import MIGRATIONS as RECEIVING_MIGRATIONS
from services.receiving.app import create_runtime as receiving
from services.shipping.app import MIGRATIONS as SHIPPING_MIGRATIONS
from services.shipping.app import create_runtime as shipping
from shared import db
from tests.fixtures.infra import LotlineEnv


async def test_receiving_reports_its_oldest_receipt_waiting_for_answers(lotline_env: Any) -> None:
    env: LotlineEnv = lotline_env(topics=False)
    runtime = receiving(env.settings)
    await db.migrate(env.dsn, "receiving", db.migration_files(RECEIVING_MIGRATIONS))
    runtime.pool = await db.create_pool(env.dsn, "receiving", size=1)
    try:
        assert await runtime.measure_waiting() == 0
        await runtime.pool.execute(
            "INSERT INTO receipts (message_id, shipment_id, office, source, received_on, status,"
            " created_at) VALUES ('m1', 'PO-1', 'AI', 'purchase', '2026-11-01', 'posting',"
            " now() - interval '10 minutes')"
        )
        await runtime.pool.execute(
            "INSERT INTO receipt_lines (message_id, line_no, lic, quantity, command_id, status)"
            " VALUES ('m1', 1, 'L1', 1, 'c1', 'pending')"
        )
        waited = await runtime.measure_waiting()
        assert 600 <= waited < 700
        gauge = REGISTRY.get_sample_value(
            "lotline_oldest_waiting_document_seconds", {"service": "receiving"}
        )
        assert gauge == waited

        await runtime.pool.execute("UPDATE receipt_lines SET status = 'posted'")
        assert await runtime.measure_waiting() == 0
    finally:
        await runtime.pool.close()


async def test_shipping_reports_its_oldest_shipment_waiting_for_answers(lotline_env: Any) -> None:
    env: LotlineEnv = lotline_env(topics=False)
    runtime = shipping(env.settings)
    await db.migrate(env.dsn, "shipping", db.migration_files(SHIPPING_MIGRATIONS))
    runtime.pool = await db.create_pool(env.dsn, "shipping", size=1)
    try:
        await runtime.pool.execute(
            "INSERT INTO shipments (shipment_id, office, kind, ship_on, phase, updated_at)"
            " VALUES ('S1', 'AI', 'sale', '2026-11-01', 'allocating',"
            " now() - interval '2 minutes')"
        )
        assert await runtime.measure_waiting() == 0  # nothing pending: nothing waits
        await runtime.pool.execute(
            "INSERT INTO pending_commands (command_id, shipment_id, action, line_no, lic)"
            " VALUES ('c1', 'S1', 'allocate', 1, 'L1')"
        )
        assert 120 <= await runtime.measure_waiting() < 200
    finally:
        await runtime.pool.close()


async def test_shipping_counts_a_document_waiting_for_an_item_from_when_it_began(
    lotline_env: Any,
) -> None:
    """A document joining the queue behind one waiting for an item touches the shipment's row;
    the age still runs from when the first began waiting (its deadline less the wait)."""
    env: LotlineEnv = lotline_env(topics=False)
    runtime = shipping(env.settings)
    assert env.settings.unknown_item_wait_seconds == 30
    await db.migrate(env.dsn, "shipping", db.migration_files(SHIPPING_MIGRATIONS))
    runtime.pool = await db.create_pool(env.dsn, "shipping", size=1)
    try:
        await runtime.pool.execute(
            "INSERT INTO shipments (shipment_id, office, kind, ship_on, phase, updated_at,"
            " awaited, awaited_until) VALUES ('S1', 'AI', 'sale', '2026-11-01', 'allocating',"
            " now(), '{L9}', now() - interval '60 seconds')"
        )
        assert 90 <= await runtime.measure_waiting() < 150
    finally:
        await runtime.pool.close()


async def test_allocation_reports_its_oldest_held_receipt_line(lotline_env: Any) -> None:
    """A held line's stock is unusable until receiving confirms or cancels it: one held for
    minutes is a document stuck half-decided."""
    env: LotlineEnv = lotline_env(topics=False)
    runtime = allocation(env.settings)
    await db.migrate(env.dsn, "allocation", db.migration_files(ALLOCATION_MIGRATIONS))
    runtime.pool = await db.create_pool(env.dsn, "allocation", size=1)
    try:
        assert await runtime.measure_waiting() == 0
        await runtime.pool.execute(
            "INSERT INTO held_lines (lic, command_id, kind, shipment_id, line_no, picks, returned,"
            " held_at) VALUES ('L1', 'c1', 'receipt', 'PO-1', 1, '[]', '[]',"
            " now() - interval '3 minutes')"
        )
        assert 180 <= await runtime.measure_waiting() < 260
        gauge = REGISTRY.get_sample_value(
            "lotline_oldest_waiting_document_seconds", {"service": "allocation"}
        )
        assert gauge is not None and gauge >= 180
        await runtime.pool.execute("DELETE FROM held_lines")
        assert await runtime.measure_waiting() == 0
    finally:
        await runtime.pool.close()
