"""Stock arriving into a quarantine in force, through the real broker and PostgreSQL: a receipt
of a manufacturer lot recalled `before_receipt` is posted (the cartons are at the dock) and
held, and its `ReceiptPosted` says so (`LOT_QUARANTINED_ON_RECEIPT`), naming the line, the
lots, the quarantine and its reason and what to do, so the dock puts the cartons in the
quarantine cage; a customer return into a lot quarantined since it shipped says so too
(`LOT_QUARANTINED_ON_RETURN`). Both are logged.

Upstream publishes the item on `inventory.items`, the quarantines on `inventory.adjustments`,
the documents on `inventory.receipts` and `inventory.shipments`; allocation, receiving and
shipping run in process, as `lotline up` runs them. The receipt has two lines, so it takes the
held path (every line held, then confirmed): allocation's answer kept with the held line
carries the quarantine to the posting.
"""

from __future__ import annotations

import uuid
from typing import Any

from structlog.testing import capture_logs

from services.allocation.app import create_runtime as allocation
from services.receiving.app import create_runtime as receiving
from services.shipping.app import create_runtime as shipping
from tests.fixtures.infra import LotlineEnv, json_values, kafka_publish, kafka_read_until
from tests.integration.test_allocation_unknown_items import publish
from tests.integration.test_receiving_expired_on_receipt import perishable_item
from tests.integration.test_receiving_expired_on_return import document, status_typed
from tests.integration.test_receiving_unknown_items import running


async def quarantine(env: LotlineEnv, lic: str, run: str, **body: Any) -> None:
    """Put a quarantine in force; wait for allocation's `StockQuarantined`."""
    qid = body["quarantine_id"]
    message = {
        "type": "QuarantineStock",
        "message_id": f"{qid}-{run}",
        "lic": lic,
        "quarantined": True,
        **body,
    }
    await publish(env, env.settings.topics.adjustments, lic, message)

    def decided(records: list[Any]) -> list[Any]:
        return [v for v in json_values(records) if v.get("quarantine_id") == qid]

    records = await kafka_read_until(
        env.bootstrap, env.settings.topics.events, lambda rs: bool(decided(rs)), timeout=60
    )
    assert decided(records)[0]["type"] == "StockQuarantined", decided(records)


def lot_lines(lic: str, *lots: tuple[str, int]) -> list[dict[str, Any]]:
    """One line per (manufacturer lot, quantity), each lot expiring on 2027-06-30."""
    return [
        {
            "line_no": n,
            "lic": lic,
            "quantity": quantity,
            "lots": [{"mfr_lot": mfr_lot, "expires_on": "2027-06-30", "quantity": quantity}],
        }
        for n, (mfr_lot, quantity) in enumerate(lots, start=1)
    ]


def without_message(warning: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in warning.items() if k != "message"}


async def test_units_arriving_in_quarantine_are_posted_with_a_warning_and_logged(
    lotline_env: Any,
) -> None:
    with capture_logs() as logs:
        async with running(lotline_env, allocation, receiving, shipping, wait=30) as (env, _):
            topics, run = env.settings.topics, uuid.uuid4().hex[:6]
            lic, po, sale, rma = f"VAX-{run}", f"PO-{run}", f"SO-{run}", f"RMA-{run}"
            recall, qa = f"RECALL-{run}", f"QA-{run}"
            await kafka_publish(env.bootstrap, topics.items, lic, perishable_item(lic))
            # The supplier's recall notice, before the goods arrive.
            await quarantine(
                env,
                lic,
                run,
                quarantine_id=recall,
                mfr_lot="LOTZ",
                reason="supplier recall notice 7",
                before_receipt=True,
            )
            receipt = {
                "type": "ShipmentReceived",
                "office": "AI",
                "source": "purchase",
                "received_on": "2026-11-02",
                "lines": lot_lines(lic, ("LOTZ", 2), ("GOOD", 5)),
            }
            await kafka_publish(
                env.bootstrap, topics.receipts, po, document(f"rcv-{run}", po, receipt)
            )
            posted = await status_typed(env, po, "ReceiptPosted")

            # A sale takes the good lot only; once shipped, that lot fails QA, and a unit of
            # it comes back into the lot it was shipped from.
            request = {
                "type": "ShipmentRequested",
                "office": "AI",
                "kind": "sale",
                "customer": "Montboro",
                "ship_on": "2026-11-20",
                "lines": [{"line_no": 1, "lic": lic, "quantity": 3}],
            }
            await kafka_publish(
                env.bootstrap, topics.shipments, sale, document(f"req-{run}", sale, request)
            )
            allocated = await status_typed(env, sale, "ShipmentAllocated")
            ship = {"type": "ShipmentShipRequested"}
            await kafka_publish(
                env.bootstrap, topics.shipments, sale, document(f"ship-{run}", sale, ship)
            )
            await status_typed(env, sale, "ShipmentShipped")
            await quarantine(
                env, lic, run, quarantine_id=qa, mfr_lot="GOOD", office="AI", reason="failed QA"
            )
            back = {
                "type": "ShipmentReceived",
                "office": "AI",
                "source": "customer_return",
                "customer": "Montboro",
                "received_on": "2026-12-05",
                "lines": [
                    {
                        "line_no": 1,
                        "lic": lic,
                        "quantity": 1,
                        "lots": [{"mfr_lot": "GOOD", "quantity": 1}],
                    }
                ],
            }
            await kafka_publish(
                env.bootstrap, topics.receipts, rma, document(f"rma-{run}", rma, back)
            )
            returned = await status_typed(env, rma, "ReceiptPosted")

    # The receipt: posted whole, the recalled lot's line warned of, the other not.
    assert [line["lot_id"] for line in posted["lines"]] == [f"{po}/1", f"{po}/2"]
    assert all("quarantined" not in line for line in posted["lines"])  # a LineResult, as ever
    (warning,) = posted["warnings"]
    assert without_message(warning) == {
        "line_no": 1,
        "lic": lic,
        "code": "LOT_QUARANTINED_ON_RECEIPT",
        "mfr_lot": "LOTZ",
        "expires_on": "2027-06-30",
        "lot_id": f"{po}/1",
        "quarantine_id": recall,
    }
    said = warning["message"]
    for part in (
        "2 units of manufacturer lot LOTZ",
        "(line 1)",
        f"inventory lot {po}/1",
        f"quarantine {recall} (supplier recall notice 7)",
        "put the units in quarantine storage",
        f"QuarantineStock with quarantined=false releases {recall}",
        "mfr_lot LOTZ, no lot_id, no office",
    ):
        assert part in said, (part, said)
    # The held lot never shipped: the sale took the good one.
    taken = {m["mfr_lot"] for line in allocated["lines"] for m in line["movements"]}
    assert taken == {"GOOD"}

    # The return: back into the good lot's inventory lot, which QA holds now.
    (back_warning,) = returned["warnings"]
    assert without_message(back_warning) == {
        "line_no": 1,
        "lic": lic,
        "code": "LOT_QUARANTINED_ON_RETURN",
        "mfr_lot": "GOOD",
        "expires_on": "2027-06-30",
        "lot_id": f"{po}/2",
        "quarantine_id": qa,
    }
    said = back_warning["message"]
    for part in (
        "1 unit of manufacturer lot GOOD",
        f"came back into inventory lot {po}/2",
        f"quarantine {qa} (failed QA)",
        "put the units in quarantine storage",
        f"releases {qa}",
        "mfr_lot GOOD, no lot_id, office AI",
    ):
        assert part in said, (part, said)

    logged = {
        e["shipment_id"]: e["warnings"]
        for e in logs
        if e["event"] == "receiving.receipt_posted_with_warnings"
    }
    assert logged[po] == [{**without_message(warning), "quarantine_id": recall}]
    assert logged[rma] == [{**without_message(back_warning), "quarantine_id": qa}]
