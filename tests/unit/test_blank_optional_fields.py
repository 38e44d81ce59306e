"""Upstream systems often send an empty string for a value they do not have: in an optional
identifier or amount it means "none", not a malformed document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from shared.contracts.upstream import ShipmentReceived, UpsertItem


def _parse(body: dict[str, object]) -> Any:
    model = ShipmentReceived if body["type"] == "ShipmentReceived" else UpsertItem
    return model.model_validate_json(json.dumps({"message_id": "m-1", **body}))


def test_blank_optional_identifiers_and_amounts_of_a_receipt_read_as_none() -> None:
    receipt = _parse(
        {
            "type": "ShipmentReceived",
            "shipment_id": "PO-1",
            "office": "AI",
            "source": "purchase",
            "reference": "",
            "customer": " ",
            "vendor": "",
            "received_on": "2026-11-01",
            "lines": [{"line_no": 1, "lic": "L", "quantity": 1, "bin": "", "unit_cost": ""}],
        }
    )
    assert (receipt.reference, receipt.customer, receipt.vendor) == (None, None, None)
    (line,) = receipt.lines
    assert (line.bin, line.unit_cost) == (None, None)


def test_blank_next_serial_and_gtin_of_an_item_read_as_none() -> None:
    item = _parse({"type": "UpsertItem", "lic": "L", "next_serial": "", "gtin": ""})
    assert (item.next_serial, item.gtin) == (None, None)


def test_a_blank_required_identifier_is_still_refused() -> None:
    with pytest.raises(ValidationError):
        _parse({"type": "UpsertItem", "lic": ""})
