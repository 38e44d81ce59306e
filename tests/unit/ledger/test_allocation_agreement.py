"""The ledger agrees with allocation: fed allocation's own events (through the wire codec), its
view of every lot, manufacturer lot, serial and unallocated stock is allocation's (R7, R10–R14).
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from services.allocation import translate as allocation_wire
from services.allocation.domain.decide import decide
from services.allocation.domain.model import Command
from services.ledger import translate
from services.ledger.domain.model import ZERO, Entries, Fact, ItemFact, Known
from services.ledger.domain.recording import record
from shared.contracts.codec import decode, encode
from shared.contracts.events import InventoryEvent
from tests.unit.allocation.builders import (
    Book,
    adjust,
    allocate,
    give_back,
    item,
    lot,
    pick,
    receive,
    release,
    ship,
)

EVENTS: TypeAdapter[InventoryEvent] = TypeAdapter(InventoryEvent)


def _ledger(book: Book, commands: list[Command]) -> Entries:
    facts: list[Fact | ItemFact] = []
    for command in commands:
        for n, event in enumerate(book.ok(command)):
            wire = allocation_wire.to_wire(event, f"{command.message_id}#{n}", command)
            fact = translate.to_fact(decode(EVENTS, encode(wire)))
            if fact is not None:
                facts.append(fact)
    return record(Known(), facts)


def _assert_agree(book: Book, entries: Entries) -> None:
    received = {row.lot_id: row.received_qty for row in entries.lots}
    for lot_id, row in book.state.lots.items():
        delta = entries.lot_deltas.get(lot_id)
        used = delta.used if delta else ZERO
        allocated = delta.allocated if delta else ZERO
        assert (received[lot_id] - used, allocated, used) == (
            row.on_hand,
            row.allocated,
            row.used,
        ), lot_id
    for key, mfr in book.state.mfr_lots.items():
        delta = entries.mfr_deltas.get(key)
        used = delta.used if delta else ZERO
        assert entries.mfr_lots[key].received_qty - used == mfr.on_hand, key
    for unit in book.state.units.values():
        assert entries.serials[(unit.lic, unit.serial, unit.lot_id)].status == unit.status.value
    assert {office: q for (_, office), q in entries.unallocated.items() if q} == {
        office: row.quantity for office, row in book.state.unallocated.items()
    }
    value: dict[str, Decimal] = {}  # what lot-less usage put in (−) and took out (+), by office
    for u in entries.usage:
        if u.lot_id is None:
            value[u.office] = value.get(u.office, ZERO) - u.total_cost
    assert {office: v for office, v in value.items() if v} == {
        office: row.value for office, row in book.state.unallocated.items() if row.value
    }
    net_usage = sum((u.quantity for u in entries.usage if u.lot_id is not None), ZERO)
    assert net_usage == sum((row.used for row in book.state.lots.values()), ZERO)


def test_plain_item_history_agrees_with_allocation() -> None:
    """R10–R13: shipments, a cancelled line, a customer return, a loss and a count that puts
    back more than was used (R12) leave the ledger's lots equal to allocation's."""
    book = Book()
    commands: list[Command] = [
        item(cost="2.50"),
        receive("PO-1/1", 10),
        receive("PO-2/1", 5, cost="3"),
        allocate("OUT-1", 12),
        ship("OUT-1"),
        allocate("OUT-2", 1),
        release("OUT-2"),
        give_back("RMA-1", 2),
        adjust("ADJ-1", "loss", -1),
        adjust("ADJ-2", "count", 20, cost="2.50"),
        adjust("ADJ-3", "count", -6),
    ]

    entries = _ledger(book, commands)

    _assert_agree(book, entries)
    assert any(u.lot_id is None and u.quantity < 0 for u in entries.usage)  # R12


def test_lot_tracked_and_serialized_history_agrees_with_allocation() -> None:
    """R3, R4, R9–R14: lots, serials, a vendor return, a customer return and a serial removed
    by a loss and found again by a count agree with allocation."""
    book = Book(lic="S")
    commands: list[Command] = [
        item("S", track=True, serialized=True, perishable=False, cost="300"),
        receive("PO-60006/1", 3, lic="S", lots=[lot("A", 2), lot("B", 1)], serials=["1", "2", "3"]),
        allocate("60007", 1, lic="S", serials=["2"]),
        ship("60007", lic="S"),
        allocate("RTV-1", 1, lic="S", kind="vendor_return", to="Aperture", serials=["3"]),
        ship("RTV-1", lic="S"),
        give_back("RMA-1", 1, lic="S", serials=["2"]),
        adjust("ADJ-1", "loss", -1, lic="S", serials=["1"]),
        adjust("ADJ-2", "count", 1, lic="S", serials=["1"]),
        allocate("60008", 1, lic="S", lots=[pick("A", 1)]),
    ]

    entries = _ledger(book, commands)

    _assert_agree(book, entries)
    assert [u.source for u in entries.usage] == [
        "shipment",
        "vendor_return",
        "customer_return",
        "loss",
        "count",
    ]
    assert sum((u.quantity for u in entries.usage), Decimal(0)) == 1


def test_unallocated_stock_leaves_the_ledger_at_the_cost_it_came_in_at() -> None:
    """R10, R12: 5 units counted in beyond any lot at 7.00 (negative usage, −35) and lost
    again are usage at 7.00 (+35), not at the item's estimate of 10.00: no net cost."""
    book = Book()
    commands: list[Command] = [
        item(cost="10.00"),
        receive("PO-1/1", 10, cost="10.00"),
        allocate("OUT-1", 10),
        ship("OUT-1"),
        adjust("ADJ-1", "count", 15, cost="7.00"),  # 10 back into the lot, 5 beyond it
        adjust("ADJ-2", "loss", -5),
    ]

    entries = _ledger(book, commands)

    _assert_agree(book, entries)
    lotless = [(c.quantity, c.unit_cost) for c in entries.cogs if c.lot_id is None]
    assert lotless == [(-5, Decimal("7.00")), (5, Decimal("7.00"))]
    assert sum((c.amount for c in entries.cogs if c.lot_id is None), ZERO) == 0


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["receive", "sale", "cancel", "return", "loss", "count"]),
            st.integers(min_value=1, max_value=9),
        ),
        max_size=25,
    )
)
def test_any_plain_history_agrees_with_allocation(steps: list[tuple[str, int]]) -> None:
    """R7, R10–R13 as a property: whatever allocation accepts or refuses, the ledger's lots,
    unallocated stock (quantity and value) and net usage equal allocation's."""
    book = Book(item(cost="2.50"))
    facts: list[Fact | ItemFact] = []
    for n, (step, quantity) in enumerate(steps):
        for command in _commands(step, n, quantity):
            decision = decide(book.state, command)
            book.state = decision.state
            for i, event in enumerate(decision.events):
                wire = allocation_wire.to_wire(event, f"{command.message_id}#{i}", command)
                fact = translate.to_fact(decode(EVENTS, encode(wire)))
                if fact is not None:
                    facts.append(fact)

    _assert_agree(book, record(Known(), facts))


def _commands(step: str, n: int, quantity: int) -> list[Command]:
    match step:
        case "receive":
            return [receive(f"PO-{n}/1", quantity, cost=str(n + 1))]
        case "sale":
            return [allocate(f"OUT-{n}", quantity), ship(f"OUT-{n}")]
        case "cancel":
            return [allocate(f"OUT-{n}", quantity), release(f"OUT-{n}")]
        case "return":
            return [give_back(f"RMA-{n}", quantity)]
        case "loss":
            return [adjust(f"ADJ-{n}", "loss", -quantity)]
        case _:
            return [adjust(f"ADJ-{n}", "count", quantity, cost=("1.75", "2.50", "3.10")[n % 3])]
