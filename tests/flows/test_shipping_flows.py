"""Shipping against a real PostgreSQL, with the real allocation service deciding.

The shipment lifecycle end to end through the in-process `Bus` of `test_receiving_flows`:
stock comes in through receiving, shipments go out through shipping, allocation decides.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, TypeAdapter

from services.allocation import service as allocation_service
from services.shipping import domain as shipping_domain
from shared.contracts.codec import decode
from shared.contracts.upstream import ShipmentMessage, UpsertItem
from shared.ids import derived_id, namespaced
from shared.offload import HEAVY, SCAN_WEIGHT
from shared.outbox import OutboxRow
from tests.fixtures.infra import LotlineEnv
from tests.flows.test_receiving_flows import DAY, GTIN, Bus, open_bus, stocked

_SHIPMENTS = TypeAdapter(ShipmentMessage)
_sequence = iter(range(1, 1_000_000))


def shipping_message(message_type: str, shipment_id: str, **fields: Any) -> BaseModel:
    document = {
        "type": message_type,
        "message_id": f"{message_type}-{shipment_id}-{next(_sequence)}",
        "shipment_id": shipment_id,
        **fields,
    }
    return decode(_SHIPMENTS, orjson.dumps(document))


class Desk:
    """The shipping desk's messages, published on the bus."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def _send(self, message: BaseModel, shipment_id: str) -> None:
        await self.bus.publish(self.bus.topics.shipments, message, key=shipment_id)

    async def request(
        self, shipment_id: str, *lines: dict[str, Any], kind: str = "sale", **header: Any
    ) -> None:
        message = self.request_message(shipment_id, *lines, kind=kind, **header)
        await self._send(message, shipment_id)

    @staticmethod
    def request_message(
        shipment_id: str, *lines: dict[str, Any], kind: str = "sale", **header: Any
    ) -> BaseModel:
        fields = {
            "office": "AI",
            "kind": kind,
            "customer": "Montboro" if kind == "sale" else None,
            "vendor": "Aperture" if kind == "vendor_return" else None,
            "ship_on": DAY.isoformat(),
            "lines": [{"line_no": n, **line} for n, line in enumerate(lines, start=1)],
            **header,
        }
        return shipping_message("ShipmentRequested", shipment_id, **fields)

    async def in_one_batch(self, shipment_id: str, *messages: BaseModel) -> None:
        """Documents of one shipment read by shipping in one batch, as a partition gives them."""
        await self.bus.publish(self.bus.topics.shipments, *messages, key=shipment_id)

    async def answers_to(
        self, shipment_id: str, *messages: BaseModel, together: bool
    ) -> list[dict[str, Any]]:
        """The statuses `messages` bring, read in one batch or one batch each."""
        before = len(self.bus.statuses(shipment_id))
        if together:
            await self.in_one_batch(shipment_id, *messages)
        else:
            for message in messages:
                await self._send(message, shipment_id)
        return self.bus.statuses(shipment_id)[before:]

    async def picks(self, shipment_id: str, line_no: int, **picks: Any) -> None:
        message = shipping_message("ShipmentPicksUpdated", shipment_id, line_no=line_no, **picks)
        await self._send(message, shipment_id)

    async def ship(self, shipment_id: str) -> None:
        await self._send(shipping_message("ShipmentShipRequested", shipment_id), shipment_id)

    async def cancel(self, shipment_id: str) -> None:
        await self._send(shipping_message("ShipmentCancelled", shipment_id), shipment_id)

    def last(self, shipment_id: str) -> dict[str, Any]:
        statuses = self.bus.statuses(shipment_id)
        assert statuses, f"no status for {shipment_id}"
        return statuses[-1]

    async def phase(self, shipment_id: str) -> str:
        (row,) = await self.bus.fetch(
            "shipping", "SELECT phase FROM shipments WHERE shipment_id = $1", shipment_id
        )
        return str(row["phase"])


@pytest.fixture
async def desk(lotline_env: Callable[..., LotlineEnv]) -> AsyncIterator[Desk]:
    async with open_bus(lotline_env) as bus:
        await stocked(bus)
        yield Desk(bus)


def lots(status_line: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(m["mfr_lot"], m["quantity"]) for m in status_line["movements"]]


@asynccontextmanager
async def answers_held(bus: Bus, shipment_id: str) -> AsyncIterator[dict[str, list[OutboxRow]]]:
    """Allocation's answers about the shipment are kept from shipping while the block runs, then
    given back per LIC (in each LIC's order): the test delivers them in the order it chooses,
    as shipping may read two LIC partitions."""
    routes = bus.routes[bus.topics.events]
    shipping = next(route for route in routes if route.schema == "shipping")
    routes.remove(shipping)
    start = len(bus.published)
    held: dict[str, list[OutboxRow]] = {}
    try:
        yield held
    finally:
        routes.append(shipping)
    for row in bus.published[start:]:
        answer = orjson.loads(row.payload)
        if row.topic == bus.topics.events and answer.get("shipment_id") == shipment_id:
            held.setdefault(answer["lic"], []).append(row)


async def allocated_qty(bus: Bus, shipment_id: str) -> dict[str, str]:
    rows = await bus.fetch(
        "allocation",
        "SELECT lic, quantity FROM allocations WHERE shipment_id = $1 AND status = 'allocated'",
        shipment_id,
    )
    return {r["lic"]: str(r["quantity"]) for r in rows}


async def test_shipment_is_allocated_first_expired_first_out_and_shipped(desk: Desk) -> None:
    """R9 automatic allocation (FEFO), R8 complete, R10 shipped with lots per line."""
    await desk.bus.receive(
        "PO-1",
        {
            "lic": "MILK",
            "quantity": 10,
            "lots": [
                {"mfr_lot": "LATE", "expires_on": "2027-02-28", "quantity": 6},
                {"mfr_lot": "SOON", "expires_on": "2027-01-31", "quantity": 4},
            ],
        },
        {"lic": "PLAIN", "quantity": 3},
    )
    await desk.request("S-1", {"lic": "MILK", "quantity": 5}, {"lic": "PLAIN", "quantity": 2})

    allocated = desk.last("S-1")
    assert allocated["type"] == "ShipmentAllocated"
    assert lots(allocated["lines"][0]) == [("SOON", "4"), ("LATE", "1")]
    commands = desk.bus.commands("S-1")
    assert [(c["type"], c["lic"], c["lots"], c["serials"]) for c in commands] == [
        ("AllocateLine", "MILK", [], []),
        ("AllocateLine", "PLAIN", [], []),
    ]

    await desk.ship("S-1")
    shipped = desk.last("S-1")
    assert shipped["type"] == "ShipmentShipped"
    assert lots(shipped["lines"][0]) == [("SOON", "4"), ("LATE", "1")]
    assert [c["type"] for c in desk.bus.commands("S-1")][2:] == ["ShipLine", "ShipLine"]
    assert await desk.phase("S-1") == "shipped"


async def test_ship_request_refused_as_incomplete_then_completed_by_picks(desk: Desk) -> None:
    """R8: refused listing what is missing; ShipmentPicksUpdated re-allocates that line only."""
    await desk.bus.receive("PO-2", {"lic": "CAM", "quantity": 3, "serials": "S1...S3"})
    await desk.bus.receive("PO-3", {"lic": "PLAIN", "quantity": 1})
    await desk.request(
        "S-2",
        {"lic": "PLAIN", "quantity": 1},
        {"lic": "CAM", "quantity": 2, "serials": "S1, S9"},
    )
    failed = desk.last("S-2")
    assert failed["type"] == "ShipmentAllocationFailed"
    assert [(p["line_no"], p["reason_code"], p["offending"]) for p in failed["problems"]] == [
        (2, "SERIAL_NOT_AVAILABLE", "S9")
    ]
    assert [line["line_no"] for line in failed["allocated_lines"]] == [1]

    await desk.ship("S-2")
    refused = desk.last("S-2")
    assert (refused["type"], refused["reason_code"]) == (
        "ShipmentShipRefused",
        "SHIPMENT_INCOMPLETE",
    )
    assert [(p["line_no"], p["reason_code"]) for p in refused["problems"]] == [
        (2, "SERIAL_NOT_AVAILABLE")
    ]

    before = len(desk.bus.commands("S-2"))
    await desk.picks("S-2", 2, serials="S3\nS2")
    (reallocate,) = desk.bus.commands("S-2")[before:]
    assert (reallocate["type"], reallocate["line_no"], reallocate["serials"]) == (
        "AllocateLine",
        2,
        ["S3", "S2"],
    )
    assert desk.last("S-2")["type"] == "ShipmentAllocated"

    await desk.ship("S-2")
    shipped = desk.last("S-2")
    assert shipped["type"] == "ShipmentShipped"
    assert [m["serial"] for m in shipped["lines"][1]["movements"]] == ["S3", "S2"]


async def test_picks_covering_part_of_a_line_allocate_it_but_it_ships_only_when_covered(
    desk: Desk,
) -> None:
    """R8: a shipment can be saved and allocated at any time, but not marked shipped until
    every serialized unit has a serial: serials for 1 of 2 units hold that unit, the ship
    request is refused naming the gap, and picks naming both let it ship."""
    await desk.bus.receive("PO-6", {"lic": "CAM", "quantity": 2, "serials": "T1...T2"})
    await desk.request("S-6", {"lic": "CAM", "quantity": 2, "serials": "T2"})
    allocated = desk.last("S-6")
    assert allocated["type"] == "ShipmentAllocated"
    (line,) = allocated["lines"]
    assert (line["complete"], [m["serial"] for m in line["movements"]]) == (False, ["T2"])

    await desk.ship("S-6")
    refused = desk.last("S-6")
    assert (refused["type"], refused["reason_code"]) == (
        "ShipmentShipRefused",
        "SHIPMENT_INCOMPLETE",
    )
    assert [(p["line_no"], p["reason_code"]) for p in refused["problems"]] == [
        (1, "SERIAL_REQUIRED")
    ]
    assert "1 of 2" in refused["problems"][0]["reason"]

    await desk.picks("S-6", 1, serials="T2, T1")
    await desk.ship("S-6")
    shipped = desk.last("S-6")
    assert shipped["type"] == "ShipmentShipped"
    assert [m["serial"] for m in shipped["lines"][0]["movements"]] == ["T2", "T1"]


async def test_cancellation_releases_the_stock_for_the_next_shipment(desk: Desk) -> None:
    await desk.bus.receive("PO-4", {"lic": "PLAIN", "quantity": 5})
    await desk.request("S-3", {"lic": "PLAIN", "quantity": 5})
    await desk.request("S-4", {"lic": "PLAIN", "quantity": 1})
    assert [p["reason_code"] for p in desk.last("S-4")["problems"]] == ["INSUFFICIENT_STOCK"]

    await desk.cancel("S-3")
    cancelled = desk.last("S-3")
    assert cancelled["type"] == "ShipmentCancelled"
    assert cancelled["refused"] is None
    assert [line["line_no"] for line in cancelled["released_lines"]] == [1]
    assert await desk.phase("S-3") == "cancelled"

    await desk.picks("S-4", 1)  # no picks: allocate automatically again
    assert desk.last("S-4")["type"] == "ShipmentAllocated"


async def test_a_shipped_shipment_cannot_be_cancelled(desk: Desk) -> None:
    await desk.bus.receive("PO-5", {"lic": "PLAIN", "quantity": 1})
    await desk.request("S-5", {"lic": "PLAIN", "quantity": 1})
    await desk.ship("S-5")
    before = len(desk.bus.commands("S-5"))

    await desk.cancel("S-5")
    refusal = desk.last("S-5")
    assert refusal["type"] == "ShipmentCancelled"
    assert refusal["refused"]["reason_code"] == "UNKNOWN_SHIPMENT"
    assert len(desk.bus.commands("S-5")) == before
    assert await desk.phase("S-5") == "shipped"


async def test_vendor_return_must_name_lots_and_removes_them(desk: Desk) -> None:
    """R14: checked by shipping, whose refusal the line's AllocateLine carries for allocation
    to answer as it is (R2: the line still names the item); the named lot goes back."""
    await desk.bus.receive(
        "PO-6",
        {
            "lic": "MILK",
            "quantity": 4,
            "lots": [{"mfr_lot": "BAD", "expires_on": "2027-01-31", "quantity": 4}],
        },
    )
    await desk.request("RTV-1", {"lic": "MILK", "quantity": 4}, kind="vendor_return")
    assert [p["reason_code"] for p in desk.last("RTV-1")["problems"]] == ["LOT_REQUIRED"]
    (sent,) = desk.bus.commands("RTV-1")
    assert (sent["type"], sent["lots"], sent["refusal"]["reason_code"]) == (
        "AllocateLine",
        [],
        "LOT_REQUIRED",
    )

    await desk.picks("RTV-1", 1, lots=[{"mfr_lot": "BAD", "quantity": 4}])
    assert desk.last("RTV-1")["type"] == "ShipmentAllocated"
    await desk.ship("RTV-1")
    shipped = desk.last("RTV-1")
    assert shipped["type"] == "ShipmentShipped"
    assert lots(shipped["lines"][0]) == [("BAD", "4")]
    events = desk.bus.on(desk.bus.topics.events, lambda v: v.get("shipment_id") == "RTV-1")
    assert [(e["type"], e["kind"]) for e in events if e["type"] == "LineShipped"] == [
        ("LineShipped", "vendor_return")
    ]


async def test_customer_return_of_a_shipped_serial_puts_it_back(desk: Desk) -> None:
    """R13: the serial was shipped to that customer; it becomes available again."""
    await desk.bus.receive("PO-7", {"lic": "CAM", "quantity": 1, "serials": ["R1"]})
    await desk.request("S-7", {"lic": "CAM", "quantity": 1})
    await desk.ship("S-7")
    assert desk.last("S-7")["type"] == "ShipmentShipped"

    await desk.bus.receive(
        "RMA-7",
        {"lic": "CAM", "quantity": 1, "serials": "R1"},
        source="customer_return",
        customer="Montboro",
    )
    posted = desk.last("RMA-7")
    assert posted["type"] == "ReceiptPosted", posted
    assert [m["serial"] for m in posted["lines"][0]["movements"]] == ["R1"]

    await desk.request("S-8", {"lic": "CAM", "quantity": 1, "serials": "R1"})
    assert desk.last("S-8")["type"] == "ShipmentAllocated"


async def test_messages_about_an_unknown_shipment_are_refused(desk: Desk) -> None:
    await desk.ship("NOPE")
    await desk.cancel("NOPE")
    await desk.picks("NOPE", 1)
    statuses = desk.bus.statuses("NOPE")
    assert [s["type"] for s in statuses] == [
        "ShipmentShipRefused",
        "ShipmentCancelled",
        "ShipmentAllocationFailed",
    ]
    assert statuses[0]["reason_code"] == "UNKNOWN_SHIPMENT"
    assert statuses[1]["refused"]["reason_code"] == "UNKNOWN_SHIPMENT"
    assert statuses[2]["problems"][0]["reason_code"] == "UNKNOWN_SHIPMENT"
    assert await desk.bus.fetch("shipping", "SELECT * FROM shipments") == []


async def test_picks_allocation_refuses_leave_the_old_allocation_allocated_and_shippable(
    desk: Desk,
) -> None:
    """Never half-apply a document: allocation refuses the new picks and keeps the old
    allocation; shipping reports the refusal, lists the line as allocated, and ships it."""
    await desk.bus.receive(
        "PO-10",
        {
            "lic": "MILK",
            "quantity": 5,
            "lots": [{"mfr_lot": "A1", "expires_on": "2027-01-31", "quantity": 5}],
        },
    )
    await desk.request("S-10", {"lic": "MILK", "quantity": 3})
    assert desk.last("S-10")["type"] == "ShipmentAllocated"

    await desk.picks("S-10", 1, lots=[{"mfr_lot": "ZZ", "quantity": 3}])
    failed = desk.last("S-10")
    assert failed["type"] == "ShipmentAllocationFailed"
    assert [(p["line_no"], p["reason_code"]) for p in failed["problems"]] == [(1, "LOT_NOT_FOUND")]
    assert [lots(line) for line in failed["allocated_lines"]] == [[("A1", "3")]]
    assert await allocated_qty(desk.bus, "S-10") == {"MILK": "3"}

    await desk.picks("S-10", 1, serials="9...1")  # refused by shipping's own parse (R5)
    assert [p["reason_code"] for p in desk.last("S-10")["problems"]] == ["INVALID_SERIAL_SPAN"]
    assert [line["line_no"] for line in desk.last("S-10")["allocated_lines"]] == [1]

    await desk.ship("S-10")
    shipped = desk.last("S-10")
    assert shipped["type"] == "ShipmentShipped"
    assert lots(shipped["lines"][0]) == [("A1", "3")]
    assert await allocated_qty(desk.bus, "S-10") == {}


async def test_a_ship_request_or_cancel_while_one_is_under_way_gets_the_same_answer(
    desk: Desk,
) -> None:
    """Every document is answered on inventory.status: the second of two ship requests (or
    cancels) read together gets the status of the first, under its own id."""
    await desk.bus.receive("PO-11", {"lic": "PLAIN", "quantity": 2})
    await desk.request("S-11", {"lic": "PLAIN", "quantity": 1})
    await desk.request("S-12", {"lic": "PLAIN", "quantity": 1})
    ships = [shipping_message("ShipmentShipRequested", "S-11") for _ in range(2)]
    await desk.in_one_batch("S-11", *ships)
    answers = desk.bus.statuses("S-11")[-2:]
    assert [a["type"] for a in answers] == ["ShipmentShipped", "ShipmentShipped"]
    assert answers[1]["message_id"] == status_id(ships[1])
    assert answers[0]["lines"] == answers[1]["lines"]

    cancels = [shipping_message("ShipmentCancelled", "S-12") for _ in range(2)]
    await desk.in_one_batch("S-12", *cancels)
    answers = desk.bus.statuses("S-12")[-2:]
    assert [(a["type"], a["refused"]) for a in answers] == [("ShipmentCancelled", None)] * 2
    assert answers[1]["message_id"] == status_id(cancels[1])
    assert await desk.phase("S-12") == "cancelled"
    owed = "SELECT jsonb_array_length(waiting) AS n FROM shipments WHERE shipment_id = 'S-12'"
    assert [r["n"] for r in await desk.bus.fetch("shipping", owed)] == [0]


async def test_a_resend_to_another_lic_read_out_of_order_leaves_nothing_allocated_on_cancel(
    desk: Desk,
) -> None:
    """R9: line 1 moves from PLAIN to BOLT by a resend before allocation's answers are read;
    shipping reads BOLT's partition first, then PLAIN's (the superseded allocation and its
    release). The status names BOLT's lot, and the cancel releases BOLT."""
    await desk.bus.item("BOLT")
    await desk.bus.receive("PO-9", {"lic": "PLAIN", "quantity": 5}, {"lic": "BOLT", "quantity": 5})
    async with answers_held(desk.bus, "S-9") as answers:
        await desk.in_one_batch(
            "S-9",
            desk.request_message("S-9", {"lic": "PLAIN", "quantity": 2}),
            desk.request_message("S-9", {"lic": "BOLT", "quantity": 3}),
        )
    assert [json_type(r) for r in answers["PLAIN"]] == ["LineAllocated", "LineReleased"]
    assert await allocated_qty(desk.bus, "S-9") == {"BOLT": "3"}

    await desk.bus.redeliver(answers["BOLT"])
    for row in answers["PLAIN"]:
        await desk.bus.redeliver([row])
    allocated = desk.last("S-9")
    assert allocated["type"] == "ShipmentAllocated"
    (line,) = allocated["lines"]
    assert (line["lic"], [m["lot_id"] for m in line["movements"]]) == ("BOLT", ["PO-9/2"])

    await desk.cancel("S-9")
    cancelled = desk.last("S-9")
    assert (cancelled["type"], cancelled["refused"]) == ("ShipmentCancelled", None)
    assert [c["lic"] for c in desk.bus.commands("S-9") if c["type"] == "ReleaseLine"] == [
        "PLAIN",
        "BOLT",
    ]
    assert await allocated_qty(desk.bus, "S-9") == {}
    assert await desk.phase("S-9") == "cancelled"


def status_id(document: BaseModel) -> str:
    return derived_id(document.model_dump()["message_id"], "status")


def json_type(row: OutboxRow) -> str:
    return str(orjson.loads(row.payload)["type"])


@pytest.mark.parametrize("first", ["PLAIN", "MILK"])
async def test_a_ship_request_while_a_resend_is_still_being_allocated_is_refused(
    desk: Desk, first: str
) -> None:
    """R8, every document answered: a resend changes line 1 (PLAIN) and drops line 2 (MILK);
    shipping reads the two LICs' answers in either order, a ship request between them. It is
    refused SHIPMENT_INCOMPLETE in both orders, nothing is shipped, and the resend is answered
    ShipmentAllocated once both answers are read."""
    await desk.bus.receive(
        "PO-13",
        {"lic": "PLAIN", "quantity": 10},
        {
            "lic": "MILK",
            "quantity": 5,
            "lots": [{"mfr_lot": "M1", "expires_on": "2027-01-31", "quantity": 5}],
        },
    )
    await desk.request("S-13", {"lic": "PLAIN", "quantity": 2}, {"lic": "MILK", "quantity": 1})
    resend = desk.request_message("S-13", {"lic": "PLAIN", "quantity": 3})
    async with answers_held(desk.bus, "S-13") as answers:
        await desk._send(resend, "S-13")
    second = "MILK" if first == "PLAIN" else "PLAIN"
    await desk.bus.redeliver(answers[first])
    assert await desk.phase("S-13") == "allocating"
    before = len(desk.bus.commands("S-13"))
    await desk.ship("S-13")
    refused = desk.last("S-13")
    assert (refused["type"], refused["reason_code"]) == (
        "ShipmentShipRefused",
        "SHIPMENT_INCOMPLETE",
    )
    assert "still being allocated" in refused["reason"]
    assert len(desk.bus.commands("S-13")) == before

    await desk.bus.redeliver(answers[second])
    allocated = desk.last("S-13")
    assert allocated["type"] == "ShipmentAllocated"
    assert [(line["line_no"], line["quantity"]) for line in allocated["lines"]] == [(1, "3")]
    assert await desk.phase("S-13") == "allocated"
    await desk.ship("S-13")
    assert desk.last("S-13")["type"] == "ShipmentShipped"
    assert await allocated_qty(desk.bus, "S-13") == {}


async def test_scans_contradicting_the_picks_are_refused(desk: Desk) -> None:
    """R5, R9, R15: a scan binds its serial to its lot, and its lot to the unit. V1 scanned as
    lot B is in lot A: allocation refuses, naming B. Lot A typed, lot B scanned: refused
    INVALID_BARCODE with the scan. Nothing is allocated for either."""
    vax = {"lic": "VAX", "quantity": 2, "serials": "V1, V2"}
    await desk.bus.receive(
        "PO-14", {**vax, "lots": [{"mfr_lot": "A", "expires_on": "2027-01-31", "quantity": 2}]}
    )
    await desk.bus.receive(
        "PO-15",
        {
            "lic": "VAX",
            "quantity": 1,
            "lots": [{"mfr_lot": "B", "expires_on": "2027-01-31", "quantity": 1}],
            "serials": "V3",
        },
    )
    await desk.bus.receive(
        "PO-16",
        {
            "lic": "MILK",
            "quantity": 4,
            "lots": [
                {"mfr_lot": "A", "expires_on": "2027-01-31", "quantity": 2},
                {"mfr_lot": "B", "expires_on": "2027-01-31", "quantity": 2},
            ],
        },
    )
    wrong_lot = f"(01){GTIN}(10)B(21)V1"
    await desk.request("S-14", {"lic": "VAX", "quantity": 1, "scans": [wrong_lot]})
    (command,) = desk.bus.commands("S-14")
    assert (command["lots"], command["serials"]) == ([{"mfr_lot": "B", "quantity": "1"}], ["V1"])
    failed = desk.last("S-14")
    assert failed["type"] == "ShipmentAllocationFailed"
    assert [(p["reason_code"], p["offending"]) for p in failed["problems"]] == [
        ("INVALID_QUANTITY", "B")
    ]

    scans = [f"(01){GTIN}(10)B", f"(01){GTIN}(10)B"]
    typed = {"lic": "MILK", "quantity": 2, "lots": [{"mfr_lot": "A", "quantity": 2}]}
    await desk.request("S-15", {**typed, "scans": scans})
    failed = desk.last("S-15")
    assert failed["type"] == "ShipmentAllocationFailed"
    assert [(p["reason_code"], p["offending"]) for p in failed["problems"]] == [
        ("INVALID_BARCODE", scans[0])
    ]
    assert await allocated_qty(desk.bus, "S-14") == {}
    assert await allocated_qty(desk.bus, "S-15") == {}

    right_lot = f"(01){GTIN}(10)A(21)V1"
    await desk.request("S-16", {"lic": "VAX", "quantity": 1, "scans": [right_lot]})
    assert desk.last("S-16")["type"] == "ShipmentAllocated"


@pytest.mark.parametrize("together", [True, False])
async def test_a_resend_read_with_the_cancel_is_decided_as_one_read_after_it(
    desk: Desk, together: bool
) -> None:
    """Every document answered, replays decide the same way: read in the cancel's batch (its
    releases unanswered) or a batch later, the resend gets the same answers in the same order:
    ShipmentCancelled for the cancel, then ShipmentAllocated for the resend."""
    await desk.bus.receive("PO-17", {"lic": "PLAIN", "quantity": 10})
    await desk.request("S-17", {"lic": "PLAIN", "quantity": 3})
    cancel = shipping_message("ShipmentCancelled", "S-17")
    resend = desk.request_message("S-17", {"lic": "PLAIN", "quantity": 4})
    answers = await desk.answers_to("S-17", cancel, resend, together=together)
    assert [(a["type"], a.get("refused")) for a in answers] == [
        ("ShipmentCancelled", None),
        ("ShipmentAllocated", None),
    ]
    assert [(line["line_no"], line["quantity"]) for line in answers[1]["lines"]] == [(1, "4")]
    assert await allocated_qty(desk.bus, "S-17") == {"PLAIN": "4"}
    assert await desk.phase("S-17") == "allocated"
    queued = "SELECT queued IS NULL AS empty FROM shipments WHERE shipment_id = 'S-17'"
    assert [r["empty"] for r in await desk.bus.fetch("shipping", queued)] == [True]


async def test_documents_after_a_request_waiting_for_the_cancel_are_decided_after_it(
    desk: Desk,
) -> None:
    """A resend read in the cancel's batch waits for the cancel's release, and so do picks for
    its line and a ship request read meanwhile: nothing is answered until the cancel is. Then,
    in the order read: ShipmentCancelled, the resend applied, the picks read against its item
    (R5: a scan of another product is refused INVALID_BARCODE), the ship request refused as
    still being allocated (R8), and the resend's allocation answered with the picks' refusal."""
    await desk.bus.receive("PO-18", {"lic": "PLAIN", "quantity": 5})
    await desk.request("S-18", {"lic": "PLAIN", "quantity": 1})
    cancel = shipping_message("ShipmentCancelled", "S-18")
    resend = desk.request_message("S-18", {"lic": "VAX", "quantity": 1})
    ship = shipping_message("ShipmentShipRequested", "S-18")
    before = len(desk.bus.statuses("S-18"))
    async with answers_held(desk.bus, "S-18") as answers:
        await desk.in_one_batch("S-18", cancel, resend)
        await desk.picks("S-18", 1, scans=["010401234500000921V1"])
        await desk._send(ship, "S-18")
        assert desk.bus.statuses("S-18")[before:] == []
    assert [c["type"] for c in desk.bus.commands("S-18")] == ["AllocateLine", "ReleaseLine"]

    await desk.bus.redeliver(answers["PLAIN"])
    cancelled, refused, failed = desk.bus.statuses("S-18")[before:]
    assert (cancelled["type"], cancelled["refused"]) == ("ShipmentCancelled", None)
    assert (refused["type"], refused["reason_code"], refused["offending"]) == (
        "ShipmentShipRefused",
        "SHIPMENT_INCOMPLETE",
        "S-18/1",
    )
    assert refused["message_id"] == status_id(ship)
    assert "line 1 (VAX) is still being allocated" in refused["reason"]
    assert failed["type"] == "ShipmentAllocationFailed"
    assert [(p["line_no"], p["reason_code"], p["offending"]) for p in failed["problems"]] == [
        (1, "INVALID_BARCODE", "010401234500000921V1")
    ]
    assert await desk.phase("S-18") == "allocation_failed"
    assert await allocated_qty(desk.bus, "S-18") == {}


@pytest.mark.parametrize("together", [True, False])
async def test_a_resend_read_with_the_ship_is_decided_as_one_read_after_it(
    desk: Desk, together: bool
) -> None:
    """Every document answered, replays decide the same way: a resend read in the ship's batch
    (its ShipLine unanswered) waits for the ship; read there or a batch later it gets the same
    answers in the same order: ShipmentShipped, then the refusal of a shipped shipment."""
    await desk.bus.receive("PO-19", {"lic": "PLAIN", "quantity": 10})
    await desk.request("S-19", {"lic": "PLAIN", "quantity": 3})
    ship = shipping_message("ShipmentShipRequested", "S-19")
    resend = desk.request_message("S-19", {"lic": "PLAIN", "quantity": 4})
    answers = await desk.answers_to("S-19", ship, resend, together=together)
    assert [a["type"] for a in answers] == ["ShipmentShipped", "ShipmentAllocationFailed"]
    assert answers[1]["message_id"] == status_id(resend)
    assert (answers[1]["reason_code"], answers[1]["problems"][0]["reason"]) == (
        "UNKNOWN_SHIPMENT",
        "shipment S-19 is shipped: it cannot be requested again",
    )
    # What stands of the shipment is listed, said shipped: it holds nothing any more (before,
    # a client could only read it as still allocated).
    assert [(a["line_no"], a["shipped"]) for a in answers[1]["allocated_lines"]] == [(1, True)]
    assert answers[0]["lines"][0]["shipped"] is True  # ShipmentShipped's, alike
    assert [c["type"] for c in desk.bus.commands("S-19")] == ["AllocateLine", "ShipLine"]
    assert await desk.phase("S-19") == "shipped"
    queued = "SELECT queued IS NULL AS empty FROM shipments WHERE shipment_id = 'S-19'"
    assert [r["empty"] for r in await desk.bus.fetch("shipping", queued)] == [True]


@pytest.mark.parametrize("document", ["cancel", "picks"])
@pytest.mark.parametrize("together", [True, False])
async def test_a_cancel_or_picks_read_with_the_ship_are_decided_as_ones_read_after_it(
    desk: Desk, document: str, together: bool
) -> None:
    """Replays decide the same way: a cancel or new picks read in the ship's batch (its ShipLine
    unanswered) wait for the ship; read there or a batch later they get the same answers in the
    same order: ShipmentShipped, then the refusal any document gets once shipped."""
    sid = f"S-20-{document}-{together}"
    await desk.bus.receive(f"PO-{sid}", {"lic": "PLAIN", "quantity": 3})
    await desk.request(sid, {"lic": "PLAIN", "quantity": 3})
    ship = shipping_message("ShipmentShipRequested", sid)
    late = (
        shipping_message("ShipmentCancelled", sid)
        if document == "cancel"
        else shipping_message("ShipmentPicksUpdated", sid, line_no=1)
    )
    answers = await desk.answers_to(sid, ship, late, together=together)
    assert [a["type"] for a in answers] == [
        "ShipmentShipped",
        "ShipmentCancelled" if document == "cancel" else "ShipmentAllocationFailed",
    ]
    assert answers[1]["message_id"] == status_id(late)
    if document == "cancel":
        refused, why = answers[1]["refused"], "a shipped shipment cannot be cancelled"
    else:
        refused, why = answers[1]["problems"][0], "its picks can no longer change"
    assert (refused["reason_code"], refused["reason"]) == (
        "UNKNOWN_SHIPMENT",
        f"shipment {sid} is shipped: {why}",
    )
    assert [c["type"] for c in desk.bus.commands(sid)] == ["AllocateLine", "ShipLine"]
    assert await desk.phase(sid) == "shipped"


async def test_a_request_a_cancel_drops_before_it_is_applied_still_locks_its_item(
    desk: Desk,
) -> None:
    """R2: a resend read while the shipment is being cancelled is a saved sales order naming
    BOLT, even if a second cancel follows before the first settles. As when read a batch later,
    BOLT's allocation hears of it (and releases it again), so BOLT's tracking flags lock: an
    UpsertItem making BOLT serialized is refused TRACKING_LOCKED."""
    await desk.bus.item("BOLT")  # nothing refers to it yet: no stock, no document
    await desk.bus.receive("PO-21", {"lic": "PLAIN", "quantity": 5})
    await desk.request("S-21", {"lic": "PLAIN", "quantity": 2})
    resend = desk.request_message("S-21", {"lic": "BOLT", "quantity": 1})
    cancels = [shipping_message("ShipmentCancelled", "S-21") for _ in range(2)]
    answers = await desk.answers_to("S-21", cancels[0], resend, cancels[1], together=True)
    assert [(a["type"], a["refused"]) for a in answers] == [("ShipmentCancelled", None)] * 2
    assert cancels[1].model_dump()["message_id"] in answers[1]["message_id"]
    assert await desk.phase("S-21") == "cancelled"
    assert await allocated_qty(desk.bus, "S-21") == {}

    flip = UpsertItem(message_id="item-BOLT-serialized", lic="BOLT", serialized=True)
    await desk.bus.publish(desk.bus.topics.items, flip, key="BOLT")
    command_id = namespaced("item", flip.message_id)
    (answer,) = desk.bus.on(desk.bus.topics.events, lambda v: v.get("command_id") == command_id)
    assert (answer["type"], answer.get("reason_code")) == ("CommandRejected", "TRACKING_LOCKED")


@pytest.mark.parametrize("typed", [False, True])
async def test_serials_scanned_with_each_others_lots_are_refused(desk: Desk, typed: bool) -> None:
    """R5, R9, R15, unit by unit: V1 is in lot A and V2 in lot B, but V1's label says B and
    V2's says A. The per-lot counts agree (one unit of each), so only a check of each serial
    against the lot it is in refuses the line."""
    sid = f"S-22-{typed}"
    await desk.bus.receive(
        f"PO-{sid}-A",
        {
            "lic": "VAX",
            "quantity": 1,
            "lots": [{"mfr_lot": "A", "expires_on": "2027-01-31", "quantity": 1}],
            "serials": f"V1-{typed}",
        },
    )
    await desk.bus.receive(
        f"PO-{sid}-B",
        {
            "lic": "VAX",
            "quantity": 1,
            "lots": [{"mfr_lot": "B", "expires_on": "2027-01-31", "quantity": 1}],
            "serials": f"V2-{typed}",
        },
    )
    scans = [f"(01){GTIN}(10)B(21)V1-{typed}", f"(01){GTIN}(10)A(21)V2-{typed}"]
    lots = [{"mfr_lot": "A", "quantity": 1}, {"mfr_lot": "B", "quantity": 1}] if typed else []
    await desk.request(sid, {"lic": "VAX", "quantity": 2, "lots": lots, "scans": scans})
    failed = desk.last(sid)
    assert failed["type"] == "ShipmentAllocationFailed", failed
    (problem,) = failed["problems"]
    assert (problem["reason_code"], problem["offending"]) == ("INVALID_QUANTITY", f"V1-{typed}")
    assert "scanned with manufacturer lot B" in problem["reason"]
    assert "is in manufacturer lot A" in problem["reason"]
    assert await allocated_qty(desk.bus, sid) == {}

    # The same units scanned with their own lots are allocated.
    scans = [f"(01){GTIN}(10)A(21)V1-{typed}", f"(01){GTIN}(10)B(21)V2-{typed}"]
    await desk.request(sid, {"lic": "VAX", "quantity": 2, "lots": lots, "scans": scans})
    assert desk.last(sid)["type"] == "ShipmentAllocated", desk.last(sid)
    assert await allocated_qty(desk.bus, sid) == {"VAX": "2"}


def document_id(document: BaseModel) -> str:
    return str(document.model_dump()["message_id"])


async def test_each_status_names_the_documents_it_answers_across_batches(desk: Desk) -> None:
    """`answers`: documents applied in separate batches before the shipment's status (kept in
    its row meanwhile) are answered by that one status; a document refused at once answers
    itself alone; documents asking for or waiting on the ship under way are each answered once.
    Over all of the shipment's statuses, every document appears in exactly one `answers`."""
    sid = "S-30"
    lots = [{"mfr_lot": "A1", "expires_on": "2027-01-31", "quantity": 4}]
    await desk.bus.receive("PO-30", {"lic": "MILK", "quantity": 4, "lots": lots})
    first = desk.request_message(sid, {"lic": "MILK", "quantity": 2})
    picks = shipping_message(
        "ShipmentPicksUpdated", sid, line_no=1, lots=[{"mfr_lot": "A1", "quantity": 2}]
    )
    early = shipping_message("ShipmentShipRequested", sid)
    async with answers_held(desk.bus, sid) as held:
        for document in (first, picks, early):
            await desk._send(document, sid)
        (refused,) = desk.bus.statuses(sid)
        assert (refused["type"], refused["answers"]) == (
            "ShipmentShipRefused",
            [document_id(early)],
        )
        unanswered = f"SELECT unanswered::text FROM shipments WHERE shipment_id = '{sid}'"
        rows = await desk.bus.fetch("shipping", unanswered)
        assert [orjson.loads(r["unanswered"]) for r in rows] == [
            [document_id(first), document_id(picks)]
        ]
    await desk.bus.redeliver(held["MILK"])
    allocated = desk.last(sid)
    assert allocated["type"] == "ShipmentAllocated"
    assert allocated["answers"] == [document_id(first), document_id(picks)]

    ship, again = (shipping_message("ShipmentShipRequested", sid) for _ in range(2))
    late = shipping_message("ShipmentCancelled", sid)
    answers = await desk.answers_to(sid, ship, again, late, together=True)
    assert [(a["type"], a["answers"]) for a in answers] == [
        ("ShipmentShipped", [document_id(ship)]),
        ("ShipmentShipped", [document_id(again)]),
        ("ShipmentCancelled", [document_id(late)]),
    ]
    documents = [first, picks, early, ship, again, late]
    listed = [d for status in desk.bus.statuses(sid) for d in status["answers"]]
    assert sorted(listed) == sorted(document_id(d) for d in documents)


async def test_a_request_a_cancel_overrides_is_answered_by_the_cancel(desk: Desk) -> None:
    """The request, applied in one batch and not answered before the cancel read in the next,
    is answered by the cancel's ShipmentCancelled, with the cancel."""
    sid = "S-31"
    await desk.bus.receive("PO-31", {"lic": "PLAIN", "quantity": 2})
    request = desk.request_message(sid, {"lic": "PLAIN", "quantity": 1})
    cancel = shipping_message("ShipmentCancelled", sid)
    async with answers_held(desk.bus, sid) as held:
        await desk._send(request, sid)
        await desk._send(cancel, sid)
    await desk.bus.redeliver(held["PLAIN"])
    (status,) = desk.bus.statuses(sid)
    assert (status["type"], status["refused"]) == ("ShipmentCancelled", None)
    assert status["answers"] == [document_id(request), document_id(cancel)]


@pytest.mark.parametrize("together", [True, False])
async def test_picks_with_a_nul_read_with_the_ship_are_answered_not_dead_lettered(
    desk: Desk, together: bool
) -> None:
    """A scan may hold a NUL (a scanner's raw text: the contract accepts it, reading it
    refuses it). Read in the ship's batch, the picks update waits in the shipment's queue,
    which jsonb cannot hold a NUL in: it is kept encoded, and answered as one read a batch
    later is (review: the batch failed in the database and the document was dead-lettered)."""
    sid = f"S-NUL-{together}"
    await desk.bus.receive(f"PO-{sid}", {"lic": "PLAIN", "quantity": 3})
    await desk.request(sid, {"lic": "PLAIN", "quantity": 3})
    ship = shipping_message("ShipmentShipRequested", sid)
    late = shipping_message(
        "ShipmentPicksUpdated", sid, line_no=1, scans=["0109501101020917\x0021SN-1"]
    )
    answers = await desk.answers_to(sid, ship, late, together=together)
    assert [a["type"] for a in answers] == ["ShipmentShipped", "ShipmentAllocationFailed"]
    assert answers[1]["message_id"] == status_id(late)
    assert answers[1]["reason_code"] == "UNKNOWN_SHIPMENT"  # shipped: picks no longer change


async def test_a_heavily_scanned_request_is_read_off_the_event_loop(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§6: a request of many scans (about 100 µs each) is decided in a worker thread
    (`shared.offload`), so the consumer's heartbeats go on; its ship request, light, at once.
    Both are answered as ever."""
    many = HEAVY // SCAN_WEIGHT
    await desk.bus.receive(
        "PO-HEAVY",
        {
            "lic": "VAX",
            "quantity": many,
            "lots": [{"mfr_lot": "L7", "expires_on": "2027-12-31", "quantity": many}],
            "serials": f"H{1:04d}...H{many:04d}",
        },
    )
    threads: list[int] = []
    handle = shipping_domain.handle

    def watched(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return handle(*args, **kwargs)

    monkeypatch.setattr(shipping_domain, "handle", watched)
    scans = [f"(01){GTIN}(17)271231(10)L7(21)H{n:04d}" for n in range(1, many + 1)]
    await desk.request("S-HEAVY", {"lic": "VAX", "quantity": many, "scans": scans})
    assert desk.last("S-HEAVY")["type"] == "ShipmentAllocated", desk.last("S-HEAVY")
    await desk.ship("S-HEAVY")
    assert desk.last("S-HEAVY")["type"] == "ShipmentShipped", desk.last("S-HEAVY")
    request, ship = threads
    assert request != threading.get_ident()
    assert ship == threading.get_ident()


async def test_allocation_decides_a_batch_of_many_units_off_the_event_loop(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§6: a serialized receipt moves a unit per serial (a 100,000-unit line takes seconds), so
    allocation decides a batch of many units in a worker thread (`shared.offload`), a light
    one (a one-unit sale) at once; both are decided as ever."""
    threads: list[int] = []
    decide = allocation_service.decide_batch

    def watched(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return decide(*args, **kwargs)

    monkeypatch.setattr(allocation_service, "decide_batch", watched)
    many = -(-HEAVY // allocation_service.UNIT_WEIGHT)
    await desk.bus.receive("PO-MANY", {"lic": "CAM", "quantity": many, "serials": f"M1...M{many}"})
    (posted,) = desk.bus.statuses("PO-MANY")
    assert posted["type"] == "ReceiptPosted", posted
    received = len(threads)
    await desk.request("S-ONE", {"lic": "CAM", "quantity": 1})
    assert desk.last("S-ONE")["type"] == "ShipmentAllocated", desk.last("S-ONE")
    assert threads[received - 1] != threading.get_ident()  # the receipt of `many` units
    assert threads[received:] == [threading.get_ident()]  # the sale of one
