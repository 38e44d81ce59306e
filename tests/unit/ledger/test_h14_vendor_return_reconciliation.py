"""A PO closing reconciles a return to vendor's usage too, outside COGS, and dates every entry
no earlier than its usage (R14, R16)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from services.ledger.domain.costing import (
    CostEntries,
    PoLot,
    apply_updates,
    rebooked,
)
from services.ledger.domain.model import COGS_ACTIONS, Entries, Known
from services.ledger.domain.recording import record
from services.ledger.domain.valuation import LotFigures, value
from tests.unit.ledger.builders import DAY, D, act, booked, move, po_update, receipt

OIL = "OIL"
PO400 = ("PO-400", OIL)


def _oil() -> tuple[Entries, CostEntries]:
    """The accountant's case: OIL received on PO-400, 10 at 10.00; 2 returned to the vendor,
    3 sold; PO-400 closed at 8.00 with 8 purchased."""
    entries = record(
        Known(),
        [
            receipt("L-400", 10, "10.00", po="PO-400", lic=OIL),
            act("vendor_return", move("L-400", 2, "10.00"), document="RTV-1", lic=OIL),
            act("shipment", move("L-400", 3, "10.00"), document="SO-1", lic=OIL),
        ],
    )
    lots = {PO400: [PoLot(lot_id="L-400", lic=OIL, office="AI", quantity=D(5), unit_cost=D(10))]}
    update = po_update("PO-400", lic=OIL, actual="8.00", closed=True, purchased=8, ordered=10)
    closing = apply_updates({}, {PO400: booked(entries.usage)}, [update], lots)
    return entries, closing


def test_closing_reconciles_a_return_to_vendor_outside_cogs() -> None:
    """R14, R16: the close at 8.00 brings the vendor return's usage (2 × 10.00) to 2 × 8.00
    with an entry of its own kind, beside the sale's COGS reconciliation (−6.00) and the cost
    change of the 5 units on hand (−10.00): all of the 20.00 drop is explained."""
    _, closing = _oil()

    assert [(c.kind, c.source, c.quantity, c.unit_cost, c.amount) for c in closing.cogs] == [
        ("vendor_return_reconciliation", "vendor_return", 2, -2, -4),
        ("reconciliation", "shipment", 3, -2, -6),
    ]
    assert {c.po for c in closing.cogs} == {"PO-400"}
    assert [(t.event_type, t.cost) for t in closing.transactions] == [("cost_change", -10)]
    drop = sum((c.amount for c in closing.cogs), D(0)) + closing.transactions[0].cost
    assert drop == 10 * (D("8.00") - D("10.00"))


def test_usage_and_reconciliations_of_a_lot_add_up_to_its_used_value() -> None:
    """R16: the lot's usage records (20 + 30) and reconciliations (−4 − 6) are its used value,
    5 × 8.00; its COGS (the sale alone) are 3 × 8.00, as before the change."""
    entries, closing = _oil()
    lot = value(
        LotFigures(received_qty=D(10), used_qty=D(5), est_unit_cost=D(10), act_unit_cost=D(8))
    )

    reconciled = sum((c.amount for c in closing.cogs), D(0))
    cogs = [c for c in [*entries.cogs, *closing.cogs] if c.source in COGS_ACTIONS]

    assert sum((u.total_cost for u in entries.usage), D(0)) + reconciled == lot.used.value == 40
    assert sum((c.amount for c in cogs), D(0)) == 3 * 8


def test_a_serial_returned_to_the_vendor_is_reconciled_to_the_last_millionth() -> None:
    """R14, R16: serial T-005 received at 100.000001 and returned to the vendor, T-006 sold;
    the PO closes at 100: each usage gets its −0.000001, the return's of its own kind."""
    t5, t6 = (move("L-T", 1, "100.000001", serial=s) for s in ("T-005", "T-006"))
    entries = record(
        Known(),
        [
            receipt("L-T", 2, "100.000001", po="PO-9", moves=(t5, t6)),
            act("vendor_return", t5, document="RTV-9"),
            act("shipment", t6, document="SO-9"),
        ],
    )
    key = ("PO-9", entries.lots[0].lic)

    closing = apply_updates(
        {}, {key: booked(entries.usage)}, [po_update("PO-9", actual="100", closed=True)]
    )

    assert [(c.kind, c.amount) for c in closing.cogs] == [
        ("vendor_return_reconciliation", D("-0.000001")),
        ("reconciliation", D("-0.000001")),
    ]
    after = rebooked(booked(entries.usage), closing.cogs)
    assert [u.booked for u in after] == [100, 100]


def test_a_correction_brings_a_reconciled_return_to_vendor_to_the_new_cost() -> None:
    """R16: a later close at 9.00 corrects from what is booked (2 × 8.00) to 2 × 9.00; the
    same close again writes nothing."""
    entries, first = _oil()
    after_first = rebooked(booked(entries.usage), first.cogs)

    second = apply_updates(
        first.orders, {PO400: after_first}, [po_update("PO-400", lic=OIL, actual=9)]
    )
    after_second = rebooked(after_first, second.cogs)
    again = apply_updates(
        second.orders, {PO400: after_second}, [po_update("PO-400", lic=OIL, actual=9)]
    )

    assert [(c.kind, c.amount) for c in second.cogs] == [
        ("vendor_return_reconciliation", 2),
        ("reconciliation", 3),
    ]
    assert all(c.entry_key.startswith("reconcile:PO-400:OIL:2:") for c in second.cogs)
    assert [u.booked for u in after_second] == [18, 27]
    assert again.cogs == []


def test_a_backdated_close_dates_each_entry_no_earlier_than_its_usage() -> None:
    """R16: a close dated 3 days after the receipt reconciles a sale of the next day and one
    5 days later: each entry takes the later of the close's date and its usage's."""
    early, late = DAY + timedelta(days=1), DAY + timedelta(days=5)
    closed_on = DAY + timedelta(days=3)
    entries = record(
        Known(),
        [
            receipt("L1", 10, 10),
            act("shipment", move("L1", 1, 10), on=early),
            act("vendor_return", move("L1", 1, 10), on=late),
            act("shipment", move("L1", 1, 10), on=late),
        ],
    )

    closing = apply_updates(
        {},
        {("PO-1", entries.lots[0].lic): booked(entries.usage)},
        [po_update("PO-1", actual=12, closed=True, on=closed_on)],
    )

    assert [(c.source, c.entered_on) for c in closing.cogs] == [
        ("shipment", closed_on),
        ("vendor_return", late),
        ("shipment", late),
    ]
    assert closing.orders[("PO-1", entries.lots[0].lic)].closed_on == closed_on


def test_usage_read_back_without_its_date_is_dated_at_the_close() -> None:
    """A usage whose date the reader left out (`BookedUsage.used_on` defaults to the earliest
    date) is reconciled on the close's date, as every entry was before."""
    entries = record(Known(), [receipt("L1", 2, 10), act("shipment", move("L1", 1, 10))])
    closed_on = DAY - timedelta(days=1)

    closing = apply_updates(
        {},
        {
            ("PO-1", entries.lots[0].lic): [
                replace(u, used_on=date.min) for u in booked(entries.usage)
            ]
        },
        [po_update("PO-1", actual=12, closed=True, on=closed_on)],
    )

    assert [c.entered_on for c in closing.cogs] == [closed_on]
