"""A flag sent as the text "true" or "false" is refused, with a reason that says it was text:
"quarantined: must be true or false, not true" contradicted itself (the quotes, which a
dashboard does not show, were the whole problem). Its reason code and offending value are
as before."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from shared.contracts import InvalidMessage, decode
from shared.contracts.invalid import problems
from shared.contracts.upstream import AdjustmentMessage, CostMessage, ItemMessage
from shared.reasons import ReasonCode

TEXT = "must be a JSON boolean, true or false without quotes, not the text"


def _quarantine(**fields: Any) -> dict[str, Any]:
    return {
        "type": "QuarantineStock",
        "message_id": "q-1",
        "quarantine_id": "Q-1",
        "lic": "A",
        "mfr_lot": "L1",
        "quarantined": True,
    } | fields


def _item(**fields: Any) -> dict[str, Any]:
    return {"type": "UpsertItem", "message_id": "item-1", "lic": "A"} | fields


def _refused(doc: dict[str, Any]) -> tuple[InvalidMessage, list[Any]]:
    adapter = {
        "QuarantineStock": AdjustmentMessage,
        "UpsertItem": ItemMessage,
        "PurchaseOrderUpdated": CostMessage,
    }[doc["type"]]
    with pytest.raises(InvalidMessage) as caught:
        decode(TypeAdapter(adapter), json.dumps(doc).encode())
    exc = caught.value
    assert exc.document is not None and exc.error is not None
    return exc, problems(exc.document, exc.error.errors(include_url=False))


@pytest.mark.parametrize(
    ("doc", "reason", "offending"),
    [
        (_quarantine(quarantined="true"), f"quarantined: {TEXT} true", "true"),
        (_item(track_mfr_lot="false"), f"track_mfr_lot: {TEXT} false", "false"),
        (_quarantine(before_receipt="TRUE"), f"before_receipt: {TEXT} TRUE", "TRUE"),
        (
            {"type": "PurchaseOrderUpdated", "message_id": "po-1", "po": "P", "lic": "A"}
            | {"closed": "false "},
            f"closed: {TEXT} false followed by a space",
            "false ",
        ),
    ],
    ids=["quarantined", "track_mfr_lot", "uppercase", "trailing-space"],
)
def test_a_flag_sent_as_text_is_refused_saying_it_was_text(
    doc: dict[str, Any], reason: str, offending: str
) -> None:
    exc, found = _refused(doc)
    assert [(p.reason, p.reason_code, p.offending) for p in found] == [
        (reason, ReasonCode.INVALID_QUANTITY, offending)
    ]
    assert exc.reason == reason  # the dead letter's `error` header says the same


def test_other_values_for_a_flag_keep_their_reason() -> None:
    _, found = _refused(_item(perishable="yes", serialized=1))
    assert [p.reason for p in found] == [
        "serialized: must be true or false, not 1",
        "perishable: must be true or false, not yes",
    ]
