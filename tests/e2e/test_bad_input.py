"""Bad input gets a clear answer and loses nothing (DESIGN.md §6): on every upstream topic, bytes
that are not JSON, a message of the wrong schema and a NaN quantity go to `inventory.dlq` with
the reason and their source in headers, and the next good message is processed; a document that
fails validation but names its type and ids is also answered with its refusal."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from tests.fixtures.infra import LotlineEnv, json_values, kafka_publish_many, kafka_read_until


def _body(message_type: str, /, **fields: Any) -> bytes:
    body = {"type": message_type, "occurred_at": "2026-11-01T10:00:00Z", **fields}
    return json.dumps(body).encode()


def _nan(body: bytes, field: str) -> bytes:
    """The same message with `field` set to a bare NaN literal, as some JSON encoders write."""
    doc = json.loads(body)

    def swap(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: ("__NAN__" if k == field else swap(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [swap(v) for v in node]
        return node

    return json.dumps(swap(doc)).replace('"__NAN__"', "NaN").encode()


async def test_each_input_topic_dead_letters_bad_messages_and_goes_on(running: LotlineEnv) -> None:
    env = running
    topics = env.settings.topics
    run = uuid.uuid4().hex[:8]
    lic = f"BAD-{run}"
    good: dict[str, tuple[bytes, str, str]] = {
        topics.items: (
            _body("UpsertItem", message_id=f"item-{run}", lic=lic, est_unit_cost="1.00"),
            "est_unit_cost",
            "allocation",
        ),
        topics.adjustments: (
            _body(
                "AdjustInventory",
                message_id=f"adj-{run}",
                adjustment_id=f"ADJ-{run}",
                lic=lic,
                office="AI",
                kind="beginning_balance",
                quantity=5,
                unit_cost="1.00",
            ),
            "quantity",
            "allocation",
        ),
        topics.receipts: (
            _body(
                "ShipmentReceived",
                message_id=f"rcv-{run}",
                shipment_id=f"PO-{run}",
                office="AI",
                source="purchase",
                received_on="2026-11-01",
                lines=[{"line_no": 1, "lic": lic, "quantity": 2}],
            ),
            "quantity",
            "receiving",
        ),
        topics.shipments: (
            _body(
                "ShipmentRequested",
                message_id=f"req-{run}",
                shipment_id=f"SO-{run}",
                office="AI",
                ship_on="2026-11-02",
                customer="C",
                lines=[{"line_no": 1, "lic": lic, "quantity": 1}],
            ),
            "quantity",
            "shipping",
        ),
        topics.costs: (
            _body(
                "PurchaseOrderUpdated",
                message_id=f"po-{run}",
                po=f"PO-{run}",
                lic=lic,
                ordered_quantity=2,
            ),
            "ordered_quantity",
            "ledger",
        ),
    }
    for topic, (body, nan_field, _) in good.items():
        if topic != topics.items:
            # Items and adjustments reach allocation through different topics: let the item
            # exist before the adjustment that refers to it.
            await kafka_read_until(
                env.bootstrap,
                topics.events,
                lambda rs: any(v.get("command_id") == f"item:item-{run}" for v in json_values(rs)),
                timeout=60,
            )
        wrong_schema = json.dumps({"type": "Mystery", "message_id": f"x-{run}"}).encode()
        await kafka_publish_many(
            env.bootstrap,
            topic,
            [
                ("k", b"\x00{not json"),
                ("k", wrong_schema),
                ("k", _nan(body, nan_field)),
                ("k", body),
            ],
        )

    expected = {(topic, reason) for topic in good for reason in ("not JSON", "Mystery", "NaN")}

    def dead_letters(records: list[Any]) -> set[tuple[str, str]]:
        found = set()
        for record in records:
            headers = {k: v.decode() for k, v in record.headers}
            for topic, reason in expected:
                if headers.get("source_topic") == topic and _mentions(headers["error"], reason):
                    found.add((topic, reason))
        return found

    records = await kafka_read_until(
        env.bootstrap, topics.dlq, lambda rs: dead_letters(rs) == expected, timeout=90
    )
    assert dead_letters(records) == expected
    originals = {r.value for r in records}
    assert b"\x00{not json" in originals  # the original bytes, untouched

    # The good message after the bad ones was processed on every topic: each service's inbox
    # holds its message_id.
    conn = await asyncpg.connect(env.dsn)
    try:
        for _topic, (body, _, schema) in good.items():
            message_id = json.loads(body)["message_id"]
            await _eventually_in_inbox(conn, schema, message_id)
    finally:
        await conn.close()
    events = await kafka_read_until(
        env.bootstrap,
        topics.events,
        lambda rs: any(v.get("command_id") == f"adjustment:adj-{run}" for v in json_values(rs)),
        timeout=60,
    )
    assert any(v["type"] == "InventoryAdjusted" for v in json_values(events))


def _mentions(error: str, reason: str) -> bool:
    if reason == "not JSON":
        return "not JSON" in error or "not UTF-8" in error
    if reason == "Mystery":
        return "Mystery" in error or "tag" in error or "type" in error
    return "NaN" in error


async def _eventually_in_inbox(conn: asyncpg.Connection, schema: str, message_id: str) -> None:
    import asyncio

    for _ in range(300):
        found = await conn.fetchval(
            f"SELECT count(*) FROM {schema}.inbox WHERE message_id = $1", message_id
        )
        if found:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{schema} never processed {message_id}")


async def test_identifiable_invalid_documents_are_answered_and_dead_lettered(
    running: LotlineEnv,
) -> None:
    """A receipt with a line quantity of 0 is refused on `inventory.status` (`ReceiptRejected`,
    INVALID_QUANTITY, offending "0") and kept in `inventory.dlq`; an adjustment of 0 is refused
    on `inventory.events` (`CommandRejected`). Through the real broker and the service processes."""
    env = running
    topics = env.settings.topics
    run = uuid.uuid4().hex[:8]
    receipt = _body(
        "ShipmentReceived",
        message_id=f"rcv0-{run}",
        shipment_id=f"PO0-{run}",
        office="AI",
        source="purchase",
        received_on="2026-11-01",
        lines=[
            {"line_no": 1, "lic": f"L-{run}", "quantity": 2},
            {"line_no": 2, "lic": f"L-{run}", "quantity": 0},
        ],
    )
    adjustment = _body(
        "AdjustInventory",
        message_id=f"adj0-{run}",
        adjustment_id=f"ADJ0-{run}",
        lic=f"L-{run}",
        office="AI",
        kind="count",
        quantity=0,
    )
    await kafka_publish_many(env.bootstrap, topics.receipts, [(f"PO0-{run}", receipt)])
    await kafka_publish_many(env.bootstrap, topics.adjustments, [(f"ADJ0-{run}", adjustment)])

    def rejected(records: list[Any]) -> list[Any]:
        return [
            v
            for v in json_values(records)
            if v.get("type") == "ReceiptRejected" and v.get("shipment_id") == f"PO0-{run}"
        ]

    statuses = await kafka_read_until(
        env.bootstrap, topics.status, lambda rs: bool(rejected(rs)), timeout=90
    )
    (refusal,) = rejected(statuses)
    (problem,) = refusal["problems"]
    assert problem["reason_code"] == "INVALID_QUANTITY"
    assert problem["offending"] == "0"
    assert (problem["line_no"], problem["lic"]) == (2, f"L-{run}")
    assert "lines[1].quantity" in problem["reason"]
    keys = {
        r.key
        for r in statuses
        if b"ReceiptRejected" in (r.value or b"") and run.encode() in (r.value or b"")
    }
    assert keys == {f"PO0-{run}".encode()}  # keyed by the document id

    def refused_adjustment(records: list[Any]) -> list[Any]:
        return [
            v
            for v in json_values(records)
            if v.get("type") == "CommandRejected" and v.get("adjustment_id") == f"ADJ0-{run}"
        ]

    events = await kafka_read_until(
        env.bootstrap, topics.events, lambda rs: bool(refused_adjustment(rs)), timeout=90
    )
    (command_rejected,) = refused_adjustment(events)
    assert command_rejected["reason_code"] == "INVALID_QUANTITY"
    assert command_rejected["offending"] == "0"
    assert command_rejected["lic"] == f"L-{run}"

    def dead(records: list[Any]) -> dict[str, dict[str, str]]:
        found = {}
        for record in records:
            headers = {k: v.decode() for k, v in record.headers}
            if record.value in (receipt, adjustment):
                found[headers["source_topic"]] = headers
        return found

    letters = await kafka_read_until(
        env.bootstrap, topics.dlq, lambda rs: len(dead(rs)) == 2, timeout=90
    )
    found = dead(letters)
    assert found[topics.receipts]["answered"] == "ReceiptRejected"
    assert found[topics.adjustments]["answered"] == "CommandRejected"
    assert "quantity" in found[topics.receipts]["error"]


async def test_wrong_topic_documents_and_reused_ids_are_dead_lettered_never_answered_twice(
    running: LotlineEnv,
) -> None:
    """Upstream mistakes, through the real broker and service processes:
    - an `AdjustInventory` sent to `inventory.items` (an `UpsertItem` to `inventory.adjustments`)
      is dead-lettered unanswered; sent then to its own topic, it gets its one decision;
    - a `ShipmentReceived` reusing a processed `message_id` for another document is not applied
      and is dead-lettered with the reason; the id's first document stands."""
    from tests.fixtures.infra import kafka_publish

    env = running
    topics = env.settings.topics
    run = uuid.uuid4().hex[:8]
    lic, lic2 = f"WT-{run}", f"WT2-{run}"
    item = _body("UpsertItem", message_id=f"item-{run}", lic=lic, est_unit_cost="1.00")
    await kafka_publish(env.bootstrap, topics.items, lic, item)
    await kafka_read_until(
        env.bootstrap,
        topics.events,
        lambda rs: any(v.get("command_id") == f"item:item-{run}" for v in json_values(rs)),
        timeout=60,
    )
    adjustment = _body(
        "AdjustInventory",
        message_id=f"adj-{run}",
        adjustment_id=f"ADJ-{run}",
        lic=lic,
        office="AI",
        kind="beginning_balance",
        quantity=5,
        unit_cost="1.00",
    )
    item2 = _body("UpsertItem", message_id=f"item2-{run}", lic=lic2, est_unit_cost="2.00")
    await kafka_publish(env.bootstrap, topics.items, f"ADJ-{run}", adjustment)
    await kafka_publish(env.bootstrap, topics.adjustments, lic2, item2)

    def misplaced(records: list[Any]) -> dict[str, dict[str, str]]:
        return {
            headers["source_topic"]: headers
            for record in records
            if record.value in (adjustment, item2)
            for headers in [{k: v.decode() for k, v in record.headers}]
        }

    letters = await kafka_read_until(
        env.bootstrap, topics.dlq, lambda rs: len(misplaced(rs)) == 2, timeout=90
    )
    found = misplaced(letters)
    assert set(found) == {topics.items, topics.adjustments}
    assert all("answered" not in headers for headers in found.values())

    # Now to the right topics: each command decided once, and never refused.
    await kafka_publish(env.bootstrap, topics.adjustments, f"ADJ-{run}", adjustment)
    await kafka_publish(env.bootstrap, topics.items, lic2, item2)
    commands = {f"adjustment:adj-{run}", f"item:item2-{run}"}

    def answers(records: list[Any]) -> list[tuple[str, str]]:
        # By message_id: the relay publishes at least once, so a record may come twice; two
        # decisions of one command would have two ids.
        decided = {
            v["message_id"]: (v["command_id"], v["type"])
            for v in json_values(records)
            if v.get("command_id") in commands
        }
        return sorted(decided.values())

    events = await kafka_read_until(
        env.bootstrap,
        topics.events,
        lambda rs: {t for _, t in answers(rs)} >= {"InventoryAdjusted", "ItemUpserted"},
        timeout=90,
    )
    assert answers(events) == [
        (f"adjustment:adj-{run}", "InventoryAdjusted"),
        (f"item:item2-{run}", "ItemUpserted"),
    ]

    # A receipt's message_id reused for another receipt: dead-lettered, not applied.
    def receipt(shipment_id: str, quantity: int) -> bytes:
        return _body(
            "ShipmentReceived",
            message_id=f"rcv-{run}",
            shipment_id=shipment_id,
            office="AI",
            source="purchase",
            received_on="2026-11-01",
            lines=[{"line_no": 1, "lic": lic, "quantity": quantity}],
        )

    first, reused = receipt(f"PO1-{run}", 2), receipt(f"PO2-{run}", 7)
    await kafka_publish(env.bootstrap, topics.receipts, f"PO1-{run}", first)
    await kafka_read_until(
        env.bootstrap,
        topics.status,
        lambda rs: any(v.get("shipment_id") == f"PO1-{run}" for v in json_values(rs)),
        timeout=90,
    )
    await kafka_publish(env.bootstrap, topics.receipts, f"PO2-{run}", reused)

    def reused_letters(records: list[Any]) -> list[dict[str, str]]:
        # One per source record: the relay publishes at least once.
        letters = {}
        for record in records:
            if record.value == reused:
                headers = {k: v.decode() for k, v in record.headers}
                letters[headers["source_partition"], headers["source_offset"]] = headers
        return list(letters.values())

    letters = await kafka_read_until(
        env.bootstrap, topics.dlq, lambda rs: bool(reused_letters(rs)), timeout=90
    )
    (headers,) = reused_letters(letters)
    assert headers["source_topic"] == topics.receipts
    assert headers["consumer"] == "receiving"
    assert headers["error"] == (
        f"message_id rcv-{run} was already processed with a different document:"
        " this one was not applied"
    )
    statuses = await kafka_read_until(
        env.bootstrap,
        topics.status,
        lambda rs: any(v.get("shipment_id") == f"PO1-{run}" for v in json_values(rs)),
        timeout=30,
    )
    assert not [v for v in json_values(statuses) if v.get("shipment_id") == f"PO2-{run}"]
