"""Quarantine through the real allocation service (broker and PostgreSQL): an upstream
`QuarantineStock` read before its item is held by the intake as an adjustment is, follows the
item's UpsertItem on inventory.commands (its own `type` header), is answered
`StockQuarantined`, and the rule is kept with the LIC's state: a process started afresh
(loading the state from PostgreSQL) still refuses a sale naming the lot, until released."""

from __future__ import annotations

import uuid
from typing import Any

from services.allocation.app import create_runtime
from tests.fixtures.infra import kafka_read_until
from tests.integration.test_allocation_unknown_items import (
    answers,
    held,
    publish,
    query,
    running,
)


def _item(lic: str) -> dict[str, Any]:
    return {
        "type": "UpsertItem",
        "message_id": f"item-{lic}",
        "lic": lic,
        "track_mfr_lot": True,
        "est_unit_cost": "2",
    }


def _balance(run: str, lic: str) -> dict[str, Any]:
    return {
        "type": "AdjustInventory",
        "message_id": f"bb-{run}",
        "adjustment_id": f"ADJ-{run}",
        "lic": lic,
        "office": "AI",
        "kind": "beginning_balance",
        "quantity": 5,
        "unit_cost": "2",
        "adjusted_on": "2026-11-01",
        "lots": [{"mfr_lot": "X", "expires_on": "2027-01-01", "quantity": 5}],
    }


def _quarantine(run: str, lic: str, name: str, quarantined: bool) -> dict[str, Any]:
    return {
        "type": "QuarantineStock",
        "message_id": f"{name}-{run}",
        "quarantine_id": f"Q-{run}",
        "lic": lic,
        "mfr_lot": "X",
        "quarantined": quarantined,
        "reason": "recall notice 42",
    }


def _sale(run: str, lic: str, n: int) -> dict[str, Any]:
    return {
        "type": "AllocateLine",
        "message_id": f"sale-{n}-{run}",
        "occurred_at": "2026-11-02T00:00:00Z",
        "lic": lic,
        "shipment_id": f"S-{run}",
        "line_no": n,
        "office": "AI",
        "ship_on": "2026-11-02",
        "quantity": 1,
        "lots": [{"mfr_lot": "X", "quantity": 1}],
    }


async def test_a_quarantine_is_held_for_its_item_kept_and_released(lotline_env: Any) -> None:
    run = uuid.uuid4().hex[:6]
    lic = f"QX-{run}"
    async with running(lotline_env, wait=60) as (env, _):
        topics = env.settings.topics
        await publish(env, topics.adjustments, lic, _balance(run, lic))
        await publish(env, topics.adjustments, lic, _quarantine(run, lic, "q", True))
        assert await held(env, lic, until=2) == [f"adjustment:bb-{run}", f"quarantine:q-{run}"]

        await publish(env, topics.items, lic, _item(lic))

        events = await answers(env, lic, 3)
        assert [v["type"] for v in events] == [
            "ItemUpserted",
            "InventoryAdjusted",
            "StockQuarantined",
        ]
        quarantined = events[2]
        assert (quarantined["command_id"], quarantined["quarantine_id"]) == (
            f"quarantine:q-{run}",
            f"Q-{run}",
        )
        assert quarantined["quarantined"] is True and quarantined["mfr_lot"] == "X"
        ((stock,),) = [quarantined["stock"]]
        assert (stock["mfr_lot"], stock["office"], float(stock["on_hand"])) == ("X", "AI", 5.0)
        commands = await kafka_read_until(
            env.bootstrap,
            topics.commands,
            lambda rs: sum(r.key == lic.encode() for r in rs) >= 3,
        )
        assert [dict(r.headers)["type"] for r in commands if r.key == lic.encode()] == [
            b"UpsertItem",
            b"AdjustStock",
            b"QuarantineStock",
        ]
        rows = await query(env, "SELECT mfr_lot, reason FROM quarantines WHERE lic = $1", lic)
        assert [(r["mfr_lot"], r["reason"]) for r in rows] == [("X", "recall notice 42")]

    # A new process loads the LIC's state, the rule with it.
    runtime = create_runtime(env.settings)
    await runtime.start()
    try:
        await publish(env, topics.commands, lic, _sale(run, lic, 1))
        refused = (await answers(env, lic, 4))[3]
        assert (refused["type"], refused["reason_code"]) == (
            "CommandRejected",
            "INSUFFICIENT_STOCK",
        )
        assert "quarantine" in refused["reason"]

        # Two topics, no order between them: the sale goes once the release is answered.
        await publish(env, topics.adjustments, lic, _quarantine(run, lic, "r", False))
        released = (await answers(env, lic, 5))[4]
        assert (released["type"], released["quarantined"]) == ("StockQuarantined", False)
        await publish(env, topics.commands, lic, _sale(run, lic, 2))
        allocated = (await answers(env, lic, 6))[5]
        assert allocated["type"] == "LineAllocated"
        assert await query(env, "SELECT 1 FROM quarantines WHERE lic = $1", lic) == []
    finally:
        await runtime.stop()


async def test_a_lot_on_its_way_is_held_before_it_arrives(lotline_env: Any) -> None:
    """`before_receipt` through the intake: the recall of a lot the item never had is kept, and
    the lot arriving afterwards (a beginning balance here) is held from the start."""
    run = uuid.uuid4().hex[:6]
    lic = f"QB-{run}"
    async with running(lotline_env, wait=60) as (env, _):
        topics = env.settings.topics
        await publish(env, topics.items, lic, _item(lic))
        recall = _quarantine(run, lic, "q", True) | {"before_receipt": True}
        await publish(env, topics.adjustments, lic, recall)
        held_rule = (await answers(env, lic, 2))[1]
        assert (held_rule["type"], held_rule["quarantined"]) == ("StockQuarantined", True)
        assert held_rule["stock"] == []

        await publish(env, topics.adjustments, lic, _balance(run, lic))
        assert (await answers(env, lic, 3))[2]["type"] == "InventoryAdjusted"
        await publish(env, topics.commands, lic, _sale(run, lic, 1))
        refused = (await answers(env, lic, 4))[3]
        assert (refused["reason_code"], refused["offending"]) == ("INSUFFICIENT_STOCK", "X")
        assert "recall notice 42" in refused["reason"]
