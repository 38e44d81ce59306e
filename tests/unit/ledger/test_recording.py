"""Recording inventory facts: usage, transactions, COGS, lot and serial changes (R7, R10–R15)."""

from __future__ import annotations

from datetime import date

from services.ledger.domain.model import Delta, Known
from services.ledger.domain.recording import record
from tests.unit.ledger.builders import LIC, D, act, move, receipt

EXP = date(2025, 1, 31)


def test_receipt_opens_a_lot_with_its_manufacturer_lots_and_one_record_per_lot() -> None:
    """R7, R15: a receipt line creates an inventory lot; each mfr lot is a lot record with
    quantity and cost."""
    fact = receipt(
        "L1",
        5,
        "2.50",
        moves=(
            move("L1", 3, "2.50", mfr_lot="A", expires_on=EXP),
            move("L1", 2, "2.50", mfr_lot="B", expires_on=EXP),
        ),
    )
    entries = record(Known(), [fact])

    (lot,) = entries.lots
    assert (lot.lot_id, lot.kind, lot.reference, lot.received_qty, lot.est_unit_cost) == (
        "L1",
        "purchase",
        "PO-1",
        5,
        D("2.50"),
    )
    assert lot.act_unit_cost is None
    assert {k: r.received_qty for k, r in entries.mfr_lots.items()} == {
        ("L1", "A"): 3,
        ("L1", "B"): 2,
    }
    assert [
        (t.event_type, t.mfr_lot, t.quantity, t.stock_change, t.cost) for t in entries.transactions
    ] == [
        ("receipt", "A", 3, 3, D("7.50")),
        ("receipt", "B", 2, 2, D("5.00")),
    ]
    assert all(t.record == "lot" and t.reference == "PO-1" for t in entries.transactions)
    assert entries.usage == [] and entries.cogs == []


def test_serialized_receipt_makes_serial_records_carrying_the_transaction_cost() -> None:
    """R15: serial records carry the transaction cost; the units are available."""
    fact = receipt(
        "L1",
        2,
        300,
        moves=(move("L1", 1, 300, serial="134593568"), move("L1", 1, 300, serial="200937842")),
    )
    entries = record(Known(), [fact])

    assert [(t.serial, t.record, t.quantity, t.cost) for t in entries.transactions] == [
        ("134593568", "serial", 1, 300),
        ("200937842", "serial", 1, 300),
    ]
    assert {s.serial: s.status for s in entries.serials.values()} == {
        "134593568": "available",
        "200937842": "available",
    }


def test_allocation_holds_stock_without_using_it() -> None:
    """Allocated stock stays on hand: allocated rises, no usage, the record changes no stock."""
    entries = record(
        Known(),
        [
            receipt(
                "L1",
                2,
                300,
                moves=(move("L1", 1, 300, serial="S1"), move("L1", 1, 300, serial="S2")),
            ),
            act(
                "allocation", move("L1", 1, 300, serial="S2"), document="OUT-7", counterparty="ACME"
            ),
        ],
    )

    assert entries.lot_deltas == {"L1": Delta(allocated=D(1))}
    assert entries.usage == []
    allocation = entries.transactions[-1]
    assert (allocation.event_type, allocation.stock_change, allocation.document) == (
        "allocation",
        0,
        "OUT-7",
    )
    serial = entries.serials[(LIC, "S2", "L1")]
    assert (serial.status, serial.document, serial.counterparty) == ("allocated", "OUT-7", "ACME")


def test_shipment_writes_usage_and_cogs_at_the_lots_estimated_cost() -> None:
    """R10, R16: shipping writes usage records against the lots, with the mfr lots used,
    costed at each lot's (estimated) unit cost, and one COGS entry per usage."""
    ship = act(
        "shipment",
        move("L1", 3, "2.50", mfr_lot="A"),
        move("L2", 1, "4", mfr_lot="A"),
        document="OUT-1",
        counterparty="ACME",
    )
    entries = record(Known(), [ship])

    assert [
        (u.lot_id, u.mfr_lot, u.quantity, u.unit_cost, u.total_cost) for u in entries.usage
    ] == [
        ("L1", "A", 3, D("2.50"), D("7.50")),
        ("L2", "A", 1, 4, 4),
    ]
    assert all(u.source == "shipment" and u.counterparty == "ACME" for u in entries.usage)
    assert [(c.kind, c.usage_id, c.amount) for c in entries.cogs] == [
        ("usage", entries.usage[0].usage_id, D("7.50")),
        ("usage", entries.usage[1].usage_id, 4),
    ]
    assert entries.lot_deltas == {
        "L1": Delta(used=D(3), allocated=D(-3)),
        "L2": Delta(used=D(1), allocated=D(-1)),
    }
    assert entries.mfr_deltas[("L1", "A")] == Delta(used=D(3), allocated=D(-3))
    assert [t.stock_change for t in entries.transactions] == [-3, -1]


def test_shipped_serial_leaves_stock_with_its_customer() -> None:
    """R10: shipped serials leave stock; the record names the customer."""
    entries = record(Known(), [act("shipment", move("L1", 1, serial="S1"), counterparty="ACME")])

    serial = entries.serials[(LIC, "S1", "L1")]
    assert (serial.status, serial.counterparty) == ("shipped", "ACME")


def test_vendor_return_is_usage_and_the_serial_goes_back_to_the_vendor() -> None:
    """R14: a return to vendor removes the stock: usage, and the serial is returned_to_vendor."""
    entries = record(
        Known(), [act("vendor_return", move("L1", 1, serial="S1"), counterparty="Aperture")]
    )

    (usage,) = entries.usage
    assert (usage.source, usage.quantity) == ("vendor_return", 1)
    assert entries.serials[(LIC, "S1", "L1")].status == "returned_to_vendor"


def test_vendor_return_uses_the_lot_but_books_no_cogs() -> None:
    """R14, R15: goods returned to the vendor leave the lot (usage, used, a transaction
    record) but were not sold: a credit against purchases, so no COGS entry; a sale in the
    same batch still books its COGS."""
    entries = record(
        Known(),
        [
            act("vendor_return", move("L1", 2, 10), document="RTV-1", counterparty="Aperture"),
            act("shipment", move("L1", 1, 10), document="OUT-1", counterparty="ACME"),
        ],
    )

    assert [(u.source, u.quantity, u.total_cost) for u in entries.usage] == [
        ("vendor_return", 2, 20),
        ("shipment", 1, 10),
    ]
    assert [(c.source, c.amount) for c in entries.cogs] == [("shipment", 10)]
    assert entries.lot_deltas == {"L1": Delta(used=D(3), allocated=D(-3))}
    assert [(t.event_type, t.stock_change) for t in entries.transactions] == [
        ("vendor_return", -2),
        ("shipment", -1),
    ]


def test_loss_is_usage_and_removes_the_serial() -> None:
    """R11: a loss or negative count takes the named stock out of use: usage (+)."""
    entries = record(Known(), [act("loss", move("L1", -1, serial="S1"), document="ADJ-1")])

    (usage,) = entries.usage
    assert (usage.source, usage.quantity, usage.document) == ("loss", 1, "ADJ-1")
    assert entries.lot_deltas == {"L1": Delta(used=D(1))}
    assert entries.serials[(LIC, "S1", "L1")].status == "removed"
    assert entries.transactions[0].stock_change == -1


def test_positive_count_into_a_lot_reverses_usage() -> None:
    """R11: a count that adds to an existing manufacturer lot reverses usage (−)."""
    entries = record(Known(), [act("count", move("L1", 1, "2.50", mfr_lot="A"), document="ADJ-2")])

    (usage,) = entries.usage
    assert (usage.quantity, usage.total_cost) == (-1, D("-2.50"))
    assert entries.cogs[0].amount == D("-2.50")
    assert entries.mfr_deltas == {("L1", "A"): Delta(used=D(-1))}


def test_adding_beyond_any_lot_is_negative_unallocated_usage() -> None:
    """R12: units added beyond any lot are a negative usage record without a lot, and
    unallocated stock at the office."""
    fact = act("count", move("L1", 2), move(None, 3, "5"), document="ADJ-3", office="EE")
    entries = record(Known(), [fact])

    assert [(u.lot_id, u.quantity) for u in entries.usage] == [("L1", -2), (None, -3)]
    assert entries.unallocated == {(LIC, "EE"): 3}
    assert entries.lot_deltas == {"L1": Delta(used=D(-2))}


def test_removing_unallocated_stock_is_usage_without_a_lot() -> None:
    """R12: taking unallocated stock out again uses it (+), still without a lot."""
    entries = record(Known(), [act("loss", move(None, -2, "5"), document="ADJ-4", office="EE")])

    assert [(u.lot_id, u.quantity) for u in entries.usage] == [(None, 2)]
    assert entries.unallocated == {(LIC, "EE"): -2}


def test_customer_return_reverses_usage_and_makes_the_serial_available() -> None:
    """R13: the returned unit becomes available again and its usage is reversed."""
    entries = record(
        Known(),
        [
            act(
                "customer_return",
                move("L1", 1, 300, serial="S1"),
                document="RMA-1",
                counterparty="ACME",
            )
        ],
    )

    (usage,) = entries.usage
    assert (usage.source, usage.quantity, usage.total_cost) == ("customer_return", -1, -300)
    assert entries.lot_deltas == {"L1": Delta(used=D(-1))}
    serial = entries.serials[(LIC, "S1", "L1")]
    assert (serial.status, serial.counterparty) == ("available", "ACME")


def test_release_gives_allocated_stock_back() -> None:
    """A cancelled allocation: allocated falls, the serial is available again."""
    entries = record(
        Known(),
        [act("allocation", move("L1", 1, serial="S1")), act("release", move("L1", 1, serial="S1"))],
    )

    assert entries.lot_deltas == {"L1": Delta()}
    assert entries.serials[(LIC, "S1", "L1")].status == "available"
    assert [t.event_type for t in entries.transactions] == ["allocation", "release"]


def test_serial_rows_keep_the_last_state_of_the_batch() -> None:
    """One set-based upsert writes the serials: only each serial's last state is kept."""
    entries = record(
        Known(),
        [
            receipt("L1", 1, moves=(move("L1", 1, serial="S1"),)),
            act("allocation", move("L1", 1, serial="S1")),
            act("shipment", move("L1", 1, serial="S1"), counterparty="ACME"),
        ],
    )

    assert list(entries.serials) == [(LIC, "S1", "L1")]
    assert entries.serials[(LIC, "S1", "L1")].status == "shipped"


def test_a_serial_row_names_the_transaction_record_of_its_last_change() -> None:
    """R15: where a serial is now is decided by the order changes were recorded in, not by
    their business dates (a later record may carry an earlier date): each serial row names
    the transaction record of its last change, whose sequence orders it."""
    shipped = act("shipment", move("L1", 1, serial="S1"), counterparty="ACME", on=date(2023, 7, 1))
    entries = record(Known(), [receipt("L1", 1, moves=(move("L1", 1, serial="S1"),)), shipped])

    (row,) = entries.serials.values()
    assert row.last_txn_id == entries.transactions[-1].txn_id == f"{shipped.event_id}/0"


def test_a_serial_received_and_moved_in_one_batch_keeps_its_receipt_date() -> None:
    """R15: the batch keeps a serial's last state, with the date it was received (or found by
    a beginning balance), not the date of that last change; a batch that did not receive it
    leaves its date as it was (None)."""
    entries = record(
        Known(),
        [
            receipt("L1", 1, moves=(move("L1", 1, serial="S1"),), on=date(2024, 1, 10)),
            act("shipment", move("L1", 1, serial="S1"), on=date(2024, 1, 20)),
            act("beginning_balance", move("BB", 1, serial="S1"), on=date(2024, 1, 5)),
            act("shipment", move("BB", 1, serial="S1"), on=date(2024, 1, 25)),
        ],
    )
    later = record(Known(), [act("customer_return", move("L1", 1, serial="S1"))])

    assert [(r.lot_id, r.received_on, r.changed_on) for r in entries.serials.values()] == [
        ("L1", date(2024, 1, 10), date(2024, 1, 20)),
        ("BB", date(2024, 1, 5), date(2024, 1, 25)),
    ]
    assert later.serials[(LIC, "S1", "L1")].received_on is None


def test_row_ids_are_deterministic_so_recording_twice_writes_the_same_rows() -> None:
    """Idempotence backstop: ids derive from the event's message_id and the move's place."""
    facts = [receipt("L1", 2), act("shipment", move("L1", 1), move("L1", 1))]

    first, second = record(Known(), facts), record(Known(), facts)

    assert first.usage == second.usage and first.transactions == second.transactions
    assert first.cogs == second.cogs
    assert len({u.usage_id for u in first.usage}) == 2
