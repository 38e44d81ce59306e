"""A receipt of a perishable lot already expired when received, through the real broker and
PostgreSQL: posted as before, its `ReceiptPosted` saying so (`warnings[]`), and logged.

Upstream publishes the item on `inventory.items` and the receipt on `inventory.receipts`;
allocation and receiving run in process, as `lotline up` runs them. The receipt has two lines,
so it takes the held path (every line held, then confirmed): the warning found when the
document was checked is kept with it until its last line posts.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from structlog.testing import capture_logs

from services.allocation.app import create_runtime as allocation
from services.receiving.app import create_runtime as receiving
from tests.fixtures.infra import kafka_publish
from tests.integration.test_receiving_unknown_items import running, status_of


def perishable_item(lic: str) -> bytes:
    body = {
        "type": "UpsertItem",
        "message_id": f"item-{lic}",
        "lic": lic,
        "track_mfr_lot": True,
        "perishable": True,
        "est_unit_cost": "3",
    }
    return json.dumps(body).encode()


def receipt(run: str, doc: str, lic: str, *lots: tuple[str, str]) -> bytes:
    """One line per (mfr lot, expiry), 4 units each, received on 2026-11-02."""
    lines = [
        {
            "line_no": n,
            "lic": lic,
            "quantity": 4,
            "lots": [{"mfr_lot": mfr_lot, "expires_on": expires_on, "quantity": 4}],
        }
        for n, (mfr_lot, expires_on) in enumerate(lots, start=1)
    ]
    return json.dumps(
        {
            "type": "ShipmentReceived",
            "message_id": f"rcv-{doc}-{run}",
            "shipment_id": doc,
            "office": "AI",
            "source": "purchase",
            "received_on": "2026-11-02",
            "lines": lines,
        }
    ).encode()


async def test_an_expired_lot_is_posted_with_a_warning_and_logged(lotline_env: Any) -> None:
    with capture_logs() as logs:
        async with running(lotline_env, allocation, receiving, wait=30) as (env, _):
            topics, run = env.settings.topics, uuid.uuid4().hex[:6]
            lic, doc, today = f"FISH-{run}", f"PO-1-{run}", f"PO-2-{run}"
            await kafka_publish(env.bootstrap, topics.items, lic, perishable_item(lic))
            document = receipt(run, doc, lic, ("FRESH", "2027-03-31"), ("STALE", "2026-10-30"))
            await kafka_publish(env.bootstrap, topics.receipts, doc, document)
            # A lot expiring on the receipt day itself is good that day: no warning.
            await kafka_publish(
                env.bootstrap,
                topics.receipts,
                today,
                receipt(run, today, lic, ("DAY", "2026-11-02")),
            )

            posted = await status_of(env, doc)
            on_the_day = await status_of(env, today)

    assert posted["type"] == "ReceiptPosted", posted
    assert [line["lot_id"] for line in posted["lines"]] == [f"{doc}/1", f"{doc}/2"]
    (warning,) = posted["warnings"]
    assert {k: v for k, v in warning.items() if k != "message"} == {
        "line_no": 2,
        "lic": lic,
        "code": "LOT_EXPIRED_ON_RECEIPT",
        "mfr_lot": "STALE",
        "expires_on": "2026-10-30",
        "lot_id": f"{doc}/2",
        "quarantine_id": None,
    }
    for said in ("STALE", "2026-10-30", "2026-11-02", f"{doc}/2", "QuarantineStock", "vendor"):
        assert said in warning["message"], (said, warning["message"])
    assert on_the_day["type"] == "ReceiptPosted" and on_the_day["warnings"] == []

    (logged,) = [e for e in logs if e["event"] == "receiving.receipt_posted_with_warnings"]
    assert logged["log_level"] == "warning"
    assert logged["shipment_id"] == doc
    assert logged["warnings"] == [
        {
            "line_no": 2,
            "lic": lic,
            "code": "LOT_EXPIRED_ON_RECEIPT",
            "mfr_lot": "STALE",
            "expires_on": "2026-10-30",
            "lot_id": f"{doc}/2",
        }
    ]
