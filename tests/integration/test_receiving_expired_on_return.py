"""A customer return putting back a perishable lot already expired, through the real broker and
PostgreSQL: posted as before, its `ReceiptPosted` saying so (`warnings[]`,
`LOT_EXPIRED_ON_RETURN`), and logged (R9, R13).

Upstream publishes the item, a purchase receipt of two lots, a sale of both (shipped), then
the return of both after one of them expired; allocation, receiving and shipping run in
process, as `lotline up` runs them. The return does not carry the lots' expiry dates: the
warning is read from allocation's answer. It has two lines, so it takes the held path (every
line held, then confirmed): the warning is found as its last line posts.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from structlog.testing import capture_logs

from services.allocation.app import create_runtime as allocation
from services.receiving.app import create_runtime as receiving
from services.shipping.app import create_runtime as shipping
from tests.fixtures.infra import LotlineEnv, json_values, kafka_publish, kafka_read_until
from tests.integration.test_receiving_expired_on_receipt import perishable_item
from tests.integration.test_receiving_unknown_items import running, status_of

EXPIRED, ON_THE_DAY = "2026-12-01", "2026-12-05"
REFUSALS = ("ReceiptRejected", "ShipmentAllocationFailed", "ShipmentShipRefused")


async def status_typed(env: LotlineEnv, doc: str, kind: str) -> dict[str, Any]:
    """The first status of type `kind` published for `doc` (a refusal instead fails)."""

    def mine(records: list[Any]) -> list[Any]:
        return [v for v in json_values(records) if v.get("shipment_id") == doc]

    def answered(records: list[Any]) -> bool:
        return any(v["type"] in (kind, *REFUSALS) for v in mine(records))

    records = await kafka_read_until(
        env.bootstrap, env.settings.topics.status, answered, timeout=60
    )
    found = [v for v in mine(records) if v["type"] == kind]
    assert found, mine(records)
    return dict(found[0])


def document(message_id: str, doc: str, body: dict[str, Any]) -> bytes:
    return json.dumps({"message_id": message_id, "shipment_id": doc, **body}).encode()


def lines(lic: str, *lots: tuple[str, str | None]) -> list[dict[str, Any]]:
    """One line of 5 units per manufacturer lot (with its expiry, when given)."""
    entries = []
    for n, (mfr_lot, expires_on) in enumerate(lots, start=1):
        entry: dict[str, Any] = {"mfr_lot": mfr_lot, "quantity": 5}
        if expires_on is not None:
            entry["expires_on"] = expires_on
        entries.append({"line_no": n, "lic": lic, "quantity": 5, "lots": [entry]})
    return entries


async def test_a_return_of_an_expired_lot_is_posted_with_a_warning_and_logged(
    lotline_env: Any,
) -> None:
    with capture_logs() as logs:
        async with running(lotline_env, allocation, receiving, shipping, wait=30) as (env, _):
            topics, run = env.settings.topics, uuid.uuid4().hex[:6]
            lic, po, sale, rma = f"FISH-{run}", f"PO-{run}", f"SO-{run}", f"RMA-11-{run}"
            await kafka_publish(env.bootstrap, topics.items, lic, perishable_item(lic))
            receipt = {
                "type": "ShipmentReceived",
                "office": "AI",
                "source": "purchase",
                "received_on": "2026-11-02",
                "lines": lines(lic, ("L-X", EXPIRED), ("L-Y", ON_THE_DAY)),
            }
            await kafka_publish(
                env.bootstrap, topics.receipts, po, document(f"rcv-{run}", po, receipt)
            )
            received = await status_typed(env, po, "ReceiptPosted")
            assert received["warnings"] == []

            # Sold on 2026-11-20, both lots good then (FEFO takes L-X first, then L-Y).
            request = {
                "type": "ShipmentRequested",
                "office": "AI",
                "kind": "sale",
                "customer": "Montboro",
                "ship_on": "2026-11-20",
                "lines": [{"line_no": 1, "lic": lic, "quantity": 10}],
            }
            await kafka_publish(
                env.bootstrap, topics.shipments, sale, document(f"req-{run}", sale, request)
            )
            await status_typed(env, sale, "ShipmentAllocated")
            ship = {"type": "ShipmentShipRequested"}
            await kafka_publish(
                env.bootstrap, topics.shipments, sale, document(f"ship-{run}", sale, ship)
            )
            await status_typed(env, sale, "ShipmentShipped")

            # Back on 2026-12-05: L-X expired four days before, L-Y expires that very day.
            back = {
                "type": "ShipmentReceived",
                "office": "AI",
                "source": "customer_return",
                "customer": "Montboro",
                "received_on": ON_THE_DAY,
                "lines": lines(lic, ("L-X", None), ("L-Y", None)),
            }
            await kafka_publish(
                env.bootstrap, topics.receipts, rma, document(f"rma-{run}", rma, back)
            )
            posted = await status_of(env, rma)

    assert posted["type"] == "ReceiptPosted", posted
    moved = [(m["mfr_lot"], m["lot_id"]) for line in posted["lines"] for m in line["movements"]]
    assert moved == [("L-X", f"{po}/1"), ("L-Y", f"{po}/2")]
    (warning,) = posted["warnings"]
    assert {k: v for k, v in warning.items() if k != "message"} == {
        "line_no": 1,
        "lic": lic,
        "code": "LOT_EXPIRED_ON_RETURN",
        "mfr_lot": "L-X",
        "expires_on": EXPIRED,
        "lot_id": f"{po}/1",
        "quarantine_id": None,
    }
    for said in ("L-X", "5 units", EXPIRED, ON_THE_DAY, f"{po}/1", "QuarantineStock", "loss"):
        assert said in warning["message"], (said, warning["message"])

    (logged,) = [
        e
        for e in logs
        if e["event"] == "receiving.receipt_posted_with_warnings" and e["shipment_id"] == rma
    ]
    assert logged["log_level"] == "warning"
    assert logged["warnings"] == [
        {
            "line_no": 1,
            "lic": lic,
            "code": "LOT_EXPIRED_ON_RETURN",
            "mfr_lot": "L-X",
            "expires_on": EXPIRED,
            "lot_id": f"{po}/1",
        }
    ]
