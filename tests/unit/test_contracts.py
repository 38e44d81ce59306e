"""The wire contract refuses hostile input and normalizes identifiers (DESIGN.md §4, §6)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from pydantic import TypeAdapter

from shared.asyncapi import document
from shared.contracts import InvalidMessage, decode, encode
from shared.contracts.codec import MAX_MESSAGE_BYTES
from shared.contracts.commands import AllocateLine, Command, ReturnStock
from shared.contracts.events import InventoryEvent, LineShipped, Movement
from shared.contracts.upstream import AdjustmentMessage, ShipmentMessage

SHIPMENTS = TypeAdapter(ShipmentMessage)
ADJUSTMENTS = TypeAdapter(AdjustmentMessage)


def _request(quantity: object = 1, **extra: object) -> dict[str, object]:
    return {
        "type": "ShipmentRequested",
        "message_id": "m-1",
        "occurred_at": "2026-11-01T10:00:00Z",
        "shipment_id": "S-1",
        "office": "AI",
        "ship_on": "2026-11-02",
        "lines": [{"line_no": 1, "lic": "DC-IP3VO-4", "quantity": quantity}],
        **extra,
    }


def _bytes(doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_accepts_a_valid_shipment_request_with_decimal_string_quantity() -> None:
    message = decode(SHIPMENTS, _bytes(_request("2.50")))
    assert message.type == "ShipmentRequested"
    assert message.lines[0].quantity == Decimal("2.50")


@pytest.mark.parametrize("raw", [b"NaN", b"Infinity", b"-Infinity"])
def test_refuses_nan_and_infinity_literals(raw: bytes) -> None:
    body = _bytes(_request(0)).replace(b'"quantity": 0', b'"quantity": ' + raw)
    with pytest.raises(InvalidMessage, match="constant"):
        decode(SHIPMENTS, body)


@pytest.mark.parametrize("quantity", ["NaN", "Infinity", "1e400", 1e300, 0, -1, "-0.5", "abc"])
def test_refuses_non_finite_huge_zero_and_negative_quantities(quantity: object) -> None:
    with pytest.raises(InvalidMessage, match="quantity"):
        decode(SHIPMENTS, _bytes(_request(quantity)))


def test_1e400_as_a_json_number_is_refused_not_turned_into_infinity() -> None:
    body = _bytes(_request(0)).replace(b'"quantity": 0', b'"quantity": 1e400')
    with pytest.raises(InvalidMessage, match="beyond the limit"):
        decode(SHIPMENTS, body)


@pytest.mark.parametrize(
    "number",
    [b"9" * 5000, b"-" + b"9" * 5000, b"1E+1000000000", b'"1E+1000000000"', b"-1E+999999999"],
)
def test_numbers_beyond_what_python_converts_fail_validation_like_1e400(number: bytes) -> None:
    """§6: an integer past Python's 4,300-digit conversion limit (a ValueError from json) and an
    exponent past the decimal context's (decimal.Overflow from abs()) are refused as the field's
    value, with the document kept so it can be answered, never raised as something else."""
    body = _bytes(_request(0)).replace(b'"quantity": 0', b'"quantity": ' + number)
    with pytest.raises(InvalidMessage, match="beyond the limit") as caught:
        decode(SHIPMENTS, body)
    assert caught.value.document is not None and caught.value.error is not None
    assert [e["loc"][-1] for e in caught.value.error.errors()] == ["quantity"]


def test_a_long_integer_is_still_an_integer_where_python_can_read_it() -> None:
    """Only a document holding an integer too long for int is read with Decimal integers."""
    body = _bytes(_request(0)).replace(b'"quantity": 0', b'"quantity": ' + b"1" + b"0" * 4000)
    with pytest.raises(InvalidMessage, match="beyond the limit"):
        decode(SHIPMENTS, body)
    assert decode(SHIPMENTS, _bytes(_request(3))).lines[0].line_no == 1


def test_refuses_duplicate_json_keys() -> None:
    body = b'{"type": "ShipmentCancelled", "message_id": "a", "shipment_id": "S1", '
    body += b'"shipment_id": "S2"}'
    with pytest.raises(InvalidMessage, match=r"^duplicate JSON key shipment_id$"):
        decode(SHIPMENTS, body)


@pytest.mark.parametrize("bad", ["S\x00-1", "S\x07", "S\u200b1", "\ufeffS1", "S\u202e1"])
def test_refuses_control_and_invisible_characters_in_identifiers(bad: str) -> None:
    with pytest.raises(InvalidMessage, match="shipment_id"):
        decode(SHIPMENTS, _bytes(_request(shipment_id=bad)))


def test_refuses_lone_surrogates() -> None:
    body = _bytes(_request()).replace(b'"S-1"', b'"S\\ud800"')
    with pytest.raises(InvalidMessage):
        decode(SHIPMENTS, body)


def test_identifiers_are_nfc_normalized_and_trimmed() -> None:
    decomposed = "  LOT-Cafe\u0301 "
    message = decode(SHIPMENTS, _bytes(_request(shipment_id=decomposed)))
    assert message.shipment_id == "LOT-Caf\u00e9"


def test_refuses_payloads_over_the_size_limit() -> None:
    body = _bytes(_request(reason="x" * (MAX_MESSAGE_BYTES + 1)))
    with pytest.raises(InvalidMessage, match="exceeds"):
        decode(SHIPMENTS, body)


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\xff\xfe", b'{"type": "Nope"}', b"{}"])
def test_refuses_what_is_not_a_message_of_the_topic(raw: bytes) -> None:
    with pytest.raises(InvalidMessage):
        decode(SHIPMENTS, raw)


def test_adjustment_quantity_is_signed_but_not_zero() -> None:
    base = {
        "type": "AdjustInventory",
        "message_id": "a-1",
        "adjustment_id": "ADJ-1",
        "lic": "X",
        "office": "AI",
        "kind": "loss",
    }
    assert decode(ADJUSTMENTS, _bytes({**base, "quantity": -3})).quantity == Decimal(-3)
    with pytest.raises(InvalidMessage, match="must not be 0"):
        decode(ADJUSTMENTS, _bytes({**base, "quantity": 0}))


def test_duplicate_line_numbers_are_refused() -> None:
    doc = _request()
    doc["lines"] = [doc["lines"][0], doc["lines"][0]]  # type: ignore[index]
    with pytest.raises(InvalidMessage, match="appears twice"):
        decode(SHIPMENTS, _bytes(doc))


def test_events_round_trip_with_fixed_point_money() -> None:
    event = LineShipped(
        message_id="c#0",
        lic="X",
        command_id="c",
        shipment_id="S",
        line_no=1,
        office="AI",
        ship_on=date(2026, 11, 2),
        quantity=Decimal("10"),
        movements=[Movement(lot_id="L1", quantity=Decimal("10"), unit_cost=Decimal("300.00"))],
    )
    wire = encode(event)
    assert b'"unit_cost":"300.00"' in wire and b"E+" not in wire
    assert decode(TypeAdapter(InventoryEvent), wire) == event


def test_asyncapi_document_names_every_contract_topic() -> None:
    channels = set(document()["channels"])
    assert {
        "inventory.receipts", "inventory.shipments", "inventory.items", "inventory.adjustments",
        "inventory.commands", "inventory.events", "inventory.status", "inventory.costs",
        "inventory.dlq",
    } <= channels  # fmt: skip


def test_committed_asyncapi_document_matches_the_code() -> None:
    """docs/asyncapi.json is generated from the models (`make docs`); it must not drift."""
    from pathlib import Path

    committed = json.loads((Path(__file__).parents[2] / "docs" / "asyncapi.json").read_text())
    assert committed == json.loads(json.dumps(document(), sort_keys=True))


def test_own_topics_are_validated_by_the_native_parser_with_the_event_size_limit() -> None:
    """lotline's own topics: same models, pydantic's JSON parser, the larger size limit."""
    events = TypeAdapter(InventoryEvent)
    event = LineShipped(
        message_id="c#0",
        lic="X",
        command_id="c",
        shipment_id="S",
        line_no=1,
        office="AI",
        ship_on=date(2026, 11, 2),
        quantity=Decimal("1"),
    )
    assert decode(events, encode(event), own=True) == event
    with pytest.raises(InvalidMessage, match="quantity"):
        decode(events, encode(event).replace(b'"quantity":"1"', b'"quantity":"NaN"'), own=True)
    with pytest.raises(InvalidMessage, match="exceeds"):
        decode(events, encode(event), own=True, max_bytes=10)


def test_document_refusals_carry_the_first_problems_reason_code_at_the_top() -> None:
    """DESIGN §4: a refusal carries `reason_code` and a `reason` naming the offending value;
    a refused document repeats its first problem there (every problem stays in `problems`)."""
    from shared.contracts.status import LineProblem, ReceiptRejected, ShipmentAllocationFailed

    problems = [
        LineProblem(line_no=2, lic="L", reason_code="LOT_REQUIRED", reason="lots?", offending="L"),
        LineProblem(line_no=3, lic="M", reason_code="UNKNOWN_ITEM", reason="who?", offending="M"),
    ]
    refused = ReceiptRejected(message_id="m", shipment_id="PO-1", problems=problems)
    assert (refused.reason_code, refused.reason, refused.offending) == (
        "LOT_REQUIRED",
        "lots? (and 1 more problem)",
        "L",
    )
    again = ReceiptRejected.model_validate_json(refused.model_dump_json())
    assert (again.reason, again.problems) == (refused.reason, refused.problems)
    failed = ShipmentAllocationFailed(message_id="m", shipment_id="S-1", problems=problems[1:])
    assert (failed.reason_code, failed.reason) == ("UNKNOWN_ITEM", "who?")


def test_allocate_line_pairs_scanned_serials_with_their_lots_and_old_lines_stay_valid() -> None:
    """R5, R15: `AllocateLine.serial_lots` (serial → the lot it was scanned with) is optional:
    a line written before it existed still decodes, with no pairs; pairs are identifiers,
    normalized and refused as any other."""
    commands = TypeAdapter(Command)
    old = {
        "type": "AllocateLine",
        "message_id": "c-1",
        "occurred_at": "2026-11-01T10:00:00Z",
        "lic": "VAX",
        "shipment_id": "S-1",
        "line_no": 1,
        "office": "AI",
        "ship_on": "2026-11-02",
        "quantity": 2,
        "serials": ["V1", "V2"],
    }
    line = decode(commands, _bytes(old), own=True)
    assert isinstance(line, AllocateLine) and line.serial_lots == {}
    paired = decode(commands, _bytes({**old, "serial_lots": {" V1": "A ", "V2": "B"}}), own=True)
    assert isinstance(paired, AllocateLine) and paired.serial_lots == {"V1": "A", "V2": "B"}
    assert decode(commands, encode(paired), own=True) == paired
    with pytest.raises(InvalidMessage, match="serial_lots"):
        decode(commands, _bytes({**old, "serial_lots": {"V1": "A\u200b"}}), own=True)


def test_return_stock_pairs_scanned_serials_with_their_lots_and_old_returns_stay_valid() -> None:
    """R5, R13, R15: `ReturnStock.serial_lots` (serial → the lot it was scanned with), as on
    `AllocateLine`, is optional: a return written before it existed still decodes, with no
    pairs; pairs are identifiers, normalized and refused as any other."""
    commands = TypeAdapter(Command)
    old = {
        "type": "ReturnStock",
        "message_id": "c-1",
        "occurred_at": "2026-11-01T10:00:00Z",
        "lic": "VAX",
        "shipment_id": "RMA-1",
        "line_no": 1,
        "office": "AI",
        "customer": "Montboro",
        "received_on": "2026-11-02",
        "quantity": 2,
        "serials": ["V1", "V2"],
    }
    line = decode(commands, _bytes(old), own=True)
    assert isinstance(line, ReturnStock) and line.serial_lots == {}
    paired = decode(commands, _bytes({**old, "serial_lots": {" V1": "A ", "V2": "B"}}), own=True)
    assert isinstance(paired, ReturnStock) and paired.serial_lots == {"V1": "A", "V2": "B"}
    assert decode(commands, encode(paired), own=True) == paired
    with pytest.raises(InvalidMessage, match="serial_lots"):
        decode(commands, _bytes({**old, "serial_lots": {"V1": "A\u200b"}}), own=True)


def test_every_status_names_the_documents_it_answers_and_older_statuses_stay_valid() -> None:
    """`answers`: the message_ids of the upstream documents a status answers, on every status
    message; optional (empty) so a status published before the field existed still reads."""
    from typing import get_args

    from shared.contracts.status import StatusMessage

    adapter = TypeAdapter(StatusMessage)
    kinds = get_args(get_args(StatusMessage)[0])
    assert len(kinds) == 7
    for kind in kinds:
        field = kind.model_fields["answers"]
        assert not field.is_required()
        assert field.description == "the message_ids of the upstream documents this status answers"
    old = {"type": "ShipmentCancelled", "message_id": "c/status", "shipment_id": "S-1"}
    assert adapter.validate_python(old).answers == []
    new = adapter.validate_python({**old, "answers": [" r-1 ", "c\u0301"]})
    assert new.answers == ["r-1", "\u0107"]  # identifiers, normalized
    with pytest.raises(ValueError, match="answers"):
        adapter.validate_python({**old, "answers": ["bad\x00id"]})
