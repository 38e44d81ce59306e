"""What the generated AsyncAPI document says: directions, limits, optional fields, dead letters.

The document is the contract integrators read (docs/asyncapi.json); these check it says what
the code does (DESIGN.md §4, docs/contract.md).
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.asyncapi import document
from shared.contracts import topics as t
from shared.contracts.types import (
    MAX_ID_LENGTH,
    MAX_QUANTITY,
    Identifier,
    Money,
    Quantity,
    SignedQuantity,
)
from shared.contracts.upstream import PurchaseOrderUpdated

UPSTREAM = (t.RECEIPTS, t.SHIPMENTS, t.ITEMS, t.ADJUSTMENTS, t.COSTS)


@cache
def _doc() -> dict[str, Any]:
    return document()


def _actions(topic: str) -> set[str]:
    doc = _doc()
    actions = set()
    for operation in doc["operations"].values():
        channel = operation["channel"]["$ref"].removeprefix("#/channels/")
        if doc["channels"][channel]["address"] == topic:
            actions.add(operation["action"])
    return actions


def _schema(name: str) -> dict[str, Any]:
    return _doc()["components"]["schemas"][name]  # type: ignore[no-any-return]


def _number_branch(schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON-number form of a decimal field (optional ones nest it in a null union)."""
    for branch in schema["anyOf"]:
        if branch.get("type") == "number":
            return branch  # type: ignore[no-any-return]
        if "anyOf" in branch:
            return _number_branch(branch)
    raise AssertionError(f"no number branch in {schema}")


@pytest.mark.parametrize("topic", UPSTREAM)
def test_topics_lotline_only_reads_are_receive_operations(topic: str) -> None:
    assert _actions(topic) == {"receive"}


def test_the_dead_letter_topic_is_a_send_operation() -> None:
    # The ledger reads it back for the dashboard, but as raw records, never as a message type.
    assert _actions(t.DLQ) == {"send"}


@pytest.mark.parametrize("topic", [t.COMMANDS, t.EVENTS, t.STATUS])
def test_lotlines_own_per_lic_topics_are_written_and_read(topic: str) -> None:
    assert _actions(topic) == {"send", "receive"}
    # The contract name still names the channel integrators read.
    assert _doc()["channels"][topic]["address"] == topic
    assert _doc()["operations"][topic]["action"] == "send"


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        (t.RECEIPTS, "ShipmentReceived"),
        (t.ITEMS, "UpsertItem"),
        (t.COSTS, "PurchaseOrderUpdated"),
    ],
)
def test_every_operation_keeps_its_message_schema(topic: str, payload: str) -> None:
    doc = _doc()
    (message_ref,) = doc["channels"][topic]["messages"].values()
    message = doc["components"]["messages"][message_ref["$ref"].rsplit("/", 1)[-1]]
    assert message["payload"] == {"$ref": f"#/components/schemas/{payload}"}


def test_the_adjustments_topic_carries_adjustments_and_quarantines() -> None:
    doc = _doc()
    (message_ref,) = doc["channels"][t.ADJUSTMENTS]["messages"].values()
    message = doc["components"]["messages"][message_ref["$ref"].rsplit("/", 1)[-1]]
    payload = _schema(message["payload"]["$ref"].rsplit("/", 1)[-1])
    names = {ref["$ref"].rsplit("/", 1)[-1] for ref in payload["oneOf"]}
    assert names == {"AdjustInventory", "QuarantineStock"}


def test_receive_side_of_events_carries_every_event_type() -> None:
    doc = _doc()
    (message_ref,) = doc["channels"][f"{t.EVENTS}:receive"]["messages"].values()
    message = doc["components"]["messages"][message_ref["$ref"].rsplit("/", 1)[-1]]
    payload = _schema(message["payload"]["$ref"].rsplit("/", 1)[-1])
    names = {ref["$ref"].rsplit("/", 1)[-1] for ref in payload["oneOf"]}
    assert {"StockReceived", "LineAllocated", "CommandRejected"} <= names


def test_purchase_order_closed_left_out_is_not_false() -> None:
    schema = _schema("PurchaseOrderUpdated")
    closed = schema["properties"]["closed"]
    assert "default" not in closed
    assert "closed" not in schema.get("required", [])
    assert "as it was" in closed["description"]
    # The model still tells "left out" from false: the ledger reads `model_fields_set`.
    base = {"message_id": "m", "po": "PO-1", "lic": "L"}
    assert "closed" not in PurchaseOrderUpdated.model_validate(base).model_fields_set
    reopen = PurchaseOrderUpdated.model_validate({**base, "closed": False})
    assert "closed" in reopen.model_fields_set and reopen.closed is False
    with pytest.raises(ValidationError):
        PurchaseOrderUpdated.model_validate({**base, "closed": None})


def test_identifiers_show_their_real_limit() -> None:
    lic = _schema("PurchaseOrderUpdated")["properties"]["lic"]
    assert lic["type"] == "string" and lic["maxLength"] == MAX_ID_LENGTH == 128
    assert "8388608" not in str(_schema("ShipmentReceived"))


def test_quantities_show_their_bounds() -> None:
    line = _number_branch(_schema("ReceiptLine")["properties"]["quantity"])
    assert line["exclusiveMinimum"] == 0
    assert line["maximum"] == 10**9 == int(MAX_QUANTITY)
    # No multipleOf: float-dividing validators would refuse 0.1 (not a multiple of 1e-06).
    assert (
        "multipleOf" not in line
        and "6 decimal places" in _schema("ReceiptLine")["properties"]["quantity"]["description"]
    )
    cost = _number_branch(_schema("PurchaseOrderUpdated")["properties"]["act_unit_cost"])
    assert cost["minimum"] == 0 and cost["maximum"] == 10**12


def test_the_signed_adjustment_quantity_is_not_shown_positive() -> None:
    quantity = _number_branch(_schema("AdjustInventory")["properties"]["quantity"])
    assert "exclusiveMinimum" not in quantity
    assert quantity["minimum"] == -(10**9) and quantity["maximum"] == 10**9
    assert quantity["not"] == {"const": 0}


@pytest.mark.parametrize(
    ("annotation", "value", "message"),
    [
        (Identifier, "x" * 129, "identifier longer than 128 characters"),
        (Quantity, "0", "quantity must be greater than 0"),
        (Quantity, "1000000001", "beyond the limit"),
        (Quantity, "1.0000001", "more than 6 decimal places"),
        (SignedQuantity, "0", "quantity must not be 0"),
        (Money, "-1", "amount must be 0 or more, not -1"),
    ],
)
def test_the_schema_text_leaves_validation_messages_alone(
    annotation: Any, value: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        TypeAdapter(annotation).validate_python(value)


def test_identifier_is_trimmed_before_its_limit_applies() -> None:
    # A pydantic max_length would count the padding; the validator counts the identifier.
    assert TypeAdapter(Identifier).validate_python(f"  {'x' * 128}  ") == "x" * 128
    assert TypeAdapter(SignedQuantity).validate_python("-5") == Decimal(-5)


def test_dead_letters_document_payload_and_every_header() -> None:
    doc = _doc()
    channel = doc["channels"][t.DLQ]
    message = doc["components"]["messages"][f"{t.DLQ}:Message"]
    payload = _schema(message["payload"]["$ref"].rsplit("/", 1)[-1])
    assert payload != {} and payload["format"] == "binary"
    assert "as received" in payload["description"]
    assert message["contentType"] == "application/octet-stream"
    headers = message["headers"]
    emitted = {"error", "source_topic", "source_partition", "source_offset", "consumer"}
    assert emitted | {"answered"} <= set(headers["properties"])
    assert emitted <= set(headers["required"])
    assert "^original_" in headers["patternProperties"]
    for name in [*emitted, "answered", "original_"]:
        assert f"`{name}" in channel["description"], name


@pytest.mark.parametrize(
    "name",
    [
        "ReceiptPosted",
        "ReceiptRejected",
        "ShipmentAllocated",
        "ShipmentAllocationFailed",
        "ShipmentShipped",
        "ShipmentShipRefused",
        "ShipmentCancelledStatus",
    ],
)
def test_every_status_documents_the_documents_it_answers(name: str) -> None:
    schema = _schema(name)
    answers = schema["properties"]["answers"]
    assert answers["type"] == "array"
    assert answers["items"]["maxLength"] == MAX_ID_LENGTH
    assert answers["description"] == "the message_ids of the upstream documents this status answers"
    assert "answers" not in schema.get("required", [])
