"""A document sent again under a new `message_id`: receiving against a real PostgreSQL, with the
real allocation and shipping services deciding (the in-process `Bus` of `test_receiving_flows`).

Upstream corrects a receipt by sending it again, same `shipment_id`, new `message_id`, and the
receipts topic is keyed by document id, so receiving reads the versions of a document in order.
A purchase line sent again is refused by allocation (its inventory lot exists already); a
customer return has no lot of its own, so receiving refuses it (R13). A version still held for
an unknown item is answered as soon as a newer one arrives, so its refusal never follows the
newer version's posting; every version is answered exactly once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.fixtures.infra import LotlineEnv
from tests.flows.test_receiving_flows import Bus, open_bus, receipt, stocked
from tests.flows.test_shipping_flows import Desk


@pytest.fixture
async def bus(lotline_env: Callable[..., LotlineEnv]) -> AsyncIterator[Bus]:
    async with open_bus(lotline_env) as opened:
        yield opened


@pytest.fixture
async def desk(lotline_env: Callable[..., LotlineEnv]) -> AsyncIterator[Desk]:
    async with open_bus(lotline_env) as bus:
        await stocked(bus)
        yield Desk(bus)


def rma(message_id: str, *lines: dict[str, Any], shipment_id: str = "RMA-1") -> Any:
    return receipt(
        shipment_id, *lines, message_id=message_id, source="customer_return", customer="Montboro"
    )


async def shipped(desk: Desk, quantity: int) -> None:
    """PO-1: ten PLAIN received; S-1: `quantity` of them shipped to Montboro."""
    await desk.bus.receive("PO-1", {"lic": "PLAIN", "quantity": 10})
    await desk.request("S-1", {"lic": "PLAIN", "quantity": quantity})
    await desk.ship("S-1")
    assert desk.last("S-1")["type"] == "ShipmentShipped"


async def lot(bus: Bus, lot_id: str) -> tuple[int, int]:
    """The inventory lot's (on hand, used)."""
    (row,) = await bus.fetch(
        "allocation", "SELECT on_hand, used FROM inventory_lots WHERE lot_id = $1", lot_id
    )
    return int(row["on_hand"]), int(row["used"])


def answers(bus: Bus, shipment_id: str) -> list[tuple[str, str]]:
    return [(s["type"], s["message_id"]) for s in bus.statuses(shipment_id)]


def answered(bus: Bus, shipment_id: str) -> list[list[str]]:
    """Which receipts each status answers (`answers`): one each, the version it is about."""
    return [s["answers"] for s in bus.statuses(shipment_id)]


# --- a customer return is received once (R13) -------------------------------------------------


async def test_a_customer_return_sent_again_under_a_new_message_id_is_refused(desk: Desk) -> None:
    """R13: four units came back once; the same RMA again must not put them back twice."""
    bus = desk.bus
    await shipped(desk, 10)
    await bus.publish(bus.topics.receipts, rma("r1", {"lic": "PLAIN", "quantity": 4}))
    await bus.publish(bus.topics.receipts, rma("r2", {"lic": "PLAIN", "quantity": 4}))

    assert answers(bus, "RMA-1") == [
        ("ReceiptPosted", "r1/posted"),
        ("ReceiptRejected", "r2/rejected"),
    ]
    assert answered(bus, "RMA-1") == [["r1"], ["r2"]]
    refused = bus.statuses("RMA-1")[1]
    assert (refused["reason_code"], refused["offending"]) == ("INVALID_QUANTITY", "RMA-1")
    assert "r1" in refused["reason"]
    assert [c["message_id"] for c in bus.commands("RMA-1")] == ["receipt:r1/1"]
    assert await lot(bus, "PO-1/1") == (4, 6)


async def test_two_versions_of_a_customer_return_in_one_batch_are_received_once(
    desk: Desk,
) -> None:
    bus = desk.bus
    await shipped(desk, 10)
    await bus.publish(
        bus.topics.receipts,
        rma("r1", {"lic": "PLAIN", "quantity": 4}),
        rma("r2", {"lic": "PLAIN", "quantity": 3}),
    )

    assert sorted(answers(bus, "RMA-1")) == [
        ("ReceiptPosted", "r1/posted"),
        ("ReceiptRejected", "r2/rejected"),
    ]
    assert await lot(bus, "PO-1/1") == (4, 6)


async def test_a_refused_customer_return_may_be_sent_again_corrected(desk: Desk) -> None:
    """Only a return posted or being posted counts: a refused one changed nothing."""
    bus = desk.bus
    await shipped(desk, 3)
    await bus.publish(bus.topics.receipts, rma("r1", {"lic": "PLAIN", "quantity": 5}))
    await bus.publish(bus.topics.receipts, rma("r2", {"lic": "PLAIN", "quantity": 3}))

    assert answers(bus, "RMA-1") == [
        ("ReceiptRejected", "r1/rejected"),  # more than was shipped (allocation)
        ("ReceiptPosted", "r2/posted"),
    ]
    assert await lot(bus, "PO-1/1") == (10, 0)


async def test_a_customer_return_received_before_is_refused_at_once_not_held(
    desk: Desk,
) -> None:
    """Resent naming an item receiving does not know yet: waiting could not save it."""
    bus = desk.bus
    await shipped(desk, 10)
    await bus.publish(bus.topics.receipts, rma("r1", {"lic": "PLAIN", "quantity": 4}))
    await bus.publish(
        bus.topics.receipts,
        rma("r2", {"lic": "PLAIN", "quantity": 4}, {"lic": "NEW", "quantity": 1}),
    )

    assert answers(bus, "RMA-1") == [
        ("ReceiptPosted", "r1/posted"),
        ("ReceiptRejected", "r2/rejected"),
    ]
    problems = bus.statuses("RMA-1")[1]["problems"]
    assert [(p["reason_code"], p["offending"]) for p in problems] == [
        ("INVALID_QUANTITY", "RMA-1"),
        ("UNKNOWN_ITEM", "NEW"),
    ]
    assert await bus.held() == []


# --- a held version is answered when a newer one arrives --------------------------------------


async def test_a_held_version_is_refused_before_its_corrected_version_is_posted(
    bus: Bus,
) -> None:
    """v1 names a mistyped LIC and waits for it; v2 corrects it and posts. v1 is answered then,
    before v2, and its wait running out later says nothing more."""
    await stocked(bus)
    await bus.publish(
        bus.topics.receipts, receipt("PO-78", {"lic": "PLAINN", "quantity": 5}, message_id="v1")
    )
    await bus.publish(
        bus.topics.receipts, receipt("PO-78", {"lic": "PLAIN", "quantity": 5}, message_id="v2")
    )
    await bus.fetch("receiving", "UPDATE held_receipts SET deadline = now()")
    await bus.settle_expired()
    await bus.item("PLAINN")

    assert answers(bus, "PO-78") == [
        ("ReceiptRejected", "v1/rejected"),
        ("ReceiptPosted", "v2/posted"),
    ]
    assert answered(bus, "PO-78") == [["v1"], ["v2"]]  # the superseded version answers itself
    (problem,) = bus.statuses("PO-78")[0]["problems"]
    assert (problem["reason_code"], problem["offending"]) == ("UNKNOWN_ITEM", "PLAINN")
    assert "superseded by message v2" in problem["reason"]
    assert await bus.held() == [("PO-78", "superseded", ["PLAINN"])]
    rows = await bus.fetch("receiving", "SELECT message_id, status FROM receipts ORDER BY 1")
    assert [tuple(r) for r in rows] == [("v1", "rejected"), ("v2", "posted")]


async def test_of_two_held_versions_only_the_newer_waits_and_posts(bus: Bus) -> None:
    await stocked(bus)
    await bus.publish(
        bus.topics.receipts, receipt("PO-77", {"lic": "NEW", "quantity": 5}, message_id="v1")
    )
    await bus.publish(
        bus.topics.receipts, receipt("PO-77", {"lic": "NEW", "quantity": 3}, message_id="v2")
    )
    assert answers(bus, "PO-77") == [("ReceiptRejected", "v1/rejected")]
    assert sorted(await bus.held()) == [
        ("PO-77", "held", ["NEW"]),
        ("PO-77", "superseded", ["NEW"]),
    ]

    await bus.item("NEW")

    assert answers(bus, "PO-77") == [
        ("ReceiptRejected", "v1/rejected"),
        ("ReceiptPosted", "v2/posted"),
    ]
    rows = await bus.fetch("allocation", "SELECT lot_id, received_qty FROM inventory_lots")
    assert [tuple(r) for r in rows] == [("PO-77/1", 3)]


async def test_of_two_versions_in_one_batch_the_older_does_not_wait(bus: Bus) -> None:
    await stocked(bus)
    await bus.publish(
        bus.topics.receipts,
        receipt("PO-79", {"lic": "NEW", "quantity": 5}, message_id="v1"),
        receipt("PO-79", {"lic": "NEW", "quantity": 3}, message_id="v2"),
    )
    assert answers(bus, "PO-79") == [("ReceiptRejected", "v1/rejected")]
    assert await bus.held() == [("PO-79", "held", ["NEW"])]

    await bus.item("NEW")

    assert answers(bus, "PO-79") == [
        ("ReceiptRejected", "v1/rejected"),
        ("ReceiptPosted", "v2/posted"),
    ]
    assert answered(bus, "PO-79") == [["v1"], ["v2"]]


async def test_a_held_return_is_superseded_by_its_resent_version(desk: Desk) -> None:
    """R13: only the newer version of the return is received, and only once."""
    bus = desk.bus
    await shipped(desk, 10)
    await bus.publish(bus.topics.receipts, rma("r1", {"lic": "PLAINN", "quantity": 4}))
    await bus.publish(bus.topics.receipts, rma("r2", {"lic": "PLAIN", "quantity": 4}))
    await bus.item("PLAINN")

    assert answers(bus, "RMA-1") == [
        ("ReceiptRejected", "r1/rejected"),
        ("ReceiptPosted", "r2/posted"),
    ]
    assert await lot(bus, "PO-1/1") == (4, 6)
