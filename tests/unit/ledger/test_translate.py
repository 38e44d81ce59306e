"""The ledger's reading of `inventory.events` and `inventory.costs` messages."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import TypeAdapter

from services.allocation import translate as allocation_wire
from services.ledger.domain.model import Fact, Known
from services.ledger.domain.recording import record
from services.ledger.translate import to_fact, to_po_update
from services.receiving import domain as receiving
from services.receiving import translate as receiving_wire
from shared.contracts import events as e
from shared.contracts.codec import decode, encode
from shared.contracts.commands import Command, ReceiveStock
from shared.contracts.events import InventoryEvent
from shared.contracts.reasons import ReasonCode
from shared.contracts.upstream import PurchaseOrderUpdated, ShipmentReceived
from tests.unit.allocation.builders import Book, allocate, item, receive, release

DAY = date(2024, 3, 1)


def _movement(lot_id: str | None, quantity: str, **kw: object) -> e.Movement:
    return e.Movement.model_validate(
        {"lot_id": lot_id, "quantity": quantity, "unit_cost": "4.25", **kw}
    )


def test_a_beginning_balance_opens_an_adjustment_lot_referencing_the_adjustment() -> None:
    """R11: a beginning balance always creates a new adjustment lot."""
    event = e.InventoryAdjusted(
        message_id="m1",
        command_id="c1",
        lic="X",
        adjustment_id="ADJ-9",
        office="AI",
        kind="beginning_balance",
        quantity=Decimal(3),
        lot_id="ADJ-9",
        adjusted_on=DAY,
        movements=[_movement("ADJ-9", "3", mfr_lot="A", expires_on="2025-01-01")],
    )

    fact = to_fact(event)

    assert isinstance(fact, Fact) and fact.new_lot is not None
    assert (fact.action, fact.document, fact.new_lot.kind, fact.new_lot.reference) == (
        "beginning_balance",
        "ADJ-9",
        "adjustment",
        "ADJ-9",
    )
    assert fact.new_lot.unit_cost == Decimal("4.25")


def test_a_shipped_vendor_return_reads_as_a_vendor_return() -> None:
    """R14: a return to vendor ships a vendor_return line."""
    event = e.LineShipped(
        message_id="m2",
        command_id="c2",
        lic="X",
        shipment_id="RTV-1",
        line_no=1,
        office="AI",
        kind="vendor_return",
        counterparty="Aperture",
        ship_on=DAY,
        quantity=Decimal(1),
        movements=[_movement("L1", "1", serial="S1")],
    )

    fact = to_fact(event)

    assert isinstance(fact, Fact)
    assert (fact.action, fact.counterparty, fact.on, fact.moves[0].serial) == (
        "vendor_return",
        "Aperture",
        DAY,
        "S1",
    )


def test_refusals_change_nothing_in_the_ledger() -> None:
    event = e.CommandRejected(
        message_id="m3",
        command_id="c3",
        lic="X",
        command_type="ShipLine",
        reason_code=ReasonCode.SHIPMENT_INCOMPLETE,
        reason="no serials",
    )

    assert to_fact(event) is None


def test_a_po_update_carries_its_quantities_cost_and_close() -> None:
    message = PurchaseOrderUpdated.model_validate(
        {
            "message_id": "m4",
            "po": "PO-1",
            "lic": "X",
            "ordered_quantity": "2",
            "purchased_quantity": "0",
            "act_unit_cost": "310.00",
            "closed": True,
            "occurred_at": "2024-03-02T10:00:00Z",
        }
    )

    update = to_po_update(message)

    assert (update.key, update.ordered_qty, update.purchased_qty, update.closed) == (
        ("PO-1", "X"),
        2,
        0,
        True,
    )
    assert update.act_unit_cost == Decimal(310) and update.on == date(2024, 3, 2)


def test_a_po_update_that_leaves_closed_out_keeps_the_po_open_or_closed() -> None:
    """R16: `closed: false` reopens a closed PO; a message without `closed` (a quantity update)
    must not, so the update says neither."""
    base = {"message_id": "m5", "po": "PO-1", "lic": "X", "purchased_quantity": "2"}
    assert to_po_update(PurchaseOrderUpdated.model_validate(base)).closed is None
    reopen = PurchaseOrderUpdated.model_validate({**base, "closed": False})
    assert to_po_update(reopen).closed is False


def _stock_received(**fields: object) -> e.StockReceived:
    return e.StockReceived.model_validate(
        {
            "message_id": "m5",
            "command_id": "c5",
            "lic": "X",
            "shipment_id": "IN-1",
            "line_no": 1,
            "lot_id": "IN-1/1",
            "office": "AI",
            "reference": "PO-60006",
            "received_on": DAY,
            "quantity": "2",
            "unit_cost": "300.00",
            "movements": [_movement("IN-1/1", "2")],
            **fields,
        }
    )


def test_a_purchase_lot_keeps_the_vendor_its_receipt_named() -> None:
    """Backward trace: a lot → its receipt, PO and vendor; the vendor is stored on the lot."""
    fact = to_fact(_stock_received(vendor="Aperture Optics"))

    assert isinstance(fact, Fact) and fact.new_lot is not None
    assert fact.new_lot.vendor == "Aperture Optics"
    (lot,) = record(Known(), [fact]).lots
    assert (lot.lot_id, lot.reference, lot.vendor) == ("IN-1/1", "PO-60006", "Aperture Optics")


def test_an_event_without_a_vendor_still_opens_its_lot_without_one() -> None:
    """Additive contract: events published before `vendor` existed decode and record as before."""
    fact = to_fact(_stock_received())

    assert isinstance(fact, Fact) and fact.new_lot is not None
    assert fact.new_lot.vendor is None
    (lot,) = record(Known(), [fact]).lots
    assert lot.vendor is None


COMMANDS: TypeAdapter[Command] = TypeAdapter(Command)
EVENTS: TypeAdapter[InventoryEvent] = TypeAdapter(InventoryEvent)


@pytest.mark.parametrize(
    ("source", "vendor"), [("purchase", "Aperture Optics"), ("production", None)]
)
def test_the_vendor_travels_from_the_receipt_through_allocation_to_the_ledger_lot(
    source: str, vendor: str | None
) -> None:
    """ShipmentReceived.vendor → ReceiveStock.vendor (purchase receipts only) → allocation's
    StockReceived.vendor → the ledger's lot, each hop through the wire codec."""
    doc = ShipmentReceived.model_validate(
        {
            "message_id": "r1",
            "shipment_id": "IN-1",
            "office": "AI",
            "source": source,
            "reference": "PO-60006",
            "vendor": "Aperture Optics",
            "received_on": DAY,
            "lines": [{"line_no": 1, "lic": "L", "quantity": "2"}],
        }
    )
    line = receiving.LineCommand(
        command_id="r1/1",
        line_no=1,
        lic="L",
        quantity=Decimal(2),
        unit_cost=None,
        lots=(),
        serials=(),
        generate_serials=False,
        lot_id="IN-1/1",
        is_return=False,
    )
    command = decode(COMMANDS, encode(receiving_wire.command(doc, line)))
    assert isinstance(command, ReceiveStock) and command.vendor == vendor

    book = Book(item())
    (received,) = book.ok(allocation_wire.to_domain(command))
    wire = decode(EVENTS, encode(allocation_wire.to_wire(received, "r1/1#0", command)))
    assert isinstance(wire, e.StockReceived) and wire.vendor == vendor

    fact = to_fact(wire)
    assert isinstance(fact, Fact)
    (lot,) = record(Known(), [fact]).lots
    assert (lot.lot_id, lot.reference, lot.vendor) == ("IN-1/1", "PO-60006", vendor)


def test_a_receipt_lines_bin_travels_through_allocation_to_the_ledger_lot() -> None:
    """§4 `lines[].bin`: the bin a receipt line names reaches its ReceiveStock command,
    allocation's StockReceived and the ledger's lot (each hop through the wire codec); a line
    without one leaves the lot's bin empty."""
    doc = ShipmentReceived.model_validate(
        {
            "message_id": "r1",
            "shipment_id": "IN-1",
            "office": "AI",
            "source": "purchase",
            "received_on": DAY,
            "lines": [
                {"line_no": 1, "lic": "L", "quantity": "2", "bin": "A-01-3"},
                {"line_no": 2, "lic": "L", "quantity": "1"},
            ],
        }
    )
    checked = receiving.check_receipt(receiving_wire.receipt(doc), {"L": receiving.Item(lic="L")})
    book, bins = Book(item()), []
    for line in checked.commands:
        command = decode(COMMANDS, encode(receiving_wire.command(doc, line)))
        assert isinstance(command, ReceiveStock)
        (received,) = book.ok(allocation_wire.to_domain(command.model_copy(update={"hold": False})))
        wire = decode(
            EVENTS, encode(allocation_wire.to_wire(received, f"{line.command_id}#0", command))
        )
        assert isinstance(wire, e.StockReceived)
        fact = to_fact(wire)
        assert isinstance(fact, Fact)
        (lot,) = record(Known(), [fact]).lots
        bins.append((command.bin, wire.bin, lot.bin))
    assert bins == [("A-01-3", "A-01-3", "A-01-3"), (None, None, None)]


def test_a_release_is_dated_by_the_ship_on_of_the_allocation_it_gives_back() -> None:
    """R15, §6: allocation's own release, through the wire codec, is dated by the business
    date it carries (the released allocation's ship_on), not by allocation's clock, so a lot's
    or serial's history lists it between that allocation and what came after."""
    ship_on = date(2024, 1, 15)
    book = Book(item(), receive("PO-1/1", 2))
    book.ok(allocate("OUT-1", 1, ship_on=ship_on))
    command = release("OUT-1")
    (released,) = book.ok(command)
    wire = decode(EVENTS, encode(allocation_wire.to_wire(released, "rel#0", command)))
    assert isinstance(wire, e.LineReleased) and wire.released_on == ship_on

    fact = to_fact(wire)

    assert isinstance(fact, Fact) and (fact.action, fact.on) == ("release", ship_on)
    (row,) = record(Known(), [fact]).transactions
    assert (row.event_type, row.occurred_on) == ("release", ship_on)


def test_a_release_names_the_customer_of_the_allocation_it_gives_back() -> None:
    """R15: a cancelled sale's `release` row in a lot's history names the customer, as its
    `allocation` row does (a recall spreadsheet sorted by counterparty keeps them together).
    Before, LineReleased carried no counterparty and the row's was empty."""
    book = Book(item(), receive("PO-1/1", 2))
    book.ok(allocate("OUT-1", 1, to="City Clinic"))
    command = release("OUT-1")
    (released,) = book.ok(command)
    wire = decode(EVENTS, encode(allocation_wire.to_wire(released, "rel#0", command)))
    assert isinstance(wire, e.LineReleased) and wire.counterparty == "City Clinic"

    fact = to_fact(wire)

    assert isinstance(fact, Fact) and fact.counterparty == "City Clinic"
    (row,) = record(Known(), [fact]).transactions
    assert (row.event_type, row.counterparty) == ("release", "City Clinic")


def test_a_release_published_before_released_on_is_dated_by_when_it_occurred() -> None:
    """Additive contract: a LineReleased without `released_on` still decodes, dated by its
    `occurred_at` (the only date it has)."""
    event = decode(
        EVENTS,
        b'{"type": "LineReleased", "message_id": "m9", "command_id": "c9", "lic": "X",'
        b' "shipment_id": "OUT-1", "line_no": 1, "office": "AI",'
        b' "occurred_at": "2024-03-02T10:00:00Z", "movements": []}',
    )
    assert isinstance(event, e.LineReleased) and event.released_on is None

    fact = to_fact(event)

    assert isinstance(fact, Fact) and fact.on == date(2024, 3, 2)
