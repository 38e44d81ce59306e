"""A `QuarantineStock` naming neither lot is refused `LOT_REQUIRED` with no `offending`: the
value is missing, and docs/contract.md ("Invalid documents") gives a missing field none, never
the text "null" nor another field's value."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from services.allocation import translate
from services.allocation.domain.errors import ReasonCode
from shared.contracts import InvalidMessage, decode
from shared.contracts.events import CommandRejected
from shared.contracts.upstream import AdjustmentMessage
from tests.unit.allocation.builders import Book, item, quarantine, receive

ADJUSTMENTS = TypeAdapter(AdjustmentMessage)
EVENTS = "inventory.events"
QUARANTINE = {
    "type": "QuarantineStock",
    "message_id": "q-1",
    "quarantine_id": "Q-1",
    "lic": "A",
    "quarantined": True,
}


def _refusal(doc: dict[str, Any]) -> CommandRejected:
    with pytest.raises(InvalidMessage) as caught:
        decode(ADJUSTMENTS, json.dumps(doc).encode())
    exc = caught.value
    assert exc.document is not None and exc.error is not None
    answers = translate.refuse_adjustments(EVENTS)(exc.document, exc.error.errors())
    assert answers is not None
    ((_, _, rejected),) = answers
    assert isinstance(rejected, CommandRejected)
    return rejected


def test_a_quarantine_leaving_out_both_lots_has_no_offending_value() -> None:
    rejected = _refusal(QUARANTINE)
    assert rejected.reason_code.value == "LOT_REQUIRED"
    assert rejected.offending is None


def test_a_quarantine_sending_a_null_lot_shows_the_null_it_sent() -> None:
    """Sent as null, the value as sent is null, as for any other field."""
    rejected = _refusal({**QUARANTINE, "mfr_lot": None, "lot_id": None})
    assert (rejected.reason_code.value, rejected.offending) == ("LOT_REQUIRED", "null")


def test_the_core_refusing_a_quarantine_of_no_lot_names_no_offending_value() -> None:
    """The core's own check (behind the contract's) offends with nothing, not the
    quarantine_id: no value was given."""
    book = Book(item(), receive("PO-1/1", 5))
    refusal = book.refused(quarantine("Q-1"), ReasonCode.LOT_REQUIRED)
    assert refusal.offending == ""
