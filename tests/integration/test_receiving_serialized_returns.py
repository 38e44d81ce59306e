"""Customer returns of an item both serialized and tracked by lot, allocation deciding (R13):
receiving and allocation against a real PostgreSQL through the in-process `Bus` of the flow
tests. The serials say which units come back; each goes back into the lot it was shipped from,
whether or not the return names the lots."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from tests.fixtures.infra import LotlineEnv
from tests.flows.test_receiving_flows import GTIN, Bus, open_bus, stocked
from tests.flows.test_shipping_flows import Desk


@pytest.fixture
async def desk(lotline_env: Callable[..., LotlineEnv]) -> AsyncIterator[Desk]:
    """V1 (lot A) and V2 (lot B) of VAX received, then shipped to Montboro."""
    async with open_bus(lotline_env) as bus:
        await stocked(bus)
        desk = Desk(bus)
        lots = [
            {"mfr_lot": "A", "expires_on": "2027-12-31", "quantity": 1},
            {"mfr_lot": "B", "expires_on": "2027-12-31", "quantity": 1},
        ]
        await bus.receive("PO-1", {"lic": "VAX", "quantity": 2, "lots": lots, "serials": "V1,V2"})
        await desk.request("S-1", {"lic": "VAX", "quantity": 2, "serials": "V1,V2"})
        await desk.ship("S-1")
        assert desk.last("S-1")["type"] == "ShipmentShipped"
        yield desk


async def units(bus: Bus) -> list[tuple[str, str, str]]:
    rows = await bus.fetch("allocation", "SELECT serial, mfr_lot, status FROM units ORDER BY 1")
    return [(r["serial"], r["mfr_lot"], r["status"]) for r in rows]


async def test_a_return_naming_only_serials_puts_each_unit_back_into_its_lot(desk: Desk) -> None:
    bus = desk.bus
    await bus.receive(
        "RMA-1",
        {"lic": "VAX", "quantity": 2, "serials": "V2, V1"},
        source="customer_return",
        customer="Montboro",
    )

    (status,) = bus.statuses("RMA-1")
    assert status["type"] == "ReceiptPosted", status
    moves = status["lines"][0]["movements"]
    assert sorted((m["serial"], m["mfr_lot"]) for m in moves) == [("V1", "A"), ("V2", "B")]
    assert await units(bus) == [("V1", "A", "available"), ("V2", "B", "available")]


async def test_a_return_with_one_unit_scanned_with_the_wrong_lot_is_refused(desk: Desk) -> None:
    """R5: the scanned pair is checked even when the scanned lots do not cover the line."""
    bus = desk.bus
    await bus.receive(
        "RMA-2",
        {"lic": "VAX", "quantity": 2, "serials": "V2", "scans": [f"(01){GTIN}(10)B(21)V1"]},
        source="customer_return",
        customer="Montboro",
    )

    (status,) = bus.statuses("RMA-2")
    assert status["type"] == "ReceiptRejected", status
    assert [(p["reason_code"], p["offending"]) for p in status["problems"]] == [
        ("INVALID_QUANTITY", "V1")
    ]
    assert await units(bus) == [("V1", "A", "shipped"), ("V2", "B", "shipped")]


async def test_a_return_with_one_unit_scanned_with_its_lot_is_posted(desk: Desk) -> None:
    bus = desk.bus
    await bus.receive(
        "RMA-3",
        {"lic": "VAX", "quantity": 2, "serials": "V2", "scans": [f"(01){GTIN}(10)A(21)V1"]},
        source="customer_return",
        customer="Montboro",
    )

    assert bus.statuses("RMA-3")[-1]["type"] == "ReceiptPosted"
    assert await units(bus) == [("V1", "A", "available"), ("V2", "B", "available")]
