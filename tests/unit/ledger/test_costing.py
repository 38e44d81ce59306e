"""COGS at the estimated cost, and reconciliation to the actual cost when the PO closes (R16)."""

from __future__ import annotations

from datetime import timedelta

from services.ledger.domain.costing import (
    MfrLotInLot,
    PoLot,
    PurchaseOrder,
    SerialInLot,
    apply_updates,
    rebooked,
)
from services.ledger.domain.model import Known, UsageRow
from services.ledger.domain.recording import record
from tests.unit.ledger.builders import DAY, LIC, D, act, booked, move, po_update, receipt

PO1 = ("PO-1", LIC)
PO2 = ("PO-2", LIC)


def _history() -> tuple[list[UsageRow], list[UsageRow]]:
    """PO-1: lots L1 (10) and L2 (5), partly used, one unit returned; PO-2: lot L9, partly
    used. Every lot at the estimated cost 10."""
    entries = record(
        Known(),
        [
            receipt("L1", 10, 10),
            receipt("L2", 5, 10),
            receipt("L9", 4, 10, po="PO-2"),
            act("shipment", move("L1", 3, 10), counterparty="ACME"),
            act("loss", move("L2", -1, 10), document="ADJ-1"),
            act("customer_return", move("L1", 1, 10), counterparty="ACME"),
            act("shipment", move("L9", 2, 10), counterparty="Bravo"),
        ],
    )
    po1 = [u for u in entries.usage if u.lot_id in ("L1", "L2")]
    po2 = [u for u in entries.usage if u.lot_id == "L9"]
    return po1, po2


def test_usage_is_booked_at_the_estimated_cost_until_the_po_closes() -> None:
    """R16: usage is costed at the estimated unit cost until the actual cost is final."""
    po1, _ = _history()

    assert [(u.source, u.quantity, u.unit_cost, u.total_cost) for u in po1] == [
        ("shipment", 3, 10, 30),
        ("loss", 1, 10, 10),
        ("customer_return", -1, 10, -10),
    ]


def test_closing_a_po_reconciles_every_usage_of_its_lots() -> None:
    """R16: closing writes a reconciliation entry for (actual − estimated) × quantity on every
    usage of every lot of the PO: positive (PO-1, 12 > 10) and negative (PO-2, 9 < 10),
    several lots, partial usage, reversals included; unused stock gets nothing."""
    po1, po2 = _history()

    entries = apply_updates(
        {},
        {PO1: booked(po1), PO2: booked(po2)},
        [po_update("PO-1", actual=12, closed=True), po_update("PO-2", actual=9, closed=True)],
    )

    assert [(c.lot_id, c.source, c.quantity, c.unit_cost, c.amount) for c in entries.cogs] == [
        ("L1", "shipment", 3, 2, 6),
        ("L2", "loss", 1, 2, 2),
        ("L1", "customer_return", -1, 2, -2),
        ("L9", "shipment", 2, -1, -2),
    ]
    assert all(c.kind == "reconciliation" for c in entries.cogs)
    assert [c.po for c in entries.cogs] == ["PO-1", "PO-1", "PO-1", "PO-2"]
    assert entries.actual_costs == {PO1: 12, PO2: 9}
    assert entries.orders[PO1].closed and entries.orders[PO1].closings == 1


def test_closing_a_po_reconciles_a_return_to_vendor_outside_cogs() -> None:
    """R14, R16: a return to vendor books no COGS, but its usage was booked at the estimate:
    closing its PO brings it to the actual cost with an entry of its own kind (no COGS); the
    lot's sale is reconciled as before."""
    entries = record(
        Known(),
        [
            receipt("L1", 10, 10),
            act("vendor_return", move("L1", 4, 10), document="RTV-1", counterparty="Aperture"),
            act("shipment", move("L1", 3, 10), counterparty="ACME"),
        ],
    )

    closed = apply_updates(
        {}, {PO1: booked(entries.usage)}, [po_update("PO-1", actual=12, closed=True)]
    )

    assert [(c.kind, c.source, c.quantity, c.amount) for c in closed.cogs] == [
        ("vendor_return_reconciliation", "vendor_return", 4, 8),
        ("reconciliation", "shipment", 3, 6),
    ]


def test_reconciled_cogs_equal_quantity_times_actual_cost() -> None:
    """R16: after the close, each usage's COGS (booked + reconciliation) is quantity × actual."""
    po1, _ = _history()

    entries = apply_updates({}, {PO1: booked(po1)}, [po_update("PO-1", actual="12.5", closed=True)])

    after = rebooked(booked(po1), entries.cogs)
    assert [(u.quantity, u.booked) for u in after] == [
        (3, D("37.5")),
        (1, D("12.5")),
        (-1, D("-12.5")),
    ]


def test_redelivered_close_changes_nothing() -> None:
    """R16: reconciliation runs exactly once per PO close: the same close delivered again
    (under any message id) finds the PO closed at that cost and writes nothing."""
    po1, _ = _history()
    first = apply_updates({}, {PO1: booked(po1)}, [po_update("PO-1", actual=12, closed=True)])
    usage_now = {PO1: rebooked(booked(po1), first.cogs)}

    again = apply_updates(first.orders, usage_now, [po_update("PO-1", actual=12, closed=True)])

    assert again.cogs == [] and again.actual_costs == {}
    assert again.orders[PO1] == first.orders[PO1]


def test_a_close_repeated_within_one_batch_is_reconciled_once() -> None:
    """R16: the reconciliation key (po, lic, closing, usage) is unique; a repeat in the same
    batch adds no entry."""
    po1, _ = _history()

    entries = apply_updates(
        {},
        {PO1: booked(po1)},
        [po_update("PO-1", actual=12, closed=True), po_update("PO-1", actual=12, closed=True)],
    )

    keys = [c.entry_key for c in entries.cogs]
    assert len(keys) == 3 == len(set(keys))
    assert all(key.startswith("reconcile:PO-1:DC-IP3VO-4:1:") for key in keys)


def test_usage_after_the_close_is_booked_at_the_actual_cost() -> None:
    """R16: later usage of a closed PO's lots is costed at the actual cost (no reconciliation
    needed); the estimate is kept beside it."""
    entries = record(
        Known(actual_costs={"L1": D(12)}), [act("shipment", move("L1", 2, 10), counterparty="ACME")]
    )

    (usage,) = entries.usage
    assert (usage.unit_cost, usage.est_unit_cost, usage.total_cost) == (12, 10, 24)
    assert entries.cogs[0].amount == 24
    later = apply_updates(
        {PO1: PurchaseOrder(po="PO-1", lic=LIC, act_unit_cost=D(12), closed=True, closings=1)},
        {PO1: booked(entries.usage)},
        [po_update("PO-1", actual=12, closed=True)],
    )
    assert later.cogs == []


def test_a_lot_received_after_its_po_closed_starts_at_the_actual_cost() -> None:
    """R16: the actual cost is final once the PO closed, whenever the lot arrives."""
    entries = record(
        Known(po_costs={("PO-1", LIC): D(12)}),
        [receipt("L5", 2, 10), act("shipment", move("L5", 1, 10))],
    )

    assert entries.lots[0].act_unit_cost == 12
    assert entries.usage[0].unit_cost == 12
    assert entries.transactions[0].unit_cost == 12


def test_a_close_with_another_actual_cost_corrects_to_it() -> None:
    """R16: a later close with a different actual cost is a new closing that brings every
    usage from what is booked to the new cost."""
    po1, _ = _history()
    first = apply_updates({}, {PO1: booked(po1)}, [po_update("PO-1", actual=12, closed=True)])

    second = apply_updates(
        first.orders,
        {PO1: rebooked(booked(po1), first.cogs)},
        [po_update("PO-1", actual=11, closed=True)],
    )

    assert [c.amount for c in second.cogs] == [-3, -1, 1]
    assert second.orders[PO1].closings == 2
    assert all(":2:" in c.entry_key for c in second.cogs)


def test_a_close_without_an_actual_cost_keeps_the_estimate() -> None:
    """R16: without an actual cost there is nothing to reconcile; a close that names one later
    still reconciles."""
    po1, _ = _history()
    first = apply_updates({}, {PO1: booked(po1)}, [po_update("PO-1", closed=True)])
    assert first.cogs == [] and first.orders[PO1].closed and first.actual_costs == {}

    second = apply_updates(
        first.orders, {PO1: booked(po1)}, [po_update("PO-1", actual=12, closed=True)]
    )
    assert [c.amount for c in second.cogs] == [6, 2, -2]


def test_an_actual_cost_on_an_open_po_is_not_final() -> None:
    """R16: the actual cost counts only when the PO is closed."""
    po1, _ = _history()

    entries = apply_updates({}, {PO1: booked(po1)}, [po_update("PO-1", actual=12)])

    assert entries.cogs == [] and entries.actual_costs == {}
    assert not entries.orders[PO1].closed


def test_po_updates_keep_the_quantities_they_do_not_name() -> None:
    """R7: ordered and purchased quantities come from PO updates; a field left out keeps its
    value, and a closed PO stays closed."""
    entries = apply_updates(
        {},
        {},
        [
            po_update("PO-1", ordered=2, purchased=0),
            po_update("PO-1", purchased=1, actual=12, closed=True),
            po_update("PO-1", purchased=2),
        ],
    )

    order = entries.orders[PO1]
    assert (order.ordered_qty, order.purchased_qty, order.act_unit_cost, order.closed) == (
        2,
        2,
        12,
        True,
    )


def test_a_reopened_po_closes_again_at_the_cost_it_was_corrected_to() -> None:
    """R16: a closed PO reopened (`closed: false`) with a corrected actual cost is open again
    and keeps that cost; its lots keep the cost last applied until the next close, which
    reconciles every usage from what is booked to the corrected cost, though the close itself
    names no cost."""
    po1, _ = _history()
    first = apply_updates({}, {PO1: booked(po1)}, [po_update("PO-1", actual=12, closed=True)])
    after_first = {PO1: rebooked(booked(po1), first.cogs)}

    reopened = apply_updates(first.orders, after_first, [po_update("PO-1", actual=14)])
    reopened_explicitly = apply_updates(
        first.orders, after_first, [po_update("PO-1", actual=14, closed=False)]
    )
    closed_again = apply_updates(
        reopened_explicitly.orders, after_first, [po_update("PO-1", closed=True)]
    )

    assert reopened.orders[PO1].closed  # `closed` left out: the PO stays closed …
    order = reopened_explicitly.orders[PO1]
    assert (order.closed, order.act_unit_cost, order.applied_unit_cost) == (False, 14, 12)
    assert reopened_explicitly.cogs == [] and reopened_explicitly.actual_costs == {}
    assert [c.amount for c in closed_again.cogs] == [6, 2, -2]  # (14 − 12) × 3, × 1, × −1
    assert closed_again.actual_costs == {PO1: 14}
    assert closed_again.orders[PO1].closings == 2 and closed_again.orders[PO1].closed
    final = rebooked(after_first[PO1], closed_again.cogs)
    assert [(u.quantity, u.booked) for u in final] == [(3, 42), (1, 14), (-1, -14)]


def test_a_reopened_po_closed_again_at_the_cost_applied_writes_nothing() -> None:
    """R16: a PO reopened and closed again without a new cost has nothing to reconcile (usage
    while it was open was booked at the cost applied); a redelivered reopen changes nothing."""
    po1, _ = _history()
    first = apply_updates({}, {PO1: booked(po1)}, [po_update("PO-1", actual=12, closed=True)])
    usage = {PO1: rebooked(booked(po1), first.cogs)}

    again = apply_updates(
        first.orders,
        usage,
        [
            po_update("PO-1", closed=False),
            po_update("PO-1", closed=False),
            po_update("PO-1", closed=True),
        ],
    )

    assert again.cogs == [] and again.actual_costs == {}
    assert again.orders[PO1].closed and again.orders[PO1].closings == 1


def test_a_new_cost_for_a_closed_po_that_leaves_closed_out_corrects_it() -> None:
    """R16: `closed` left out keeps the PO's state, so a new actual cost for a closed PO is a
    correction closing, like a close naming it."""
    po1, _ = _history()
    first = apply_updates({}, {PO1: booked(po1)}, [po_update("PO-1", actual=12, closed=True)])

    second = apply_updates(
        first.orders, {PO1: rebooked(booked(po1), first.cogs)}, [po_update("PO-1", actual=11)]
    )

    assert [c.amount for c in second.cogs] == [-3, -1, 1]
    assert second.orders[PO1].closed and second.orders[PO1].closings == 2


def test_a_closing_revalues_each_lot_with_one_transaction_record() -> None:
    """R15, R16: a closing changes the cost of the PO's lots: each lot whose cost changes gets
    one lot record (no stock change) of the units still in it at the difference, so its cost
    is what the stock on hand gained or lost; the used units are the reconciliation's. A
    correction revalues from the cost applied; the same close again writes nothing."""
    lots = {
        PO1: [
            PoLot(lot_id="L1", lic=LIC, office="AI", quantity=D(8), unit_cost=D(10)),
            PoLot(lot_id="L2", lic=LIC, office="EE", quantity=D(0), unit_cost=D("10.50")),
            PoLot(lot_id="L3", lic=LIC, office="AI", quantity=D(2), unit_cost=D(12)),
        ]
    }
    close = po_update("PO-1", actual=12, closed=True)

    entries = apply_updates(
        {},
        {},
        [close, po_update("PO-1", actual=11, closed=True), po_update("PO-1", closed=True)],
        lots,
    )

    assert [
        (t.lot_id, t.event_type, t.quantity, t.stock_change, t.unit_cost, t.cost, t.office)
        for t in entries.transactions
    ] == [
        ("L1", "cost_change", 8, 0, 2, 16, "AI"),
        ("L2", "cost_change", 0, 0, D("1.50"), 0, "EE"),
        ("L1", "cost_change", 8, 0, -1, -8, "AI"),
        ("L2", "cost_change", 0, 0, -1, 0, "EE"),
        ("L3", "cost_change", 2, 0, -1, -2, "AI"),
    ]
    first = entries.transactions[0]
    assert (first.document, first.reference, first.serial, first.occurred_on) == (
        "PO-1",
        "PO-1",
        None,
        close.on,
    )
    assert first.txn_id == "cost:PO-1:DC-IP3VO-4:1:L1" and first.event_id == close.event_id
    assert len({t.txn_id for t in entries.transactions}) == 5


def test_a_closing_writes_a_record_for_each_serial_and_mfr_lot_left_in_a_lot() -> None:
    """R15: a closing changes the cost of every unit on hand, and serials and manufacturer lots
    have histories of their own: each serial still in the lot gets a record of its unit, each
    manufacturer lot one of its units not in those serials, the lot one of the units in
    neither. Each unit is in one record, so the lot's records add up to what its stock gained
    (8 units × 2), and the ids are deterministic (a redelivered closing writes nothing)."""
    lot = PoLot(
        lot_id="L1",
        lic=LIC,
        office="AI",
        quantity=D(8),
        unit_cost=D(10),
        serials=[
            SerialInLot(serial="S1", mfr_lot="M1", expires_on=DAY),
            SerialInLot(serial="S2"),
        ],
        mfr_lots=[
            MfrLotInLot(mfr_lot="M1", quantity=D(4), expires_on=DAY),
            MfrLotInLot(mfr_lot="M2", quantity=D(0)),
        ],
    )
    close = po_update("PO-1", actual=12, closed=True)

    entries = apply_updates({}, {}, [close], {PO1: [lot]})
    again = apply_updates({}, {}, [close], {PO1: [lot]})

    assert [
        (t.mfr_lot, t.serial, t.expires_on, t.record, t.quantity, t.stock_change, t.cost)
        for t in entries.transactions
    ] == [
        ("M1", "S1", DAY, "serial", 1, 0, 2),
        (None, "S2", None, "serial", 1, 0, 2),
        ("M1", None, DAY, "lot", 3, 0, 6),
        (None, None, None, "lot", 3, 0, 6),
    ]
    assert sum(t.cost for t in entries.transactions) == 8 * 2
    assert {(t.lot_id, t.event_type, t.unit_cost) for t in entries.transactions} == {
        ("L1", "cost_change", 2)
    }
    assert [t.txn_id for t in entries.transactions] == [
        "cost:PO-1:DC-IP3VO-4:1:L1/serial/S1",
        "cost:PO-1:DC-IP3VO-4:1:L1/serial/S2",
        "cost:PO-1:DC-IP3VO-4:1:L1/mfr_lot/M1",
        "cost:PO-1:DC-IP3VO-4:1:L1",
    ]
    assert [t.txn_id for t in again.transactions] == [t.txn_id for t in entries.transactions]


def test_a_lot_whose_units_are_all_serials_gets_no_lot_record_of_its_own() -> None:
    """R15: serials received at 300 and still in their lot when the PO closes at 320: one
    record per serial (1 × +20), none of the lot beside them that would count them twice."""
    lot = PoLot(
        lot_id="IN-5/1",
        lic=LIC,
        office="AI",
        quantity=D(2),
        unit_cost=D(300),
        serials=[SerialInLot(serial="A"), SerialInLot(serial="B")],
    )

    entries = apply_updates(
        {}, {}, [po_update("PO-5", actual=320, closed=True)], {("PO-5", LIC): [lot]}
    )

    assert [(t.serial, t.quantity, t.unit_cost, t.cost) for t in entries.transactions] == [
        ("A", 1, 20, 20),
        ("B", 1, 20, 20),
    ]


def test_a_backdated_closing_dates_a_lot_s_cost_change_no_earlier_than_its_receipt() -> None:
    """R15, R16: a close sent dated before a lot's receipt (a correction backdated to the
    month's start, say) dates that lot's cost change on its receipt day, as a reconciliation
    is dated no earlier than its usage: its trace never shows the revaluation before the
    stock it revalues arrived. A lot received before the close keeps the close's date."""
    close = po_update("PO-1", actual=12, closed=True)
    before, after = close.on - timedelta(days=3), close.on + timedelta(days=2)
    lots = {
        PO1: [
            PoLot(
                lot_id="L1",
                lic=LIC,
                office="AI",
                quantity=D(8),
                unit_cost=D(10),
                received_on=before,
            ),
            PoLot(
                lot_id="L2", lic=LIC, office="AI", quantity=D(2), unit_cost=D(10), received_on=after
            ),
        ]
    }

    entries = apply_updates({}, {}, [close], lots)

    assert [(t.lot_id, t.occurred_on) for t in entries.transactions] == [
        ("L1", close.on),
        ("L2", after),
    ]
