"""A `ConfirmHeld` allocation refuses still gets its receipt an answer.

Allocation refuses a `ConfirmHeld` for a line it does not hold (`UNKNOWN_SHIPMENT`, naming the
line's command): only a bug or an operator's manual intervention can cause it, but then no
`StockReceived` / `StockReturned` ever comes for that line, and the receipt, waiting for one,
was never answered. The refused line is now the receipt's problem: once every line is answered
the document is `ReceiptRejected`, naming it, with `posted_lines` listing exactly the lines
whose confirmation allocation did post.

Receiving against a real PostgreSQL with the test answering for allocation (the `Receiving`
harness of `test_receiving_whole`), the refusal built by allocation's own core and wire
translation; then the whole path, the real allocation refusing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from services.allocation import translate as allocation_wire
from services.allocation.domain.decide import decide
from services.allocation.domain.model import LicState
from shared.consumer import Handler, Inbound, UnitOfWork
from shared.contracts import commands as c
from shared.contracts import events as e
from tests.fixtures.infra import LotlineEnv
from tests.flows.test_receiving_flows import Route, open_bus, stocked
from tests.integration.test_receiving_whole import Receiving, held, open_receiving, received


@pytest.fixture
async def receiving(lotline_env: Callable[..., LotlineEnv]) -> AsyncIterator[Receiving]:
    async with open_receiving(lotline_env) as opened:
        yield opened


def confirm_refused(confirm: dict[str, Any]) -> e.CommandRejected:
    """Allocation's answer to `confirm` (a `ConfirmHeld` as receiving sent it) when it holds
    no such line: its own core's decision, in its own wire form."""
    command = c.ConfirmHeld.model_validate(confirm)
    (event,) = decide(LicState.empty(command.lic), allocation_wire.to_domain(command)).events
    wire = allocation_wire.to_wire(event, f"{command.message_id}#0", command)
    assert isinstance(wire, e.CommandRejected)
    return wire


async def test_a_refused_confirmation_rejects_the_receipt_naming_the_line_posted(
    receiving: Receiving,
) -> None:
    first, second = await receiving.receive(
        "PO-1", {"lic": "PLAIN", "quantity": 2}, {"lic": "BOLT", "quantity": 3}
    )
    _, confirm_second = await receiving.deliver(held(first), held(second))

    assert await receiving.deliver(confirm_refused(confirm_second)) == []
    assert await receiving.lines("PO-1") == [(1, "confirmed"), (2, "refused")]
    (status,) = await receiving.deliver(received(first))

    assert (status["type"], status["answers"]) == ("ReceiptRejected", ["msg-PO-1"])
    (problem,) = status["problems"]
    assert (problem["line_no"], problem["lic"], problem["reason_code"]) == (
        2,
        "BOLT",
        "UNKNOWN_SHIPMENT",
    )
    assert problem["offending"] == second["message_id"]
    assert [(p["line_no"], p["lot_id"]) for p in status["posted_lines"]] == [(1, "PO-1/1")]
    assert await receiving.receipt_status("PO-1") == "rejected"
    # Nothing held is left to cancel: neither line is.
    assert receiving.commands("CancelHeld") == []


async def test_every_confirmation_refused_rejects_the_receipt_with_nothing_posted(
    receiving: Receiving,
) -> None:
    first, second = await receiving.receive(
        "PO-2", {"lic": "PLAIN", "quantity": 2}, {"lic": "BOLT", "quantity": 3}
    )
    confirms = await receiving.deliver(held(first), held(second))

    (status,) = await receiving.deliver(*map(confirm_refused, confirms))

    assert status["type"] == "ReceiptRejected"
    assert [(p["line_no"], p["reason_code"]) for p in status["problems"]] == [
        (1, "UNKNOWN_SHIPMENT"),
        (2, "UNKNOWN_SHIPMENT"),
    ]
    assert status["posted_lines"] == []
    # Delivered again, the refusals change nothing: the receipt was answered once.
    assert await receiving.deliver(*map(confirm_refused, confirms)) == []
    assert len(receiving.statuses("PO-2")) == 1


async def test_a_refused_confirmation_after_the_line_posted_changes_nothing(
    receiving: Receiving,
) -> None:
    """The line's own answer came first (its hold was confirmed by hand, say): it stands."""
    first, second = await receiving.receive(
        "PO-3", {"lic": "PLAIN", "quantity": 2}, {"lic": "BOLT", "quantity": 3}
    )
    confirm_first, _ = await receiving.deliver(held(first), held(second))
    await receiving.deliver(received(first))

    assert await receiving.deliver(confirm_refused(confirm_first)) == []
    (status,) = await receiving.deliver(received(second))
    assert status["type"] == "ReceiptPosted"


def cancelling_first(handler: Handler[Any], command_id: str) -> Handler[Any]:
    """Allocation's consumer, but an operator cancels the held line `command_id` by hand just
    before receiving's `ConfirmHeld` of it is decided (a `CancelHeld` in the same batch)."""

    async def decide_batch(uow: UnitOfWork, batch: list[Inbound[Any]]) -> None:
        injected = []
        for inbound in batch:
            m = inbound.message
            if isinstance(m, c.ConfirmHeld) and m.command_id == command_id:
                cancel = c.CancelHeld(
                    message_id="operator-cancel", lic=m.lic, command_id=command_id
                )
                injected.append(Inbound(cancel, inbound.topic, 0, inbound.offset, inbound.key))
            injected.append(inbound)
        await handler(uow, injected)

    return decide_batch


async def test_with_allocation_deciding_a_refused_confirmation_gets_the_receipt_answered(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    async with open_bus(lotline_env) as bus:
        await stocked(bus)
        commands_route: list[Route] = bus.routes[bus.topics.commands]
        (allocation,) = commands_route
        commands_route[0] = Route(
            allocation.schema,
            allocation.adapter,
            cancelling_first(allocation.handler, "receipt:msg-PO-9/2"),
        )

        await bus.receive(
            "PO-9", {"lic": "PLAIN", "quantity": 2}, {"lic": "CAM", "quantity": 1, "serials": "S1"}
        )

        (status,) = bus.statuses("PO-9")
        assert status["type"] == "ReceiptRejected", status
        (problem,) = status["problems"]
        assert (problem["line_no"], problem["reason_code"]) == (2, "UNKNOWN_SHIPMENT")
        assert [p["line_no"] for p in status["posted_lines"]] == [1]
        rows = await bus.fetch("allocation", "SELECT lot_id FROM inventory_lots ORDER BY 1")
        assert [r["lot_id"] for r in rows] == ["PO-9/1"]
