"""A newer version of a receipt that arrives while an earlier version is still being posted
waits for that one's answer: receiving against a real PostgreSQL, with the test answering for
allocation (the `Receiving` harness of `test_receiving_whole`). Customer returns wait the same
way: `test_receiving_h1_return_versions`.

Sent at once, the newer version's lines would reach allocation while the earlier version's lines
are held there, and be refused "inventory lot <shipment_id>/<line_no> already exists: this line
was received before" even when the earlier version is then refused and nothing of the document
was received: the correction would be lost on a false reason. Waiting, it is checked and sent
as if it had arrived just after the earlier version's answer: posted when that one was refused,
refused by allocation (its lots exist) when that one was posted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import asyncpg
import orjson
import pytest

from shared.consumer import UnitOfWork
from shared.outbox import Outbox
from tests.fixtures.infra import LotlineEnv
from tests.fixtures.locks import waits_for_a_lock
from tests.flows.test_receiving_flows import open_bus, receipt, stocked
from tests.integration.test_receiving_whole import (
    Receiving,
    held,
    open_receiving,
    received,
    refused,
)

LINES = ({"lic": "PLAIN", "quantity": 2}, {"lic": "CAM", "quantity": 1, "serials": ["S1"]})
CORRECTED = ({"lic": "PLAIN", "quantity": 2}, {"lic": "CAM", "quantity": 1, "serials": ["S2"]})


@pytest.fixture
async def receiving(lotline_env: Callable[..., LotlineEnv]) -> AsyncIterator[Receiving]:
    async with open_receiving(lotline_env) as opened:
        yield opened


def version(message_id: str, *lines: dict[str, Any], **header: Any) -> Any:
    return receipt("PO-1", *lines, message_id=message_id, **header)


async def test_a_version_sent_while_the_earlier_is_held_is_posted_once_that_one_is_refused(
    receiving: Receiving,
) -> None:
    """R4 (whole receipts): v1 names a serial in stock; its correction v2 comes while v1's
    lines are still unanswered. v2 sends nothing until v1 is answered, then goes out."""
    first, second = await receiving.deliver(version("v1", *LINES))

    assert await receiving.deliver(version("v2", *CORRECTED)) == []
    assert await receiving.lines("PO-1") == [(1, "pending"), (2, "pending")]

    assert await receiving.deliver(held(first)) == []
    emitted = await receiving.deliver(refused(second))

    # v1's cancellation and refusal first, then v2's lines, in the same transaction.
    assert [(v["type"], v.get("message_id")) for v in emitted] == [
        ("CancelHeld", "receipt:v1/1/cancel"),
        ("ReceiptRejected", "v1/rejected"),
        ("ReceiveStock", "receipt:v2/1"),
        ("ReceiveStock", "receipt:v2/2"),
    ]
    assert [c["serials"] for c in emitted[2:]] == [[], ["S2"]]
    assert all(c["hold"] for c in emitted[2:])
    v2_first, v2_second = emitted[2:]
    await receiving.deliver(held(v2_first), held(v2_second))
    await receiving.deliver(received(v2_first))
    (posted,) = await receiving.deliver(received(v2_second))
    assert (posted["type"], posted["answers"]) == ("ReceiptPosted", ["v2"])
    assert [s["answers"] for s in receiving.statuses("PO-1")] == [["v1"], ["v2"]]


async def test_a_version_waiting_for_a_posted_one_is_sent_after_its_posting(
    receiving: Receiving,
) -> None:
    """v1 posts: v2 is sent only after v1's `ReceiptPosted` (allocation then refuses its lines,
    whose lots exist), so its refusal never comes before the posting it depends on."""
    first, second = await receiving.deliver(version("v1", *LINES))
    assert await receiving.deliver(version("v2", *CORRECTED)) == []
    await receiving.deliver(held(first), held(second))
    assert await receiving.deliver(received(first)) == []

    emitted = await receiving.deliver(received(second))

    assert [(v["type"], v.get("message_id")) for v in emitted] == [
        ("ReceiptPosted", "v1/posted"),
        ("ReceiveStock", "receipt:v2/1"),
        ("ReceiveStock", "receipt:v2/2"),
    ]


async def test_of_two_versions_in_one_batch_the_newer_waits_for_the_older(
    receiving: Receiving,
) -> None:
    emitted = await receiving.deliver(version("v1", *LINES), version("v2", *CORRECTED))

    assert [(v["type"], v["message_id"]) for v in emitted] == [
        ("ReceiveStock", "receipt:v1/1"),
        ("ReceiveStock", "receipt:v1/2"),
    ]
    first, second = emitted
    await receiving.deliver(held(first))
    emitted = await receiving.deliver(refused(second))
    assert [v["message_id"] for v in emitted][-2:] == ["receipt:v2/1", "receipt:v2/2"]


async def test_a_third_version_supersedes_the_waiting_second_and_waits_in_its_place(
    receiving: Receiving,
) -> None:
    """Only the latest version waits: the one it replaces is answered at once."""
    first, second = await receiving.deliver(version("v1", *LINES))
    assert await receiving.deliver(version("v2", *LINES)) == []

    (superseded,) = await receiving.deliver(version("v3", *CORRECTED))

    assert (superseded["type"], superseded["answers"]) == ("ReceiptRejected", ["v2"])
    assert "superseded by message v3" in superseded["reason"]
    await receiving.deliver(held(first))
    emitted = await receiving.deliver(refused(second))
    assert [v["message_id"] for v in emitted][-2:] == ["receipt:v3/1", "receipt:v3/2"]
    assert [s["answers"] for s in receiving.statuses("PO-1")] == [["v2"], ["v1"]]


async def test_a_version_refused_at_the_door_does_not_wait(receiving: Receiving) -> None:
    """Its own problems are its answer whatever the earlier version's is."""
    await receiving.deliver(version("v1", *LINES))

    (status,) = await receiving.deliver(version("v2", {"lic": "CAM", "quantity": 2}))

    assert (status["type"], status["answers"]) == ("ReceiptRejected", ["v2"])
    # Its own problem (its serialized line names no serials), not one about the earlier version.
    problems = [(p["line_no"], p["reason_code"], p["offending"]) for p in status["problems"]]
    assert problems == [(1, "SERIAL_REQUIRED", "CAM")], status["problems"]


async def test_a_version_waiting_for_an_earlier_one_and_an_unknown_item_waits_for_both(
    receiving: Receiving,
) -> None:
    """Its item arriving first does not send it while the earlier version is being posted."""
    first, second = await receiving.deliver(version("v1", *LINES))
    assert await receiving.deliver(version("v2", *CORRECTED, {"lic": "NEW", "quantity": 1})) == []

    await receiving.items("NEW")
    assert [c["message_id"] for c in receiving.commands("ReceiveStock")] == [
        "receipt:v1/1",
        "receipt:v1/2",
    ]

    await receiving.deliver(held(first))
    emitted = await receiving.deliver(refused(second))
    assert [(v["type"], v.get("message_id")) for v in emitted][-3:] == [
        ("ReceiveStock", "receipt:v2/1"),
        ("ReceiveStock", "receipt:v2/2"),
        ("ReceiveStock", "receipt:v2/3"),
    ]


async def test_a_version_whose_earlier_one_is_never_answered_is_sent_once_its_wait_is_over(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    async with open_receiving(lotline_env, LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS="0.2") as receiving:
        await receiving.deliver(version("v1", *LINES))
        assert await receiving.deliver(version("v2", *CORRECTED)) == []
        await asyncio.sleep(0.3)

        outbox = Outbox()
        async with receiving.pool.acquire() as proxy, proxy.transaction():
            await receiving.service.settle_expired(
                UnitOfWork(cast(asyncpg.Connection, proxy), outbox)
            )

        sent = [orjson.loads(row.payload) for row in outbox.rows]
        assert [(v["type"], v["message_id"]) for v in sent] == [
            ("ReceiveStock", "receipt:v2/1"),
            ("ReceiveStock", "receipt:v2/2"),
        ]


async def test_with_allocation_deciding_a_correction_sent_while_the_first_is_held_is_posted(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """The whole path, allocation deciding: v1 names a serial in stock, v2 (sent before v1 is
    answered) corrects it; v1 is refused, v2 posted, and the serials in stock are v2's."""
    async with open_bus(lotline_env) as bus:
        await stocked(bus)
        await bus.receive("PO-0", {"lic": "CAM", "quantity": 1, "serials": "S1"})
        await bus.publish(
            bus.topics.receipts,
            receipt("PO-1", *LINES, message_id="v1"),
            receipt("PO-1", *CORRECTED, message_id="v2"),
        )

        statuses = bus.statuses("PO-1")
        assert [(s["type"], s["answers"]) for s in statuses] == [
            ("ReceiptRejected", ["v1"]),
            ("ReceiptPosted", ["v2"]),
        ]
        assert [(p["line_no"], p["reason_code"]) for p in statuses[0]["problems"]] == [
            (2, "DUPLICATE_SERIAL")
        ]
        rows = await bus.fetch("allocation", "SELECT serial, lot_id FROM units ORDER BY serial")
        assert [(r["serial"], r["lot_id"]) for r in rows] == [("S1", "PO-0/1"), ("S2", "PO-1/2")]


async def test_a_version_read_while_the_earlier_ones_answer_releases_the_next_waits_for_it(
    receiving: Receiving,
) -> None:
    """Two transactions at once: allocation's answer refuses v1 and releases the waiting v2,
    while v3 arrives. v3 waits for that transaction's locks, then for v2, now being posted:
    it is never sent beside v2."""
    first, second = await receiving.deliver(version("v1", *LINES))
    assert await receiving.deliver(version("v2", *CORRECTED)) == []
    await receiving.deliver(held(first))

    async with receiving.delivering(refused(second)) as rows:
        late = asyncio.create_task(receiving.deliver(version("v3", *LINES)))
        await waits_for_a_lock(receiving)
    answered = [orjson.loads(row.payload) for row in rows]
    assert [v["message_id"] for v in answered][-2:] == ["receipt:v2/1", "receipt:v2/2"]
    assert await late == []

    v2_first, v2_second = answered[-2:]
    await receiving.deliver(held(v2_first))
    emitted = await receiving.deliver(refused(v2_second))
    assert [v["message_id"] for v in emitted][-2:] == ["receipt:v3/1", "receipt:v3/2"]
