"""A serial received by scan must be one typed entry can name again (R5, R6's reasoning)."""

from __future__ import annotations

import json

from pydantic import TypeAdapter

from services.receiving import domain as rd
from services.receiving import translate as rt
from shared.contracts.codec import decode
from shared.contracts.upstream import ReceiptMessage
from shared.reasons import ReasonCode


def _check(*scans: str) -> rd.Checked:
    doc = {
        "type": "ShipmentReceived",
        "message_id": "m1",
        "shipment_id": "S1",
        "office": "O",
        "source": "purchase",
        "received_on": "2024-01-01",
        "lines": [{"line_no": 1, "lic": "A", "quantity": len(scans), "scans": list(scans)}],
    }
    message = decode(TypeAdapter(ReceiptMessage), json.dumps(doc).encode())
    return rd.check_receipt(rt.receipt(message), {"A": rd.Item(lic="A", serialized=True)})


def test_a_scanned_serial_holding_a_separator_is_refused_invalid_barcode() -> None:
    """AdjustInventory names serials by typed entry only, which reads "SN,7" as 'SN' and '7':
    received, that unit could never be counted or lost, and naming it would touch two others."""
    checked = _check("(21)SN-1", "(21)SN,7")
    assert not checked.accepted
    (problem,) = checked.problems
    assert (problem.line_no, problem.reason_code) == (1, ReasonCode.INVALID_BARCODE)
    assert problem.offending == "(21)SN,7"
    assert "typed entry reads it as 2 serials: SN, 7" in problem.reason


def test_a_scanned_serial_typed_entry_reads_back_is_received() -> None:
    checked = _check("(21)SN-1", "(21)SN-2")
    assert checked.accepted, checked.problems
    assert checked.commands[0].serials == ("SN-1", "SN-2")
