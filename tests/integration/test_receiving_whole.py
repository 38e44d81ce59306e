"""A receipt of several lines is received whole or not at all: receiving against a real
PostgreSQL, with the test answering for allocation.

Receiving sends every line of such a document with `hold`; allocation answers `LineHeld` for
each line it accepts. Once every line is answered, receiving confirms them all (`ConfirmHeld`,
whose answers then post the document) or, when a line was refused, cancels the held ones
(`CancelHeld`) and rejects the document with nothing posted, in the transaction that recorded
the last answer. Playing allocation here makes every order of answers, and every redelivery,
the test's choice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal
from typing import Any, cast

import asyncpg
import orjson
import pytest
from pydantic import BaseModel, TypeAdapter

from services.receiving import app as receiving_app
from services.receiving.service import ReceivingService
from shared import db
from shared.config import Settings
from shared.consumer import Inbound, UnitOfWork
from shared.contracts import events as e
from shared.contracts.codec import decode, encode
from shared.contracts.reasons import ReasonCode
from shared.contracts.upstream import ReceiptMessage
from shared.outbox import Outbox, OutboxRow, channel_for, write_outbox
from tests.fixtures.infra import LotlineEnv
from tests.fixtures.locks import waits_for_a_lock
from tests.flows.test_receiving_flows import receipt

DAY = date(2026, 11, 2)
EVENTS: TypeAdapter[Any] = TypeAdapter(e.InventoryEvent)
RECEIPTS: TypeAdapter[Any] = TypeAdapter(ReceiptMessage)


class Receiving:
    """Receiving's two handlers, each delivery one transaction with an outbox, as the consumer
    runs them; messages go through the wire contract. `published`: everything it emitted."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self.topics = settings.topics
        self.pool = pool
        self.service = ReceivingService(settings)
        self.published: list[OutboxRow] = []
        self._offset = 0

    @asynccontextmanager
    async def delivering(self, *messages: BaseModel) -> AsyncIterator[list[OutboxRow]]:
        """Deliver `messages` as ONE batch; the transaction commits when the block ends, and
        the rows it emitted are in the list yielded (filled once the handler ran)."""
        receipts = [m for m in messages if getattr(m, "type", None) == "ShipmentReceived"]
        handler = self.service.receive_documents if receipts else self.service.collect_answers
        adapter = RECEIPTS if receipts else EVENTS
        inbound = []
        for message in messages:
            self._offset += 1
            inbound.append(Inbound(decode(adapter, encode(message)), "t", 0, self._offset, None))
        outbox = Outbox()
        async with self.pool.acquire() as proxy, proxy.transaction():
            conn = cast(asyncpg.Connection, proxy)
            await handler(UnitOfWork(conn, outbox), inbound)
            await write_outbox(conn, outbox.rows, channel_for("receiving"))
            emitted: list[OutboxRow] = []
            emitted.extend(outbox.rows)
            yield emitted
        self.published.extend(outbox.rows)

    async def deliver(self, *messages: BaseModel) -> list[dict[str, Any]]:
        """Deliver `messages` as ONE batch; what it emitted, as JSON."""
        async with self.delivering(*messages) as emitted:
            pass
        return [orjson.loads(row.payload) for row in emitted]

    # -- what was published ------------------------------------------------------------------

    def on(self, topic: str, kind: str | None = None) -> list[dict[str, Any]]:
        values = [orjson.loads(r.payload) for r in self.published if r.topic == topic]
        return [v for v in values if kind is None or v["type"] == kind]

    def statuses(self, document_id: str) -> list[dict[str, Any]]:
        return [v for v in self.on(self.topics.status) if v["shipment_id"] == document_id]

    def commands(self, kind: str) -> list[dict[str, Any]]:
        return self.on(self.topics.commands, kind)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))

    async def lines(self, document_id: str) -> list[tuple[int, str]]:
        rows = await self.fetch(
            "SELECT line_no, l.status FROM receipt_lines l JOIN receipts USING (message_id)"
            " WHERE shipment_id = $1 ORDER BY line_no",
            document_id,
        )
        return [(r["line_no"], r["status"]) for r in rows]

    async def receipt_status(self, document_id: str) -> str:
        (row,) = await self.fetch("SELECT status FROM receipts WHERE shipment_id = $1", document_id)
        return str(row["status"])

    # -- upstream, and allocation's answers ----------------------------------------------------

    async def receive(self, shipment_id: str, *lines: dict[str, Any], **header: Any) -> list[Any]:
        """The document's line commands."""
        return await self.deliver(receipt(shipment_id, *lines, **header))

    async def items(self, *lics: str, **flags: Any) -> None:
        await self.deliver(
            *(
                e.ItemUpserted(
                    message_id=f"item-{lic}",
                    lic=lic,
                    command_id=f"cmd-item-{lic}",
                    track_mfr_lot=flags.get("track_mfr_lot", False),
                    serialized=flags.get("serialized", False),
                    perishable=False,
                    est_unit_cost=Decimal("2.50"),
                )
                for lic in lics
            )
        )


def held(command: dict[str, Any]) -> e.LineHeld:
    return e.LineHeld(
        message_id=f"{command['message_id']}#held",
        lic=command["lic"],
        command_id=command["message_id"],
        shipment_id=command["shipment_id"],
        line_no=command["line_no"],
    )


def refused(command: dict[str, Any], offending: str = "S1") -> e.CommandRejected:
    return e.CommandRejected(
        message_id=f"{command['message_id']}#refused",
        lic=command["lic"],
        command_id=command["message_id"],
        command_type=command["type"],
        shipment_id=command["shipment_id"],
        line_no=command["line_no"],
        reason_code=ReasonCode.DUPLICATE_SERIAL,
        reason=f"serial {offending} is already in stock",
        offending=offending,
    )


def received(command: dict[str, Any]) -> e.StockReceived:
    """The line's decision, published by allocation once the line is confirmed (or at once,
    for a line sent without `hold`)."""
    quantity = Decimal(command["quantity"])
    return e.StockReceived(
        message_id=f"{command['message_id']}#0",
        lic=command["lic"],
        command_id=command["message_id"],
        shipment_id=command["shipment_id"],
        line_no=command["line_no"],
        lot_id=command["lot_id"],
        office=command["office"],
        received_on=DAY,
        quantity=quantity,
        unit_cost=Decimal("2.50"),
        movements=[
            e.Movement(lot_id=command["lot_id"], quantity=quantity, unit_cost=Decimal("2.50"))
        ],
    )


@asynccontextmanager
async def open_receiving(
    lotline_env: Callable[..., LotlineEnv], **env_overrides: str
) -> AsyncIterator[Receiving]:
    env = lotline_env(topics=False, **env_overrides)
    await db.migrate(env.dsn, receiving_app.SCHEMA, db.migration_files(receiving_app.MIGRATIONS))
    pool = await db.create_pool(env.dsn, receiving_app.SCHEMA, size=3)
    try:
        receiving = Receiving(env.settings, pool)
        await receiving.items("PLAIN", "BOLT")
        await receiving.items("CAM", serialized=True)
        yield receiving
    finally:
        await pool.close()


@pytest.fixture
async def receiving(lotline_env: Callable[..., LotlineEnv]) -> AsyncIterator[Receiving]:
    async with open_receiving(lotline_env) as opened:
        yield opened


# --- tests ------------------------------------------------------------------------------------


async def test_a_refused_line_cancels_the_held_ones_and_nothing_of_the_document_posts(
    receiving: Receiving,
) -> None:
    commands = await receiving.receive(
        "PO-1",
        {"lic": "PLAIN", "quantity": 2},
        {"lic": "CAM", "quantity": 1, "serials": ["S1"]},
        {"lic": "BOLT", "quantity": 3},
    )
    assert [(c["type"], c["line_no"], c["hold"]) for c in commands] == [
        ("ReceiveStock", 1, True),
        ("ReceiveStock", 2, True),
        ("ReceiveStock", 3, True),
    ]
    first, second, third = commands

    assert await receiving.deliver(held(first)) == []
    assert await receiving.deliver(refused(second)) == []  # line 3 is still unanswered
    assert await receiving.lines("PO-1") == [(1, "held"), (2, "refused"), (3, "pending")]

    emitted = await receiving.deliver(held(third))

    assert [(v["type"], v.get("message_id")) for v in emitted] == [
        ("CancelHeld", "receipt:msg-PO-1/1/cancel"),
        ("CancelHeld", "receipt:msg-PO-1/3/cancel"),
        ("ReceiptRejected", "msg-PO-1/rejected"),
    ]
    cancels = receiving.commands("CancelHeld")
    assert [(c["lic"], c["command_id"]) for c in cancels] == [
        ("PLAIN", first["message_id"]),
        ("BOLT", third["message_id"]),
    ]
    (status,) = receiving.statuses("PO-1")
    assert [(p["line_no"], p["reason_code"], p["offending"]) for p in status["problems"]] == [
        (2, "DUPLICATE_SERIAL", "S1")
    ]
    assert status["posted_lines"] == []
    assert await receiving.lines("PO-1") == [(1, "cancelled"), (2, "refused"), (3, "cancelled")]
    assert await receiving.receipt_status("PO-1") == "rejected"
    # The cancellations and the status left in one transaction, through its outbox, keyed by
    # LIC and by document.
    rows = await receiving.fetch("SELECT key, headers ->> 'type' AS type FROM outbox ORDER BY id")
    assert [(bytes(r["key"]), r["type"]) for r in rows[-3:]] == [
        (b"PLAIN", "CancelHeld"),
        (b"BOLT", "CancelHeld"),
        (b"PO-1", "ReceiptRejected"),
    ]

    # Allocation's answers delivered again change nothing.
    assert await receiving.deliver(held(first), refused(second), held(third)) == []
    assert await receiving.lines("PO-1") == [(1, "cancelled"), (2, "refused"), (3, "cancelled")]


async def test_every_line_held_is_confirmed_then_posted_by_the_confirmed_answers(
    receiving: Receiving,
) -> None:
    commands = await receiving.receive(
        "PO-2",
        {"lic": "PLAIN", "quantity": 2},
        {"lic": "CAM", "quantity": 1, "serials": ["S7"]},
    )
    first, second = commands

    emitted = await receiving.deliver(held(first), held(second))

    assert [(v["type"], v["message_id"], v["lic"], v["command_id"]) for v in emitted] == [
        ("ConfirmHeld", "receipt:msg-PO-2/1/confirm", "PLAIN", first["message_id"]),
        ("ConfirmHeld", "receipt:msg-PO-2/2/confirm", "CAM", second["message_id"]),
    ]
    assert receiving.statuses("PO-2") == []
    assert await receiving.lines("PO-2") == [(1, "confirmed"), (2, "confirmed")]
    assert await receiving.receipt_status("PO-2") == "posting"

    # A LineHeld delivered again cannot hold a confirmed line a second time.
    assert await receiving.deliver(held(second)) == []
    assert await receiving.lines("PO-2") == [(1, "confirmed"), (2, "confirmed")]

    assert await receiving.deliver(received(second)) == []
    assert await receiving.lines("PO-2") == [(1, "confirmed"), (2, "posted")]
    (status,) = await receiving.deliver(received(first))

    assert status["type"] == "ReceiptPosted"
    assert [(line["line_no"], line["lot_id"]) for line in status["lines"]] == [
        (1, "PO-2/1"),
        (2, "PO-2/2"),
    ]
    assert await receiving.lines("PO-2") == [(1, "posted"), (2, "posted")]
    assert await receiving.receipt_status("PO-2") == "posted"
    assert len(receiving.commands("ConfirmHeld")) == 2


async def test_a_line_held_again_while_its_document_waits_changes_nothing(
    receiving: Receiving,
) -> None:
    first, second = await receiving.receive(
        "PO-3", {"lic": "PLAIN", "quantity": 1}, {"lic": "BOLT", "quantity": 1}
    )
    assert await receiving.deliver(held(first)) == []
    assert await receiving.deliver(held(first)) == []  # the relay published it again
    assert await receiving.lines("PO-3") == [(1, "held"), (2, "pending")]

    emitted = await receiving.deliver(held(second), held(second))
    assert [v["type"] for v in emitted] == ["ConfirmHeld", "ConfirmHeld"]
    assert [c["command_id"] for c in receiving.commands("ConfirmHeld")] == [
        first["message_id"],
        second["message_id"],
    ]


async def test_a_single_line_document_is_sent_without_hold_and_settled_as_before(
    receiving: Receiving,
) -> None:
    (posting,) = await receiving.receive("PO-4", {"lic": "PLAIN", "quantity": 5})
    assert posting["hold"] is False
    (status,) = await receiving.deliver(received(posting))
    assert status["type"] == "ReceiptPosted"

    (refusing,) = await receiving.receive("PO-5", {"lic": "CAM", "quantity": 1, "serials": "S1"})
    assert refusing["hold"] is False
    (status,) = await receiving.deliver(refused(refusing))
    assert (status["type"], status["posted_lines"]) == ("ReceiptRejected", [])
    assert receiving.commands("ConfirmHeld") == receiving.commands("CancelHeld") == []


async def test_the_lines_of_a_customer_return_are_held_too(receiving: Receiving) -> None:
    commands = await receiving.receive(
        "RMA-1",
        {"lic": "CAM", "quantity": 1, "serials": ["S1"]},
        {"lic": "PLAIN", "quantity": 1},
        source="customer_return",
        customer="Montboro",
    )
    assert [(c["type"], c["hold"]) for c in commands] == [
        ("ReturnStock", True),
        ("ReturnStock", True),
    ]
    emitted = await receiving.deliver(refused(commands[0]), held(commands[1]))
    assert [v["type"] for v in emitted] == ["CancelHeld", "ReceiptRejected"]
    assert emitted[1]["posted_lines"] == []


async def test_a_receipt_released_when_its_item_arrives_is_sent_held(
    receiving: Receiving,
) -> None:
    """Held documents settle through the same admission: the same hold."""
    assert (
        await receiving.receive(
            "PO-6", {"lic": "PLAIN", "quantity": 1}, {"lic": "NEW", "quantity": 2}
        )
        == []
    )
    await receiving.items("NEW")

    commands = receiving.on(receiving.topics.commands, "ReceiveStock")
    sent = [c for c in commands if c["shipment_id"] == "PO-6"]
    assert [(c["lic"], c["hold"]) for c in sent] == [("PLAIN", True), ("NEW", True)]


async def test_the_last_two_lines_held_at_once_are_confirmed_by_one_transaction(
    receiving: Receiving,
) -> None:
    """Two transactions (two partitions) answer the document's last lines together: the
    second waits for the first's lock on the document, then sees both lines held."""
    first, second = await receiving.receive(
        "PO-7", {"lic": "PLAIN", "quantity": 1}, {"lic": "BOLT", "quantity": 1}
    )

    async with receiving.delivering(held(first)) as early:
        late = asyncio.create_task(receiving.deliver(held(second)))
        await waits_for_a_lock(receiving)
        assert early == []  # this one sees line 2 still pending
    emitted = await late

    assert [(v["type"], v["command_id"]) for v in emitted] == [
        ("ConfirmHeld", first["message_id"]),
        ("ConfirmHeld", second["message_id"]),
    ]
    assert await receiving.lines("PO-7") == [(1, "confirmed"), (2, "confirmed")]
