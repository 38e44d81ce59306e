"""An upstream document that fails validation but names its type and ids is answered with its
kind's refusal: each validation error becomes a problem with a reason code, a reason naming the
field path and the offending value (docs/contract.md, "Invalid documents")."""

from __future__ import annotations

import json
import unicodedata
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter

from services.allocation import translate as allocation
from services.receiving import translate as receiving
from services.shipping import translate as shipping
from shared.contracts import InvalidMessage, decode, status
from shared.contracts.events import CommandRejected
from shared.contracts.invalid import MAX_PROBLEMS, problems
from shared.contracts.upstream import (
    AdjustmentMessage,
    ItemMessage,
    ReceiptMessage,
    ShipmentMessage,
)
from shared.reasons import ReasonCode

RECEIPTS = TypeAdapter(ReceiptMessage)
SHIPMENTS = TypeAdapter(ShipmentMessage)
ADJUSTMENTS = TypeAdapter(AdjustmentMessage)
ITEMS = TypeAdapter(ItemMessage)


def _invalid(adapter: TypeAdapter[Any], doc: dict[str, Any]) -> InvalidMessage:
    """What the consumer holds for a document that fails validation."""
    with pytest.raises(InvalidMessage) as caught:
        decode(adapter, json.dumps(doc, default=str).encode())
    assert caught.value.document is not None and caught.value.error is not None
    return caught.value


def _receipt(*lines: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "ShipmentReceived",
        "message_id": "rcv-1",
        "shipment_id": "PO-1",
        "office": "AI",
        "source": "purchase",
        "received_on": "2026-11-01",
        "lines": list(lines),
        **extra,
    }


def _line(line_no: Any = 1, lic: Any = "A", quantity: Any = 1, **extra: Any) -> dict[str, Any]:
    return {"line_no": line_no, "lic": lic, "quantity": quantity, **extra}


def _refuse_receipt(doc: dict[str, Any]) -> status.ReceiptRejected:
    exc = _invalid(RECEIPTS, doc)
    assert exc.document is not None and exc.error is not None
    refusal = receiving.invalid_receipt(exc.document, exc.error.errors(include_url=False))
    assert refusal is not None
    return refusal


@pytest.mark.parametrize(
    ("quantity", "offending", "says"),
    [
        (0, "0", "greater than 0"),
        (-1, "-1", "greater than 0"),
        ("1.0000001", "1.0000001", "6 decimal places"),
        ("1000000001", "1000000001", "beyond the limit"),
        ("abc", "abc", "must be a number, not abc"),
    ],
)
def test_a_receipt_line_with_a_bad_quantity_is_refused_invalid_quantity(
    quantity: object, offending: str, says: str
) -> None:
    refusal = _refuse_receipt(_receipt(_line(1, "A", 2), _line(2, "B", quantity)))
    assert refusal.message_id == "rcv-1/rejected"
    assert refusal.shipment_id == "PO-1"
    (problem,) = refusal.problems
    assert problem.reason_code == ReasonCode.INVALID_QUANTITY
    assert (problem.line_no, problem.lic, problem.offending) == (2, "B", offending)
    assert problem.reason.startswith("lines[1].quantity: ")
    assert says in problem.reason


def test_each_failing_field_of_a_receipt_is_one_problem_with_its_code() -> None:
    refusal = _refuse_receipt(
        _receipt(
            _line(0, "A", 1),  # line_no out of range: no line_no to name, the LIC is kept
            {"line_no": 2, "lic": "B"},  # quantity missing
            _line(3, "C", 1, serials=["x" * 300]),
            _line(4, "D", 1, scans=[7]),
            _line(5, "E", 1, lots=[{"mfr_lot": "L\x00T", "expires_on": "soon", "quantity": 1}]),
            _line(6, "F\u200b", 1, unit_cost="-1"),
        )
    )
    found = {p.reason.split(":")[0]: p for p in refusal.problems}
    assert {k: v.reason_code for k, v in found.items()} == {
        "lines[0].line_no": ReasonCode.INVALID_QUANTITY,
        "lines[1].quantity": ReasonCode.INVALID_QUANTITY,
        "lines[2].serials[0]": ReasonCode.INVALID_SERIAL_SPAN,
        "lines[3].scans[0]": ReasonCode.INVALID_BARCODE,
        "lines[4].lots[0].mfr_lot": ReasonCode.LOT_REQUIRED,
        "lines[4].lots[0].expires_on": ReasonCode.EXPIRY_REQUIRED,
        "lines[5].lic": ReasonCode.UNKNOWN_ITEM,
        "lines[5].unit_cost": ReasonCode.INVALID_QUANTITY,
    }
    assert (found["lines[0].line_no"].line_no, found["lines[0].line_no"].lic) == (None, "A")
    assert found["lines[0].line_no"].offending == "0"
    assert found["lines[1].quantity"].offending is None  # missing: nothing to echo
    assert (found["lines[1].quantity"].line_no, found["lines[1].quantity"].lic) == (2, "B")
    assert found["lines[4].lots[0].mfr_lot"].offending == "L\\x00T"  # escaped, never raw NUL
    assert found["lines[5].lic"].lic is None  # an invalid LIC is not echoed as an id
    assert found["lines[5].unit_cost"].line_no == 6


def test_duplicate_line_numbers_name_the_repeated_line() -> None:
    refusal = _refuse_receipt(_receipt(_line(3, "A"), _line(4, "B"), _line(3, "C")))
    (problem,) = refusal.problems
    assert problem.reason_code == ReasonCode.INVALID_QUANTITY
    assert (problem.line_no, problem.lic, problem.offending) == (3, "C", "3")
    assert problem.reason == "lines[2].line_no: line_no 3 appears twice"


def test_a_receipt_without_lines_or_with_a_bad_header_field_is_still_answered() -> None:
    refusal = _refuse_receipt(_receipt(office="A\x01I", received_on="someday"))
    paths = {p.reason.split(":")[0]: p.reason_code for p in refusal.problems}
    assert paths == {
        "office": ReasonCode.INVALID_QUANTITY,
        "received_on": ReasonCode.INVALID_QUANTITY,
        "lines": ReasonCode.INVALID_QUANTITY,
    }


def test_long_and_hostile_offending_values_are_escaped_and_clipped() -> None:
    refusal = _refuse_receipt(_receipt(_line(1, "A", "9" * 5000)))
    (problem,) = refusal.problems
    assert problem.offending is not None and len(problem.offending) <= 1901
    assert problem.offending.endswith("…")


def test_an_offending_value_that_grows_under_nfc_is_clipped_after_normalizing() -> None:
    """U+FB2C is three characters in NFC: 700 of them make a 2,100-character office. The
    refusal echoing it must still be valid text (at most 2,000 characters once normalized),
    or the document would go unanswered."""
    refusal = _refuse_receipt(_receipt(_line(1, "A", 1), office="\ufb2c" * 700))
    (problem,) = refusal.problems
    assert problem.reason.startswith("office: ")
    assert problem.offending is not None and len(problem.offending) <= 1901
    assert problem.offending.endswith("…")
    assert problem.offending == unicodedata.normalize("NFC", problem.offending)


def test_an_adjustment_whose_value_grows_under_nfc_is_still_answered() -> None:
    exc = _invalid(ADJUSTMENTS, _adjustment(office="\u0958" * 1200))  # U+0958: two in NFC
    assert exc.document is not None and exc.error is not None
    refusal = allocation.invalid_adjustment(exc.document, exc.error.errors())
    assert isinstance(refusal, CommandRejected)
    assert refusal.reason.startswith("office: ")
    assert refusal.offending is not None and len(refusal.offending) <= 1901


@pytest.mark.parametrize("quantity", ["9" * 5000, "1E+1000000000"])
def test_a_number_python_cannot_convert_is_answered_invalid_quantity(quantity: str) -> None:
    """§6: as 1e400 is. The number is sent as a JSON number, not a string."""
    body = json.dumps(_receipt(_line(1, "A", 0))).replace(
        '"quantity": 0', f'"quantity": {quantity}'
    )
    with pytest.raises(InvalidMessage) as caught:
        decode(RECEIPTS, body.encode())
    exc = caught.value
    assert exc.document is not None and exc.error is not None
    refusal = receiving.invalid_receipt(exc.document, exc.error.errors(include_url=False))
    assert refusal is not None
    (problem,) = refusal.problems
    assert problem.reason_code == ReasonCode.INVALID_QUANTITY
    assert problem.reason.startswith("lines[0].quantity: ") and "beyond the limit" in problem.reason
    assert problem.offending is not None and problem.offending.startswith(quantity[:20])
    assert len(problem.offending) <= 1901


def test_problems_are_capped() -> None:
    lines = [_line(n, "A", 0) for n in range(1, 1001)]
    refusal = _refuse_receipt(_receipt(*lines))
    assert len(refusal.problems) == MAX_PROBLEMS
    assert "more problems not listed" in refusal.problems[-1].reason


def test_a_receipt_without_source_is_refused_naming_source() -> None:
    """DESIGN §4 lists `source` as a field, not an option: a customer return that leaves it out
    must not be received as a purchase (a new lot instead of reversing usage), so the receiving
    route's hook answers the document ReceiptRejected naming `source`."""
    doc = _receipt(_line(1, "A", 2), customer="Montboro")
    del doc["source"]
    exc = _invalid(RECEIPTS, doc)
    assert exc.document is not None and exc.error is not None
    answers = receiving.refuse_receipts("inventory.status")(exc.document, exc.error.errors())
    assert answers is not None
    ((topic, key, refusal),) = answers
    assert (topic, key) == ("inventory.status", "PO-1")
    assert isinstance(refusal, status.ReceiptRejected)
    (problem,) = refusal.problems
    assert problem.reason.startswith("source: ") and "required" in problem.reason
    assert (problem.reason_code, problem.offending) == (ReasonCode.INVALID_QUANTITY, None)
    assert refusal.reason_code == ReasonCode.INVALID_QUANTITY
    assert refusal.reason is not None and refusal.reason.startswith("source: ")


@pytest.mark.parametrize(
    "doc",
    [
        {"type": "ShipmentReceived", "shipment_id": "PO-1", "lines": []},  # no message_id
        {"type": "ShipmentReceived", "message_id": "m", "lines": []},  # no shipment_id
        {"type": "ShipmentReceived", "message_id": "m", "shipment_id": "P\x00", "lines": []},
        {"type": "ShipmentReceived", "message_id": 7, "shipment_id": "PO-1", "lines": []},
    ],
)
def test_a_receipt_without_valid_ids_is_not_answered(doc: dict[str, Any]) -> None:
    exc = _invalid(RECEIPTS, doc)
    assert exc.document is not None and exc.error is not None
    assert receiving.invalid_receipt(exc.document, exc.error.errors()) is None


def test_bytes_that_are_not_an_object_or_an_unknown_type_carry_nothing_to_answer() -> None:
    for raw in (b"not json", b"[1]", b'{"a": NaN}'):
        with pytest.raises(InvalidMessage) as caught:
            decode(RECEIPTS, raw)
        assert caught.value.document is None
    exc = _invalid(RECEIPTS, {"type": "Mystery", "message_id": "m", "shipment_id": "S"})
    assert exc.document is not None and exc.error is not None
    assert receiving.invalid_receipt(exc.document, exc.error.errors()) is None
    assert shipping.invalid_shipment_message(exc.document, exc.error.errors()) is None
    assert allocation.invalid_item(exc.document, exc.error.errors()) is None


def test_ids_are_answered_normalized() -> None:
    refusal = _refuse_receipt(_receipt(_line(1, "A", 0), message_id=" m ", shipment_id=" PO "))
    assert (refusal.message_id, refusal.shipment_id) == ("m/rejected", "PO")


# --- shipping ---------------------------------------------------------------------------------


def _shipping(doc: dict[str, Any]) -> Any:
    exc = _invalid(SHIPMENTS, {"message_id": "s-1", "shipment_id": "SO-1", **doc})
    assert exc.document is not None and exc.error is not None
    return shipping.invalid_shipment_message(exc.document, exc.error.errors(include_url=False))


def test_a_shipment_request_with_a_bad_line_is_answered_allocation_failed() -> None:
    refusal = _shipping(
        {
            "type": "ShipmentRequested",
            "office": "AI",
            "ship_on": "2026-11-02",
            "lines": [_line(1, "A", 1), _line(2, "B", "0.0")],
        }
    )
    assert isinstance(refusal, status.ShipmentAllocationFailed)
    assert refusal.message_id == "s-1/status"
    assert refusal.allocated_lines == []
    (problem,) = refusal.problems
    assert (problem.reason_code, problem.line_no, problem.lic) == (
        ReasonCode.INVALID_QUANTITY,
        2,
        "B",
    )
    assert problem.offending == "0.0"


def test_a_picks_update_with_bad_picks_names_its_line() -> None:
    refusal = _shipping(
        {
            "type": "ShipmentPicksUpdated",
            "line_no": 4,
            "lots": [{"mfr_lot": "L1", "quantity": -2}],
            "serials": 12,
        }
    )
    assert isinstance(refusal, status.ShipmentAllocationFailed)
    codes = {p.reason.split(":")[0]: (p.reason_code, p.line_no) for p in refusal.problems}
    assert codes == {
        "lots[0].quantity": (ReasonCode.INVALID_QUANTITY, 4),
        "serials": (ReasonCode.INVALID_SERIAL_SPAN, 4),
    }


def test_a_ship_request_and_a_cancellation_are_refused_as_the_lifecycle_refuses_them() -> None:
    ship = _shipping({"type": "ShipmentShipRequested", "occurred_at": "yesterday"})
    assert isinstance(ship, status.ShipmentShipRefused)
    assert ship.reason.startswith("occurred_at: ")
    assert ship.problems[0].offending == ship.offending == "yesterday"
    cancel = _shipping({"type": "ShipmentCancelled", "occurred_at": "yesterday"})
    assert isinstance(cancel, status.ShipmentCancelledStatus)
    assert cancel.refused is not None and cancel.refused.offending == "yesterday"
    assert cancel.released_lines == []


# --- allocation intake ------------------------------------------------------------------------


def _adjustment(**fields: Any) -> dict[str, Any]:
    return {
        "type": "AdjustInventory",
        "message_id": "adj-1",
        "adjustment_id": "ADJ-1",
        "lic": "A",
        "office": "AI",
        "kind": "count",
        "quantity": 1,
        **fields,
    }


def test_an_adjustment_with_a_bad_quantity_is_answered_command_rejected() -> None:
    exc = _invalid(ADJUSTMENTS, _adjustment(quantity=0, lots=[{"mfr_lot": "L", "quantity": 0}]))
    assert exc.document is not None and exc.error is not None
    refusal = allocation.invalid_adjustment(exc.document, exc.error.errors())
    assert isinstance(refusal, CommandRejected)
    assert (refusal.lic, refusal.adjustment_id, refusal.command_type) == (
        "A",
        "ADJ-1",
        "AdjustInventory",
    )
    assert refusal.command_id == "adjustment:adj-1"
    assert refusal.message_id == "adjustment:adj-1/rejected"
    assert refusal.reason_code == ReasonCode.INVALID_QUANTITY
    assert refusal.offending == "0"
    assert refusal.reason.startswith("quantity: quantity must not be 0: it is the change in stock")
    assert "; also lots[0].quantity" in refusal.reason


def test_an_item_with_a_bad_value_is_answered_command_rejected_with_its_lic() -> None:
    exc = _invalid(ITEMS, {"type": "UpsertItem", "message_id": "i-1", "lic": "A", "gtin": 5})
    assert exc.document is not None and exc.error is not None
    refusal = allocation.invalid_item(exc.document, exc.error.errors())
    assert refusal is not None
    assert (refusal.lic, refusal.command_id, refusal.adjustment_id) == ("A", "item:i-1", None)
    assert refusal.reason_code == ReasonCode.INVALID_BARCODE


@pytest.mark.parametrize(
    ("next_serial", "says"),
    [
        ("SN 1000", "typed entry reads it as 2 serials: SN, 1000"),  # split into two serials
        ("A,B", "typed entry reads it as 2 serials: A, B"),
        ("SN-1...SN-9", "span"),
        ("1..1", "typed entry reads it as serial 1"),
        ("9" * 65, "longer than 64 characters"),  # an identifier, but too long for a serial
    ],
)
def test_an_item_whose_next_serial_is_not_one_typed_serial_is_answered_command_rejected(
    next_serial: str, says: str
) -> None:
    """R6 (with R5): a Next Serial must be one serial as typed entry reads it, or the units
    generated from it could never be named again by a return, vendor return or adjustment: the
    item is refused INVALID_SERIAL_SPAN naming the value (the invalid-document path)."""
    doc = {"type": "UpsertItem", "message_id": "i-1", "lic": "A", "next_serial": next_serial}
    exc = _invalid(ITEMS, doc)
    assert exc.document is not None and exc.error is not None
    refusal = allocation.invalid_item(exc.document, exc.error.errors())
    assert refusal is not None and refusal.lic == "A"
    assert refusal.reason_code == ReasonCode.INVALID_SERIAL_SPAN
    assert refusal.offending == next_serial
    assert refusal.reason.startswith("next_serial: ") and says in refusal.reason


def test_an_adjustment_without_its_lic_is_not_answered() -> None:
    exc = _invalid(ADJUSTMENTS, {k: v for k, v in _adjustment(quantity=0).items() if k != "lic"})
    assert exc.document is not None and exc.error is not None
    assert allocation.invalid_adjustment(exc.document, exc.error.errors()) is None


def test_offending_numbers_keep_the_text_upstream_sent() -> None:
    doc = _receipt(_line(1, "A", Decimal("1E+400")))
    exc = _invalid(RECEIPTS, doc)
    assert exc.document is not None and exc.error is not None
    (problem,) = problems(exc.document, exc.error.errors())
    assert problem.offending == "1E+400"


def test_a_cost_update_has_no_answer_topic_and_is_logged_with_its_problems() -> None:
    from structlog.testing import capture_logs

    from shared.consumer import unanswered
    from shared.contracts.upstream import CostMessage

    doc = {"type": "PurchaseOrderUpdated", "message_id": "po-1", "po": "PO-1", "lic": "A"}
    exc = _invalid(TypeAdapter(CostMessage), {**doc, "ordered_quantity": -3})
    assert exc.document is not None and exc.error is not None
    with capture_logs() as logs:
        answer = unanswered("PurchaseOrderUpdated", "po", "lic")(exc.document, exc.error.errors())
    assert answer is None
    (entry,) = logs
    assert entry["log_level"] == "warning"
    assert (entry["message_id"], entry["po"], entry["lic"]) == ("po-1", "PO-1", "A")
    assert entry["problems"][0]["reason_code"] == "INVALID_QUANTITY"
    assert entry["problems"][0]["offending"] == "-3"
