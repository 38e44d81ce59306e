"""Shipping's pure core: the shipment lifecycle, R8 (complete before shipped), R14 (vendor
returns name what goes back), R5 (picks typed or scanned)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date
from decimal import Decimal
from itertools import count

import pytest

from services.shipping import domain, translate
from services.shipping.model import (
    Allocate,
    Allocated,
    AllocatedStatus,
    AllocationFailedStatus,
    Answer,
    Cancel,
    CancelledStatus,
    Command,
    Decision,
    Entry,
    Item,
    Kind,
    LotPick,
    Moved,
    Picks,
    PicksUpdate,
    Rejected,
    Release,
    Released,
    Request,
    RequestLine,
    Ship,
    Shipment,
    Shipped,
    ShippedStatus,
    ShipRefusedStatus,
    ShipRequest,
    Status,
    Upstream,
)
from shared.contracts import codec
from shared.contracts import commands as c
from shared.ids import derived_id, namespaced
from shared.reasons import ReasonCode

DAY = date(2026, 11, 2)
ONE = Decimal(1)
GTIN = "09506000134352"
ITEMS: Mapping[str, Item] = {
    i.lic: i
    for i in (
        Item(lic="PLAIN"),
        Item(lic="MILK", track_mfr_lot=True, perishable=True),
        Item(lic="CAM", serialized=True, gtin=GTIN),
    )
}
_ids = count(1)


def entry(
    lots: Iterable[tuple[str, int]] = (),
    serials: str | tuple[str, ...] | None = None,
    scans: Iterable[str] = (),
) -> Entry:
    return Entry(
        lots=tuple(LotPick(mfr_lot=name, quantity=Decimal(q)) for name, q in lots),
        serials=serials,
        scans=tuple(scans),
    )


def line(lic: str, quantity: int, no: int = 1, picks: Entry | None = None) -> RequestLine:
    return RequestLine(line_no=no, lic=lic, quantity=Decimal(quantity), entry=picks or Entry())


def request(*lines: RequestLine, kind: Kind = "sale", sid: str = "S-1") -> Request:
    return Request(
        message_id=f"m-{next(_ids)}",
        shipment_id=sid,
        office="AI",
        kind=kind,
        ship_on=DAY,
        lines=lines,
        counterparty="Montboro",
    )


def update(line_no: int, picks: Entry, sid: str = "S-1") -> PicksUpdate:
    return PicksUpdate(message_id=f"m-{next(_ids)}", shipment_id=sid, line_no=line_no, entry=picks)


def ship_request(sid: str = "S-1") -> ShipRequest:
    return ShipRequest(message_id=f"m-{next(_ids)}", shipment_id=sid)


def cancel(sid: str = "S-1") -> Cancel:
    return Cancel(message_id=f"m-{next(_ids)}", shipment_id=sid)


def lot_moves(*lots: tuple[str | None, int]) -> tuple[Moved, ...]:
    return tuple(
        Moved(lot_id="PO-1/1", mfr_lot=name, quantity=Decimal(q), unit_cost=Decimal("2"))
        for name, q in lots
    )


def serial_moves(*serials: str) -> tuple[Moved, ...]:
    return tuple(
        Moved(lot_id="PO-2/1", serial=s, quantity=Decimal(1), unit_cost=Decimal("300"))
        for s in serials
    )


class Desk:
    """One shipment folded through the core, with allocation's answers played by the test."""

    def __init__(self, items: Mapping[str, Item] = ITEMS) -> None:
        self.items = items
        self.shipment: Shipment | None = None

    def send(self, message: Request | PicksUpdate | ShipRequest | Cancel) -> Decision:
        decision = domain.handle(self.shipment, message, self.items)
        if decision.changed:
            self.shipment = decision.shipment
        return decision

    def reply(self, answer: Answer) -> Decision:
        assert self.shipment is not None
        decision = domain.answer(self.shipment, answer, items=self.items)
        self.shipment = decision.shipment
        return decision

    @property
    def phase(self) -> str:
        assert self.shipment is not None
        return self.shipment.phase

    def allocated(self, command: object, movements: tuple[Moved, ...] = ()) -> Decision:
        assert isinstance(command, Allocate)
        moves = movements or lot_moves((None, int(command.quantity)))
        return self.reply(
            Allocated(
                command_id=command.command_id, lic=command.lic, complete=True, movements=moves
            )
        )

    def refused(self, command: object, code: ReasonCode, offending: str) -> Decision:
        assert isinstance(command, Allocate | Release | Ship)
        return self.reply(
            Rejected(
                command_id=command.command_id,
                lic=command.lic,
                reason_code=code,
                reason=f"refused: {offending}",
                offending=offending,
            )
        )

    def echoed(self, command: object) -> Decision:
        """Allocation's answer to a line shipping refused itself: exactly that problem."""
        assert isinstance(command, Allocate) and command.refusal is not None
        problem = command.refusal
        return self.reply(
            Rejected(
                command_id=command.command_id,
                lic=command.lic,
                reason_code=problem.reason_code,
                reason=problem.reason,
                offending=problem.offending,
            )
        )

    def shipped(self, command: object) -> Decision:
        assert isinstance(command, Ship)
        line = self.shipment.line(command.line_no) if self.shipment else None
        assert line is not None
        return self.reply(
            Shipped(command_id=command.command_id, lic=command.lic, movements=line.movements)
        )

    def released(self, command: object) -> Decision:
        assert isinstance(command, Release)
        return self.reply(
            Released(command_id=command.command_id, lic=command.lic, movements=lot_moves((None, 1)))
        )


def allocated_desk(*lines: RequestLine) -> tuple[Desk, tuple[Allocate, ...]]:
    desk = Desk()
    commands = desk.send(request(*lines)).commands
    for command in commands:
        assert isinstance(command, Allocate)
        desk.allocated(command)
    assert desk.phase == "allocated"
    return desk, tuple(c for c in commands if isinstance(c, Allocate))


# --- allocation -------------------------------------------------------------------------------


def test_lines_without_picks_are_allocated_automatically_one_command_each() -> None:
    """R9: no picks means automatic allocation; one AllocateLine per line, keyed by LIC."""
    decision = Desk().send(request(line("PLAIN", 2), line("MILK", 3, no=2)))
    commands = [c for c in decision.commands if isinstance(c, Allocate)]
    assert [(c.line_no, c.lic, int(c.quantity)) for c in commands] == [
        (1, "PLAIN", 2),
        (2, "MILK", 3),
    ]
    assert len(commands) == len(decision.commands)
    assert all(not c.picks.lots and not c.picks.serials for c in commands)
    assert decision.statuses == ()
    assert decision.shipment is not None and decision.shipment.phase == "allocating"


def test_shipment_allocated_when_every_line_is_answered() -> None:
    desk = Desk()
    first, second = desk.send(request(line("PLAIN", 2), line("MILK", 3, no=2))).commands
    assert desk.allocated(first).statuses == ()
    (status,) = desk.allocated(second, lot_moves(("A1", 3))).statuses
    assert isinstance(status, AllocatedStatus)
    assert [v.movements[0].mfr_lot for v in status.lines] == [None, "A1"]
    assert desk.phase == "allocated"


def test_allocation_failure_is_reported_per_line_with_allocations_reason() -> None:
    desk = Desk()
    first, second = desk.send(request(line("PLAIN", 2), line("MILK", 3, no=2))).commands
    desk.allocated(first)
    (status,) = desk.refused(second, ReasonCode.INSUFFICIENT_STOCK, "3 > 1").statuses
    assert isinstance(status, AllocationFailedStatus)
    (problem,) = status.problems
    assert (problem.line_no, problem.reason_code, problem.offending) == (
        2,
        ReasonCode.INSUFFICIENT_STOCK,
        "3 > 1",
    )
    assert [v.line_no for v in status.allocated_lines] == [1]
    assert desk.phase == "allocation_failed"


def test_picks_typed_as_a_span_become_serials() -> None:
    """R5: the same parser as receipts."""
    (command,) = Desk().send(request(line("CAM", 3, picks=entry(serials="SN-08...SN-10")))).commands
    assert isinstance(command, Allocate)
    assert command.picks.serials == ("SN-08", "SN-09", "SN-10")


def test_picks_scanned_become_serials() -> None:
    """R5: GS1 AI 21 names the unit."""
    scans = [f"(01){GTIN}(21)X1", f"01{GTIN}21X2"]
    (command,) = Desk().send(request(line("CAM", 2, picks=entry(scans=scans)))).commands
    assert isinstance(command, Allocate)
    assert command.picks.serials == ("X1", "X2")


def test_scanned_lots_count_one_unit_per_scan() -> None:
    scans = ["(10)A1", "(10)A1", "(10)B2"]
    (command,) = Desk().send(request(line("MILK", 3, picks=entry(scans=scans)))).commands
    assert isinstance(command, Allocate)
    assert command.picks.lots == (
        LotPick(mfr_lot="A1", quantity=Decimal(2)),
        LotPick(mfr_lot="B2", quantity=Decimal(1)),
    )


def test_bad_span_fails_its_line_with_its_text() -> None:
    """R5: INVALID_SERIAL_SPAN with the text; the other lines are still allocated."""
    desk = Desk()
    bad = line("CAM", 3, no=2, picks=entry(serials="10...8"))
    command, refused = desk.send(request(line("PLAIN", 1), bad)).commands
    assert desk.allocated(command).statuses == ()
    (status,) = desk.echoed(refused).statuses
    assert isinstance(status, AllocationFailedStatus)
    (problem,) = status.problems
    assert (problem.line_no, problem.reason_code, problem.offending) == (
        2,
        ReasonCode.INVALID_SERIAL_SPAN,
        "10...8",
    )


def test_unreadable_scan_fails_its_line() -> None:
    """R5: INVALID_BARCODE with the raw scan."""
    desk = Desk()
    (command,) = desk.send(request(line("CAM", 1, picks=entry(scans=["garbage"])))).commands
    (status,) = desk.echoed(command).statuses
    assert isinstance(status, AllocationFailedStatus)
    assert (status.problems[0].reason_code, status.problems[0].offending) == (
        ReasonCode.INVALID_BARCODE,
        "garbage",
    )


def test_scan_of_another_product_fails_its_line() -> None:
    """R5: the GTIN must be the item's."""
    desk = Desk()
    scans = ["010401234500000921A1"]
    (command,) = desk.send(request(line("CAM", 1, picks=entry(scans=scans)))).commands
    (status,) = desk.echoed(command).statuses
    assert isinstance(status, AllocationFailedStatus)
    assert status.problems[0].reason_code == ReasonCode.INVALID_BARCODE


VAX = {"VAX": Item(lic="VAX", track_mfr_lot=True, serialized=True, perishable=True)}


def test_a_scanned_lot_the_line_does_not_type_fails_its_line() -> None:
    """R5, R15: a scan's lot is read off the unit; typed lots A, it scans lot B: the picker
    has units of B in hand, which cannot ship as A. INVALID_BARCODE, the scan offending."""
    picks = entry(lots=[("A", 2)], scans=["(10)B", "(10)B"])
    (command,) = Desk().send(request(line("MILK", 2, picks=picks))).commands
    assert isinstance(command, Allocate) and command.refusal is not None
    assert (command.refusal.reason_code, command.refusal.offending) == (
        ReasonCode.INVALID_BARCODE,
        "(10)B",
    )
    assert "lot B" in command.refusal.reason and "lists A" in command.refusal.reason


def test_scans_of_typed_lots_send_the_typed_lots() -> None:
    picks = entry(lots=[("A", 1), ("B", 1)], scans=["(10)A", "(10)B"])
    (command,) = Desk().send(request(line("MILK", 2, picks=picks))).commands
    assert isinstance(command, Allocate) and command.refusal is None
    assert command.picks.lots == (
        LotPick(mfr_lot="A", quantity=ONE),
        LotPick(mfr_lot="B", quantity=ONE),
    )


def test_serials_scanned_with_their_lots_send_the_lots_beside_the_serials() -> None:
    """R9, R15: allocation checks the serials are in the lots scanned with them (and refuses
    V1 scanned as lot B when V1 is in lot A); one unit per scan, merged per lot, and each
    serial paired with the lot it was scanned with, for allocation to check unit by unit."""
    scans = ["(10)B(21)V1", "(10)A(21)V2", "(10)B(21)V3"]
    desk = Desk(VAX)
    (command,) = desk.send(request(line("VAX", 3, picks=entry(scans=scans)))).commands
    assert isinstance(command, Allocate) and command.refusal is None
    assert command.picks == Picks(
        lots=(LotPick(mfr_lot="B", quantity=Decimal(2)), LotPick(mfr_lot="A", quantity=ONE)),
        serials=("V1", "V2", "V3"),
        serial_lots=(("V1", "B"), ("V2", "A"), ("V3", "B")),
    )
    typed = entry(lots=[("A", 1)], scans=["(10)A(21)V1"])
    (command,) = Desk(VAX).send(request(line("VAX", 1, picks=typed))).commands
    assert isinstance(command, Allocate)
    assert command.picks == Picks(
        lots=(LotPick(mfr_lot="A", quantity=ONE),), serials=("V1",), serial_lots=(("V1", "A"),)
    )


def test_serials_scanned_with_each_others_typed_lots_go_paired_with_the_scanned_lots() -> None:
    """R5, R9, R15, unit by unit: lots A and B typed for one unit each, V1 scanned as B and
    V2 as A. The counts fit, so shipping cannot tell (only allocation knows which lot holds
    a serial): the AllocateLine carries each serial with the lot it was scanned with, which
    allocation checks against the lot the unit is in. Typed serials and scans without a lot
    pair with nothing; an item that tracks no lots sends no pairs."""
    picks = entry(lots=[("A", 1), ("B", 2)], serials="V3", scans=["(10)B(21)V1", "(10)A(21)V2"])
    (command,) = Desk(VAX).send(request(line("VAX", 3, picks=picks))).commands
    assert isinstance(command, Allocate) and command.refusal is None
    assert command.picks.serials == ("V3", "V1", "V2")
    assert command.picks.serial_lots == (("V1", "B"), ("V2", "A"))
    wire = translate.command(command)
    assert isinstance(wire, c.AllocateLine)
    assert wire.serial_lots == {"V1": "B", "V2": "A"}
    assert c.AllocateLine.model_validate_json(codec.encode(wire)) == wire
    plain = entry(scans=[f"(01){GTIN}(10)A(21)C1", f"(01){GTIN}(21)C2"])
    (command,) = Desk().send(request(line("CAM", 2, picks=plain))).commands
    assert isinstance(command, Allocate) and command.refusal is None
    assert command.picks == Picks(serials=("C1", "C2"))


def test_each_scanned_serial_needs_a_unit_of_its_lot_among_the_typed_lots() -> None:
    """R5, R15, unit by unit: a scan binds its serial to its lot. Lots A and B typed for one
    unit each, but both serials scanned as lot A: V2's label says A, and the line has no unit
    of A left for it, so V2 would ship recorded under B. INVALID_BARCODE, the scan offending."""
    picks = entry(lots=[("A", 1), ("B", 1)], scans=["(10)A(21)V1", "(10)A(21)V2"])
    (command,) = Desk(VAX).send(request(line("VAX", 2, picks=picks))).commands
    assert isinstance(command, Allocate) and command.refusal is not None
    assert (command.refusal.reason_code, command.refusal.offending) == (
        ReasonCode.INVALID_BARCODE,
        "(10)A(21)V2",
    )
    assert "lot A" in command.refusal.reason
    fits = entry(lots=[("A", 1), ("B", 1)], scans=["(10)B(21)V1", "(10)A(21)V2"])
    (command,) = Desk(VAX).send(request(line("VAX", 2, picks=fits))).commands
    assert isinstance(command, Allocate) and command.refusal is None
    assert command.picks.serials == ("V1", "V2")


def test_scanned_lots_naming_fewer_units_than_the_serials_are_not_sent() -> None:
    """Allocation checks named lots exactly: a lot for one of two serials cannot be checked
    that way; the serial scanned with it still goes paired with it, checked unit by unit."""
    picks = entry(serials="V2", scans=["(10)A(21)V1"])
    (command,) = Desk(VAX).send(request(line("VAX", 2, picks=picks))).commands
    assert isinstance(command, Allocate) and command.refusal is None
    assert command.picks == Picks(serials=("V2", "V1"), serial_lots=(("V1", "A"),))


def test_a_line_shipping_refuses_still_goes_to_allocation_carrying_its_problem() -> None:
    """R2 (R5): a line whose picks shipping refuses is kept as a sales order that can be picked
    again, so it must lock its item's tracking flags as a line allocation refuses does. Item
    state is allocation's: the line's AllocateLine still goes there, with no picks and the
    problem, and the status waits for the answer (that very problem), like any line's."""
    desk = Desk()
    (command,) = desk.send(request(line("CAM", 3, picks=entry(serials="10...8")))).commands
    assert isinstance(command, Allocate) and command.picks == Picks()
    refusal = command.refusal
    assert refusal is not None
    assert (refusal.line_no, refusal.lic, refusal.reason_code, refusal.offending) == (
        1,
        "CAM",
        ReasonCode.INVALID_SERIAL_SPAN,
        "10...8",
    )
    assert desk.shipment is not None and desk.shipment.lines[0].status == "pending"
    assert desk.phase == "allocating"
    (status,) = desk.echoed(command).statuses
    assert isinstance(status, AllocationFailedStatus)
    assert (status.problems, status.allocated_lines) == ((refusal,), ())
    assert desk.shipment.lines[0].status == "failed"
    (again,) = desk.send(update(1, entry(serials="SN-08...SN-10"))).commands
    (status,) = desk.allocated(again, serial_moves("SN-08", "SN-09", "SN-10")).statuses
    assert isinstance(status, AllocatedStatus)


def test_a_vendor_return_naming_nothing_still_goes_to_allocation_carrying_its_problem() -> None:
    """R2 (R14): the line shipping refuses for naming no lots is sent too, as a vendor return
    with no picks and LOT_REQUIRED."""
    (command,) = Desk().send(request(line("MILK", 2), kind="vendor_return")).commands
    assert isinstance(command, Allocate) and command.kind == "vendor_return"
    assert command.picks == Picks() and command.refusal is not None
    assert command.refusal.reason_code == ReasonCode.LOT_REQUIRED


def test_the_answer_to_a_line_shipping_refused_read_again_changes_nothing() -> None:
    desk = Desk()
    (command,) = desk.send(request(line("CAM", 1, picks=entry(scans=["garbage"])))).commands
    (status,) = desk.echoed(command).statuses
    before = desk.shipment
    again = desk.echoed(command)
    assert (again.changed, again.commands, again.statuses, again.shipment) == (
        False,
        (),
        (),
        before,
    )
    assert isinstance(status, AllocationFailedStatus)


def test_picks_update_reallocates_that_line_only_with_a_new_command_id() -> None:
    desk, (first, second) = allocated_desk(line("PLAIN", 1), line("MILK", 2, no=2))
    decision = desk.send(update(2, entry(lots=[("A1", 2)])))
    (command,) = decision.commands
    assert isinstance(command, Allocate)
    assert (command.line_no, command.picks.lots) == (
        2,
        (LotPick(mfr_lot="A1", quantity=Decimal(2)),),
    )
    assert command.command_id not in (first.command_id, second.command_id)
    assert desk.phase == "allocating"
    # Allocation re-allocates: the old picks are released first, then the new allocation.
    desk.reply(Released(command_id=command.command_id, lic="MILK", reallocated=True))
    assert desk.phase == "allocating"
    (status,) = desk.allocated(command, lot_moves(("A1", 2))).statuses
    assert isinstance(status, AllocatedStatus)


def test_an_answer_to_a_superseded_allocation_does_not_settle_the_line() -> None:
    desk = Desk()
    (first,) = desk.send(request(line("MILK", 2))).commands
    (second,) = desk.send(update(1, entry(lots=[("B2", 2)]))).commands
    assert desk.allocated(first, lot_moves(("A1", 2))).statuses == ()
    (status,) = desk.allocated(second, lot_moves(("B2", 2))).statuses
    assert isinstance(status, AllocatedStatus)
    assert status.lines[0].movements[0].mfr_lot == "B2"


def test_picks_update_for_a_line_that_does_not_exist_is_refused() -> None:
    desk, _ = allocated_desk(line("PLAIN", 1))
    decision = desk.send(update(9, entry(lots=[("A1", 1)])))
    (status,) = decision.statuses
    assert isinstance(status, AllocationFailedStatus)
    assert (status.problems[0].reason_code, status.problems[0].offending) == (
        ReasonCode.UNKNOWN_SHIPMENT,
        "S-1/9",
    )
    assert decision.commands == ()
    assert desk.phase == "allocated"


# --- a refused re-allocation: the old allocation stands, in allocation and here ---------------


def test_new_picks_allocation_refuses_leave_the_line_allocated_with_its_old_picks() -> None:
    """Never half-apply a document: allocation refuses the new picks and keeps the old
    allocation, so the line stays allocated with it; the refusal is reported, and it ships."""
    desk = Desk()
    (first,) = desk.send(request(line("MILK", 2, picks=entry(lots=[("A1", 2)])))).commands
    desk.allocated(first, lot_moves(("A1", 2)))
    (repick,) = desk.send(update(1, entry(lots=[("ZZ", 2)]))).commands
    (status,) = desk.refused(repick, ReasonCode.LOT_NOT_FOUND, "ZZ").statuses
    assert isinstance(status, AllocationFailedStatus)
    assert [(p.line_no, p.reason_code, p.offending) for p in status.problems] == [
        (1, ReasonCode.LOT_NOT_FOUND, "ZZ")
    ]
    (view,) = status.allocated_lines
    assert (view.line_no, view.movements, view.complete) == (1, lot_moves(("A1", 2)), True)
    assert desk.shipment is not None
    (kept,) = desk.shipment.lines
    assert (kept.status, kept.picks.lots) == (
        "allocated",
        (LotPick(mfr_lot="A1", quantity=Decimal(2)),),
    )
    (ship,) = desk.send(ship_request()).commands
    assert isinstance(ship, Ship) and ship.line_no == 1


def test_new_picks_shipping_cannot_parse_leave_the_line_allocated_with_its_old_picks() -> None:
    """R5 refuses the new picks, and allocation, told so, decides nothing: it still holds the
    old ones, and so does the line."""
    desk = Desk()
    (first,) = desk.send(request(line("CAM", 1, picks=entry(serials="X1")))).commands
    desk.allocated(first, serial_moves("X1"))
    (refused,) = desk.send(update(1, entry(serials="9...1"))).commands
    (status,) = desk.echoed(refused).statuses
    assert isinstance(status, AllocationFailedStatus)
    assert [p.reason_code for p in status.problems] == [ReasonCode.INVALID_SERIAL_SPAN]
    assert [(v.line_no, v.movements) for v in status.allocated_lines] == [(1, serial_moves("X1"))]
    assert desk.shipment is not None and desk.shipment.lines[0].picks.serials == ("X1",)
    assert desk.phase == "allocation_failed"
    (ship,) = desk.send(ship_request()).commands
    assert isinstance(ship, Ship)


def test_a_resend_for_more_than_allocation_gives_keeps_the_old_allocation_incomplete() -> None:
    """R8: the line still holds 2 (allocation refused 5); it is listed as allocated, not
    complete, and the ship request is refused for the 3 missing."""
    desk, _ = allocated_desk(line("PLAIN", 2))
    (more,) = desk.send(request(line("PLAIN", 5))).commands
    (status,) = desk.refused(more, ReasonCode.INSUFFICIENT_STOCK, "5 > 2").statuses
    assert isinstance(status, AllocationFailedStatus)
    assert [p.reason_code for p in status.problems] == [ReasonCode.INSUFFICIENT_STOCK]
    (view,) = status.allocated_lines
    assert (view.quantity, view.complete) == (5, False)
    (refusal,) = desk.send(ship_request()).statuses
    assert isinstance(refusal, ShipRefusedStatus)
    assert "2 of 5" in refusal.problems[0].reason


def test_picks_refused_while_an_earlier_update_is_in_flight_keep_what_that_one_allocates() -> None:
    """Allocation still answers the earlier update: the line stands on that allocation."""
    desk = Desk()
    (first,) = desk.send(request(line("MILK", 2))).commands
    desk.allocated(first, lot_moves(("A1", 2)))
    (earlier,) = desk.send(update(1, entry(lots=[("B2", 2)]))).commands
    (refused,) = desk.send(update(1, entry(serials="9...1"))).commands
    assert desk.allocated(earlier, lot_moves(("B2", 2))).statuses == ()
    (status,) = desk.echoed(refused).statuses
    assert isinstance(status, AllocationFailedStatus)
    assert [p.reason_code for p in status.problems] == [ReasonCode.INVALID_SERIAL_SPAN]
    assert [v.movements for v in status.allocated_lines] == [lot_moves(("B2", 2))]
    assert desk.shipment is not None
    assert desk.shipment.lines[0].picks.lots == (LotPick(mfr_lot="B2", quantity=Decimal(2)),)


def test_a_resend_on_new_terms_releases_the_old_allocation_before_allocating_again() -> None:
    """R9/R14: an allocation ships on the terms it was made for (here a sale), so none may
    stand under a resend that makes the shipment a vendor return: refused, nothing stands."""
    desk, _ = allocated_desk(line("PLAIN", 1))
    release, allocate = desk.send(request(line("PLAIN", 1), kind="vendor_return")).commands
    assert isinstance(release, Release) and isinstance(allocate, Allocate)
    assert (release.lic, allocate.kind) == ("PLAIN", "vendor_return")
    desk.released(release)
    (status,) = desk.refused(allocate, ReasonCode.INSUFFICIENT_STOCK, "1 > 0").statuses
    assert isinstance(status, AllocationFailedStatus)
    assert status.allocated_lines == ()
    assert desk.shipment is not None
    assert (desk.shipment.lines[0].status, desk.shipment.lines[0].held_lics) == ("failed", ())


def test_picks_the_parse_refuses_wait_for_the_allocation_still_in_flight() -> None:
    """R8: what stands is known only once allocation has answered every command of the line's
    LIC; until then the line is still being allocated and cannot ship."""
    desk = Desk()
    (first,) = desk.send(request(line("CAM", 1))).commands
    decision = desk.send(
        request(line("CAM", 1, picks=entry(serials="9...1")), kind="vendor_return")
    )
    release, refused = decision.commands
    assert isinstance(release, Release) and release.lic == "CAM"
    assert desk.allocated(first, serial_moves("X1")).statuses == ()
    assert desk.shipment is not None and desk.shipment.lines[0].status == "pending"
    (refusal,) = desk.send(ship_request()).statuses
    assert isinstance(refusal, ShipRefusedStatus)
    assert "still being allocated" in refusal.problems[0].reason
    assert desk.released(release).statuses == ()
    (status,) = desk.echoed(refused).statuses
    assert isinstance(status, AllocationFailedStatus)
    assert [p.reason_code for p in status.problems] == [ReasonCode.INVALID_SERIAL_SPAN]
    assert status.allocated_lines == ()


def test_picks_refused_then_accepted_settle_allocated() -> None:
    desk, _ = allocated_desk(line("PLAIN", 1))
    (bad,) = desk.send(update(1, entry(lots=[("ZZ", 1)]))).commands
    desk.refused(bad, ReasonCode.LOT_NOT_FOUND, "ZZ")
    (good,) = desk.send(update(1, entry())).commands
    (status,) = desk.allocated(good).statuses
    assert isinstance(status, AllocatedStatus)
    assert desk.phase == "allocated"


def test_a_ship_refusal_is_not_reported_again_by_a_later_allocation() -> None:
    desk, _ = allocated_desk(line("PLAIN", 1), line("PLAIN", 1, no=2))
    first, second = desk.send(ship_request()).commands
    desk.refused(first, ReasonCode.UNKNOWN_SHIPMENT, "S-1/1")
    desk.refused(second, ReasonCode.UNKNOWN_SHIPMENT, "S-1/2")
    (again,) = desk.send(update(2, entry())).commands
    (status,) = desk.allocated(again).statuses
    assert isinstance(status, AllocatedStatus)


# --- a resend that changes a line's LIC: two partitions, no order between them ---------------


def own_lot(lic: str, quantity: int) -> tuple[Moved, ...]:
    mfr_lot = "A1" if ITEMS[lic].track_mfr_lot else None
    moved = Moved(lot_id=f"{lic}-1", mfr_lot=mfr_lot, quantity=Decimal(quantity), unit_cost=ONE)
    return (moved,)


def resent_with_other_lic(desk: Desk) -> tuple[Allocate, Release, Allocate]:
    """Line 1 asked for PLAIN×2, then resent as MILK×3 before allocation answered."""
    (first,) = desk.send(request(line("PLAIN", 2))).commands
    release, second = desk.send(request(line("MILK", 3))).commands
    assert isinstance(first, Allocate) and isinstance(second, Allocate)
    assert isinstance(release, Release) and release.lic == "PLAIN"
    return first, release, second


def test_old_lics_answers_read_last_leave_the_line_on_its_new_lic() -> None:
    """R9: the new LIC's answer is read before the old LIC's superseded LineAllocated and its
    LineReleased. The status names the new LIC's lots, and a cancel releases the new LIC."""
    desk = Desk()
    first, release, second = resent_with_other_lic(desk)
    assert desk.allocated(second, own_lot("MILK", 3)).statuses == ()
    assert desk.allocated(first, own_lot("PLAIN", 2)).statuses == ()
    assert desk.shipment is not None and desk.shipment.lines[0].held_lics == ("MILK", "PLAIN")
    (status,) = desk.released(release).statuses
    assert isinstance(status, AllocatedStatus)
    (view,) = status.lines
    assert (view.lic, [m.lot_id for m in view.movements]) == ("MILK", ["MILK-1"])
    assert desk.shipment.lines[0].held_lics == ("MILK",)

    (cancel_milk,) = desk.send(cancel()).commands
    assert isinstance(cancel_milk, Release) and cancel_milk.lic == "MILK"
    (cancelled,) = desk.released(cancel_milk).statuses
    assert isinstance(cancelled, CancelledStatus)
    assert desk.shipment.lines[0].held_lics == ()


def test_cancel_releases_every_lic_a_line_holds() -> None:
    """R9: read before the old LIC's release, the new LIC's allocation makes the line hold
    two LICs; a cancel then releases both, the line's own LIC first."""
    desk = Desk()
    first, release, second = resent_with_other_lic(desk)
    desk.allocated(first, own_lot("PLAIN", 2))
    desk.allocated(second, own_lot("MILK", 3))
    releases = desk.send(cancel()).commands
    assert [(type(c), c.lic) for c in releases] == [(Release, "MILK"), (Release, "PLAIN")]
    desk.released(release)  # the resend's release of PLAIN
    assert desk.released(releases[0]).statuses == ()
    (status,) = desk.refused(releases[1], ReasonCode.UNKNOWN_SHIPMENT, "S-1/1").statuses
    assert isinstance(status, CancelledStatus) and status.refused is None
    assert desk.shipment is not None and desk.shipment.lines[0].held_lics == ()


def test_old_lics_answers_outstanding_keep_the_shipment_from_shipping() -> None:
    """R8, R10: the line is allocated on its new LIC, but the resend is not answered until the
    old LIC's answers are read: nothing ships before, and ShipmentShipped then carries the lots
    the line's own LIC shipped."""
    desk = Desk()
    first, release, second = resent_with_other_lic(desk)
    desk.allocated(second, own_lot("MILK", 3))
    refused = desk.send(ship_request())
    assert refused.commands == ()
    assert [(p.line_no, p.reason) for p in refused.statuses[0].problems] == [  # type: ignore[union-attr]
        (1, "line 1 (MILK) is still being allocated")
    ]
    desk.allocated(first, own_lot("PLAIN", 2))
    (status,) = desk.released(release).statuses
    assert isinstance(status, AllocatedStatus)
    (ship,) = desk.send(ship_request()).commands
    assert isinstance(ship, Ship) and ship.lic == "MILK"
    (shipped,) = desk.shipped(ship).statuses
    assert isinstance(shipped, ShippedStatus)
    assert [m.lot_id for m in shipped.lines[0].movements] == ["MILK-1"]
    assert desk.shipment is not None and desk.shipment.lines[0].held_lics == ()


# --- R8: marking shipped ----------------------------------------------------------------------


def test_ship_request_while_allocation_is_pending_is_refused() -> None:
    """R8: SHIPMENT_INCOMPLETE naming the line still being allocated."""
    desk = Desk()
    desk.send(request(line("PLAIN", 1)))
    decision = desk.send(ship_request())
    (status,) = decision.statuses
    assert isinstance(status, ShipRefusedStatus)
    assert status.reason_code == ReasonCode.SHIPMENT_INCOMPLETE
    assert [(p.line_no, p.reason_code, p.offending) for p in status.problems] == [
        (1, ReasonCode.SHIPMENT_INCOMPLETE, "S-1/1")
    ]
    assert decision.commands == ()


@pytest.mark.parametrize("first", ["PLAIN", "MILK"])
def test_a_ship_request_while_a_resend_is_being_allocated_is_refused_in_either_order(
    first: str,
) -> None:
    """R8: a resend drops line 2 (MILK) and changes line 1 (PLAIN); its answers come from two
    partitions, read in either order. A ship request between them is refused SHIPMENT_INCOMPLETE
    whichever was read first (never shipped on a half-settled resend), and the resend is still
    answered once both are read."""
    desk, _ = allocated_desk(line("PLAIN", 2), line("MILK", 1, no=2))
    release, allocate = desk.send(request(line("PLAIN", 3))).commands
    assert isinstance(release, Release) and isinstance(allocate, Allocate)
    answers = {
        "PLAIN": lambda: desk.allocated(allocate),
        "MILK": lambda: desk.released(release),
    }
    assert answers[first]().statuses == ()
    assert desk.phase == "allocating"
    refused = desk.send(ship_request())
    assert refused.commands == ()
    (status,) = refused.statuses
    assert isinstance(status, ShipRefusedStatus)
    assert status.reason_code == ReasonCode.SHIPMENT_INCOMPLETE
    assert "still being allocated" in status.reason
    assert desk.phase == "allocating"
    (settled,) = answers["MILK" if first == "PLAIN" else "PLAIN"]().statuses
    assert isinstance(settled, AllocatedStatus)
    assert [(v.line_no, v.quantity) for v in settled.lines] == [(1, Decimal(3))]
    (ship,) = desk.send(ship_request()).commands
    assert isinstance(ship, Ship)


def test_ship_request_with_a_failed_line_is_refused_listing_its_reason() -> None:
    """R8: a line that is not allocated cannot ship."""
    desk = Desk()
    first, second = desk.send(request(line("PLAIN", 1), line("MILK", 2, no=2))).commands
    desk.allocated(first)
    desk.refused(second, ReasonCode.LOT_NOT_FOUND, "Z9")
    (status,) = desk.send(ship_request()).statuses
    assert isinstance(status, ShipRefusedStatus)
    assert status.reason_code == ReasonCode.SHIPMENT_INCOMPLETE
    assert [(p.line_no, p.reason_code, p.offending) for p in status.problems] == [
        (2, ReasonCode.LOT_NOT_FOUND, "Z9")
    ]


def test_ship_request_lists_exactly_what_each_incomplete_line_lacks() -> None:
    """R8: lot-tracked lines name lots covering the line; serialized units have serials."""
    desk = Desk()
    milk, cam = desk.send(request(line("MILK", 5), line("CAM", 2, no=2))).commands
    desk.allocated(milk, lot_moves(("A1", 3), (None, 2)))
    desk.allocated(cam, serial_moves("X1") + lot_moves((None, 1)))
    (status,) = desk.send(ship_request()).statuses
    assert isinstance(status, ShipRefusedStatus)
    assert [(p.line_no, p.reason_code) for p in status.problems] == [
        (1, ReasonCode.LOT_REQUIRED),
        (2, ReasonCode.SERIAL_REQUIRED),
    ]
    assert "3 of 5" in status.problems[0].reason
    assert "1 of 2" in status.problems[1].reason


def test_incomplete_flag_from_allocation_refuses_shipping() -> None:
    """R8: allocation's `complete` flag is honoured even for items shipping knows nothing of."""
    desk = Desk(items={})
    (command,) = desk.send(request(line("PLAIN", 1))).commands
    assert isinstance(command, Allocate)
    desk.reply(Allocated(command_id=command.command_id, lic="PLAIN", complete=False, movements=()))
    (status,) = desk.send(ship_request()).statuses
    assert isinstance(status, ShipRefusedStatus)
    assert status.problems[0].reason_code == ReasonCode.SHIPMENT_INCOMPLETE


def test_complete_shipment_ships_every_line_and_reports_lots_and_serials() -> None:
    """R8/R10: ShipLine per line; ShipmentShipped carries lots and serials per line."""
    desk = Desk()
    milk, cam = desk.send(request(line("MILK", 2), line("CAM", 2, no=2))).commands
    desk.allocated(milk, lot_moves(("A1", 2)))
    desk.allocated(cam, serial_moves("X1", "X2"))
    ships = desk.send(ship_request()).commands
    assert [type(c) for c in ships] == [Ship, Ship]
    assert desk.phase == "shipping"
    assert desk.shipped(ships[0]).statuses == ()
    (status,) = desk.shipped(ships[1]).statuses
    assert isinstance(status, ShippedStatus)
    assert [m.mfr_lot for m in status.lines[0].movements] == ["A1"]
    assert [m.serial for m in status.lines[1].movements] == ["X1", "X2"]
    assert desk.phase == "shipped"


def test_ship_refused_by_allocation_returns_to_allocated_and_ships_the_rest_later() -> None:
    desk, _ = allocated_desk(line("PLAIN", 1), line("PLAIN", 2, no=2))
    first, second = desk.send(ship_request()).commands
    desk.shipped(first)
    (status,) = desk.refused(second, ReasonCode.UNKNOWN_SHIPMENT, "S-1/2").statuses
    assert isinstance(status, ShipRefusedStatus)
    assert [p.line_no for p in status.problems] == [2]
    assert desk.phase == "allocated"
    (again,) = desk.send(ship_request()).commands
    assert again.line_no == 2


def test_ship_request_after_shipping_repeats_the_shipped_status() -> None:
    desk, _ = allocated_desk(line("PLAIN", 1))
    (ship,) = desk.send(ship_request()).commands
    desk.shipped(ship)
    decision = desk.send(ship_request())
    assert decision.commands == ()
    assert isinstance(decision.statuses[0], ShippedStatus)


def test_a_ship_request_while_shipping_is_answered_with_the_shipped_status() -> None:
    """Every document is answered: the second request gets the outcome, under its own id."""
    desk, _ = allocated_desk(line("PLAIN", 1))
    (ship,) = desk.send(ship_request()).commands
    again = ship_request()
    waiting = desk.send(again)
    assert (waiting.commands, waiting.statuses, desk.phase) == ((), (), "shipping")
    first, second = desk.shipped(ship).statuses
    assert isinstance(first, ShippedStatus) and isinstance(second, ShippedStatus)
    assert second.message_id == derived_id(again.message_id, "status") != first.message_id
    assert second.lines == first.lines
    assert desk.shipment is not None and desk.shipment.waiting == ()


def test_a_ship_request_while_shipping_is_answered_with_the_refusal_too() -> None:
    desk, _ = allocated_desk(line("PLAIN", 1), line("PLAIN", 1, no=2))
    first, second = desk.send(ship_request()).commands
    again, third = ship_request(), ship_request()
    desk.send(again)
    desk.send(third)
    desk.shipped(first)
    statuses = desk.refused(second, ReasonCode.UNKNOWN_SHIPMENT, "S-1/2").statuses
    refusals = [s for s in statuses if isinstance(s, ShipRefusedStatus)]
    assert len(refusals) == len(statuses) == 3
    assert [s.message_id for s in refusals[1:]] == [
        derived_id(again.message_id, "status"),
        derived_id(third.message_id, "status"),
    ]
    assert len({(s.reason_code, s.reason, s.problems) for s in refusals}) == 1
    assert desk.phase == "allocated"


def _shipping() -> tuple[Desk, Command, Command]:
    """Two lines allocated and a ship under way: the desk and its two ship commands."""
    desk = Desk()
    first, second = desk.send(_SHIP_FIRST).commands
    desk.allocated(first)
    desk.allocated(second)
    ship_one, ship_two = desk.send(_SHIP_REQUEST).commands
    return desk, ship_one, ship_two


def _answer_ship(desk: Desk, outcome: str, ship_one: Command, ship_two: Command) -> list[Decision]:
    """Allocation's answers to the ship: both shipped, both refused, or the first only."""
    one = (
        desk.refused(ship_one, ReasonCode.UNKNOWN_SHIPMENT, "S-1/1")
        if outcome == "refused"
        else desk.shipped(ship_one)
    )
    two = (
        desk.shipped(ship_two)
        if outcome == "shipped"
        else desk.refused(ship_two, ReasonCode.UNKNOWN_SHIPMENT, "S-1/2")
    )
    return [one, two]


def _ship_then_request(outcome: str, read: str) -> tuple[list[object], list[object], Desk]:
    """Two lines allocated, a ship under way, then a resend read before its answers (in the
    ship's batch) or after: the statuses and commands from the ship's answers on, and the desk."""
    desk, ship_one, ship_two = _shipping()
    decisions: list[Decision] = []
    if read == "before":
        waits = desk.send(_SHIP_RESEND)
        assert (waits.commands, waits.statuses, desk.phase) == ((), (), "shipping")
        assert desk.shipment is not None and desk.shipment.queued != ()
    decisions += _answer_ship(desk, outcome, ship_one, ship_two)
    if read == "after":
        decisions.append(desk.send(_SHIP_RESEND))
    statuses = [s for d in decisions for s in d.statuses]
    commands = [c for d in decisions for c in d.commands]
    assert desk.shipment is not None and desk.shipment.queued == ()
    return statuses, commands, desk


_SHIP_FIRST = request(line("PLAIN", 1), line("PLAIN", 2, no=2))
_SHIP_REQUEST = ship_request()
_SHIP_RESEND = request(line("PLAIN", 3), line("MILK", 1, no=2, picks=entry(lots=[("A", 1)])))


@pytest.mark.parametrize("outcome", ["shipped", "refused", "partly"])
def test_a_request_read_with_the_ship_is_decided_as_one_read_after_it(outcome: str) -> None:
    """Every document answered, replays decide the same way: a resend read while the shipment
    is being shipped waits for the ship, answered first; then the resend is decided exactly as
    one read after it: refused UNKNOWN_SHIPMENT once a line shipped, else applied."""
    before, sent_before, desk = _ship_then_request(outcome, "before")
    after, sent_after, other = _ship_then_request(outcome, "after")
    assert (before, sent_before) == (after, sent_after)
    assert desk.shipment == other.shipment
    ship_status, request_status = before[0], before[-1]
    if outcome == "shipped":
        assert [type(s) for s in before] == [ShippedStatus, AllocationFailedStatus]
    else:
        assert isinstance(ship_status, ShipRefusedStatus)
    if outcome == "refused":
        assert len(before) == 1  # the resend is answered by its allocation
        assert [(type(c), c.line_no, c.lic) for c in sent_before] == [
            (Release, 2, "PLAIN"),
            (Allocate, 1, "PLAIN"),
            (Allocate, 2, "MILK"),
        ]
        assert desk.phase == "allocating"
        for command in sent_before:
            if isinstance(command, Allocate):
                decision = desk.allocated(command)
            else:
                decision = desk.released(command)
        assert [type(s) for s in decision.statuses] == [AllocatedStatus]
        return
    assert isinstance(request_status, AllocationFailedStatus)
    assert request_status.message_id == derived_id(_SHIP_RESEND.message_id, "status")
    (problem,) = request_status.problems
    phase = "shipped" if outcome == "shipped" else "allocated"
    assert (problem.reason_code, problem.reason) == (
        ReasonCode.UNKNOWN_SHIPMENT,
        f"shipment S-1 is {phase}: it cannot be requested again",
    )
    assert sent_before == []
    assert desk.phase == phase


def test_documents_after_a_request_waiting_for_a_ship_wait_behind_it() -> None:
    """Once a request waits for the ship, everything read after it waits too (a ship request
    and a cancel included), and is decided after it, in the order read, as if read then. Ship
    refused: both requests are applied (the first is not dropped: its items hear of it), the
    picks re-allocate the newer request's line, picks for a line it lacks are refused, the ship
    request is refused as still being allocated, and the cancel cancels it all."""
    desk, _ = allocated_desk(line("PLAIN", 3))
    (ship,) = desk.send(ship_request()).commands
    first, resend = request(line("CAM", 1)), request(line("MILK", 2))
    no_line, again = update(2, entry()), ship_request()
    for document in (first, resend, update(1, entry(lots=[("A", 2)])), no_line, again, cancel()):
        waits = desk.send(document)
        assert (waits.commands, waits.statuses, desk.phase) == ((), (), "shipping")
    decision = desk.refused(ship, ReasonCode.UNKNOWN_SHIPMENT, "S-1/1")
    assert [(type(c), c.lic) for c in decision.commands if isinstance(c, Allocate)] == [
        (Allocate, "CAM"),
        (Allocate, "MILK"),
        (Allocate, "MILK"),
    ]
    picked = [c for c in decision.commands if isinstance(c, Allocate)][-1]
    assert isinstance(picked, Allocate)
    assert picked.picks.lots == (LotPick(mfr_lot="A", quantity=Decimal(2)),)
    refused, lacks, not_yet = decision.statuses
    assert isinstance(refused, ShipRefusedStatus)
    assert isinstance(lacks, AllocationFailedStatus)
    assert (lacks.message_id, lacks.problems[0].reason) == (
        derived_id(no_line.message_id, "status"),
        "shipment S-1 has no line 2",
    )
    assert isinstance(not_yet, ShipRefusedStatus)
    assert not_yet.message_id == derived_id(again.message_id, "status")
    assert not_yet.problems[0].reason == "line 1 (MILK) is still being allocated"
    assert desk.phase == "cancelling"
    statuses, _ = _drive(desk, decision.commands)
    assert [type(s) for s in statuses] == [CancelledStatus]
    assert desk.phase == "cancelled"
    assert desk.shipment is not None and desk.shipment.queued == ()
    assert all(line.held_lics == () for line in desk.shipment.lines)


def _drive(desk: Desk, commands: Iterable[Command]) -> tuple[list[Status], list[Command]]:
    """Allocation answers every command in the order sent (allocated, released, shipped), and
    what those answers send, until nothing is left: the statuses and commands, in order."""
    queue = list(commands)
    sent = list(queue)
    statuses: list[Status] = []
    while queue:
        command = queue.pop(0)
        if isinstance(command, Allocate):
            decision = desk.allocated(command)
        elif isinstance(command, Release):
            decision = desk.released(command)
        else:
            decision = desk.shipped(command)
        statuses.extend(decision.statuses)
        queue.extend(decision.commands)
        sent.extend(decision.commands)
    return statuses, sent


def _ship_then(outcome: str, read: str, *documents: Upstream) -> tuple[list[Status], Desk]:
    """Two lines allocated and a ship under way; `documents` read before allocation's answers to
    it (in the ship's batch) or just after them. Then allocation answers everything left. The
    statuses from the first document or answer on, in order, and the desk."""
    desk, ship_one, ship_two = _shipping()
    decisions: list[Decision] = []

    def read_documents() -> None:
        for document in documents:
            decisions.append(desk.send(document))

    if read == "before":
        read_documents()
    decisions += _answer_ship(desk, outcome, ship_one, ship_two)
    if read == "after":
        read_documents()
    statuses = [s for d in decisions for s in d.statuses]
    later, _ = _drive(desk, [c for d in decisions for c in d.commands])
    return statuses + later, desk


_SHIP_CANCEL = cancel()
_SHIP_PICKS = update(2, entry(lots=[("A", 2)]))
_SHIP_AGAIN = ship_request()


def _status_of(document: Upstream) -> str:
    return derived_id(document.message_id, "status")


@pytest.mark.parametrize("outcome", ["shipped", "refused", "partly"])
def test_a_cancel_read_with_the_ship_is_decided_as_one_read_after_it(outcome: str) -> None:
    """Replays decide the same way: a cancel read while the shipment is being shipped is not
    refused at once (the ship may yet be refused, leaving the shipment open): it waits for
    the ship, answered first, and is decided as one read just after it. Shipped: refused as
    for any shipped shipment. Refused: the open shipment is cancelled. Partly shipped: the
    line not shipped is released, the shipped one stays shipped."""
    before, desk = _ship_then(outcome, "before", _SHIP_CANCEL)
    after, other = _ship_then(outcome, "after", _SHIP_CANCEL)
    assert before == after
    assert desk.shipment == other.shipment
    assert desk.shipment is not None and desk.shipment.queued == ()
    ship_status, cancel_status = before[0], before[-1]
    assert isinstance(ship_status, ShippedStatus if outcome == "shipped" else ShipRefusedStatus)
    assert isinstance(cancel_status, CancelledStatus)
    if outcome != "shipped":
        assert cancel_status.refused is None
        released = [1, 2] if outcome == "refused" else [2]
        assert [v.line_no for v in cancel_status.released_lines] == released
        assert desk.phase == "cancelled"
        return
    assert cancel_status.message_id == _status_of(_SHIP_CANCEL)
    assert cancel_status.refused is not None
    assert cancel_status.refused.reason == (
        "shipment S-1 is shipped: a shipped shipment cannot be cancelled"
    )
    assert desk.phase == "shipped"


@pytest.mark.parametrize("outcome", ["shipped", "refused", "partly"])
def test_picks_read_with_the_ship_are_decided_as_ones_read_after_it(outcome: str) -> None:
    """Replays decide the same way: new picks for line 2 read while the shipment is being
    shipped wait for the ship and are decided as if read just after it: refused once the
    shipment is shipped, else line 2 (not shipped) is allocated with them."""
    before, desk = _ship_then(outcome, "before", _SHIP_PICKS)
    after, other = _ship_then(outcome, "after", _SHIP_PICKS)
    assert before == after
    assert desk.shipment == other.shipment
    picks_status = before[-1]
    if outcome == "shipped":
        assert [type(s) for s in before] == [ShippedStatus, AllocationFailedStatus]
        assert isinstance(picks_status, AllocationFailedStatus)
        assert picks_status.message_id == _status_of(_SHIP_PICKS)
        assert [p.reason for p in picks_status.problems] == [
            "shipment S-1 is shipped: its picks can no longer change"
        ]
        return
    assert [type(s) for s in before] == [ShipRefusedStatus, AllocatedStatus]
    line = desk.shipment.line(2) if desk.shipment else None
    assert line is not None and line.status == "allocated"
    assert line.picks.lots == (LotPick(mfr_lot="A", quantity=Decimal(2)),)


@pytest.mark.parametrize("outcome", ["shipped", "refused", "partly"])
def test_documents_read_with_the_ship_are_answered_once_each_in_the_order_read(
    outcome: str,
) -> None:
    """Picks, a resend, a cancel and a ship request, all read while the shipment is being
    shipped: whatever the ship's outcome, each is answered exactly as when read just after it,
    once, in the order read (once shipped, every one of them is refused, in that order)."""
    documents = (_SHIP_PICKS, _SHIP_RESEND, _SHIP_CANCEL, _SHIP_AGAIN)
    before, desk = _ship_then(outcome, "before", *documents)
    after, other = _ship_then(outcome, "after", *documents)
    assert before == after
    assert desk.shipment == other.shipment
    ids = [getattr(s, "message_id", None) for s in before]
    assert len(ids) == len(set(ids))
    if outcome == "shipped":
        assert ids[1:] == [_status_of(d) for d in documents]
        assert [type(s) for s in before] == [
            ShippedStatus,
            AllocationFailedStatus,
            AllocationFailedStatus,
            CancelledStatus,
            ShippedStatus,
        ]


# --- cancellation -----------------------------------------------------------------------------


def test_cancel_releases_every_allocated_line() -> None:
    desk, _ = allocated_desk(line("PLAIN", 1), line("MILK", 2, no=2))
    releases = desk.send(cancel()).commands
    assert [(type(c), c.line_no, c.lic) for c in releases] == [
        (Release, 1, "PLAIN"),
        (Release, 2, "MILK"),
    ]
    assert desk.phase == "cancelling"
    desk.released(releases[0])
    (status,) = desk.released(releases[1]).statuses
    assert isinstance(status, CancelledStatus)
    assert status.refused is None
    assert [v.line_no for v in status.released_lines] == [1, 2]
    assert desk.phase == "cancelled"


def test_cancel_sends_nothing_for_a_line_allocation_never_held() -> None:
    """The line's picks were refused by shipping: allocation will hold nothing for it, so
    nothing is released; the cancel is answered once allocation has answered the line."""
    desk = Desk()
    (refused,) = desk.send(request(line("CAM", 1, picks=entry(serials="9...1")))).commands
    assert (desk.send(cancel()).commands, desk.phase) == ((), "cancelling")
    (status,) = desk.echoed(refused).statuses
    assert isinstance(status, CancelledStatus) and status.refused is None
    assert status.released_lines == ()


def test_cancel_while_allocation_is_in_flight_releases_after_it() -> None:
    desk = Desk()
    (allocate,) = desk.send(request(line("PLAIN", 1))).commands
    (release,) = desk.send(cancel()).commands
    assert isinstance(release, Release) and release.lic == "PLAIN"
    assert desk.allocated(allocate).statuses == ()
    (status,) = desk.released(release).statuses
    assert isinstance(status, CancelledStatus)


def test_a_cancel_while_cancelling_is_answered_with_the_cancelled_status() -> None:
    desk, _ = allocated_desk(line("PLAIN", 1))
    (release,) = desk.send(cancel()).commands
    again = cancel()
    waiting = desk.send(again)
    assert (waiting.commands, waiting.statuses, desk.phase) == ((), (), "cancelling")
    first, second = desk.released(release).statuses
    assert isinstance(first, CancelledStatus) and isinstance(second, CancelledStatus)
    assert second.message_id == derived_id(again.message_id, "status")
    assert (second.released_lines, second.refused) == (first.released_lines, None)


@pytest.mark.parametrize("read", ["before", "after"])
def test_a_request_read_with_the_cancel_waits_for_it_then_is_applied(read: str) -> None:
    """Every document answered, replays decide the same way: a resend read before the cancel's
    releases are answered (in the cancel's batch) waits for the cancel, which is answered
    ShipmentCancelled; then it is applied exactly as when read after the cancel settled."""
    desk, _ = allocated_desk(line("PLAIN", 3))
    (release,) = desk.send(cancel()).commands
    resend = request(line("PLAIN", 4))
    if read == "before":
        waits = desk.send(resend)
        assert (waits.commands, waits.statuses, desk.phase) == ((), (), "cancelling")
        settled = desk.released(release)
        (cancelled,) = settled.statuses
        commands = settled.commands
    else:
        (cancelled,) = desk.released(release).statuses
        commands = desk.send(resend).commands
    assert isinstance(cancelled, CancelledStatus) and cancelled.refused is None
    assert [v.line_no for v in cancelled.released_lines] == [1]
    assert desk.phase == "allocating"
    assert desk.shipment is not None and desk.shipment.queued == ()
    (allocate,) = commands
    assert isinstance(allocate, Allocate)
    assert (allocate.line_no, allocate.lic, allocate.quantity) == (1, "PLAIN", Decimal(4))
    assert allocate.command_id == derived_id(
        namespaced("shipment", resend.message_id), "allocate/1"
    )
    (status,) = desk.allocated(allocate).statuses
    assert isinstance(status, AllocatedStatus)
    assert desk.phase == "allocated"


def test_the_request_waiting_for_a_cancel_is_sent_with_the_cancels_answer() -> None:
    desk, _ = allocated_desk(line("PLAIN", 3))
    (release,) = desk.send(cancel()).commands
    desk.send(request(line("PLAIN", 4), line("MILK", 1, no=2, picks=entry(lots=[("A", 1)]))))
    decision = desk.released(release)
    assert [type(s) for s in decision.statuses] == [CancelledStatus]
    assert [(type(c), c.line_no, c.lic) for c in decision.commands] == [
        (Allocate, 1, "PLAIN"),
        (Allocate, 2, "MILK"),
    ]
    milk = decision.commands[1]
    assert isinstance(milk, Allocate)
    assert milk.picks.lots == (LotPick(mfr_lot="A", quantity=ONE),)


def test_documents_after_a_request_waiting_for_a_cancel_are_decided_after_it() -> None:
    """Picks for its line, picks for a line it does not have and a ship request, read while it
    waits, wait behind it, and once the cancel settles are decided in the order read, as if
    read then: the picks re-allocate its line, the others are refused (the ship request as
    still being allocated, as one read after them is)."""
    desk, _ = allocated_desk(line("PLAIN", 3))
    (release,) = desk.send(cancel()).commands
    no_line, ship = update(2, entry()), ship_request()
    for document in (request(line("MILK", 2)), update(1, entry(lots=[("A", 2)])), no_line, ship):
        waits = desk.send(document)
        assert (waits.commands, waits.statuses) == ((), ())
    decision = desk.released(release)
    requested, picked = decision.commands
    assert isinstance(requested, Allocate) and isinstance(picked, Allocate)
    assert (picked.lic, picked.picks.lots) == ("MILK", (LotPick(mfr_lot="A", quantity=Decimal(2)),))
    cancelled, lacks, refused = decision.statuses
    assert isinstance(cancelled, CancelledStatus) and cancelled.refused is None
    assert isinstance(lacks, AllocationFailedStatus)
    assert lacks.message_id == derived_id(no_line.message_id, "status")
    assert lacks.problems[0].reason_code == ReasonCode.UNKNOWN_SHIPMENT
    assert isinstance(refused, ShipRefusedStatus)
    assert refused.message_id == derived_id(ship.message_id, "status")
    assert (refused.reason_code, refused.problems[0].reason) == (
        ReasonCode.SHIPMENT_INCOMPLETE,
        "line 1 (MILK) is still being allocated",
    )
    (refused_after,) = desk.send(ship_request()).statuses
    assert isinstance(refused_after, ShipRefusedStatus)
    assert refused_after.problems == refused.problems


def test_a_request_a_cancel_follows_while_cancelling_still_names_its_items() -> None:
    """R2: a request read while the shipment is being cancelled was saved (it is a sales order
    naming CAM), so a cancel read after it must not drop it unseen by allocation: CAM's
    tracking flags lock only once an AllocateLine names it. As when read after the cancel:
    it is applied once the cancel settles, then cancelled in turn (that cancel answered once
    its releases are), and nothing stays held."""
    desk, _ = allocated_desk(line("PLAIN", 3))
    (release,) = desk.send(cancel()).commands
    desk.send(request(line("PLAIN", 4), line("CAM", 1, no=2)))
    again = cancel()
    assert desk.send(again).statuses == ()
    statuses, sent = _drive(desk, [release])
    assert [(type(c), c.lic, c.line_no) for c in sent] == [
        (Release, "PLAIN", 1),
        (Allocate, "PLAIN", 1),
        (Allocate, "CAM", 2),
        (Release, "PLAIN", 1),
        (Release, "CAM", 2),
    ]
    first, second = statuses
    assert isinstance(first, CancelledStatus) and isinstance(second, CancelledStatus)
    assert second.message_id.startswith(namespaced("shipment", again.message_id))
    assert [v.line_no for v in second.released_lines] == [1, 2]
    assert desk.phase == "cancelled"
    assert desk.shipment is not None and desk.shipment.queued == ()
    assert all(line.held_lics == () for line in desk.shipment.lines)


def test_a_request_a_newer_one_replaces_while_cancelling_still_names_its_items() -> None:
    """R2: a request superseded by a newer one before the cancel settled was still saved: its
    item (CAM) hears of it, as when both are read after the cancel; the newer one stands."""
    desk, _ = allocated_desk(line("PLAIN", 3))
    (release,) = desk.send(cancel()).commands
    desk.send(request(line("CAM", 1)))
    desk.send(request(line("MILK", 2)))
    statuses, sent = _drive(desk, [release])
    assert ("CAM", 1) in [(c.lic, c.line_no) for c in sent if isinstance(c, Allocate)]
    assert [type(s) for s in statuses] == [CancelledStatus, AllocatedStatus]
    assert desk.shipment is not None
    assert [(x.lic, x.status, x.held_lics) for x in desk.shipment.lines] == [
        ("MILK", "allocated", ("MILK",))
    ]


def test_release_refused_because_nothing_was_held_still_cancels() -> None:
    desk = Desk()
    (allocate,) = desk.send(request(line("PLAIN", 1))).commands
    (release,) = desk.send(cancel()).commands
    desk.refused(allocate, ReasonCode.INSUFFICIENT_STOCK, "1 > 0")
    (status,) = desk.refused(release, ReasonCode.UNKNOWN_SHIPMENT, "S-1/1").statuses
    assert isinstance(status, CancelledStatus)
    assert status.released_lines == ()


def test_a_shipped_shipment_cannot_be_cancelled() -> None:
    desk, _ = allocated_desk(line("PLAIN", 1))
    (ship,) = desk.send(ship_request()).commands
    desk.shipped(ship)
    decision = desk.send(cancel())
    assert decision.commands == ()
    (status,) = decision.statuses
    assert isinstance(status, CancelledStatus)
    assert status.refused is not None
    assert (status.refused.reason_code, status.refused.offending) == (
        ReasonCode.UNKNOWN_SHIPMENT,
        "S-1",
    )
    assert desk.phase == "shipped"


def test_ship_request_for_a_cancelled_shipment_is_refused() -> None:
    """Read while the cancel is under way, it waits for it, then is refused as after it."""
    desk = Desk()
    (refused_line,) = desk.send(request(line("CAM", 1, picks=entry(serials="9...1")))).commands
    desk.send(cancel())
    ship = ship_request()
    assert desk.send(ship).statuses == ()
    cancelled, status = desk.echoed(refused_line).statuses
    assert isinstance(cancelled, CancelledStatus)
    assert isinstance(status, ShipRefusedStatus)
    assert (status.message_id, status.reason_code, status.reason) == (
        derived_id(ship.message_id, "status"),
        ReasonCode.UNKNOWN_SHIPMENT,
        "shipment S-1 is cancelled",
    )
    (again,) = desk.send(ship_request()).statuses
    assert isinstance(again, ShipRefusedStatus) and again.reason == status.reason


# --- unknown shipments ------------------------------------------------------------------------


def test_messages_about_an_unknown_shipment_are_refused_unknown_shipment() -> None:
    desk = Desk()
    for message in (update(1, entry()), ship_request(), cancel()):
        decision = desk.send(message)
        assert decision.commands == ()
        (status,) = decision.statuses
        problem = (
            status.refused if isinstance(status, CancelledStatus) else status.problems[0]  # type: ignore[union-attr]
        )
        assert problem is not None
        assert (problem.reason_code, problem.offending) == (ReasonCode.UNKNOWN_SHIPMENT, "S-1")
    assert desk.shipment is None


# --- R14: returns to vendor -------------------------------------------------------------------


def test_vendor_return_of_serialized_item_must_name_serials() -> None:
    """R14: SERIAL_REQUIRED, found by shipping and answered by allocation as it is."""
    desk = Desk()
    (command,) = desk.send(request(line("CAM", 1), kind="vendor_return")).commands
    (status,) = desk.echoed(command).statuses
    assert isinstance(status, AllocationFailedStatus)
    assert (status.problems[0].reason_code, status.problems[0].offending) == (
        ReasonCode.SERIAL_REQUIRED,
        "CAM",
    )


def test_vendor_return_of_lot_tracked_item_must_name_lots() -> None:
    """R14: LOT_REQUIRED, found by shipping and answered by allocation as it is."""
    desk = Desk()
    (command,) = desk.send(request(line("MILK", 2), kind="vendor_return")).commands
    (status,) = desk.echoed(command).statuses
    assert isinstance(status, AllocationFailedStatus)
    assert status.problems[0].reason_code == ReasonCode.LOT_REQUIRED


def test_vendor_return_naming_lots_is_sent_as_a_vendor_return() -> None:
    """R14: the named lots go back to the vendor."""
    picks = entry(lots=[("A1", 2)])
    (command,) = Desk().send(request(line("MILK", 2, picks=picks), kind="vendor_return")).commands
    assert isinstance(command, Allocate)
    assert (command.kind, command.picks.lots) == (
        "vendor_return",
        (LotPick(mfr_lot="A1", quantity=Decimal(2)),),
    )


def test_vendor_return_of_a_plain_item_needs_nothing_named() -> None:
    (command,) = Desk().send(request(line("PLAIN", 2), kind="vendor_return")).commands
    assert isinstance(command, Allocate)


# --- saving again -----------------------------------------------------------------------------


def test_requesting_an_open_shipment_again_replaces_its_lines() -> None:
    desk, _ = allocated_desk(line("PLAIN", 1), line("MILK", 2, no=2))
    decision = desk.send(request(line("CAM", 1, picks=entry(serials="X1"))))
    kinds = sorted((type(c).__name__, c.line_no, c.lic) for c in decision.commands)
    assert kinds == [
        ("Allocate", 1, "CAM"),
        ("Release", 1, "PLAIN"),
        ("Release", 2, "MILK"),
    ]
    assert desk.shipment is not None
    assert [line.line_no for line in desk.shipment.lines] == [1]


def test_a_shipped_shipment_cannot_be_requested_again() -> None:
    desk, _ = allocated_desk(line("PLAIN", 1))
    (ship,) = desk.send(ship_request()).commands
    desk.shipped(ship)
    decision = desk.send(request(line("PLAIN", 5)))
    assert decision.commands == ()
    (status,) = decision.statuses
    assert isinstance(status, AllocationFailedStatus)
    assert status.problems[0].reason_code == ReasonCode.UNKNOWN_SHIPMENT


# --- answers: which documents each status answers -----------------------------------------------


def test_a_request_and_the_picks_update_allocated_with_it_are_answered_by_one_status() -> None:
    desk = Desk()
    first = request(line("MILK", 2))
    (allocate,) = desk.send(first).commands
    picks = update(1, entry(lots=[("A1", 2)]))
    (again,) = desk.send(picks).commands
    assert desk.shipment is not None and desk.shipment.unanswered == (
        first.message_id,
        picks.message_id,
    )
    assert desk.allocated(allocate).statuses == ()
    (status,) = desk.allocated(again, lot_moves(("A1", 2))).statuses
    assert isinstance(status, AllocatedStatus)
    assert status.answers == (first.message_id, picks.message_id)
    assert desk.shipment is not None and not desk.shipment.unanswered
    # The next document starts afresh: its status answers it alone.
    ship = ship_request()
    (shipping,) = desk.send(ship).commands
    (shipped,) = desk.shipped(shipping).statuses
    assert isinstance(shipped, ShippedStatus) and shipped.answers == (ship.message_id,)


def test_a_request_a_cancel_overrides_before_it_is_answered_is_answered_by_the_cancel() -> None:
    desk = Desk()
    first = request(line("PLAIN", 1))
    (allocate,) = desk.send(first).commands
    stop = cancel()
    (release,) = desk.send(stop).commands
    desk.allocated(allocate)
    (status,) = desk.released(release).statuses
    assert isinstance(status, CancelledStatus) and status.refused is None
    assert status.answers == (first.message_id, stop.message_id)


def test_a_document_refused_at_once_is_answered_alone_and_the_rest_later() -> None:
    """A ship request while allocating is refused at once, answering only itself; the
    allocation under way answers the request that started it."""
    desk = Desk()
    first = request(line("PLAIN", 1))
    (allocate,) = desk.send(first).commands
    early = ship_request()
    (refused,) = desk.send(early).statuses
    assert isinstance(refused, ShipRefusedStatus) and refused.answers == (early.message_id,)
    (allocated,) = desk.allocated(allocate).statuses
    assert allocated.answers == (first.message_id,)
    unknown = update(1, entry(), sid="S-404")
    (failed,) = Desk().send(unknown).statuses
    assert failed.answers == (unknown.message_id,)


def test_documents_asking_for_the_phase_under_way_are_answered_by_their_own_statuses() -> None:
    """A second ship request while shipping gets the ship's status under its own id, answering
    itself; a document queued behind the ship is decided after it, answered on its own."""
    desk, _ = allocated_desk(line("PLAIN", 1))
    ship, again, late = ship_request(), ship_request(), cancel()
    (shipping,) = desk.send(ship).commands
    desk.send(again)
    desk.send(late)
    assert desk.shipment is not None
    assert desk.shipment.waiting_documents == (
        (derived_id(again.message_id, "status"), again.message_id),
    )
    first, second, third = desk.shipped(shipping).statuses
    assert isinstance(first, ShippedStatus) and isinstance(second, ShippedStatus)
    assert (first.answers, second.answers) == ((ship.message_id,), (again.message_id,))
    assert isinstance(third, CancelledStatus) and third.refused is not None
    assert third.answers == (late.message_id,)
    after = desk.shipment
    assert after is not None and not after.waiting and not after.waiting_documents


def test_a_status_owed_by_a_row_an_older_version_wrote_answers_no_document() -> None:
    """A rolling upgrade: a status id owed by a process that did not record the document
    (no `waiting_documents`) is still published, naming no document it answers."""
    desk, _ = allocated_desk(line("PLAIN", 1))
    (shipping,) = desk.send(ship_request()).commands
    assert desk.shipment is not None
    desk.shipment = replace(desk.shipment, waiting=("old-ship/status",))
    first, owed = desk.shipped(shipping).statuses
    assert (owed.message_id, owed.answers) == ("old-ship/status", ())
    assert first.answers != ()
