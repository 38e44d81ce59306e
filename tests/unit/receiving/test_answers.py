"""Receiving's statuses name the receipt they answer (`answers`): one receipt each, the
document's own `message_id`, also when the receipt failed its schema but named its ids."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from services.receiving import translate
from shared.contracts.upstream import ReceiptMessage


def _invalid(**fields: Any) -> dict[str, Any]:
    return {
        "type": "ShipmentReceived",
        "message_id": " rcv-1 ",
        "shipment_id": "PO-1",
        "office": "AI",
        "source": "purchase",
        "received_on": "2026-11-01",
        "lines": [{"line_no": 1, "lic": "A", "quantity": 0}],
        **fields,
    }


def test_an_invalid_receipt_answered_names_itself_in_answers() -> None:
    raw = _invalid()
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(ReceiptMessage).validate_python(raw)
    refusal = translate.invalid_receipt(raw, caught.value.errors(include_url=False))
    assert refusal is not None
    assert (refusal.message_id, refusal.answers) == ("rcv-1/rejected", ["rcv-1"])


def test_posted_and_rejected_statuses_name_the_receipt_they_answer() -> None:
    posted = translate.posted("rcv-1/posted", "PO-1", [], answers="rcv-1")
    rejected = translate.rejected("rcv-2/rejected", "PO-1", (), answers="rcv-2")
    assert (posted.answers, rejected.answers) == (["rcv-1"], ["rcv-2"])
