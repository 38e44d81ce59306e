"""SO-1011 as the shipping clerk had it, through real PostgreSQL and the real allocation
service: line 1's manufacturer lot went into quarantine after it was allocated, so allocation
refuses its ShipLine while line 2 ships. The refusal says line 2 shipped and lists both lines;
then either a cancel releases line 1 and closes the shipment, or line 1, picked again from
stock not held, ships with a new ship request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from shared.contracts.commands import QuarantineStock
from tests.fixtures.infra import LotlineEnv
from tests.flows.test_receiving_flows import DAY, open_bus, stocked
from tests.flows.test_shipping_flows import Desk, allocated_qty, lots

SID = "SO-1011"


@pytest.fixture
async def desk(lotline_env: Callable[..., LotlineEnv]) -> AsyncIterator[Desk]:
    async with open_bus(lotline_env) as bus:
        await stocked(bus)
        yield Desk(bus)


async def _partly_shipped(desk: Desk) -> dict[str, object]:
    """Both lines allocated, FL2612B quarantined, the ship request answered: its answer."""
    await desk.bus.receive(
        "PO-1011",
        {
            "lic": "MILK",
            "quantity": 10,
            "lots": [
                {"mfr_lot": "FL2612B", "expires_on": "2027-06-30", "quantity": 5},
                {"mfr_lot": "FL2612C", "expires_on": "2027-07-31", "quantity": 5},
            ],
        },
        {"lic": "PLAIN", "quantity": 5},
    )
    await desk.request(
        SID,
        {"lic": "MILK", "quantity": 5, "lots": [{"mfr_lot": "FL2612B", "quantity": 5}]},
        {"lic": "PLAIN", "quantity": 5},
    )
    assert desk.last(SID)["type"] == "ShipmentAllocated"
    hold = QuarantineStock(
        message_id="q-FL2612B",
        lic="MILK",
        quarantine_id="Q-FL2612B",
        mfr_lot="FL2612B",
        quarantined=True,
        reason="recall",
        quarantined_on=DAY,
    )
    await desk.bus.publish(desk.bus.topics.commands, hold, key="MILK")
    await desk.ship(SID)
    return desk.last(SID)


async def test_the_refusal_says_line_2_shipped_and_lists_both_lines(desk: Desk) -> None:
    refused = await _partly_shipped(desk)
    assert refused["type"] == "ShipmentShipRefused"
    assert str(refused["reason"]).startswith(
        f"shipment {SID}: line 2 shipped; 1 line was not shipped: shipment {SID} line 1 holds"
        " manufacturer lot FL2612B"
    )
    listed = refused["lines"]
    assert isinstance(listed, list)
    assert [(x["line_no"], x["lic"], x["shipped"]) for x in listed] == [
        (1, "MILK", False),
        (2, "PLAIN", True),
    ]
    assert lots(listed[0]) == [("FL2612B", "5")]
    assert await allocated_qty(desk.bus, SID) == {"MILK": "5"}


async def test_a_cancel_releases_line_1_and_closes_the_shipment(desk: Desk) -> None:
    await _partly_shipped(desk)
    await desk.cancel(SID)
    cancelled = desk.last(SID)
    assert (cancelled["type"], cancelled["refused"]) == ("ShipmentCancelled", None)
    assert [x["line_no"] for x in cancelled["released_lines"]] == [1]
    assert await allocated_qty(desk.bus, SID) == {}
    assert await desk.phase(SID) == "cancelled"
    await desk.ship(SID)
    after = desk.last(SID)
    assert (after["type"], after["reason"]) == (
        "ShipmentShipRefused",
        f"shipment {SID} is cancelled",
    )
    await desk.request(SID, {"lic": "PLAIN", "quantity": 5})
    again = desk.last(SID)
    assert (again["type"], again["problems"][0]["reason"]) == (
        "ShipmentAllocationFailed",
        f"shipment {SID} is cancelled: it cannot be requested again",
    )
    ships = [c for c in desk.bus.commands(SID) if c["type"] == "ShipLine"]
    assert [c["line_no"] for c in ships] == [1, 2]  # nothing shipped after the cancel


async def test_line_1_picked_again_ships_with_a_new_ship_request(desk: Desk) -> None:
    await _partly_shipped(desk)
    await desk.picks(SID, 1, lots=[{"mfr_lot": "FL2612C", "quantity": 5}])
    assert desk.last(SID)["type"] == "ShipmentAllocated"
    await desk.ship(SID)
    shipped = desk.last(SID)
    assert shipped["type"] == "ShipmentShipped"
    assert [(x["line_no"], x["shipped"]) for x in shipped["lines"]] == [(1, True), (2, True)]
    assert lots(shipped["lines"][0]) == [("FL2612C", "5")]
    ships = [c["line_no"] for c in desk.bus.commands(SID) if c["type"] == "ShipLine"]
    assert ships == [1, 2, 1]
    assert await desk.phase(SID) == "shipped"
