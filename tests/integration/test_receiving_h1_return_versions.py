"""A customer return sent again (same `shipment_id`, another `message_id`) while the earlier
version is still being posted waits for that one's answer, as a purchase receipt's newer version
does (R13): refused at once, it was lost whenever the earlier version was then refused, though
it may have been the correction. Receiving against a real PostgreSQL with the test answering for
allocation (the `Receiving` harness of `test_receiving_whole`), then the whole path with the real
allocation and shipping deciding (the `Bus` of the flow tests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any, cast

import asyncpg
import orjson
import pytest

from shared.consumer import UnitOfWork
from shared.contracts import events as e
from shared.contracts.reasons import ReasonCode
from shared.outbox import Outbox
from tests.fixtures.infra import LotlineEnv
from tests.flows.test_receiving_flows import open_bus, receipt, stocked
from tests.flows.test_shipping_flows import Desk
from tests.integration.test_receiving_h1_confirm_refused import confirm_refused
from tests.integration.test_receiving_whole import DAY, Receiving, held, open_receiving

ONE = ({"lic": "CAM", "quantity": 1, "serials": ["S9"]},)
CORRECTED = ({"lic": "CAM", "quantity": 1, "serials": ["S1"]},)


@pytest.fixture
async def receiving(lotline_env: Callable[..., LotlineEnv]) -> AsyncIterator[Receiving]:
    async with open_receiving(lotline_env) as opened:
        yield opened


def rma(message_id: str, *lines: dict[str, Any]) -> Any:
    return receipt(
        "RMA-1", *lines, message_id=message_id, source="customer_return", customer="Montboro"
    )


def not_shipped(command: dict[str, Any]) -> e.CommandRejected:
    serial = command["serials"][0]
    return e.CommandRejected(
        message_id=f"{command['message_id']}#0",
        lic=command["lic"],
        command_id=command["message_id"],
        command_type=command["type"],
        shipment_id=command["shipment_id"],
        line_no=command["line_no"],
        reason_code=ReasonCode.SERIAL_NOT_SHIPPED,
        reason=f"serial {serial} was not shipped to Montboro",
        offending=serial,
    )


def returned(command: dict[str, Any]) -> e.StockReturned:
    quantity = Decimal(command["quantity"])
    return e.StockReturned(
        message_id=f"{command['message_id']}#0",
        lic=command["lic"],
        command_id=command["message_id"],
        shipment_id=command["shipment_id"],
        line_no=command["line_no"],
        office=command["office"],
        customer=command["customer"],
        received_on=DAY,
        quantity=quantity,
        movements=[e.Movement(lot_id="PO-1/1", quantity=quantity, unit_cost=Decimal("2.50"))],
    )


async def test_a_return_sent_again_while_the_first_is_posted_is_posted_once_that_one_is_refused(
    receiving: Receiving,
) -> None:
    """R13: r1 names a serial never shipped; its correction r2 comes before r1 is answered. r2
    publishes nothing until allocation refuses r1, then goes out after r1's refusal."""
    (first,) = await receiving.deliver(rma("r1", *ONE))

    assert await receiving.deliver(rma("r2", *CORRECTED)) == []
    emitted = await receiving.deliver(not_shipped(first))

    assert [(v["type"], v.get("message_id")) for v in emitted] == [
        ("ReceiptRejected", "r1/rejected"),
        ("ReturnStock", "receipt:r2/1"),
    ]
    assert emitted[1]["serials"] == ["S1"]
    (posted,) = await receiving.deliver(returned(emitted[1]))
    assert (posted["type"], posted["answers"]) == ("ReceiptPosted", ["r2"])
    assert [s["answers"] for s in receiving.statuses("RMA-1")] == [["r1"], ["r2"]]


async def test_a_return_waiting_for_one_that_posts_is_refused_as_received_before(
    receiving: Receiving,
) -> None:
    """R13: r1 posts, so r2 would put the same units back twice: refused whole, naming r1,
    right after r1's posting and sending nothing."""
    (first,) = await receiving.deliver(rma("r1", *ONE))
    assert await receiving.deliver(rma("r2", *ONE)) == []

    emitted = await receiving.deliver(returned(first))

    assert [(v["type"], v["answers"]) for v in emitted] == [
        ("ReceiptPosted", ["r1"]),
        ("ReceiptRejected", ["r2"]),
    ]
    (problem,) = emitted[1]["problems"]
    assert (problem["reason_code"], problem["offending"]) == ("INVALID_QUANTITY", "RMA-1")
    assert "received before, as message r1" in problem["reason"]
    assert receiving.commands("ReturnStock") == [first]


async def test_a_return_sent_again_after_the_first_posted_is_still_refused_at_once(
    receiving: Receiving,
) -> None:
    (first,) = await receiving.deliver(rma("r1", *ONE))
    await receiving.deliver(returned(first))

    (status,) = await receiving.deliver(rma("r2", *CORRECTED))

    assert (status["type"], status["answers"]) == ("ReceiptRejected", ["r2"])
    assert "received before, as message r1" in status["reason"]


async def test_two_versions_of_a_return_in_one_batch_the_newer_waits_for_the_older(
    receiving: Receiving,
) -> None:
    emitted = await receiving.deliver(rma("r1", *ONE), rma("r2", *CORRECTED))

    assert [(v["type"], v["message_id"]) for v in emitted] == [("ReturnStock", "receipt:r1/1")]
    emitted = await receiving.deliver(not_shipped(emitted[0]))
    assert [(v["type"], v.get("message_id")) for v in emitted] == [
        ("ReceiptRejected", "r1/rejected"),
        ("ReturnStock", "receipt:r2/1"),
    ]


async def test_with_allocation_deciding_a_corrected_return_sent_at_once_is_posted(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """The whole path: S1 and S2 shipped to Montboro; r1 returns S9 (never shipped) and r2,
    sent right behind it, corrects it to S1. r1 is refused SERIAL_NOT_SHIPPED, r2 posted."""
    async with open_bus(lotline_env) as bus:
        await stocked(bus)
        desk = Desk(bus)
        await bus.receive("PO-1", {"lic": "CAM", "quantity": 2, "serials": "S1,S2"})
        await desk.request("S-1", {"lic": "CAM", "quantity": 2, "serials": "S1,S2"})
        await desk.ship("S-1")
        assert desk.last("S-1")["type"] == "ShipmentShipped"

        await bus.publish(bus.topics.receipts, rma("r1", *ONE), rma("r2", *CORRECTED))

        statuses = bus.statuses("RMA-1")
        assert [(s["type"], s["answers"]) for s in statuses] == [
            ("ReceiptRejected", ["r1"]),
            ("ReceiptPosted", ["r2"]),
        ]
        assert [p["reason_code"] for p in statuses[0]["problems"]] == ["SERIAL_NOT_SHIPPED"]
        rows = await bus.fetch("allocation", "SELECT serial, status FROM units ORDER BY serial")
        assert [(r["serial"], r["status"]) for r in rows] == [
            ("S1", "available"),
            ("S2", "shipped"),
        ]


async def test_a_return_whose_earlier_version_is_never_answered_is_refused_once_its_wait_is_over(
    receiving: Receiving,
) -> None:
    """Sent then, it could put r1's units back twice: refused whole, saying r1 is still being
    received."""
    await receiving.deliver(rma("r1", *ONE))
    assert await receiving.deliver(rma("r2", *CORRECTED)) == []
    await receiving.fetch("UPDATE held_receipts SET deadline = now()")

    outbox = Outbox()
    async with receiving.pool.acquire() as proxy, proxy.transaction():
        await receiving.service.settle_expired(UnitOfWork(cast(asyncpg.Connection, proxy), outbox))

    (status,) = [orjson.loads(row.payload) for row in outbox.rows]
    assert (status["type"], status["answers"]) == ("ReceiptRejected", ["r2"])
    assert (status["reason_code"], status["offending"]) == ("INVALID_QUANTITY", "RMA-1")
    assert "still being received, as message r1" in status["reason"]


async def test_a_return_rejected_with_some_lines_posted_counts_as_received(
    receiving: Receiving,
) -> None:
    """R13: allocation refused to confirm r1's second line after posting its first (see
    `test_receiving_h1_confirm_refused`): r1 is rejected naming the posted line, and sending
    it again would put that unit back twice."""
    first, second = await receiving.deliver(rma("r1", *ONE, {"lic": "PLAIN", "quantity": 1}))
    _, confirm_second = await receiving.deliver(held(first), held(second))
    await receiving.deliver(confirm_refused(confirm_second))
    (rejected,) = await receiving.deliver(returned(first))
    assert [line["line_no"] for line in rejected["posted_lines"]] == [1]

    (status,) = await receiving.deliver(rma("r2", *ONE, {"lic": "PLAIN", "quantity": 1}))

    assert (status["type"], status["answers"]) == ("ReceiptRejected", ["r2"])
    assert "received before, as message r1" in status["reason"]
