"""Sales whose scans name an item shipping does not know yet, through the real broker and
PostgreSQL (R5: a scan is checked against its item's GTIN and flags).

Upstream publishes a sale scanned at the dock right after a bulk item import: the item reaches
shipping's read model hops later (allocation intake, allocation, `inventory.events`). Shipping
holds such a request, publishing nothing, until the item arrives (then reads its scans against
it) or `LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS` pass (then refuses the line `UNKNOWN_ITEM`). The
services run in process, as `lotline up` runs them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from services.allocation.app import create_runtime as allocation
from services.receiving.app import create_runtime as receiving
from services.shipping.app import create_runtime as shipping
from shared.config import Settings
from shared.service import ServiceRuntime
from tests.fixtures.infra import LotlineEnv, kafka_publish
from tests.integration.test_receiving_unknown_items import status_of

FAST_JOIN = {"KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500"}
GTIN = "09506000134352"
OTHER = "04012345000009"  # a valid GTIN of another product


@asynccontextmanager
async def started(
    create: Callable[[Settings], ServiceRuntime], env: LotlineEnv
) -> AsyncIterator[ServiceRuntime]:
    runtime = create(env.settings)
    try:
        await runtime.start()
        yield runtime
    finally:
        await runtime.stop()


def message(message_type: str, **fields: Any) -> bytes:
    body = {"type": message_type, "message_id": uuid.uuid4().hex, **fields}
    return json.dumps(body).encode()


def sale(doc: str, lic: str, *scans: str) -> bytes:
    line = {"line_no": 1, "lic": lic, "quantity": len(scans), "scans": list(scans)}
    return message(
        "ShipmentRequested",
        shipment_id=doc,
        office="AI",
        kind="sale",
        customer="Montboro",
        ship_on="2026-11-22",
        lines=[line],
    )


async def saved(env: LotlineEnv, doc: str) -> None:
    """Wait until shipping has read `doc` (it keeps a row for it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    conn = await asyncpg.connect(env.dsn)
    try:
        while True:
            try:
                found = await conn.fetchval(
                    "SELECT count(*) FROM shipping.shipments WHERE shipment_id = $1", doc
                )
            except asyncpg.UndefinedTableError:
                found = 0
            if found:
                return
            assert loop.time() < deadline, f"shipping never read {doc}"
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def test_scans_read_before_their_item_are_checked_against_it_once_it_arrives(
    lotline_env: Any,
) -> None:
    """Sales of items nobody knows yet: one scanning another product's barcode, one the
    item's own, one scanning lots of an item that has none. They wait; shipping is then down
    while the items are created and received (what waits is in PostgreSQL, as after a crash),
    and reads the items when it comes back: the wrong barcode is refused INVALID_BARCODE, the
    right one allocated the unit it names, and the plain item's scanned lot dropped."""
    env: LotlineEnv = lotline_env(**FAST_JOIN, LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS="120")
    topics, run = env.settings.topics, uuid.uuid4().hex[:6]
    cam, plain = f"CAM-{run}", f"PLAIN-{run}"
    wrong, right, lots = f"S-WRONG-{run}", f"S-RIGHT-{run}", f"S-LOTS-{run}"
    async with started(allocation, env), started(receiving, env):
        async with started(shipping, env):
            sales = (
                (wrong, sale(wrong, cam, f"(01){OTHER}(21)X1")),
                (right, sale(right, cam, f"(01){GTIN}(21)X2")),
                (lots, sale(lots, plain, f"(01){OTHER}(10)L1")),
            )
            for doc, body in sales:
                await kafka_publish(env.bootstrap, topics.shipments, doc, body)
            for doc, _ in sales:
                await saved(env, doc)

        for lic, item in (
            (cam, message("UpsertItem", lic=cam, serialized=True, gtin=GTIN, est_unit_cost="300")),
            (plain, message("UpsertItem", lic=plain, gtin=OTHER, est_unit_cost="3")),
        ):
            await kafka_publish(env.bootstrap, topics.items, lic, item)
        po = f"PO-{run}"
        receipt = message(
            "ShipmentReceived",
            shipment_id=po,
            office="AI",
            source="purchase",
            received_on="2026-11-20",
            lines=[
                {"line_no": 1, "lic": cam, "quantity": 1, "serials": ["X2"]},
                {"line_no": 2, "lic": plain, "quantity": 1},
            ],
        )
        await kafka_publish(env.bootstrap, topics.receipts, po, receipt)
        assert (await status_of(env, po))["type"] == "ReceiptPosted"

        async with started(shipping, env):
            refused = await status_of(env, wrong)
            assert refused["type"] == "ShipmentAllocationFailed", refused
            (problem,) = refused["problems"]
            assert problem["reason_code"] == "INVALID_BARCODE", problem
            assert problem["offending"] == f"(01){OTHER}(21)X1"

            allocated = await status_of(env, right)
            assert allocated["type"] == "ShipmentAllocated", allocated
            (line,) = allocated["lines"]
            assert [m["serial"] for m in line["movements"]] == ["X2"]

            allocated = await status_of(env, lots)
            assert allocated["type"] == "ShipmentAllocated", allocated
            (line,) = allocated["lines"]
            assert [(m["lot_id"], m["mfr_lot"]) for m in line["movements"]] == [(f"{po}/2", None)]


async def test_scans_of_an_item_that_never_comes_are_refused_unknown_item(
    lotline_env: Any,
) -> None:
    env: LotlineEnv = lotline_env(**FAST_JOIN, LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS="1")
    topics, run = env.settings.topics, uuid.uuid4().hex[:6]
    lic, doc = f"NEVER-{run}", f"S-NEVER-{run}"
    async with started(allocation, env), started(shipping, env):
        await kafka_publish(env.bootstrap, topics.shipments, doc, sale(doc, lic, GTIN))
        refused = await status_of(env, doc)
        assert refused["type"] == "ShipmentAllocationFailed", refused
        (problem,) = refused["problems"]
        assert (problem["reason_code"], problem["lic"], problem["offending"]) == (
            "UNKNOWN_ITEM",
            lic,
            lic,
        )
        assert problem["reason"] == f"item {lic} is not known"


async def test_an_item_stored_while_its_sale_was_being_held_still_releases_the_sale(
    lotline_env: Any,
) -> None:
    """The item's arrival and the sale's hold in two transactions that do not see each other
    (the arrival looked for waiting sales before the hold committed): the periodic job finds
    the sale's items all known and decides it then, not when its wait is over. Played by
    storing the item in shipping's read model directly, as such an arrival leaves it."""
    env: LotlineEnv = lotline_env(**FAST_JOIN, LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS="600")
    topics, run = env.settings.topics, uuid.uuid4().hex[:6]
    lic, doc = f"CAM-{run}", f"S-RACE-{run}"
    async with started(allocation, env), started(shipping, env):
        body = sale(doc, lic, f"(01){OTHER}(21)X1")
        await kafka_publish(env.bootstrap, topics.shipments, doc, body)
        await saved(env, doc)
        conn = await asyncpg.connect(env.dsn)
        try:
            await conn.execute(
                "INSERT INTO shipping.items (lic, track_mfr_lot, serialized, perishable, gtin)"
                " VALUES ($1, false, true, false, $2)",
                lic,
                GTIN,
            )
        finally:
            await conn.close()
        refused = await status_of(env, doc)
        assert refused["type"] == "ShipmentAllocationFailed", refused
        (problem,) = refused["problems"]
        assert (problem["reason_code"], problem["offending"]) == (
            "INVALID_BARCODE",
            f"(01){OTHER}(21)X1",
        )
