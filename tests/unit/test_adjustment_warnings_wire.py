"""The contract of `InventoryAdjusted.warnings`: an added field, empty by default, so an event
published before it existed still reads, and the ledger reads one carrying warnings as before;
allocation writes it as the validating model would; `send` and `watch` print each warning."""

from __future__ import annotations

import orjson
from pydantic import TypeAdapter

from services.allocation import translate
from services.allocation.domain.model import InventoryAdjusted
from services.ledger.domain.model import Fact
from services.ledger.translate import to_fact
from shared.contracts import events as e
from shared.contracts.codec import MAX_EVENT_BYTES, decode, encode
from shared.send import describe
from tests.unit.allocation.builders import Book, adjust, allocate, item, receive, ship

EVENTS: TypeAdapter[e.InventoryEvent] = TypeAdapter(e.InventoryEvent)


def warned_balance() -> InventoryAdjusted:
    """A beginning balance of a shipped serial, without unit_cost: two warnings."""
    book = Book(
        item("CAM", serialized=True, cost="300"),
        receive("PO-1/1", 1, lic="CAM", serials=["S1"]),
        allocate("SO-7", 1, lic="CAM", serials=["S1"], to="St Mary"),
        ship("SO-7", lic="CAM"),
        lic="CAM",
    )
    (event,) = book.ok(adjust("ADJ-1", "beginning_balance", 1, lic="CAM", serials=["S1"]))
    assert isinstance(event, InventoryAdjusted)
    return event


def test_inventory_adjusted_carries_its_warnings_as_the_validated_event_would() -> None:
    event = warned_balance()
    wire = translate.to_wire(event, "adjustment:m-1#0", None)
    data = encode(wire)
    reference = type(wire).model_validate(wire.model_dump())
    assert data == encode(reference) and wire == reference
    read = decode(EVENTS, data, own=True, max_bytes=MAX_EVENT_BYTES)
    assert isinstance(read, e.InventoryAdjusted)
    assert [(w.code, w.serial, w.lot_id, w.office) for w in read.warnings] == [
        ("SERIAL_WAS_SHIPPED", "S1", "ADJ-1/CAM/BB", "AI"),
        ("ESTIMATED_COST", None, "ADJ-1/CAM/BB", "AI"),
    ]
    assert [w.message for w in read.warnings] == [w.message for w in event.warnings]
    # The ledger reads it as it read one without warnings: a new adjustment lot.
    fact = to_fact(read)
    assert isinstance(fact, Fact) and fact.new_lot is not None
    assert fact.new_lot.lot_id == "ADJ-1/CAM/BB"


def test_an_inventory_adjusted_published_before_warnings_existed_reads_with_none() -> None:
    document = orjson.loads(encode(translate.to_wire(warned_balance(), "adjustment:m-1#0", None)))
    del document["warnings"]
    read = EVENTS.validate_python(document)
    assert isinstance(read, e.InventoryAdjusted) and read.warnings == []
    assert to_fact(read) is not None


def test_send_and_watch_print_an_adjustments_warnings() -> None:
    document = orjson.loads(encode(translate.to_wire(warned_balance(), "adjustment:m-1#0", None)))
    printed = describe(document).splitlines()
    assert printed[0] == "InventoryAdjusted"
    messages = [w["message"] for w in document["warnings"]]
    assert f"      warning: CAM SERIAL_WAS_SHIPPED: {messages[0]}" in printed
    assert f"      warning: CAM ESTIMATED_COST: {messages[1]}" in printed
    document["warnings"] = []
    assert not any("warning" in line for line in describe(document).splitlines())
