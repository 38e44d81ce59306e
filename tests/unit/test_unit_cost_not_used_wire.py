"""`UNIT_COST_NOT_USED` on the wire: allocation writes it as the validating contract model
would, the contract (and so the ledger) reads it, and `send` and `watch` print it."""

from __future__ import annotations

from dataclasses import replace

import orjson
from pydantic import TypeAdapter

from services.allocation import translate
from services.allocation.domain.adjustment_warnings import unit_cost_not_used
from services.allocation.domain.model import InventoryAdjusted
from services.ledger.domain.model import Fact
from services.ledger.translate import to_fact
from shared.contracts import events as e
from shared.contracts.codec import MAX_EVENT_BYTES, decode, encode
from shared.send import describe
from tests.unit.allocation.builders import Book, adjust, allocate, item, receive, ship

EVENTS: TypeAdapter[e.InventoryEvent] = TypeAdapter(e.InventoryEvent)


def counted_back() -> InventoryAdjusted:
    """SALT: 4 of a lot at 0.50 sold, then counted back with unit_cost 0.60, and the warning
    the rule gives for it (built here from the event's movements)."""
    book = Book(
        item("SALT"),
        receive("PO-9/1", 5, lic="SALT", office="MAIN", cost="0.50"),
        allocate("SO-1", 4, lic="SALT", office="MAIN"),
        ship("SO-1", lic="SALT"),
        lic="SALT",
    )
    count = adjust("CNT-5", "count", 4, lic="SALT", office="MAIN", cost="0.60")
    (event,) = book.ok(count)
    assert isinstance(event, InventoryAdjusted)
    salt = book.state.item
    assert salt is not None
    (warning,) = unit_cost_not_used(salt, count, event.movements)
    return replace(event, warnings=(warning,))


def test_unit_cost_not_used_reaches_the_wire_the_ledger_and_send() -> None:
    event = counted_back()
    wire = translate.to_wire(event, "adjustment:m-1#0", None)
    data = encode(wire)
    reference = type(wire).model_validate(wire.model_dump())
    assert data == encode(reference) and wire == reference
    read = decode(EVENTS, data, own=True, max_bytes=MAX_EVENT_BYTES)
    assert isinstance(read, e.InventoryAdjusted)
    assert [(w.code, w.lot_id, w.office) for w in read.warnings] == [
        ("UNIT_COST_NOT_USED", "PO-9/1", "MAIN")
    ]
    assert isinstance(to_fact(read), Fact)  # the ledger books it as any count

    document = orjson.loads(data)
    message = document["warnings"][0]["message"]
    assert "not the unit_cost given, 0.6" in message
    assert f"      warning: SALT UNIT_COST_NOT_USED: {message}" in describe(document).splitlines()
