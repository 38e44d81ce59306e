"""Allocation's events leave on the wire exactly as the validating contract models would write
them: `translate.to_wire` builds them without re-validation, so every event it builds must
encode to the same bytes as the same event validated, and decode back through the topic's
adapter (`inventory.events`, as the ledger and the status services read it)."""

from __future__ import annotations

import unicodedata
from collections import Counter
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from pydantic import TypeAdapter

from services.allocation import translate
from services.allocation.domain import model as d
from services.allocation.domain.decide import decide
from services.allocation.domain.errors import ReasonCode
from shared.contracts import commands as c
from shared.contracts import events as e
from shared.contracts import upstream as u
from shared.contracts.codec import MAX_EVENT_BYTES, decode, encode
from tests.unit.allocation.test_stateful import AllocationMachine

EVENTS: TypeAdapter[e.InventoryEvent] = TypeAdapter(e.InventoryEvent)
DAY = "2024-03-01"


def faithful(event: d.Event, command: Any, n: int = 0) -> e.Event:
    """`to_wire(event)`, checked against the validating build of the same event."""
    fast = translate.to_wire(event, f"{event.command_id}#{n}", command)
    reference = type(fast).model_validate(fast.model_dump())
    data = encode(fast)
    assert data == encode(reference)
    assert fast == reference
    assert fast.occurred_at.tzinfo is not None
    for own in (True, False):
        decoded = decode(EVENTS, data, own=own, max_bytes=MAX_EVENT_BYTES)
        assert decoded == reference
        assert encode(decoded) == data
    _agrees(event, command, fast)
    return fast


def _agrees(event: d.Event, command: Any, wire: e.Event) -> None:
    """Each wire field says what the domain event (or, for `vendor`, `bin` and `command_type`,
    the wire command) said: "" becomes None, free text is normalized."""
    assert wire.type == type(event).__name__
    assert (wire.lic, wire.command_id) == (event.lic, event.command_id)
    for name in wire.model_fields.keys() - {"type", "message_id", "occurred_at"}:
        value = getattr(wire, name)
        if name in ("vendor", "bin"):
            assert value == getattr(command, name, None), name
        elif name == "command_type":
            assert value == getattr(command, "type", getattr(event, name)), name
        elif name in ("reason", "offending") and isinstance(wire, e.CommandRejected):
            assert (value or "") in unicodedata.normalize("NFC", getattr(event, name)), name
        elif name == "warnings":
            assert [tuple(w.model_dump().values()) for w in value] == [
                (w.code, w.message, w.serial, w.mfr_lot, w.expires_on, w.lot_id, w.office)
                for w in getattr(event, name)
            ]
        elif name == "movements":
            moves = [
                (m.lot_id, m.mfr_lot, m.expires_on, m.serial, m.quantity, m.unit_cost)
                for m in getattr(event, name)
            ]
            assert [tuple(m.model_dump().values()) for m in value] == moves
        else:
            expected = getattr(event, name)
            expected = list(expected) if isinstance(expected, tuple) else expected
            assert value == expected or (value is None and not expected), name


class _Run:
    """Wire commands through `to_domain`, `decide` and `to_wire`, as the service runs them."""

    def __init__(self, lic: str) -> None:
        self.state = d.LicState.empty(lic)
        self.n = 0
        self.seen: Counter[str] = Counter()
        self.codes: set[str] = set()

    def __call__(self, model: type[Any], **fields: Any) -> list[e.Event]:
        self.n += 1
        command = model.model_validate(
            {"message_id": f"m-{self.n}", "lic": self.state.lic, **fields}
        )
        decision = decide(self.state, translate.to_domain(command))
        self.state = decision.state
        # A held line's kept event goes out later as built now; settling it publishes nothing.
        kept = [ev.decided for ev in decision.events if isinstance(ev, d.LineHeld)]
        events = [ev for ev in decision.events if not isinstance(ev, d.HeldSettled | d.LineWaiting)]
        wires = [faithful(event, command, i) for i, event in enumerate([*events, *kept])]
        for wire in wires:
            self.seen[wire.type] += 1
            if isinstance(wire, e.CommandRejected):
                self.codes.add(wire.reason_code.value)
        return wires


def test_every_event_type_encodes_as_the_validated_event() -> None:
    """One history per kind of item, through the wire commands (so `gtin`, `vendor` and the
    command `type` come from them), yields every event type and many refusals."""
    plain, lots, serials = _Run("PLAIN"), _Run("LOT"), _Run("SER")
    plain(u.UpsertItem, description="  plain  item ", est_unit_cost="2.50", gtin="09506000134352")
    plain(
        c.ReceiveStock,
        shipment_id="PO-1",
        line_no=1,
        lot_id="PO-1/1",
        office="AI",
        received_on=DAY,
        quantity="10.5",
        unit_cost="3.125",
        vendor="Acme",
        reference="PO-1",
    )
    plain(
        c.AllocateLine,
        shipment_id="S-1",
        line_no=1,
        office="AI",
        ship_on=DAY,
        quantity="4",
        counterparty="Beta",
    )
    plain(c.AllocateLine, shipment_id="S-1", line_no=1, office="AI", ship_on=DAY, quantity="5")
    plain(c.ShipLine, shipment_id="S-1", line_no=1)
    plain(c.AllocateLine, shipment_id="S-2", line_no=3, office="AI", ship_on=DAY, quantity="1")
    plain(c.ReleaseLine, shipment_id="S-2", line_no=3)
    plain(c.ReturnStock, shipment_id="RMA-1", line_no=1, office="AI", received_on=DAY, quantity="2")
    plain(
        c.AdjustStock,
        adjustment_id="A-1",
        office="AI",
        kind="loss",
        quantity="-1.25",
        adjusted_on=DAY,
        reason="  broken\tin transit ",
    )
    plain(
        c.AdjustStock,
        adjustment_id="A-2",
        office="AI",
        kind="count",
        quantity="40",
        unit_cost="2.50",
        adjusted_on=DAY,
    )  # R12: beyond every lot's usage
    plain(
        c.AdjustStock,
        adjustment_id="A-3",
        office="EE",
        kind="beginning_balance",
        quantity="7",
        unit_cost="1",
        adjusted_on=DAY,
    )
    plain(
        c.AllocateLine, shipment_id="S-3", line_no=1, office="AI", ship_on=DAY, quantity="999999"
    )  # INSUFFICIENT_STOCK
    plain(c.ShipLine, shipment_id="S-9", line_no=9)  # UNKNOWN_SHIPMENT
    plain(u.UpsertItem, track_mfr_lot=True)  # TRACKING_LOCKED
    plain(
        c.ReceiveStock,
        shipment_id="PO-1",
        line_no=1,
        lot_id="PO-1/1",
        office="AI",
        received_on=DAY,
        quantity="1",
    )  # the same line again

    lots(u.UpsertItem, track_mfr_lot=True, est_unit_cost="1")
    lots(
        c.ReceiveStock,
        shipment_id="PO-2",
        line_no=1,
        lot_id="PO-2/1",
        office="AI",
        received_on=DAY,
        quantity="6",
        lots=[
            {"mfr_lot": "M-A", "quantity": "4", "expires_on": "2024-06-01"},
            {"mfr_lot": "M-B", "quantity": "2", "expires_on": "2024-04-01"},
        ],
    )
    lots(c.AllocateLine, shipment_id="S-4", line_no=1, office="AI", ship_on=DAY, quantity="3")
    lots(c.ShipLine, shipment_id="S-4", line_no=1)
    lots(
        c.AllocateLine,
        shipment_id="S-5",
        line_no=1,
        office="AI",
        ship_on=DAY,
        quantity="1",
        lots=[{"mfr_lot": "M-A", "quantity": "1"}],
        kind="vendor_return",
        counterparty="Acme",
    )
    lots(
        c.ReturnStock,
        shipment_id="RMA-2",
        line_no=2,
        office="AI",
        received_on=DAY,
        quantity="1",
        lots=[{"mfr_lot": "M-B", "quantity": "1"}],
    )
    lots(
        c.AdjustStock,
        adjustment_id="A-4",
        office="AI",
        kind="count",
        quantity="1",
        adjusted_on=DAY,
        lots=[{"mfr_lot": "M-B", "quantity": "1"}],
    )  # LOT_QTY_EXCEEDS_USED
    lots(
        c.ReceiveStock,
        shipment_id="PO-3",
        line_no=1,
        lot_id="PO-3/1",
        office="AI",
        received_on=DAY,
        quantity="1",
    )  # LOT_REQUIRED
    lots(
        c.AllocateLine,
        shipment_id="S-6",
        line_no=1,
        office="AI",
        ship_on="2025-01-01",
        quantity="1",
        lots=[{"mfr_lot": "M-A", "quantity": "1"}],
    )  # LOT_EXPIRED

    serials(u.UpsertItem, serialized=True, next_serial="SN-0098", est_unit_cost="300")
    serials(
        c.ReceiveStock,
        shipment_id="PO-4",
        line_no=1,
        lot_id="PO-4/1",
        office="AI",
        received_on=DAY,
        quantity="3",
        generate_serials=True,
    )
    serials(
        c.ReceiveStock,
        shipment_id="PO-4",
        line_no=2,
        lot_id="PO-4/2",
        office="AI",
        received_on=DAY,
        quantity="2",
        serials=["X1", "X2"],
        kind="production",
    )
    serials(
        c.AllocateLine,
        shipment_id="S-7",
        line_no=1,
        office="AI",
        ship_on=DAY,
        quantity="2",
        serials=["SN-0099", "X2"],
        counterparty="Beta",
    )
    serials(c.ShipLine, shipment_id="S-7", line_no=1)
    serials(
        c.ReturnStock,
        shipment_id="RMA-3",
        line_no=1,
        office="AI",
        received_on=DAY,
        quantity="1",
        serials=["X2"],
        customer="Beta",
    )
    serials(
        c.AdjustStock,
        adjustment_id="A-5",
        office="AI",
        kind="loss",
        quantity="-1",
        adjusted_on=DAY,
        serials=["SN-0098"],
    )
    serials(
        c.AdjustStock,
        adjustment_id="A-6",
        office="AI",
        kind="count",
        quantity="1",
        adjusted_on=DAY,
        serials=["SN-0098"],
    )
    serials(
        c.ReceiveStock,
        shipment_id="PO-5",
        line_no=1,
        lot_id="PO-5/1",
        office="AI",
        received_on=DAY,
        quantity="2",
        serials=["X1", "X9"],
    )  # DUPLICATE_SERIAL
    serials(
        c.ReturnStock,
        shipment_id="RMA-4",
        line_no=1,
        office="AI",
        received_on=DAY,
        quantity="1",
        serials=["NOPE"],
    )  # SERIAL_NOT_SHIPPED
    serials(
        c.AllocateLine,
        shipment_id="S-8",
        line_no=1,
        office="AI",
        ship_on=DAY,
        quantity="2",
        serials=["X1"],
    )  # SERIAL_COUNT_MISMATCH
    (held,) = serials(
        c.ReceiveStock,
        shipment_id="PO-7",
        line_no=2,
        lot_id="PO-7/2",
        office="AI",
        received_on=DAY,
        quantity="1",
        serials=["H1"],
        hold=True,
    )[:1]
    assert serials(c.ConfirmHeld, command_id=held.command_id) == []

    seen = plain.seen + lots.seen + serials.seen
    assert set(seen) == {
        "ItemUpserted", "StockReceived", "LineAllocated", "LineReleased", "LineShipped",
        "InventoryAdjusted", "StockReturned", "LineHeld", "CommandRejected",
    }  # fmt: skip
    assert len(plain.codes | lots.codes | serials.codes) >= 8


@pytest.mark.parametrize(
    ("reason", "offending"),
    [
        ("x" * 1899 + " and more", "y" * 1899 + " z"),  # the cut leaves a trailing space
        ("  padded reason\n", "  padded  "),
        ("lot e\u0301 is not NFC once composed", "e\u0301"),
        ("line breaks\r\nand\ttabs stay", ""),
    ],
)
def test_refusal_text_is_normalized_as_the_contract_does(reason: str, offending: str) -> None:
    """The core composes a refusal's reason and offending value (and cuts them to length);
    they come out exactly as the contract's `Text` would have them."""
    event = d.CommandRejected(
        command_id="m-1",
        lic="L",
        command_type="AllocateLine",
        reason_code=ReasonCode.INSUFFICIENT_STOCK,
        reason=reason,
        offending=offending,
        shipment_id="S-1",
        line_no=2,
    )
    wire = faithful(event, None)
    assert isinstance(wire, e.CommandRejected)
    assert wire.command_type == "AllocateLine"
    assert wire.offending is None if not offending else wire.offending == wire.offending.strip()


def test_a_partial_item_upsert_crosses_the_intake_and_answers_the_items_full_values() -> None:
    """An `UpsertItem` naming only what changed stays partial across the intake's hop on
    `inventory.commands` (a field left out is null there, not a default), and `ItemUpserted`
    carries the item's resulting values, not the message's."""
    run = _Run("L")
    run(
        u.UpsertItem,
        uom="Box",
        track_mfr_lot=True,
        est_unit_cost="4.25",
        next_serial="SN-1",
        gtin="09506000134352",
    )
    partial = u.UpsertItem(message_id="item:m-9", lic="L", description="renamed")
    hopped = decode(TypeAdapter(c.Command), encode(partial), own=True)
    assert isinstance(hopped, u.UpsertItem)
    assert (hopped.track_mfr_lot, hopped.serialized, hopped.est_unit_cost, hopped.uom) == (
        (None,) * 4
    )
    (wire,) = run(u.UpsertItem, description="renamed")
    assert isinstance(wire, e.ItemUpserted)
    assert (wire.description, wire.uom, wire.est_unit_cost, wire.next_serial) == (
        "renamed",
        "Box",
        Decimal("4.25"),
        "SN-1",
    )
    assert (wire.track_mfr_lot, wire.serialized, wire.perishable) == (True, False, True)
    assert wire.gtin == "09506000134352"


@pytest.mark.parametrize(
    ("next_serial", "quantity", "offending"),
    [("9" * 64, 2, "1" + "0" * 64), ("9" * 128, 1, "9" * 128)],
)
def test_a_next_serial_run_past_the_serial_length_is_refused_not_raised(
    next_serial: str, quantity: int, offending: str
) -> None:
    """R6: a run whose serials typed entry would refuse (one grown past 64 characters, or a Next
    Serial stored before the contract checked it) is refused INVALID_SERIAL_SPAN naming the
    serial, and the refusal goes out on the wire; before, building the event raised and the
    receipt was dead-lettered with no answer."""
    state = decide(
        d.LicState.empty("L"),
        d.UpsertItem(
            message_id="m-1",
            lic="L",
            serialized=True,
            est_unit_cost=Decimal(1),
            next_serial=next_serial,
        ),
    ).state
    command = d.ReceiveStock(
        message_id="m-2",
        lic="L",
        lot_id="PO-1/1",
        office="AI",
        kind="purchase",
        received_on=date(2024, 1, 1),
        quantity=Decimal(quantity),
        shipment_id="PO-1",
        line_no=1,
        generate_serials=True,
    )
    (rejected,) = decide(state, command).events
    assert isinstance(rejected, d.CommandRejected)
    assert rejected.reason_code is ReasonCode.INVALID_SERIAL_SPAN
    assert rejected.offending == offending and "64 characters" in rejected.reason
    wire = faithful(rejected, None)
    assert isinstance(wire, e.CommandRejected) and wire.offending == offending


class WireMachine(AllocationMachine):
    """The stateful allocation test's random histories, every event checked on the wire."""

    def run(self, command: d.Command) -> d.Decision:
        decision = super().run(command)
        for n, event in enumerate(decision.events):
            if isinstance(event, d.HeldSettled | d.LineWaiting):
                continue  # not published: a held line's kept event was checked when held
            # A waiting line decided now came in an earlier batch: the service has no command.
            faithful(event, command if event.command_id == command.message_id else None, n)
            if isinstance(event, d.LineHeld):
                faithful(event.decided, command, n)
        return decision


WireMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestWireMachine = WireMachine.TestCase
