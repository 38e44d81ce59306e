"""A document failing its schema is refused, and dead-lettered, in the words every reason uses
(shared/reasons.py): plain words, the value as sent and unquoted, JSON spellings; never
pydantic's English ("Input should be a valid boolean", "Field required", "Value error, ") or
Python's quotes. The dead letter's `error` header writes the paths and words the refusal
does (`lines[0].quantity`, not `ShipmentRequested.lines.0.quantity`), so the dashboard shows
one account of what failed (docs/contract.md, "Invalid documents")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter

from services.allocation import translate as allocation
from services.receiving import translate as receiving
from services.shipping import translate as shipping
from shared.contracts import InvalidMessage, decode, encode
from shared.contracts.events import InventoryEvent, LineShipped
from shared.contracts.invalid import Refuser, problems
from shared.contracts.upstream import (
    AdjustmentMessage,
    ItemMessage,
    ReceiptMessage,
    ShipmentMessage,
)

# What no reason may say: pydantic's and Python's words, not the contract's.
PYTHONISMS = (
    "Input should",
    "Value error",
    "Field required",
    "Decimal input",
    "datetime",
    "dictionary",
    "None",
    "got ",
    "'",
    '"',
)


def _receipt(**fields: Any) -> dict[str, Any]:
    line = {"line_no": 1, "lic": "A", "quantity": 1} | fields.pop("line", {})
    return {
        "type": "ShipmentReceived",
        "message_id": "rcv-1",
        "shipment_id": "PO-1",
        "office": "AI",
        "source": "purchase",
        "received_on": "2026-11-01",
        "lines": [line],
    } | fields


def _request(**fields: Any) -> dict[str, Any]:
    line = {"line_no": 1, "lic": "A", "quantity": 1} | fields.pop("line", {})
    return {
        "type": "ShipmentRequested",
        "message_id": "req-1",
        "shipment_id": "SO-1",
        "office": "AI",
        "ship_on": "2026-11-23",
        "lines": [line],
    } | fields


def _picks(**fields: Any) -> dict[str, Any]:
    return {
        "type": "ShipmentPicksUpdated",
        "message_id": "pick-1",
        "shipment_id": "SO-1",
        "line_no": 1,
    } | fields


def _ship(**fields: Any) -> dict[str, Any]:
    return {"type": "ShipmentShipRequested", "message_id": "ship-1", "shipment_id": "SO-1"} | fields


def _item(**fields: Any) -> dict[str, Any]:
    return {"type": "UpsertItem", "message_id": "item-1", "lic": "A"} | fields


def _adjust(**fields: Any) -> dict[str, Any]:
    return {
        "type": "AdjustInventory",
        "message_id": "adj-1",
        "adjustment_id": "ADJ-1",
        "lic": "A",
        "office": "AI",
        "kind": "count",
        "quantity": 1,
    } | fields


def _quarantine(**fields: Any) -> dict[str, Any]:
    return {
        "type": "QuarantineStock",
        "message_id": "q-1",
        "quarantine_id": "Q-1",
        "lic": "A",
        "mfr_lot": "L1",
        "quarantined": True,
    } | fields


def _without(doc: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != field}


_ROUTES: dict[str, tuple[TypeAdapter[Any], Refuser]] = {
    "ShipmentReceived": (TypeAdapter(ReceiptMessage), receiving.refuse_receipts("status")),
    "ShipmentRequested": (
        TypeAdapter(ShipmentMessage),
        shipping.refuse_shipment_messages("status"),
    ),
    "ShipmentPicksUpdated": (
        TypeAdapter(ShipmentMessage),
        shipping.refuse_shipment_messages("status"),
    ),
    "ShipmentShipRequested": (
        TypeAdapter(ShipmentMessage),
        shipping.refuse_shipment_messages("status"),
    ),
    "UpsertItem": (TypeAdapter(ItemMessage), allocation.refuse_items("events")),
    "AdjustInventory": (TypeAdapter(AdjustmentMessage), allocation.refuse_adjustments("events")),
    "QuarantineStock": (TypeAdapter(AdjustmentMessage), allocation.refuse_adjustments("events")),
}

# (document, the one reason its refusal gives, the offending value as sent: unchanged)
CASES: list[tuple[dict[str, Any], str, str | None]] = [
    (
        _request(ship_on="2026-11-23T00:00:00Z"),
        "ship_on: a date is written YYYY-MM-DD, not 2026-11-23T00:00:00Z",
        "2026-11-23T00:00:00Z",
    ),
    (_request(ship_on=20261123), "ship_on: a date is written YYYY-MM-DD, not 20261123", "20261123"),
    (_request(ship_on="2026-02-30"), "ship_on: 2026-02-30 is not a real date", "2026-02-30"),
    (_request(ship_on=None), "ship_on: a date is written YYYY-MM-DD, not null", "null"),
    (
        _receipt(received_on="2026-1-01"),
        "received_on: a date is written YYYY-MM-DD, not 2026-1-01",
        "2026-1-01",
    ),
    (
        _receipt(received_on="2026-13-01"),
        "received_on: 2026-13-01 is not a real date",
        "2026-13-01",
    ),
    (
        _receipt(line={"lots": [{"mfr_lot": "L1", "expires_on": "soon", "quantity": 1}]}),
        "lines[0].lots[0].expires_on: a date is written YYYY-MM-DD, not soon",
        "soon",
    ),
    (
        _ship(occurred_at="2026-11-01"),
        "occurred_at: a time is RFC 3339 (e.g. 2026-11-01T10:00:00Z, with its offset),"
        " not 2026-11-01",
        "2026-11-01",
    ),
    (
        _request(occurred_at="2026-02-30T10:00:00Z"),
        "occurred_at: 2026-02-30T10:00:00Z is not a real date and time",
        "2026-02-30T10:00:00Z",
    ),
    (_request(line={"quantity": None}), "lines[0].quantity: must be a number, not null", "null"),
    (_receipt(line={"quantity": "abc"}), "lines[0].quantity: must be a number, not abc", "abc"),
    (_receipt(line={"quantity": [1]}), "lines[0].quantity: must be a number, not a list", "[1]"),
    (_item(perishable="yes"), "perishable: must be true or false, not yes", "yes"),
    (_item(serialized=1), "serialized: must be true or false, not 1", "1"),
    (_quarantine(quarantined=None), "quarantined: must be true or false, not null", "null"),
    (_item(est_unit_cost="x"), "est_unit_cost: must be a number, not x", "x"),
    (_without(_request(), "office"), "office: required but missing", None),
    (_without(_receipt(), "source"), "source: required but missing", None),
    (_request(office=5), "office: must be text in quotes, not 5", "5"),
    (
        _request(min_shelf_life_days=3651),
        "min_shelf_life_days: must be at most 3650, not 3651",
        "3651",
    ),
    (_request(min_shelf_life_days=-1), "min_shelf_life_days: must be at least 0, not -1", "-1"),
    (
        _request(kind="sale "),
        "kind: must be sale or vendor_return, not sale followed by a space",
        "sale ",
    ),
    (
        _adjust(kind="Loss"),
        "kind: must be beginning_balance, count or loss, not Loss",
        "Loss",
    ),
    (
        _receipt(source=""),
        "source: must be purchase, production or customer_return, not empty",
        "",
    ),
    (_receipt(line={"line_no": 0}), "lines[0].line_no: must be at least 1, not 0", "0"),
    (_receipt(line={"line_no": "x"}), "lines[0].line_no: a line number is a number, not x", "x"),
    (
        _receipt(line={"line_no": None}),
        "lines[0].line_no: must be a whole number, not null",
        "null",
    ),
    (
        _request(line={"serials": 5}),
        "lines[0].serials: must be text in quotes or a list, not 5",
        "5",
    ),
    (_request(line={"scans": [7]}), "lines[0].scans[0]: must be text in quotes, not 7", "7"),
    (_request(line={"lots": "L1"}), "lines[0].lots: must be a list, not L1", "L1"),
    (
        _request(line={"lots": [{"mfr_lot": "L1"}]}),
        "lines[0].lots[0].quantity: required but missing",
        None,
    ),
    (_request(lines=[]), "lines: must hold at least 1 item, not 0", "[]"),
    (_request(lines=[5]), "lines[0]: must be an object, not 5", "5"),
    (
        _picks(serials=["x" * 300]),
        "serials[0]: must be at most 256 characters long, not 300",
        "x" * 300,
    ),
    (
        _adjust(quantity=0),
        "quantity: quantity must not be 0: it is the change in stock (+ adds, - removes), not"
        " the quantity counted: to empty a lot holding 15, for example, send -15",
        "0",
    ),
]


def _refused(doc: dict[str, Any]) -> tuple[InvalidMessage, list[str], list[str]]:
    """What the consumer holds for `doc`, every reason its refusal carries, and the offending
    values of its problems."""
    adapter, refuse = _ROUTES[doc["type"]]
    with pytest.raises(InvalidMessage) as caught:
        decode(adapter, json.dumps(doc).encode())
    exc = caught.value
    assert exc.document is not None and exc.error is not None
    refusals = refuse(exc.document, exc.error.errors(include_url=False))
    assert refusals
    reasons = [r for _, _, message in refusals for r in _reasons(message.model_dump())]
    offending = [p.offending for p in problems(exc.document, exc.error.errors(include_url=False))]
    return exc, reasons, [o for o in offending if o is not None]


def _reasons(value: object) -> Iterator[str]:
    """Every `reason` of a refusal: at its top, in `refused`, in each of its `problems`."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reason" and isinstance(item, str):
                yield item
            else:
                yield from _reasons(item)
    elif isinstance(value, list):
        for item in value:
            yield from _reasons(item)


@pytest.mark.parametrize(("doc", "reason", "offending"), CASES, ids=[c[1] for c in CASES])
def test_a_schema_refusal_and_its_dead_letter_give_one_plain_reason(
    doc: dict[str, Any], reason: str, offending: str | None
) -> None:
    exc, reasons, offendings = _refused(doc)
    assert set(reasons) == {reason}
    assert exc.reason == reason  # the dead letter's `error` header: same path, same words
    assert offendings == ([] if offending is None else [offending])  # the value as sent


@pytest.mark.parametrize(("doc", "reason", "offending"), CASES, ids=[c[1] for c in CASES])
def test_no_schema_reason_reads_like_python(
    doc: dict[str, Any], reason: str, offending: str | None
) -> None:
    exc, reasons, _ = _refused(doc)
    for text in [*reasons, exc.reason]:
        assert not [word for word in PYTHONISMS if word in text], text
        assert "lines.0" not in text and doc["type"] not in text, text


def test_the_dead_letter_names_the_first_problems_as_the_refusal_does() -> None:
    """Several failing fields across lines: the header lists the refusal's first five reasons,
    paths written `lines[1].quantity`, never `ShipmentReceived.lines.1.quantity`."""
    doc = _receipt(
        received_on="2026-02-30",
        lines=[
            {"line_no": 1, "lic": "A", "quantity": None},
            {"line_no": 2, "lic": "B", "quantity": "abc", "scans": [7]},
            {"line_no": 3, "lic": "C"},
            {"line_no": 4, "lic": "D", "quantity": 1, "serials": 5},
        ],
    )
    exc, reasons, _ = _refused(doc)
    assert exc.document is not None and exc.error is not None
    found = [p.reason for p in problems(exc.document, exc.error.errors(include_url=False))]
    assert set(found) <= set(reasons)
    assert found == [
        "received_on: 2026-02-30 is not a real date",
        "lines[0].quantity: must be a number, not null",
        "lines[1].quantity: must be a number, not abc",
        "lines[1].scans[0]: must be text in quotes, not 7",
        "lines[2].quantity: required but missing",
        "lines[3].serials: must be text in quotes or a list, not 5",
    ]
    assert exc.reason == "; ".join(found[:5])


def test_a_refusal_carrying_one_reason_names_the_others_in_the_same_words() -> None:
    _, reasons, _ = _refused(_item(perishable="yes", serialized="no", gtin=5))
    assert reasons == [
        "serialized: must be true or false, not no; also perishable: must be true or false,"
        " not yes; gtin: must be text in quotes, not 5"
    ]


def test_an_unknown_type_is_dead_lettered_in_plain_words() -> None:
    adapter, _ = _ROUTES["ShipmentRequested"]
    with pytest.raises(InvalidMessage) as caught:
        decode(adapter, json.dumps({"type": "Mystery", "message_id": "x"}).encode())
    assert caught.value.reason == (
        "type Mystery is not one this topic carries: ShipmentRequested, ShipmentPicksUpdated,"
        " ShipmentShipRequested, ShipmentCancelled"
    )
    with pytest.raises(InvalidMessage) as caught:
        decode(adapter, json.dumps({"message_id": "x"}).encode())
    assert caught.value.reason == "the message has no type"


def test_one_of_lotlines_own_messages_is_dead_lettered_with_the_same_paths() -> None:
    """Own topics are read by pydantic's JSON parser: the header still drops the type's tag."""
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
    data = encode(event)
    events = TypeAdapter(InventoryEvent)
    cases = {
        data.replace(b'"quantity":"1"', b'"quantity":"NaN"'): (
            "quantity: must be a finite number, not NaN"
        ),
        data.replace(b'"line_no":1', b'"line_no":"x"'): (
            "line_no: a line number is a number, not x"
        ),
        data.replace(b'"office":"AI",', b""): "office: required but missing",
    }
    for bad, reason in cases.items():
        with pytest.raises(InvalidMessage) as caught:
            decode(events, bad, own=True)
        assert caught.value.reason == reason


def test_bytes_that_are_not_a_message_are_named_without_python_quotes() -> None:
    adapter, _ = _ROUTES["ShipmentShipRequested"]
    body = b'{"type": "ShipmentCancelled", "message_id": "a", "shipment_id": "S1", '
    with pytest.raises(InvalidMessage) as caught:
        decode(adapter, body + b'"shipment_id": "S2"}')
    assert caught.value.reason == "duplicate JSON key shipment_id"
    with pytest.raises(InvalidMessage) as caught:
        decode(adapter, b'{"type": "CAF\xe9"}')
    assert caught.value.reason == ("not UTF-8: byte 0xe9 at offset 13 (invalid continuation byte)")
