"""Receiving and shipping through the real broker: allocation, receiving and shipping run as OS
processes, an upstream system publishes with a plain Kafka client and reads `inventory.status`.

One walk through the issue's flows: a mixed receipt posted; a receipt with three line errors
refused whole; a shipment allocated first-expired-first-out and shipped; a ship request refused
as incomplete, completed by a picks update and shipped; a cancellation releasing stock; a
customer return and a vendor return. Then R2: a line whose picks shipping refuses locks its item.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from shared import stack
from shared.ids import namespaced
from tests.fixtures.infra import LotlineEnv, json_values, kafka_publish, kafka_read_until

FAST_JOIN = {"KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500"}
SERVICES = ("allocation", "receiving", "shipping")


@pytest.fixture
def running(lotline_env: Any) -> Iterator[LotlineEnv]:
    env: LotlineEnv = lotline_env(**FAST_JOIN)
    procs = stack.start_services(env.env, SERVICES)
    try:
        yield env
    finally:
        stack.stop_services(procs)


class Upstream:
    """An upstream order system: publishes documents, waits for their statuses."""

    def __init__(self, env: LotlineEnv) -> None:
        self.env = env
        self.topics = env.settings.topics
        self.run = uuid.uuid4().hex[:6]
        self.seen: dict[str, int] = {}

    def id(self, name: str) -> str:
        return f"{name}-{self.run}"

    async def send(self, topic: str, key: str, message_type: str, **fields: Any) -> str:
        """Publish one message; its `message_id`."""
        body = {
            "type": message_type,
            "message_id": uuid.uuid4().hex,
            "occurred_at": "2026-11-01T10:00:00Z",
            **fields,
        }
        await kafka_publish(self.env.bootstrap, topic, key, json.dumps(body).encode())
        return str(body["message_id"])

    async def items(self, *items: dict[str, Any]) -> None:
        for item in items:
            await self.send(self.topics.items, item["lic"], "UpsertItem", **item)
        await self._known(len(items))

    async def _known(self, count: int, within: float = 60) -> None:
        """Wait until receiving's and shipping's read models hold the items (they lag)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        conn = await asyncpg.connect(self.env.dsn)
        try:
            while True:
                try:
                    got = await conn.fetchval(
                        "SELECT least((SELECT count(*) FROM receiving.items),"
                        " (SELECT count(*) FROM shipping.items))"
                    )
                except asyncpg.UndefinedTableError:
                    got = 0
                if got >= count:
                    return
                assert loop.time() < deadline, "the items never reached receiving and shipping"
                await asyncio.sleep(0.2)
        finally:
            await conn.close()

    async def receive(self, doc: str, *lines: dict[str, Any], **header: Any) -> dict[str, Any]:
        fields = {
            "shipment_id": doc,
            "office": "AI",
            "source": "purchase",
            "received_on": "2026-11-02",
            "lines": [{"line_no": n, **line} for n, line in enumerate(lines, start=1)],
            **header,
        }
        await self.send(self.topics.receipts, doc, "ShipmentReceived", **fields)
        return await self.status(doc)

    async def request(self, doc: str, *lines: dict[str, Any], kind: str = "sale") -> dict[str, Any]:
        party = {"customer": "Montboro"} if kind == "sale" else {"vendor": "Aperture"}
        fields = {
            "shipment_id": doc,
            "office": "AI",
            "kind": kind,
            "ship_on": "2026-11-02",
            "lines": [{"line_no": n, **line} for n, line in enumerate(lines, start=1)],
            **party,
        }
        await self.send(self.topics.shipments, doc, "ShipmentRequested", **fields)
        return await self.status(doc)

    async def shipment(self, message_type: str, doc: str, **fields: Any) -> dict[str, Any]:
        await self.send(self.topics.shipments, doc, message_type, shipment_id=doc, **fields)
        return await self.status(doc)

    async def status(self, doc: str, within: float = 90) -> dict[str, Any]:
        """The next status published for `doc` (statuses of one document come in order)."""
        wanted = self.seen.get(doc, 0) + 1

        def mine(records: list[Any]) -> list[Any]:
            return [v for v in json_values(records) if v.get("shipment_id") == doc]

        records = await kafka_read_until(
            self.env.bootstrap,
            self.topics.status,
            lambda rs: len(mine(rs)) >= wanted,
            timeout=within,
        )
        self.seen[doc] = wanted
        return dict(mine(records)[wanted - 1])


def codes(status: dict[str, Any]) -> list[tuple[int | None, str]]:
    return [(p["line_no"], p["reason_code"]) for p in status["problems"]]


async def test_receipts_and_shipments_through_the_real_broker(running: LotlineEnv) -> None:
    up = Upstream(running)
    milk, cam, gen, plain = up.id("MILK"), up.id("CAM"), up.id("CAM-NS"), up.id("PLAIN")
    await up.items(
        {"lic": plain, "est_unit_cost": "1.00"},
        {"lic": milk, "track_mfr_lot": True, "est_unit_cost": "2.00"},
        {"lic": cam, "serialized": True, "est_unit_cost": "300.00"},
        {"lic": gen, "serialized": True, "next_serial": "7", "est_unit_cost": "300.00"},
    )

    # A mixed receipt: plain, two lots with two expiry dates, a typed span, Next Serial (R3-R6).
    posted = await up.receive(
        up.id("PO-1"),
        {"lic": plain, "quantity": 5},
        {
            "lic": milk,
            "quantity": 10,
            "lots": [
                {"mfr_lot": "LATE", "expires_on": "2027-02-28", "quantity": 6},
                {"mfr_lot": "SOON", "expires_on": "2027-01-31", "quantity": 4},
            ],
        },
        {"lic": cam, "quantity": 3, "serials": "SN-0098...SN-0100"},
        {"lic": gen, "quantity": 2},
    )
    assert posted["type"] == "ReceiptPosted", posted
    assert posted["lines"][3]["generated_serials"] == ["00007", "00008"]

    # Three different line errors: refused whole, nothing posted.
    rejected = await up.receive(
        up.id("PO-2"),
        {"lic": plain, "quantity": 1},
        {"lic": milk, "quantity": 2},
        {"lic": cam, "quantity": 2, "serials": "X1"},
        {"lic": cam, "quantity": 1, "scans": ["not a barcode"]},
    )
    assert rejected["type"] == "ReceiptRejected"
    assert codes(rejected) == [
        (2, "LOT_REQUIRED"),
        (3, "SERIAL_COUNT_MISMATCH"),
        (4, "INVALID_BARCODE"),
    ]

    # Allocated automatically, first expired first out, then shipped.
    sale = up.id("SO-1")
    allocated = await up.request(sale, {"lic": milk, "quantity": 5})
    assert allocated["type"] == "ShipmentAllocated", allocated
    moves = allocated["lines"][0]["movements"]
    assert [(m["mfr_lot"], m["quantity"]) for m in moves] == [("SOON", "4"), ("LATE", "1")]
    shipped = await up.shipment("ShipmentShipRequested", sale)
    assert shipped["type"] == "ShipmentShipped", shipped

    # Refused as incomplete (R8), completed by a picks update, shipped.
    picky = up.id("SO-2")
    failed = await up.request(picky, {"lic": cam, "quantity": 2, "serials": "SN-0098, NOPE"})
    assert codes(failed) == [(1, "SERIAL_NOT_AVAILABLE")]
    refused = await up.shipment("ShipmentShipRequested", picky)
    assert (refused["type"], refused["reason_code"]) == (
        "ShipmentShipRefused",
        "SHIPMENT_INCOMPLETE",
    )
    fixed = await up.shipment("ShipmentPicksUpdated", picky, line_no=1, serials="SN-0098;SN-0099")
    assert fixed["type"] == "ShipmentAllocated", fixed
    shipped = await up.shipment("ShipmentShipRequested", picky)
    assert [m["serial"] for m in shipped["lines"][0]["movements"]] == ["SN-0098", "SN-0099"]

    # A cancellation releases the stock: the next shipment gets it.
    held = up.id("SO-3")
    assert (await up.request(held, {"lic": plain, "quantity": 5}))["type"] == "ShipmentAllocated"
    short = await up.request(up.id("SO-4"), {"lic": plain, "quantity": 5})
    assert codes(short) == [(1, "INSUFFICIENT_STOCK")]
    cancelled = await up.shipment("ShipmentCancelled", held)
    assert (cancelled["type"], cancelled["refused"]) == ("ShipmentCancelled", None)
    again = await up.request(up.id("SO-5"), {"lic": plain, "quantity": 5})
    assert again["type"] == "ShipmentAllocated", again

    # A customer return of a shipped serial (R13), then a return to vendor of a lot (R14).
    back = await up.receive(
        up.id("RMA-1"),
        {"lic": cam, "quantity": 1, "serials": ["SN-0099"]},
        source="customer_return",
        customer="Montboro",
    )
    assert back["type"] == "ReceiptPosted", back
    vendor = up.id("RTV-1")
    unnamed = await up.request(vendor, {"lic": milk, "quantity": 5}, kind="vendor_return")
    assert codes(unnamed) == [(1, "LOT_REQUIRED")]
    named = await up.shipment(
        "ShipmentPicksUpdated", vendor, line_no=1, lots=[{"mfr_lot": "LATE", "quantity": 5}]
    )
    assert named["type"] == "ShipmentAllocated", named
    returned = await up.shipment("ShipmentShipRequested", vendor)
    assert returned["type"] == "ShipmentShipped", returned
    assert [(m["mfr_lot"], m["quantity"]) for m in returned["lines"][0]["movements"]] == [
        ("LATE", "5")
    ]


async def test_a_line_shipping_refuses_locks_its_items_tracking_flags(running: LotlineEnv) -> None:
    """R2 (R5): picks shipping refuses itself keep the line as a sales order that can be picked
    again, so, as for a line refused for lack of stock, the item's tracking flags lock: the
    line reaches allocation carrying shipping's problem, the upstream sees that problem, and an
    UpsertItem changing `serialized` afterwards is refused TRACKING_LOCKED."""
    up = Upstream(running)
    bare = up.id("BARE")
    await up.items({"lic": bare, "est_unit_cost": "1.00"})
    failed = await up.request(up.id("SO-R2"), {"lic": bare, "quantity": 3, "serials": "10...8"})
    assert failed["type"] == "ShipmentAllocationFailed", failed
    assert codes(failed) == [(1, "INVALID_SERIAL_SPAN")]
    assert (failed["offending"], failed["problems"][0]["offending"]) == ("10...8", "10...8")
    assert failed["allocated_lines"] == []

    flip = namespaced(
        "item", await up.send(up.topics.items, bare, "UpsertItem", lic=bare, serialized=True)
    )

    def answer(records: list[Any]) -> list[Any]:
        return [v for v in json_values(records) if v.get("command_id") == flip]

    records = await kafka_read_until(
        running.bootstrap, up.topics.events, lambda rs: bool(answer(rs)), timeout=90
    )
    (refused,) = answer(records)
    assert (refused["type"], refused.get("reason_code")) == ("CommandRejected", "TRACKING_LOCKED")
