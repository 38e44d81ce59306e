"""Lot valuation as the inventory-lots seed shows it (R7)."""

from __future__ import annotations

from services.ledger.domain.model import Known
from services.ledger.domain.recording import record
from services.ledger.domain.valuation import Figure, LotFigures, value
from tests.unit.ledger.builders import D, act, move, receipt

SEED_SERIALS = ("134593568", "200937842")


def _seed_lot() -> LotFigures:
    """Inventory lot 60002, DC-IP3VO-4: PO-60006 received 2 serialized units at 300.00."""
    fact = receipt(
        "60002",
        2,
        "300.00",
        po="PO-60006",
        moves=tuple(move("60002", 1, "300.00", serial=s) for s in SEED_SERIALS),
    )
    (lot,) = record(Known(), [fact]).lots
    figures = LotFigures.of(lot)
    return LotFigures(
        received_qty=figures.received_qty,
        est_unit_cost=figures.est_unit_cost,
        ordered_qty=D(2),
        purchased_qty=D(0),
    )


def test_seed_purchase_lot_dc_ip3vo_4_valuation() -> None:
    """R7, seed DC-IP3VO-4: ordered 2, received 2, purchased 0, accrued 2, used 0, current 2,
    each at 300.00 (600.00); purchased remaining 2 (600.00), received remaining 0; Open."""
    figures = _seed_lot()

    v = value(figures)

    assert v.unit_cost == D("300.00")
    assert v.ordered == Figure(D(2), D("600.00"))
    assert v.purchased == Figure(D(0), D("0.00"))
    assert v.purchased_remaining == Figure(D(2), D("600.00"))
    assert v.received == Figure(D(2), D("600.00"))
    assert v.received_remaining == Figure(D(0), D("0.00"))
    assert v.accrued == Figure(D(2), D("600.00"))
    assert v.used == Figure(D(0), D("0.00"))
    assert v.current == Figure(D(2), D("600.00"))
    assert v.status == "open" and not v.cost_is_final


def test_seed_lot_after_one_unit_ships() -> None:
    """R7, R10: shipping one serial uses it: used 1 (300.00), current 1 (300.00); accrued is
    unchanged (received − purchased)."""
    figures = _seed_lot()
    entries = record(
        Known(),
        [
            act("allocation", move("60002", 1, "300.00", serial="200937842"), document="60007"),
            act(
                "shipment",
                move("60002", 1, "300.00", serial="200937842"),
                document="60007",
                counterparty="Montboro High School East",
            ),
        ],
    )

    v = value(figures.plus(entries.lot_deltas["60002"]))

    assert v.used == Figure(D(1), D("300.00"))
    assert v.current == Figure(D(1), D("300.00"))
    assert v.accrued == Figure(D(2), D("600.00"))
    assert v.allocated == Figure(D(0), D("0.00"))
    assert v.status == "open"
    assert [c.amount for c in entries.cogs] == [D("300.00")]


def test_lot_closes_when_all_its_stock_is_used() -> None:
    """R7: Closed when the inventory is used completely, reopened by a return into it."""
    figures = _seed_lot()

    used_up = figures.plus(
        record(Known(), [act("shipment", move("60002", 2, 300))]).lot_deltas["60002"]
    )
    assert value(used_up).status == "closed"

    returned = used_up.plus(
        record(Known(), [act("customer_return", move("60002", 1, 300))]).lot_deltas["60002"]
    )
    assert value(returned).status == "open"


def test_values_use_the_actual_cost_once_the_po_closed() -> None:
    """R16: the actual unit cost is used once it is final."""
    figures = _seed_lot()
    closed = LotFigures(
        received_qty=figures.received_qty,
        est_unit_cost=figures.est_unit_cost,
        act_unit_cost=D("310.00"),
        ordered_qty=D(2),
        purchased_qty=D(2),
    )

    v = value(closed)

    assert v.cost_is_final and v.current == Figure(D(2), D("620.00"))
    assert v.accrued == Figure(D(0), D("0.00"))


def test_ordered_is_unknown_until_a_po_update_names_it() -> None:
    """R7: without PO figures, ordered is unknown and purchased is 0: all received is accrued."""
    v = value(LotFigures(received_qty=D(3), est_unit_cost=D(5)))

    assert v.ordered is None and v.purchased_remaining is None and v.received_remaining is None
    assert v.accrued == Figure(D(3), D(15))
