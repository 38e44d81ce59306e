"""The ledger shows each item's Next Serial (R6) as allocation's events leave it: set by an
`ItemUpserted`, moved on by a receipt that took serials from it, on `GET /items/{lic}` and
`GET /items`. The ledger's handlers on a real PostgreSQL, read back through its API."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from services.allocation import translate as allocation_wire
from services.allocation.domain import model as allocation
from services.allocation.domain.decide import decide_all
from shared.contracts import events as e
from tests.integration.test_ledger import CAM, Wire, api, get, mv, pool, record

__all__ = ["api", "pool"]
D = Decimal
ON = date(2024, 3, 1)


def _generated(w: Wire, lot_id: str, serials: list[str], next_serial: str) -> e.StockReceived:
    """A receipt without serials: allocation took `serials` from the Next Serial, which now
    stands at `next_serial`."""
    moves = [mv(lot_id, 1, "300.00", serial=s) for s in serials]
    received = w.received(CAM, lot_id, len(serials), "300.00", moves, po="PO-7", on=ON)
    return received.model_copy(update={"generated_serials": serials, "next_serial": next_serial})


def _typed(w: Wire, lot_id: str, serials: list[str]) -> e.StockReceived:
    """A receipt of serials typed in, as published before events carried the Next Serial."""
    moves = [mv(lot_id, 1, "300.00", serial=s) for s in serials]
    return w.received(CAM, lot_id, len(serials), "300.00", moves, po="PO-7", on=ON)


async def _next_serial(api: httpx.AsyncClient, lic: str = CAM) -> Any:
    return (await get(api, f"/items/{lic}"))["next_serial"]


async def test_a_receipt_that_generated_serials_moves_the_next_serial_on(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R6: a receipt that takes 2 serials from Next Serial 00007 leaves it at 00009, and the
    ledger shows that, whether the item was upserted in an earlier batch or the same one; a
    receipt whose event carries no Next Serial leaves it as it is."""
    w = Wire()
    await record(pool, w.item(CAM, serialized=True, next_serial="00007"))
    assert await _next_serial(api) == "00007"

    await record(pool, _generated(w, "L-1", ["00007", "00008"], "00009"))
    assert await _next_serial(api) == "00009"

    # Two receipts in one batch: the later one's.
    await record(
        pool,
        _generated(w, "L-2", ["00009"], "00010"),
        _generated(w, "L-3", ["00010", "00011"], "00012"),
    )
    assert await _next_serial(api) == "00012"

    await record(pool, _typed(w, "L-4", ["X-1"]))
    assert await _next_serial(api) == "00012"

    # Upserted and received in one batch: the receipt, which came after.
    await record(
        pool,
        w.item("CAM-2", serialized=True, next_serial="A100"),
        _generated(w, "L-5", ["A100"], "A101").model_copy(update={"lic": "CAM-2"}),
    )
    assert await _next_serial(api, "CAM-2") == "A101"


async def test_an_item_upsert_sets_and_clears_the_next_serial_as_allocation_keeps_it(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """An `ItemUpserted` says the item's Next Serial after the upsert: the ledger takes it,
    a new one, or none (null). Allocation's own events: an `UpsertItem` that leaves the Next
    Serial out keeps the one a receipt moved on, and so does the ledger."""
    w = Wire()
    await record(pool, w.item(CAM, serialized=True))
    assert await _next_serial(api) is None
    await record(pool, w.item(CAM, serialized=True, next_serial="SN-0100"))
    assert await _next_serial(api) == "SN-0100"
    await record(pool, w.item(CAM, serialized=True, next_serial="SN-0200"))
    assert await _next_serial(api) == "SN-0200"
    await record(pool, w.item(CAM, serialized=True, next_serial=None))
    assert await _next_serial(api) is None

    lic = "CAM-3"
    commands = [
        allocation.UpsertItem(message_id="u-1", lic=lic, serialized=True, next_serial="00041"),
        allocation.ReceiveStock(
            message_id="r-1",
            lic=lic,
            lot_id="L-30",
            office="AI",
            kind="purchase",
            received_on=ON,
            quantity=D(3),
            shipment_id="IN-30",
            line_no=1,
            generate_serials=True,
        ),
        allocation.UpsertItem(message_id="u-2", lic=lic, description="camera, rev. B"),
    ]
    _, decided = decide_all(allocation.LicState.empty(lic), commands)
    by_id = {c.message_id: c for c in commands}
    published = [
        allocation_wire.to_wire(event, f"{event.command_id}#0", by_id[event.command_id])
        for event in decided
    ]
    assert [type(event).__name__ for event in published] == [
        "ItemUpserted",
        "StockReceived",
        "ItemUpserted",
    ]
    await record(pool, published[:2])
    assert await _next_serial(api, lic) == "00044"
    await record(pool, published[2])
    item = await get(api, f"/items/{lic}")
    assert (item["description"], item["next_serial"]) == ("camera, rev. B", "00044")


async def test_the_item_list_shows_each_items_next_serial(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """`GET /items` shows every item's `next_serial` as `GET /items/{lic}` does (null for an
    item without one), moved on by receipts."""
    w = Wire()
    await record(
        pool,
        w.item(CAM, serialized=True, next_serial="00007"),
        w.item("BOLT"),
        w.item("SCOPE", serialized=True, next_serial="S-9"),
    )
    await record(pool, _generated(w, "L-1", ["00007", "00008"], "00009"))

    listed = {i["lic"]: i["next_serial"] for i in await get(api, "/items")}

    assert listed == {CAM: "00009", "BOLT": None, "SCOPE": "S-9"}
    for lic, next_serial in listed.items():
        assert await _next_serial(api, lic) == next_serial
