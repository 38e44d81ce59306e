"""A sale queued behind a held receipt in a backlog waits for it, through the real message path
with the four services running as OS processes.

Allocation is stopped while a receipt of two lines and then a sale needing both are turned into
commands, so allocation finds them queued on `inventory.commands`: both receipt lines (held
until receiving confirms them), then the sale line, then, only once allocation has answered the
held lines, their confirmations. The sale is decided before the confirmations arrive; short of
stock only because the receipt is still held, it waits (nothing published) and is allocated once
both lines are confirmed, instead of being refused `INSUFFICIENT_STOCK`
(services/allocation/domain/waiting.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord

from shared import stack
from tests.e2e.conftest import FAST_JOIN
from tests.e2e.test_golden_path import _get, _status
from tests.fixtures.infra import LotlineEnv, json_values, kafka_publish, kafka_read_until

Records = list[ConsumerRecord[bytes, bytes]]


def _json(message_type: str, /, **fields: Any) -> bytes:
    body = {"type": message_type, "occurred_at": "2026-11-01T10:00:00Z", **fields}
    return json.dumps(body).encode()


def _of(records: Records, kind: str, **fields: Any) -> list[tuple[int, int, dict[str, Any]]]:
    """(partition, offset, value) of each record of type `kind` whose value has `fields`."""
    return [
        (record.partition, record.offset, value)
        for record in records
        for value in json_values([record])
        if value.get("type") == kind and all(value.get(k) == v for k, v in fields.items())
    ]


async def _read(env: LotlineEnv, topic: str, done: Callable[[Records], bool]) -> Records:
    return await kafka_read_until(env.bootstrap, topic, done, timeout=60)


async def _answer(env: LotlineEnv, document: str, kinds: tuple[str, ...]) -> dict[str, Any]:
    """The first status of `document` among `kinds` (any of them: a wrong answer fails the test
    at once rather than after a timeout)."""

    def answered(records: Records) -> bool:
        return any(
            v.get("shipment_id") == document and v["type"] in kinds for v in json_values(records)
        )

    records = await _read(env, env.settings.topics.status, answered)
    return next(
        v for v in json_values(records) if v.get("shipment_id") == document and v["type"] in kinds
    )


async def _waiting_lines(env: LotlineEnv) -> int:
    conn = await asyncpg.connect(env.dsn)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM allocation.waiting_lines")
        return count
    finally:
        await conn.close()


async def test_a_sale_queued_behind_a_held_receipt_waits_for_it_and_is_allocated(
    lotline_env: Any,
) -> None:
    env: LotlineEnv = lotline_env(**FAST_JOIN)
    topics = env.settings.topics
    run = uuid.uuid4().hex[:8]
    lic, receipt, sale = f"PLAIN-{run}", f"PO-W-{run}", f"SO-W-{run}"
    others = stack.start_services(env.env, ["receiving", "shipping", "ledger"])
    allocation = stack.start_services(env.env, ["allocation"])
    try:
        item = _json("UpsertItem", message_id=f"item-{lic}", lic=lic, est_unit_cost="4")
        await kafka_publish(env.bootstrap, topics.items, lic, item)
        await _get(env, f"/items/{lic}")

        # The backlog: allocation down (SIGTERM, a clean stop) while documents pile up.
        stack.stop_services(allocation)
        allocation = []

        received = _json(
            "ShipmentReceived",
            message_id=f"rcv-{receipt}",
            shipment_id=receipt,
            office="AI",
            source="purchase",
            reference=receipt,
            received_on="2026-11-01",
            lines=[
                {"line_no": 1, "lic": lic, "quantity": 6, "unit_cost": "4"},
                {"line_no": 2, "lic": lic, "quantity": 4, "unit_cost": "4"},
            ],
        )
        await kafka_publish(env.bootstrap, topics.receipts, receipt, received)
        # Receiving and shipping are separate processes: the sale is published once the
        # receipt's lines are on inventory.commands, so it is queued behind them there.
        commands = await _read(
            env, topics.commands, lambda rs: len(_of(rs, "ReceiveStock", shipment_id=receipt)) == 2
        )
        lines = _of(commands, "ReceiveStock", shipment_id=receipt)
        assert [v["hold"] for _, _, v in lines] == [True, True]

        # 8 units: more than either line, no more than both.
        requested = _json(
            "ShipmentRequested",
            message_id=f"req-{sale}",
            shipment_id=sale,
            office="AI",
            kind="sale",
            customer="Montboro High School East",
            ship_on="2026-11-02",
            lines=[{"line_no": 1, "lic": lic, "quantity": 8}],
        )
        await kafka_publish(env.bootstrap, topics.shipments, sale, requested)
        commands = await _read(
            env, topics.commands, lambda rs: bool(_of(rs, "AllocateLine", shipment_id=sale))
        )
        ((partition, allocate_at, allocate),) = _of(commands, "AllocateLine", shipment_id=sale)
        assert all(p == partition and at < allocate_at for p, at, _ in lines)

        allocation = stack.start_services(env.env, ["allocation"])
        (posted,) = await _status(env, "ReceiptPosted", receipt)
        assert [line["line_no"] for line in posted["lines"]] == [1, 2]
        answer = await _answer(env, sale, ("ShipmentAllocated", "ShipmentAllocationFailed"))
        assert answer["type"] == "ShipmentAllocated", answer
        assert [line["quantity"] for line in answer["lines"]] == ["8"]

        # The confirmations came after the sale line: it was decided before them, and waited.
        commands = await _read(
            env, topics.commands, lambda rs: len(_of(rs, "ConfirmHeld", lic=lic)) == 2
        )
        confirms = _of(commands, "ConfirmHeld", lic=lic)
        assert all(p == partition and at > allocate_at for p, at, _ in confirms)

        # Its one answer on inventory.events, after both receipt lines became stock.
        sale_id = allocate["message_id"]
        events = await _read(
            env, topics.events, lambda rs: bool(_of(rs, "LineAllocated", command_id=sale_id))
        )
        answers = _of(events, "LineAllocated", command_id=sale_id)
        answers += _of(events, "CommandRejected", command_id=sale_id)
        assert [v["type"] for _, _, v in answers] == ["LineAllocated"]
        ((events_partition, allocated_at, _),) = answers
        stock_received = [
            (p, at)
            for _, _, line in lines
            for p, at, _ in _of(events, "StockReceived", command_id=line["message_id"])
        ]
        assert len(stock_received) == 2
        assert all(p == events_partition and at < allocated_at for p, at in stock_received)

        assert await _waiting_lines(env) == 0
    finally:
        stack.stop_services([*allocation, *others])
