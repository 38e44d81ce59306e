"""The upstream `QuarantineStock` on inventory.adjustments: its contract, its refusal when it
fails its schema (as an invalid AdjustInventory is refused, docs/contract.md "Invalid
documents"), and its route for `lotline send`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from services.allocation import translate
from shared.contracts import InvalidMessage, decode
from shared.contracts import topics as t
from shared.contracts.commands import Command, QuarantineStock
from shared.contracts.events import CommandRejected, InventoryEvent, StockQuarantined
from shared.contracts.upstream import UPSTREAM_ROUTES, AdjustmentMessage
from shared.send import ANSWERED_ON_EVENTS, EVENT_ORIGINS, MAY_BE_HELD

EVENTS = "t.inventory.events"
ADJUSTMENTS = TypeAdapter(AdjustmentMessage)
QUARANTINE = {
    "type": "QuarantineStock",
    "message_id": "q-1",
    "quarantine_id": "Q-1",
    "lic": "A",
    "mfr_lot": "X",
    "quarantined": True,
    "reason": "recall notice 42",
}


def _refusal(doc: dict[str, Any]) -> CommandRejected:
    with pytest.raises(InvalidMessage) as caught:
        decode(ADJUSTMENTS, json.dumps(doc).encode())
    exc = caught.value
    assert exc.document is not None and exc.error is not None
    answers = translate.refuse_adjustments(EVENTS)(exc.document, exc.error.errors())
    assert answers is not None
    ((topic, key, rejected),) = answers
    assert (topic, key) == (EVENTS, "A")
    assert isinstance(rejected, CommandRejected)
    assert (rejected.command_id, rejected.command_type) == ("quarantine:q-1", "QuarantineStock")
    assert rejected.quarantine_id == "Q-1"
    return rejected


def test_a_quarantine_is_read_on_the_adjustments_topic_keyed_by_lic() -> None:
    message = decode(ADJUSTMENTS, json.dumps(QUARANTINE).encode())
    assert (message.type, message.mfr_lot, message.office) == ("QuarantineStock", "X", None)
    assert UPSTREAM_ROUTES["QuarantineStock"] == (t.ADJUSTMENTS, "lic")
    assert EVENT_ORIGINS["QuarantineStock"] == "quarantine"
    assert "StockQuarantined" in ANSWERED_ON_EVENTS and "QuarantineStock" in MAY_BE_HELD


def test_a_quarantine_naming_no_lot_is_refused() -> None:
    rejected = _refusal({**QUARANTINE, "mfr_lot": None})
    assert rejected.reason_code.value == "LOT_REQUIRED"
    assert "mfr_lot" in rejected.reason and "lot_id" in rejected.reason


@pytest.mark.parametrize("flag", ["yes", None, 1])
def test_quarantined_must_be_a_json_boolean(flag: object) -> None:
    _refusal({**QUARANTINE, "quarantined": flag})


def test_quarantined_is_required() -> None:
    doc = dict(QUARANTINE)
    del doc["quarantined"]
    _refusal(doc)


def test_the_command_and_the_answer_travel_in_their_unions() -> None:
    command = TypeAdapter(Command).validate_python(
        {
            **QUARANTINE,
            "message_id": "quarantine:q-1",
            "occurred_at": "2026-01-01T00:00:00Z",
            "quarantined_on": "2026-01-01",
        }
    )
    assert isinstance(command, QuarantineStock)
    event = TypeAdapter(InventoryEvent).validate_python(
        {
            "type": "StockQuarantined",
            "message_id": "quarantine:q-1#0",
            "command_id": "quarantine:q-1",
            "lic": "A",
            "quarantine_id": "Q-1",
            "quarantined": True,
            "mfr_lot": "X",
            "quarantined_on": "2026-01-01",
            "stock": [{"lot_id": "PO-1/1", "office": "AI", "mfr_lot": "X", "on_hand": "5"}],
        }
    )
    assert isinstance(event, StockQuarantined)
