"""The ledger's reading of `inventory.events` and `inventory.costs` messages."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.ledger.domain.model import Fact
from services.ledger.translate import to_fact, to_po_update
from shared.contracts import events as e
from shared.contracts.reasons import ReasonCode
from shared.contracts.upstream import PurchaseOrderUpdated

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
