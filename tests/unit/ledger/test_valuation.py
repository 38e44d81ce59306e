"""Lot valuation as the inventory-lots seed shows it (R7)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.ledger.domain.model import Known
from services.ledger.domain.recording import record
from services.ledger.domain.valuation import (
    Figure,
    LotFigures,
    Valuation,
    share_po_line,
    value,
)
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


def test_the_cost_of_a_lot_whose_po_was_reopened_is_not_final() -> None:
    """R16: a reopened PO's lots keep the actual cost last applied, but it is final only once
    the PO closes again."""
    reopened = LotFigures(
        received_qty=D(2), est_unit_cost=D(300), act_unit_cost=D(310), po_reopened=True
    )

    v = value(reopened)

    assert not v.cost_is_final and v.unit_cost == 310


def test_ordered_is_unknown_until_a_po_update_names_it() -> None:
    """R7: without PO figures, ordered is unknown and purchased is 0: all received is accrued."""
    v = value(LotFigures(received_qty=D(3), est_unit_cost=D(5)))

    assert v.ordered is None and v.purchased_remaining is None and v.received_remaining is None
    assert v.accrued == Figure(D(3), D(15))


# -- one PO line received into several lots ---------------------------------------------------


def _lot_values(ordered: int, purchased: int, received: list[int]) -> list[Valuation]:
    shares = share_po_line(D(ordered), D(purchased), [D(q) for q in received])
    return [
        value(
            LotFigures(
                received_qty=D(q),
                est_unit_cost=D(10),
                ordered_qty=s.ordered_qty,
                purchased_qty=s.purchased_qty,
            )
        )
        for q, s in zip(received, shares, strict=True)
    ]


def test_a_po_line_received_in_two_lots_is_shared_so_each_lot_reconciles() -> None:
    """R7: PO ordered 10, purchased 10, received 6 then 4: each lot shows its own part of the
    line (6 and 4), accrued 0 each, not the whole line's 10 (which made accrued −4 and −6)."""
    first, second = _lot_values(10, 10, [6, 4])

    assert (first.ordered, first.purchased) == (Figure(D(6), D(60)), Figure(D(6), D(60)))
    assert (second.ordered, second.purchased) == (Figure(D(4), D(40)), Figure(D(4), D(40)))
    assert first.accrued == second.accrued == Figure(D(0), D(0))
    assert first.received_remaining == second.received_remaining == Figure(D(0), D(0))
    assert first.purchased_remaining == second.purchased_remaining == Figure(D(0), D(0))


def test_the_latest_lot_carries_what_is_still_to_be_received() -> None:
    """R7: ordered 10, purchased 10, received 3 and 3 so far: the first lot is covered by what
    it received; the latest shows the 4 still due (received remaining) and purchased ahead of
    receipt (accrued −4). A line received in one lot shows the whole line."""
    first, latest = _lot_values(10, 10, [3, 3])
    (only,) = _lot_values(10, 10, [6])

    assert (first.ordered, first.accrued) == (Figure(D(3), D(30)), Figure(D(0), D(0)))
    assert latest.ordered == Figure(D(7), D(70))
    assert latest.received_remaining == Figure(D(4), D(40))
    assert latest.accrued == Figure(D(-4), D(-40))
    assert (only.ordered, only.accrued) == (Figure(D(10), D(100)), Figure(D(-4), D(-40)))


def test_received_beyond_the_order_is_accrued_on_the_later_lots() -> None:
    """R7: ordered and purchased 8, received 6 and 4: the second lot shows the 2 that were
    ordered and 2 received beyond the order (received remaining −2, accrued 2)."""
    first, second = _lot_values(8, 8, [6, 4])

    assert (first.ordered, first.accrued) == (Figure(D(6), D(60)), Figure(D(0), D(0)))
    assert (second.ordered, second.purchased) == (Figure(D(2), D(20)), Figure(D(2), D(20)))
    assert second.received_remaining == Figure(D(-2), D(-20))
    assert second.accrued == Figure(D(2), D(20))


def test_an_unknown_ordered_quantity_stays_unknown_on_every_lot() -> None:
    """R7: until a PO update names ordered, no lot shows it; purchased 0 is shared as 0."""
    shares = share_po_line(None, D(0), [D(6), D(4)])

    assert [(s.ordered_qty, s.purchased_qty) for s in shares] == [(None, 0), (None, 0)]


quantities = st.integers(min_value=0, max_value=50).map(D)


@settings(max_examples=200, deadline=None)
@given(quantities, quantities, st.lists(st.integers(min_value=1, max_value=20).map(D), min_size=1))
def test_the_lots_of_a_po_line_always_add_up_to_the_line(
    ordered: Decimal, purchased: Decimal, received: list[Decimal]
) -> None:
    """R7: shared in receipt order, the lots' ordered, purchased and accrued add up to the
    line's; no lot but the latest shows more than it received; none shows less than 0."""
    shares = share_po_line(ordered, purchased, received)

    assert sum(s.ordered_qty or 0 for s in shares) == ordered
    assert sum(s.purchased_qty or 0 for s in shares) == purchased
    accrued = sum(q - (s.purchased_qty or 0) for q, s in zip(received, shares, strict=True))
    assert accrued == sum(received) - purchased
    for q, s in zip(received[:-1], shares[:-1], strict=True):
        assert 0 <= (s.ordered_qty or 0) <= q and 0 <= (s.purchased_qty or 0) <= q
    assert (shares[-1].ordered_qty or 0) >= 0
