"""R9, a sale's minimum remaining shelf life, through the real services against a real
PostgreSQL (the in-process bus of tests/flows: receiving, shipping and allocation deciding).

The requirement goes from `ShipmentRequested` into the shipment line stored by shipping
(migration 012), onto every `AllocateLine` of the line (a picks update's too), and allocation
passes over lots with less shelf life left."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from tests.fixtures.infra import LotlineEnv
from tests.flows.test_receiving_flows import open_bus, stocked
from tests.flows.test_shipping_flows import Desk, lots


@pytest.fixture
async def desk(lotline_env: Callable[..., LotlineEnv]) -> AsyncIterator[Desk]:
    async with open_bus(lotline_env) as bus:
        await stocked(bus)
        yield Desk(bus)


async def test_sale_with_shelf_life_required_takes_only_lots_that_last_and_keeps_it(
    desk: Desk,
) -> None:
    # The ship date is 2026-11-02: SOON has 10 days left, LATE 60.
    await desk.bus.receive(
        "PO-1",
        {
            "lic": "MILK",
            "quantity": 10,
            "lots": [
                {"mfr_lot": "SOON", "expires_on": "2026-11-12", "quantity": 4},
                {"mfr_lot": "LATE", "expires_on": "2027-01-01", "quantity": 6},
            ],
        },
    )
    await desk.request("S-1", {"lic": "MILK", "quantity": 5}, min_shelf_life_days=30)
    allocated = desk.last("S-1")
    assert allocated["type"] == "ShipmentAllocated"
    assert lots(allocated["lines"][0]) == [("LATE", "5")]
    (row,) = await desk.bus.fetch(
        "shipping", "SELECT min_shelf_life_days FROM shipment_lines WHERE shipment_id = 'S-1'"
    )
    assert row["min_shelf_life_days"] == 30

    # A picks update naming the short-dated lot carries the line's requirement: refused, and
    # the allocation the line holds stands.
    await desk.picks("S-1", 1, lots=[{"mfr_lot": "SOON", "quantity": 4}])
    command = desk.bus.commands("S-1")[-1]
    assert (command["type"], command["min_shelf_life_days"]) == ("AllocateLine", 30)
    failed = desk.last("S-1")
    assert failed["type"] == "ShipmentAllocationFailed"
    (problem,) = failed["problems"]
    assert problem["reason_code"] == "LOT_EXPIRED"
    assert problem["reason"] == (
        "manufacturer lot SOON of MILK expires on 2026-11-12, 10 days after the ship date "
        "2026-11-02, but the line requires at least 30 days of shelf life left"
    )
    assert lots(failed["allocated_lines"][0]) == [("LATE", "5")]

    # Sent again without the requirement: the line is released and allocated again, FEFO.
    await desk.request("S-1", {"lic": "MILK", "quantity": 5})
    assert [c["type"] for c in desk.bus.commands("S-1")[-2:]] == ["ReleaseLine", "AllocateLine"]
    allocated = desk.last("S-1")
    assert allocated["type"] == "ShipmentAllocated"
    assert lots(allocated["lines"][0]) == [("SOON", "4"), ("LATE", "1")]


async def test_shortfall_of_stock_with_the_shelf_life_required_says_what_there_is(
    desk: Desk,
) -> None:
    await desk.bus.receive(
        "PO-2",
        {
            "lic": "MILK",
            "quantity": 10,
            "lots": [
                {"mfr_lot": "SOON", "expires_on": "2026-11-12", "quantity": 4},
                {"mfr_lot": "LATE", "expires_on": "2027-01-01", "quantity": 6},
            ],
        },
    )
    await desk.request(
        "S-2", {"lic": "MILK", "quantity": 8, "min_shelf_life_days": 30}, min_shelf_life_days=5
    )
    failed = desk.last("S-2")
    assert failed["type"] == "ShipmentAllocationFailed"
    (problem,) = failed["problems"]
    assert (problem["reason_code"], problem["offending"]) == ("INSUFFICIENT_STOCK", "8 > 6")
    assert problem["reason"] == (
        "item MILK at office AI: requested 8, available 6 with at least 30 days of shelf life "
        "left, and 4 more with less"
    )
