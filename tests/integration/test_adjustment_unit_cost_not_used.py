"""A count putting units back into a lot with a `unit_cost` other than the lot's, through the
real broker and PostgreSQL (allocation and the ledger in process, as `lotline up` runs them):
answered `InventoryAdjusted` with `UNIT_COST_NOT_USED`; the ledger books the reversal at the
lot's cost (R11) and keeps the warning with the answer, as it keeps any."""

from __future__ import annotations

import uuid
from typing import Any

from services.allocation.app import create_runtime as allocation
from services.ledger.app import create_runtime as ledger
from tests.integration.test_adjustment_warnings import count, ledger_row
from tests.integration.test_allocation_unknown_items import answers, publish
from tests.integration.test_receiving_unknown_items import running


async def test_a_count_back_at_another_cost_is_warned_of_and_booked_at_the_lots_cost(
    lotline_env: Any,
) -> None:
    async with running(lotline_env, allocation, ledger, wait=30) as (env, _):
        topics, run = env.settings.topics, uuid.uuid4().hex[:6]
        lic = f"SALT-{run}"
        item = {"type": "UpsertItem", "message_id": f"item-{lic}", "lic": lic}
        await publish(env, topics.items, lic, item)
        steps = [
            count(run, "bb", lic, "MAIN", "beginning_balance", 5) | {"unit_cost": "3.00"},
            count(run, "out", lic, "MAIN", "count", -2),
            count(run, "back", lic, "MAIN", "count", 2) | {"unit_cost": "5.00"},
        ]
        for n, step in enumerate(steps, start=2):  # each sent once the one before is decided
            await publish(env, topics.adjustments, step["adjustment_id"], step)
            *_, answer = await answers(env, lic, n)
            assert answer["type"] == "InventoryAdjusted", answer
        back = answer
        usage = await ledger_row(
            env, "SELECT unit_cost FROM ledger.usage WHERE document = $1", steps[2]["adjustment_id"]
        )
        kept = await ledger_row(
            env,
            "SELECT warnings FROM ledger.ops_documents WHERE document = $1",
            steps[2]["adjustment_id"],
        )

    lot_id = f"ADJ-bb-{run}/{lic}/BB"
    assert [(m["lot_id"], m["quantity"], m["unit_cost"]) for m in back["movements"]] == [
        (lot_id, "2", "3.00")
    ]
    (warning,) = back["warnings"]
    assert (warning["code"], warning["lot_id"], warning["office"]) == (
        "UNIT_COST_NOT_USED",
        lot_id,
        "MAIN",
    )
    assert (
        "not the unit_cost given, 5 (10 for them): the lot was received at 3 each (6)"
        in (warning["message"])
    )
    assert usage["unit_cost"] == 3
    assert '"UNIT_COST_NOT_USED"' in kept["warnings"]
