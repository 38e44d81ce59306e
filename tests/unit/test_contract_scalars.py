"""Hostile scalars an upstream system may send (DESIGN.md §4, §6): dates not written
`YYYY-MM-DD`, numbers as text with underscores or non-ASCII digits, flags and line numbers
that are not what they claim, zeros that are not plain zeros, times without an offset.

Each is refused with the field named and the value shown, or, where nothing is lost, written
back plainly; none becomes something else silently."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter

from shared.contracts import InvalidMessage, decode, encode
from shared.contracts import invalid as inv
from shared.contracts.commands import AllocateLine, Command
from shared.contracts.upstream import (
    AdjustmentMessage,
    CostMessage,
    ItemMessage,
    ReceiptMessage,
    ShipmentMessage,
    ShipmentRequested,
)
from shared.reasons import ReasonCode
from tests.fixtures.documents import receipt_document

SHIPMENTS = TypeAdapter(ShipmentMessage)
RECEIPTS = TypeAdapter(ReceiptMessage)
ITEMS = TypeAdapter(ItemMessage)
COSTS = TypeAdapter(CostMessage)
ADJUSTMENTS = TypeAdapter(AdjustmentMessage)
COMMANDS = TypeAdapter(Command)


def _request(**fields: Any) -> dict[str, Any]:
    line = {"line_no": 1, "lic": "L-1", "quantity": 1, **fields.pop("line", {})}
    return {
        "type": "ShipmentRequested",
        "message_id": "m-1",
        "occurred_at": "2026-11-01T10:00:00Z",
        "shipment_id": "S-1",
        "office": "AI",
        "ship_on": "2026-11-02",
        "lines": [line],
        **fields,
    }


def _cost(**fields: Any) -> dict[str, Any]:
    return {
        "type": "PurchaseOrderUpdated",
        "message_id": "c-1",
        "po": "PO-1",
        "lic": "L-1",
        **fields,
    }


def _item(**fields: Any) -> dict[str, Any]:
    return {"type": "UpsertItem", "message_id": "i-1", "lic": "L-1", **fields}


def _requested(doc: dict[str, Any]) -> ShipmentRequested:
    message = decode(SHIPMENTS, json.dumps(doc).encode())
    assert isinstance(message, ShipmentRequested)
    return message


def _refused(adapter: TypeAdapter[Any], doc: dict[str, Any]) -> list[inv.Problem]:
    with pytest.raises(InvalidMessage) as caught:
        decode(adapter, json.dumps(doc).encode())
    assert caught.value.document is not None and caught.value.error is not None
    return inv.problems(caught.value.document, caught.value.error.errors(include_url=False))


# --- dates: YYYY-MM-DD, nothing else -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-11-02T00:00:00", "2026-11-02T00:00:00"),
        ("2026-11-02T00:00:00+14:00", "2026-11-02T00:00:00+14:00"),
        ("2026-11-02T00:00:00Z", "2026-11-02T00:00:00Z"),
        (0, "0"),  # read as a Unix time: 1970-01-01
        (1_793_577_600, "1793577600"),
    ],
)
def test_a_ship_date_not_written_yyyy_mm_dd_is_refused_naming_it(value: object, shown: str) -> None:
    [problem] = _refused(SHIPMENTS, _request(ship_on=value))
    assert problem.path == "ship_on"
    assert problem.offending == shown
    assert "YYYY-MM-DD" in problem.reason


def test_an_expiry_not_written_yyyy_mm_dd_is_refused_expiry_required() -> None:
    lots = [{"mfr_lot": "M1", "expires_on": "2027-01-31T00:00:00", "quantity": 2}]
    [problem] = _refused(RECEIPTS, receipt_document(quantity=2, lots=lots))
    assert problem.path == "lines[0].lots[0].expires_on"
    assert problem.reason_code == ReasonCode.EXPIRY_REQUIRED
    assert problem.offending == "2027-01-31T00:00:00"


def test_dates_written_yyyy_mm_dd_and_python_dates_are_still_taken() -> None:
    message = _requested(_request(ship_on="2026-11-02"))
    assert message.ship_on == date(2026, 11, 2)
    line = AllocateLine(
        message_id="a-1",
        lic="L-1",
        shipment_id="S-1",
        line_no=1,
        office="AI",
        ship_on=date(2026, 11, 2),
        quantity=Decimal(1),
    )
    assert decode(COMMANDS, encode(line), own=True) == line


# --- numbers as text ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1_000", "1_5", "\u0665", "\uff15", "1\u00a0000"])
def test_a_quantity_as_text_with_underscores_or_non_ascii_digits_is_refused(value: str) -> None:
    [problem] = _refused(SHIPMENTS, _request(line={"quantity": value}))
    assert problem.path == "lines[0].quantity"
    assert problem.reason_code == ReasonCode.INVALID_QUANTITY
    assert problem.offending == value
    assert "decimal number" in problem.reason


def test_money_as_text_with_underscores_is_refused() -> None:
    [problem] = _refused(COSTS, _cost(act_unit_cost="1_250.00"))
    assert problem.path == "act_unit_cost"
    assert problem.offending == "1_250.00"


@pytest.mark.parametrize(
    ("text", "value"), [(" 5 ", "5"), ("+5", "5"), ("2.50", "2.50"), ("5e0", "5")]
)
def test_plain_decimal_text_is_still_read(text: str, value: str) -> None:
    message = _requested(_request(line={"quantity": text}))
    assert message.lines[0].quantity == Decimal(value)


# --- line numbers and flags --------------------------------------------------------------------


@pytest.mark.parametrize(("value", "shown"), [(True, "true"), ("1_0", "1_0")])
def test_a_line_number_that_is_a_boolean_or_underscored_text_is_refused(
    value: object, shown: str
) -> None:
    [problem] = _refused(SHIPMENTS, _request(line={"line_no": value}))
    assert problem.path == "lines[0].line_no"
    assert problem.offending == shown


@pytest.mark.parametrize("value", ["yes", "0", "off", "t", 1, 0])
def test_an_item_flag_that_is_not_a_json_boolean_is_refused(value: object) -> None:
    [problem] = _refused(ITEMS, _item(track_mfr_lot=value))
    assert problem.path == "track_mfr_lot"
    assert problem.offending == str(value)


@pytest.mark.parametrize("value", ["no", "false", 0])
def test_a_po_close_flag_that_is_not_a_json_boolean_is_refused(value: object) -> None:
    """`closed: false` reopens a closed PO (R16): a "no" typed by someone must not do that."""
    [problem] = _refused(COSTS, _cost(closed=value))
    assert problem.path == "closed"


def test_json_booleans_are_still_flags() -> None:
    item = decode(ITEMS, json.dumps(_item(track_mfr_lot=True, serialized=False)).encode())
    assert (item.track_mfr_lot, item.serialized) == (True, False)


# --- zeros -------------------------------------------------------------------------------------


def test_a_negative_zero_amount_is_written_as_zero() -> None:
    message = decode(
        COSTS, json.dumps(_cost(act_unit_cost="-0.00", ordered_quantity="-0")).encode()
    )
    written = json.loads(encode(message))
    assert (written["act_unit_cost"], written["ordered_quantity"]) == ("0.00", "0")


def test_a_zero_with_a_huge_scale_is_not_inflated_on_the_wire() -> None:
    """§6: `0E-1000000` is 10 bytes in and would be a million digits out (and past what
    PostgreSQL's numeric takes: 16,383 places), in every event that repeats it."""
    message = decode(COSTS, json.dumps(_cost(act_unit_cost="0E-1000000")).encode())
    assert len(encode(message)) < 1_000
    assert message.act_unit_cost == 0


def test_trailing_zeros_past_six_places_are_dropped_and_no_digit_is_lost() -> None:
    text = "12.5" + "0" * 20_000  # past PostgreSQL's 16,383 places
    message = _requested(_request(line={"quantity": text}))
    quantity = message.lines[0].quantity
    assert quantity == Decimal("12.5")
    assert json.loads(encode(message))["lines"][0]["quantity"] == "12.500000"


def test_places_up_to_six_are_kept_as_sent() -> None:
    message = _requested(_request(line={"quantity": "2.500"}))
    assert json.loads(encode(message))["lines"][0]["quantity"] == "2.500"


# --- occurred_at: RFC 3339, with its offset ----------------------------------------------------


@pytest.mark.parametrize("value", ["2026-11-01T10:00:00", "2026-11-01", 0, 1_793_577_600])
def test_an_upstream_occurred_at_that_is_not_rfc_3339_is_refused(value: object) -> None:
    [problem] = _refused(SHIPMENTS, _request(occurred_at=value))
    assert problem.path == "occurred_at"
    assert "RFC 3339" in problem.reason


@pytest.mark.parametrize(
    "value", ["2026-11-01T10:00:00Z", "2026-11-01t10:00:00.5+02:00", "2026-11-01 10:00:00-05:00"]
)
def test_an_rfc_3339_occurred_at_is_taken(value: str) -> None:
    message = _requested(_request(occurred_at=value))
    assert message.occurred_at.tzinfo is not None


def test_a_python_caller_may_still_pass_an_aware_datetime() -> None:
    at = datetime(2026, 11, 1, 10, tzinfo=UTC)
    doc = {**_request(), "occurred_at": at}
    assert SHIPMENTS.validate_python(doc).occurred_at == at


@pytest.mark.timeout(30)
@pytest.mark.parametrize("number", ["1e1000000000", "-1e1000000000", "1e-1000000000"])
@pytest.mark.parametrize("field", ["line_no", "min_shelf_life_days"])
def test_an_integer_field_with_a_huge_exponent_is_refused_without_building_the_number(
    number: str, field: str
) -> None:
    """Ten bytes of JSON: pydantic alone turned 1e1000000000 into a billion-digit int (and took
    as long to find 1e-1000000000's fraction), holding the partition for minutes."""
    if field == "line_no":
        raw = (
            '{"type": "ShipmentPicksUpdated", "message_id": "m-1", "shipment_id": "S-1",'
            f' "line_no": {number}, "lots": []}}'
        )
    else:
        raw = json.dumps(_request()).replace('{"type"', f'{{"{field}": {number}, "type"', 1)
    with pytest.raises(InvalidMessage) as refused:
        decode(SHIPMENTS, raw.encode())
    assert field in refused.value.reason
    assert number.upper().replace("E", "E+").replace("E+-", "E-") in refused.value.reason
