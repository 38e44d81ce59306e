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
