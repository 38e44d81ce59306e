"""Allocation through the real broker and PostgreSQL: each command type is decided, refusals are
`CommandRejected` events with the reason code and the offending value (R1–R14)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from services.allocation.app import create_runtime
from shared.ids import namespaced
from tests.fixtures.infra import LotlineEnv, json_values, kafka_publish_many, kafka_read_until

FAST_JOIN = {"KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500"}


@pytest.fixture
async def allocation(lotline_env: Any) -> AsyncIterator[LotlineEnv]:
    env: LotlineEnv = lotline_env(**FAST_JOIN)
    runtime = create_runtime(env.settings)
    await runtime.start()
    try:
        yield env
    finally:
        await runtime.stop()


class Script:
    """Commands for one LIC, in order, each with a fresh message_id."""

    def __init__(self, lic: str) -> None:
        self.lic = lic
        self.commands: list[tuple[str, bytes]] = []
        self.ids: dict[str, str] = {}

    def add(self, name: str, message_type: str, /, **fields: Any) -> None:
        message_id = f"{name}-{uuid.uuid4().hex[:8]}"
        self.ids[name] = message_id
        body = {
            "type": message_type,
            "message_id": message_id,
            "occurred_at": "2026-11-01T10:00:00Z",
            "lic": self.lic,
            **fields,
        }
        self.commands.append((self.lic, json.dumps(body).encode()))


async def _run(env: LotlineEnv, script: Script) -> dict[str, dict[str, Any]]:
    """Publish the script and return the answer to each named command."""
    await kafka_publish_many(env.bootstrap, env.settings.topics.commands, script.commands)
    wanted = set(script.ids.values())

    def answered(records: list[Any]) -> bool:
        return wanted <= {v.get("command_id") for v in json_values(records)}

    records = await kafka_read_until(env.bootstrap, env.settings.topics.events, answered)
    by_command = {v["command_id"]: v for v in json_values(records)}
    return {name: by_command[mid] for name, mid in script.ids.items()}


def _line(shipment: str, line_no: int = 1, **fields: Any) -> dict[str, Any]:
    return {"shipment_id": shipment, "line_no": line_no, **fields}


async def test_lot_tracked_perishable_flow_fefo_ship_and_refusals(allocation: LotlineEnv) -> None:
    """R1, R3, R9 (FEFO, never an expired lot), R10, R2 (TRACKING_LOCKED), R11."""
    s = Script(f"MILK-{uuid.uuid4().hex[:6]}")
    s.add("item", "UpsertItem", track_mfr_lot=True, est_unit_cost="2.00")
    s.add(
        "no-lots",
        "ReceiveStock",
        **_line("PO-0"),
        lot_id="PO-0/1",
        office="AI",
        received_on="2026-11-01",
        quantity=3,
    )
    s.add(
        "receive",
        "ReceiveStock",
        **_line("PO-1"),
        lot_id="PO-1/1",
        office="AI",
        received_on="2026-11-01",
        quantity=10,
        unit_cost="2.50",
        lots=[
            {"mfr_lot": "LATE", "expires_on": "2027-01-31", "quantity": 5},
            {"mfr_lot": "SOON", "expires_on": "2026-12-01", "quantity": 5},
        ],
    )
    s.add(
        "allocate",
        "AllocateLine",
        **_line("SO-1"),
        office="AI",
        ship_on="2026-11-15",
        quantity=6,
        counterparty="Deli",
    )
    s.add("ship", "ShipLine", **_line("SO-1"))
    s.add(
        "too-much",
        "AllocateLine",
        **_line("SO-2"),
        office="AI",
        ship_on="2026-11-15",
        quantity=100,
    )
    s.add(
        "expired-pick",
        "AllocateLine",
        **_line("SO-3"),
        office="AI",
        ship_on="2026-12-15",
        quantity=1,
        lots=[{"mfr_lot": "SOON", "quantity": 1}],
    )
    s.add("unlock", "UpsertItem", track_mfr_lot=False, est_unit_cost="2.00")
    s.add(
        "put-back",
        "AdjustStock",
        adjustment_id="ADJ-1",
        office="AI",
        kind="count",
        quantity=1,
        lots=[{"mfr_lot": "SOON", "quantity": 1}],
        adjusted_on="2026-11-20",
    )
    s.add(
        "put-back-too-much",
        "AdjustStock",
        adjustment_id="ADJ-2",
        office="AI",
        kind="count",
        quantity=5,
        lots=[{"mfr_lot": "SOON", "quantity": 5}],
        adjusted_on="2026-11-20",
    )
    answers = await _run(allocation, s)

    assert answers["item"]["type"] == "ItemUpserted" and answers["item"]["perishable"] is True
    assert answers["no-lots"]["reason_code"] == "LOT_REQUIRED"
    assert answers["receive"]["type"] == "StockReceived"
    allocated = answers["allocate"]
    assert allocated["type"] == "LineAllocated"
    taken = {m["mfr_lot"]: m["quantity"] for m in allocated["movements"]}
    assert taken == {"SOON": "5", "LATE": "1"}  # first expired, first out
    shipped = answers["ship"]
    assert shipped["type"] == "LineShipped"
    assert {m["unit_cost"] for m in shipped["movements"]} == {"2.50"}
    assert answers["too-much"]["reason_code"] == "INSUFFICIENT_STOCK"
    assert answers["expired-pick"]["reason_code"] in {"LOT_EXPIRED", "INSUFFICIENT_STOCK"}
    assert "SOON" in (answers["expired-pick"]["offending"] or answers["expired-pick"]["reason"])
    assert answers["unlock"]["reason_code"] == "TRACKING_LOCKED"
    assert answers["put-back"]["type"] == "InventoryAdjusted"
    assert answers["put-back-too-much"]["reason_code"] == "LOT_QTY_EXCEEDS_USED"

    conn = await asyncpg.connect(allocation.dsn)
    try:
        rows = await conn.fetch(
            "SELECT mfr_lot, on_hand, used FROM allocation.mfr_lots WHERE lic = $1 ORDER BY 1",
            s.lic,
        )
        assert [(r["mfr_lot"], r["on_hand"], r["used"]) for r in rows] == [
            ("LATE", 4, 1),
            ("SOON", 1, 4),
        ]
    finally:
        await conn.close()


async def test_serialized_flow_release_ship_and_returns(allocation: LotlineEnv) -> None:
    """R4, R9 (picks), R10, R13 (SERIAL_NOT_SHIPPED), release on cancel."""
    s = Script(f"DC-IP3VO-4-{uuid.uuid4().hex[:6]}")
    s.add("item", "UpsertItem", serialized=True, est_unit_cost="300.00")
    s.add(
        "receive",
        "ReceiveStock",
        **_line("PO-60006"),
        lot_id="PO-60006/1",
        office="AI",
        received_on="2023-08-01",
        quantity=2,
        serials=["134593568", "200937842"],
    )
    s.add(
        "duplicate",
        "ReceiveStock",
        **_line("PO-60007"),
        lot_id="PO-60007/1",
        office="AI",
        received_on="2023-08-02",
        quantity=1,
        serials=["200937842"],
    )
    s.add(
        "allocate",
        "AllocateLine",
        **_line("60007"),
        office="AI",
        ship_on="2023-08-01",
        quantity=1,
        counterparty="Montboro High School East",
        serials=["200937842"],
    )
    s.add(
        "taken",
        "AllocateLine",
        **_line("60008"),
        office="AI",
        ship_on="2023-08-01",
        quantity=1,
        serials=["200937842"],
    )
    s.add(
        "other",
        "AllocateLine",
        **_line("60009"),
        office="AI",
        ship_on="2023-08-01",
        quantity=1,
        serials=["134593568"],
    )
    s.add("release", "ReleaseLine", **_line("60009"))
    s.add("ship", "ShipLine", **_line("60007"))
    s.add(
        "return-unshipped",
        "ReturnStock",
        **_line("RMA-1"),
        office="AI",
        received_on="2023-09-01",
        quantity=1,
        customer="Montboro High School East",
        serials=["134593568"],
    )
    s.add(
        "return",
        "ReturnStock",
        **_line("RMA-2"),
        office="AI",
        received_on="2023-09-01",
        quantity=1,
        customer="Montboro High School East",
        serials=["200937842"],
    )
    answers = await _run(allocation, s)

    assert answers["receive"]["type"] == "StockReceived"
    assert answers["duplicate"]["reason_code"] == "DUPLICATE_SERIAL"
    assert "200937842" in (answers["duplicate"]["offending"] or "")
    assert answers["allocate"]["type"] == "LineAllocated"
    assert answers["taken"]["reason_code"] == "SERIAL_NOT_AVAILABLE"
    assert answers["release"]["type"] == "LineReleased"
    assert [m["serial"] for m in answers["ship"]["movements"]] == ["200937842"]
    assert answers["return-unshipped"]["reason_code"] == "SERIAL_NOT_SHIPPED"
    assert answers["return"]["type"] == "StockReturned"

    conn = await asyncpg.connect(allocation.dsn)
    try:
        rows = await conn.fetch("SELECT serial, status FROM allocation.units WHERE lic = $1", s.lic)
        statuses = {r["serial"]: r["status"] for r in rows}
        assert statuses == {"134593568": "available", "200937842": "available"}
    finally:
        await conn.close()


async def test_same_message_id_from_two_upstream_feeds_is_not_a_duplicate(
    allocation: LotlineEnv,
) -> None:
    """An item feed and an adjustment feed both sending message_id "1001" are two messages:
    the intake namespaces command ids by origin, so allocation's inbox keeps both."""
    topics = allocation.settings.topics
    lic = f"FEED-{uuid.uuid4().hex[:6]}"
    shared_id = f"1001-{uuid.uuid4().hex[:6]}"
    item = {"type": "UpsertItem", "message_id": shared_id, "lic": lic, "est_unit_cost": "1"}
    await kafka_publish_many(allocation.bootstrap, topics.items, [(lic, json.dumps(item).encode())])
    await kafka_read_until(
        allocation.bootstrap,
        topics.events,
        lambda rs: any(v.get("lic") == lic for v in json_values(rs)),
    )
    adjustment = {
        "type": "AdjustInventory",
        "message_id": shared_id,
        "adjustment_id": "ADJ-1001",
        "lic": lic,
        "office": "AI",
        "kind": "beginning_balance",
        "quantity": 5,
        "unit_cost": "1",
        "adjusted_on": "2026-11-01",
    }
    await kafka_publish_many(
        allocation.bootstrap, topics.adjustments, [("ADJ-1001", json.dumps(adjustment).encode())]
    )
    records = await kafka_read_until(
        allocation.bootstrap,
        topics.events,
        lambda rs: (
            {v["type"] for v in json_values(rs) if v.get("lic") == lic}
            >= {"ItemUpserted", "InventoryAdjusted"}
        ),
    )
    answers = {v["type"]: v["command_id"] for v in json_values(records) if v.get("lic") == lic}
    assert answers == {
        "ItemUpserted": f"item:{shared_id}",
        "InventoryAdjusted": f"adjustment:{shared_id}",
    }


async def test_a_receipt_naming_another_items_lot_is_refused_and_moves_nothing(
    allocation: LotlineEnv,
) -> None:
    """Inventory lot ids are unique across items, but each LIC's state knows only its own lots:
    a second document reusing a shipment id and line number for another item is refused
    (offending: the lot id), and the first item keeps its lot."""
    suffix = uuid.uuid4().hex[:6]
    lot_id = f"PO-{suffix}/1"
    first, second = Script(f"FIRST-{suffix}"), Script(f"SECOND-{suffix}")
    for script in (first, second):
        script.add("item", "UpsertItem", est_unit_cost="1")
        script.add(
            "receive",
            "ReceiveStock",
            **_line(f"PO-{suffix}"),
            lot_id=lot_id,
            office="AI",
            received_on="2026-11-01",
            quantity=2,
        )
    assert (await _run(allocation, first))["receive"]["type"] == "StockReceived"
    refused = (await _run(allocation, second))["receive"]
    assert (refused["type"], refused["reason_code"], refused["offending"]) == (
        "CommandRejected",
        "INVALID_QUANTITY",
        lot_id,
    )
    assert first.lic in refused["reason"]

    conn = await asyncpg.connect(allocation.dsn, server_settings={"search_path": "allocation"})
    try:
        assert await conn.fetchval("SELECT lic FROM inventory_lots WHERE lot_id = $1", lot_id) == (
            first.lic
        )
        # The backstop under the refusal: no write may move a lot to another item.
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="belongs to item"):
            await conn.execute(
                "UPDATE inventory_lots SET lic = $1 WHERE lot_id = $2", second.lic, lot_id
            )
    finally:
        await conn.close()


async def _intake_refusal(env: LotlineEnv, lic: str, **adjustment: Any) -> dict[str, Any]:
    """Publish the item `lic`, then a beginning balance of it with `adjustment`'s fields; the
    adjustment's one answer."""
    topics = env.settings.topics
    item = {"type": "UpsertItem", "message_id": f"item-{lic}", "lic": lic, "serialized": True}
    await kafka_publish_many(env.bootstrap, topics.items, [(lic, json.dumps(item).encode())])
    document = {
        "type": "AdjustInventory",
        "message_id": f"m-{lic}",
        "adjustment_id": f"ADJ-{lic}",
        "lic": lic,
        "office": "AI",
        "kind": "beginning_balance",
        "unit_cost": "1",
        **adjustment,
    }
    await kafka_publish_many(
        env.bootstrap, topics.adjustments, [(lic, json.dumps(document).encode())]
    )

    def answers(records: list[Any]) -> list[Any]:
        return [v for v in json_values(records) if v.get("adjustment_id") == f"ADJ-{lic}"]

    (answer,) = answers(
        await kafka_read_until(env.bootstrap, topics.events, lambda rs: bool(answers(rs)))
    )
    return answer


async def test_an_adjustment_with_a_bad_span_is_refused_whatever_its_message_id(
    allocation: LotlineEnv,
) -> None:
    """The intake parses an adjustment's serials before re-keying it: a bad span is answered
    INVALID_SERIAL_SPAN, by allocation in the LIC's order, with the adjustment's command id,
    even for a message id at the contract's length limit (the refusal's own id must fit)."""
    lic = f"SPAN-{uuid.uuid4().hex[:6]}"
    message_id = f"{lic}-" + "x" * (128 - len(lic) - 1)
    refusal = await _intake_refusal(
        allocation, lic, message_id=message_id, quantity=2, serials="10...1"
    )
    assert (refusal["type"], refusal["reason_code"], refusal["offending"]) == (
        "CommandRejected",
        "INVALID_SERIAL_SPAN",
        "10...1",
    )
    assert refusal["command_id"] == namespaced("adjustment", message_id)
    assert refusal["adjustment_id"] == f"ADJ-{lic}"


async def test_an_adjustment_naming_more_serials_than_one_message_holds_is_refused(
    allocation: LotlineEnv,
) -> None:
    """Its InventoryAdjusted would list a movement per serial in one message: an adjustment may
    name as many serials as a receipt line (100,000), and one naming more is answered
    INVALID_QUANTITY instead of deciding an event too large to publish."""
    lic = f"MANY-{uuid.uuid4().hex[:6]}"
    refusal = await _intake_refusal(allocation, lic, quantity=100_001, serials="S000001...S100001")
    assert (refusal["type"], refusal["reason_code"]) == ("CommandRejected", "INVALID_QUANTITY")
    assert "100000" in refusal["reason"].replace(",", "")


def _serial_receipt(shipment: str, serials: list[str], *, hold: bool = False) -> dict[str, Any]:
    return {
        **_line(shipment),
        "lot_id": f"{shipment}/1",
        "office": "AI",
        "received_on": "2026-11-01",
        "quantity": len(serials),
        "serials": serials,
        "hold": hold,
    }


async def _events_until(env: LotlineEnv, done: Any) -> list[dict[str, Any]]:
    """Every event on the topic, in order, once `done(values)` holds."""
    records = await kafka_read_until(
        env.bootstrap, env.settings.topics.events, lambda rs: done(list(json_values(rs)))
    )
    return list(json_values(records))


async def test_a_held_line_is_unusable_until_confirmed_then_published_in_order(
    allocation: LotlineEnv,
) -> None:
    """One line of a document with several: answered LineHeld; its serials are taken (another
    receipt of them is refused) but nothing may allocate them: a sale short of stock meanwhile
    waits for it, unanswered. Confirmed, its StockReceived is published (with the id it would
    have had unheld) before anything decided after it: first the waiting sale's allocation,
    then the sale sent after the confirmation."""
    suffix = uuid.uuid4().hex[:6]
    s = Script(f"SCOPE-{suffix}")
    s.add("item", "UpsertItem", serialized=True, est_unit_cost="100")
    s.add("held", "ReceiveStock", **_serial_receipt(f"PO-{suffix}", ["A1", "A2"], hold=True))
    s.add("waiting", "AllocateLine", **_line(f"SO-{suffix}"), office="AI", ship_on="2026-11-02",
          quantity=1)  # fmt: skip
    s.add("dup", "ReceiveStock", **_serial_receipt(f"PO2-{suffix}", ["A2"]))
    waiting_id = s.ids.pop("waiting")
    answers = await _run(allocation, s)
    held_id = s.ids["held"]
    assert answers["held"]["type"] == "LineHeld"
    assert (answers["held"]["shipment_id"], answers["held"]["line_no"]) == (f"PO-{suffix}", 1)
    assert (answers["dup"]["reason_code"], answers["dup"]["offending"]) == (
        "DUPLICATE_SERIAL",
        "A2",
    )
    conn = await asyncpg.connect(allocation.dsn, server_settings={"search_path": "allocation"})
    try:
        assert await conn.fetchval(
            "SELECT awaits FROM waiting_lines WHERE lic = $1 AND command_id = $2",
            s.lic,
            waiting_id,
        ) == json.dumps([held_id])

        after = Script(s.lic)
        after.add("confirm", "ConfirmHeld", command_id=held_id)
        after.add("allocate", "AllocateLine", **_line(f"SO3-{suffix}"), office="AI",
                  ship_on="2026-11-02", quantity=1)  # fmt: skip
        await kafka_publish_many(
            allocation.bootstrap, allocation.settings.topics.commands, after.commands
        )
        allocate_id = after.ids["allocate"]
        events = await _events_until(
            allocation, lambda vs: any(v.get("command_id") == allocate_id for v in vs)
        )
        assert await conn.fetchval("SELECT count(*) FROM waiting_lines WHERE lic = $1", s.lic) == 0
    finally:
        await conn.close()
    order = [(v["type"], v["command_id"]) for v in events if v.get("lic") == s.lic]
    received = order.index(("StockReceived", held_id))
    assert received < order.index(("LineAllocated", waiting_id))
    assert order.index(("LineAllocated", waiting_id)) < order.index(("LineAllocated", allocate_id))
    assert [t for t, c in order if c == waiting_id] == ["LineAllocated"]  # its one answer
    assert not any(v.get("command_id") == after.ids["confirm"] for v in events)
    by_id = {(v["type"], v["command_id"]): v for v in events}
    stock = by_id[("StockReceived", held_id)]
    assert stock["message_id"] == f"{held_id}#0"
    assert sorted(m["serial"] for m in stock["movements"]) == ["A1", "A2"]
    sold = by_id[("LineAllocated", waiting_id)]
    assert sold["message_id"] == f"{waiting_id}#0"
    assert (sold["shipment_id"], [m["serial"] for m in sold["movements"]]) == (
        f"SO-{suffix}",
        ["A1"],
    )


async def test_a_cancelled_held_line_leaves_nothing_behind(allocation: LotlineEnv) -> None:
    """Cancelled, a held receipt's lot, units and kept event are gone and publish nothing; its
    serials may be received again; settling it again is refused, not guessed."""
    suffix = uuid.uuid4().hex[:6]
    s = Script(f"SCALE-{suffix}")
    s.add("item", "UpsertItem", serialized=True, est_unit_cost="100")
    s.add("held", "ReceiveStock", **_serial_receipt(f"PO-{suffix}", ["B1"], hold=True))
    assert (await _run(allocation, s))["held"]["type"] == "LineHeld"
    held_id = s.ids["held"]

    after = Script(s.lic)
    after.add("cancel", "CancelHeld", command_id=held_id)
    after.add("again", "ReceiveStock", **_serial_receipt(f"PO2-{suffix}", ["B1"]))
    after.add("twice", "ConfirmHeld", command_id=held_id)
    await kafka_publish_many(
        allocation.bootstrap, allocation.settings.topics.commands, after.commands
    )
    twice = after.ids["twice"]
    events = await _events_until(
        allocation, lambda vs: any(v.get("command_id") == twice for v in vs)
    )
    by_command = {v["command_id"]: v for v in events if v.get("lic") == s.lic}
    assert by_command[after.ids["again"]]["type"] == "StockReceived"
    assert (by_command[twice]["type"], by_command[twice]["reason_code"]) == (
        "CommandRejected",
        "UNKNOWN_SHIPMENT",
    )
    assert after.ids["cancel"] not in by_command
    assert [v["type"] for v in events if v.get("command_id") == held_id] == ["LineHeld"]

    conn = await asyncpg.connect(allocation.dsn, server_settings={"search_path": "allocation"})
    try:
        lots = await conn.fetch("SELECT lot_id FROM inventory_lots WHERE lic = $1", s.lic)
        assert [r["lot_id"] for r in lots] == [f"PO2-{suffix}/1"]
        units = await conn.fetch("SELECT lot_id, status FROM units WHERE lic = $1", s.lic)
        assert [tuple(r) for r in units] == [(f"PO2-{suffix}/1", "available")]
        assert await conn.fetchval("SELECT count(*) FROM held_lines WHERE lic = $1", s.lic) == 0
        assert (
            await conn.fetchval("SELECT count(*) FROM held_events WHERE command_id = $1", held_id)
            == 0
        )
    finally:
        await conn.close()
