"""The record key the contract gives each upstream document (docs/contract.md "Topics"): its
document id, read as the id is read (UTF-8, NFC, trimmed). A key that is not it, a null key or
one that is not UTF-8, is a mismatch: the consumer still processes the document, but counts
and logs it (`consumer.key_mismatch`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from shared.contracts import decode
from shared.contracts.commands import QuarantineStock as QuarantineCommand
from shared.contracts.upstream import (
    TOPIC_MESSAGES,
    UPSTREAM_ROUTES,
    document_key,
    key_matches,
)

DOCUMENTS: list[tuple[dict[str, Any], str]] = [
    (
        {
            "type": "ShipmentReceived",
            "shipment_id": "B1-KEY-B",
            "office": "AI",
            "source": "purchase",
            "received_on": "2026-11-02",
            "lines": [{"line_no": 1, "lic": "BOLT", "quantity": 2}],
        },
        "B1-KEY-B",
    ),
    (
        {
            "type": "ShipmentRequested",
            "shipment_id": "SO-1",
            "office": "AI",
            "ship_on": "2026-11-02",
            "lines": [{"line_no": 1, "lic": "BOLT", "quantity": 2}],
        },
        "SO-1",
    ),
    ({"type": "ShipmentPicksUpdated", "shipment_id": "SO-1", "line_no": 1}, "SO-1"),
    ({"type": "ShipmentShipRequested", "shipment_id": "SO-1"}, "SO-1"),
    ({"type": "ShipmentCancelled", "shipment_id": "SO-1"}, "SO-1"),
    ({"type": "UpsertItem", "lic": "BOLT"}, "BOLT"),
    (
        {
            "type": "AdjustInventory",
            "adjustment_id": "ADJ-1",
            "lic": "BOLT",
            "office": "AI",
            "kind": "count",
            "quantity": 1,
        },
        "ADJ-1",
    ),
    (
        {
            "type": "QuarantineStock",
            "quarantine_id": "Q-1",
            "lic": "BOLT",
            "mfr_lot": "L1",
            "quarantined": True,
        },
        "BOLT",
    ),
    ({"type": "PurchaseOrderUpdated", "po": "PO-9", "lic": "BOLT"}, "PO-9"),
]


def _validated(body: dict[str, Any]) -> Any:
    topic = UPSTREAM_ROUTES[body["type"]][0]
    raw = json.dumps({"message_id": "m-1", **body}).encode()
    return decode(TypeAdapter(TOPIC_MESSAGES[topic]), raw)


def test_every_upstream_document_kind_is_covered() -> None:
    assert {body["type"] for body, _ in DOCUMENTS} == set(UPSTREAM_ROUTES)


@pytest.mark.parametrize(("body", "key"), DOCUMENTS, ids=[b["type"] for b, _ in DOCUMENTS])
def test_the_document_key_is_the_id_the_contract_keys_its_topic_by(
    body: dict[str, Any], key: str
) -> None:
    assert document_key(_validated(body)) == key


def test_the_document_key_is_the_id_as_validation_normalized_it() -> None:
    body = {"type": "ShipmentShipRequested", "shipment_id": "  Cafe\u0301-1 "}
    assert document_key(_validated(body)) == "Caf\u00e9-1"


def test_lotlines_own_messages_have_no_document_key() -> None:
    """`QuarantineStock` is also a command on inventory.commands (keyed by LIC by lotline)."""
    command = QuarantineCommand.model_construct(type="QuarantineStock", lic="BOLT")
    assert document_key(command) is None
    assert document_key(b"raw record") is None


@pytest.mark.parametrize(
    "key",
    [b"B1-KEY-B", b"  B1-KEY-B\t", "Caf\u00e9-1".encode(), "Cafe\u0301-1".encode()],
    ids=["exact", "trimmed", "nfc", "decomposed"],
)
def test_a_key_read_as_the_id_is_read_matches(key: bytes) -> None:
    expected = "Caf\u00e9-1" if key.startswith(b"Caf") else "B1-KEY-B"
    assert key_matches(key, expected)


@pytest.mark.parametrize(
    "key",
    [None, b"", b"B1-KEY-A", b"b1-key-b", b"B1-KEY-B\x00", b"\xffB1-KEY-B", b"B1-KEY-B\xe9"],
    ids=["null", "empty", "another", "case", "nul", "not-utf8", "latin1"],
)
def test_any_other_key_is_a_mismatch(key: bytes | None) -> None:
    assert not key_matches(key, "B1-KEY-B")
