"""`lotline demo` and `lotline send` against the four services, a real broker and PostgreSQL."""

from __future__ import annotations

import io
import json

from shared.demo import run_demo
from shared.send import check, send
from tests.fixtures.infra import LotlineEnv


async def test_the_demo_walks_through_receipt_fefo_sale_refusal_and_recall(
    running: LotlineEnv,
) -> None:
    out = io.StringIO()

    problems = await run_demo(running.settings, running.api, out, run="DEMO-t1", wait=90)

    text = out.getvalue()
    assert problems == [], text
    assert "ShipmentRequested SO-DEMO-t1  → ShipmentAllocated" in text
    # R9 without picks: the lot expiring first (LB, in 20 days) before the later one (LA).
    assert "line 1 MILK-DEMO-t1: 40 of LB-DEMO-t1" in text
    assert "10 of LA-DEMO-t1" in text
    assert "ShipmentAllocationFailed INSUFFICIENT_STOCK" in text
    trace = text[text.index("Recall trace") :]
    assert "shipment     SO-DEMO-t1" in trace
    assert "customers: ACME Hospital" in trace


async def test_send_tells_an_answer_a_redelivery_and_a_dead_letter_apart(
    running: LotlineEnv,
) -> None:
    item = {"type": "UpsertItem", "message_id": "send-1", "lic": "SEND-1", "est_unit_cost": "1"}
    first = [check("f:1", json.dumps(item))]
    answered = await send(running.settings, first, wait=90)
    assert answered[0].answer is not None and answered[0].answer["type"] == "ItemUpserted"

    # The same document again is a redelivery: applied once, answered once, so no answer now.
    # The same message_id on another document is dead-lettered, not applied.
    reused = {**item, "lic": "SEND-2"}
    again = [check("f:1", json.dumps(item)), check("f:2", json.dumps(reused))]
    out = io.StringIO()
    # Both are read in one batch: the dead letter comes at once, and an answer would too.
    outcomes = await send(running.settings, again, wait=6, out=out)

    assert outcomes[0].answer is None and outcomes[0].dead_letter is None
    assert outcomes[1].answer is None
    assert outcomes[1].dead_letter is not None and "send-1" in outcomes[1].dead_letter
    assert "f:1  UpsertItem SEND-1  → no answer yet" in out.getvalue()


async def test_one_at_a_time_sends_each_document_after_the_answer_to_the_one_before(
    running: LotlineEnv,
) -> None:
    item = {
        "type": "UpsertItem",
        "message_id": "turn-item",
        "lic": "TURN-1",
        "track_mfr_lot": True,
        "perishable": False,
        "est_unit_cost": "2",
    }
    receipt = {
        "type": "ShipmentReceived",
        "message_id": "turn-po",
        "shipment_id": "PO-TURN",
        "office": "MAIN",
        "source": "purchase",
        "received_on": "2026-11-20",
        "lines": [
            {
                "line_no": 1,
                "lic": "TURN-1",
                "quantity": 5,
                "lots": [{"mfr_lot": "T", "quantity": 5}],
            }
        ],
    }
    sale = {
        "type": "ShipmentRequested",
        "message_id": "turn-so",
        "shipment_id": "SO-TURN",
        "office": "MAIN",
        "kind": "sale",
        "customer": "C",
        "ship_on": "2026-11-21",
        "lines": [{"line_no": 1, "lic": "TURN-1", "quantity": 5}],
    }
    story = [check(f"f:{n}", json.dumps(doc)) for n, doc in enumerate((item, receipt, sale), 1)]
    out = io.StringIO()

    outcomes = await send(running.settings, story, wait=90, out=out, one_at_a_time=True)

    # Three topics, unordered with each other: only waiting for each answer makes the sale
    # find the receipt's stock (sent together, it may be decided first: INSUFFICIENT_STOCK).
    assert [o.answer and o.answer["type"] for o in outcomes] == [
        "ItemUpserted",
        "ReceiptPosted",
        "ShipmentAllocated",
    ], out.getvalue()
    assert [line.split("  ")[0] for line in out.getvalue().splitlines() if "→" in line] == [
        "f:1",
        "f:2",
        "f:3",
    ]

    # A document that gets no answer (its message_id was processed: a redelivery) stops the
    # rest, which are not sent: the receipt after it would otherwise be posted.
    again = check("g:1", json.dumps(item))
    later = check("g:2", json.dumps({**receipt, "message_id": "turn-po-2", "shipment_id": "PO-2"}))
    out = io.StringIO()

    stopped = await send(running.settings, [again, later], wait=5, out=out, one_at_a_time=True)

    assert stopped[0].sent and stopped[0].answer is None
    assert not stopped[1].sent and stopped[1].answer is None
    assert "g:2  ShipmentReceived PO-2  → not sent" in out.getvalue()
