"""Shipping's own refusal reasons read plainly on a dashboard (shared/reasons.py states the
style): serials and scans unquoted (a scan's group separator written <GS>), quantities as
typed, a line's status and a shipment's phase in words (never "allocation_failed" or "is
failed"), lines counted ("1 line was", never "line(s)"). Codes and offending values (the
contract) are unchanged."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal

from services.shipping import domain
from services.shipping.model import (
    Allocate,
    Allocated,
    AllocationFailedStatus,
    Entry,
    Item,
    Limits,
    LotPick,
    Moved,
    Problem,
    RequestLine,
    Ship,
    ShipRefusedStatus,
)
from shared.reasons import ReasonCode
from tests.unit.shipping.test_lifecycle import (
    GTIN,
    ITEMS,
    Desk,
    allocated_desk,
    entry,
    line,
    lot_moves,
    request,
    serial_moves,
    ship_request,
    update,
)

GS = "\x1d"

# Python's quotes, its None, a repr's \x1d, a Decimal's trailing zeros, shipping's internal
# names for a line's status or a shipment's phase, "line(s)".
_PYTHON = re.compile(
    r"['\"]|\bNone\b|\\x1d|\d\.\d*0\b|allocation_failed|\bis (failed|pending|released)\b"
    r"|\(s\)|for its (shipping|cancelling)"
)


def _plain(reason: str) -> None:
    assert _PYTHON.search(reason) is None, reason


def _refusal(*lines: RequestLine, items: dict[str, Item] | None = None) -> Problem:
    """The problem shipping finds with the picks of the request's only line."""
    desk = Desk(items or ITEMS)
    (command,) = desk.send(request(*lines)).commands
    assert isinstance(command, Allocate) and command.refusal is not None
    _plain(command.refusal.reason)
    return command.refusal


# --- picks (services/shipping/picks.py) -------------------------------------------------------


def test_a_serial_picked_twice_is_named_unquoted() -> None:
    """R5: typed and scanned, the same serial."""
    picks = entry(serials="X1", scans=[f"(01){GTIN}(21)X1"])
    problem = _refusal(line("CAM", 2, picks=picks))
    assert problem.reason == "serial X1 is picked more than once on the line"
    assert (problem.reason_code, problem.offending) == (ReasonCode.DUPLICATE_SERIAL, "X1")


def test_a_scan_of_another_product_is_shown_as_scanned() -> None:
    """R5: the raw scan unquoted, FNC1 written <GS> (as receiving says it)."""
    raw = f"0104012345000009{GS}21A1"
    problem = _refusal(line("CAM", 1, picks=entry(scans=[raw])))
    assert problem.reason == (
        f"scan 0104012345000009<GS>21A1 carries GTIN 04012345000009, but item CAM has GTIN {GTIN}"
    )
    assert (problem.reason_code, problem.offending) == (ReasonCode.INVALID_BARCODE, raw)


def test_a_scanned_lot_the_line_does_not_list_is_shown_unquoted() -> None:
    """R5, R15."""
    problem = _refusal(line("MILK", 2, picks=entry(lots=[("A", 2)], scans=["(10)B", "(10)B"])))
    assert problem.reason == (
        "scan (10)B is a unit of manufacturer lot B, which the line does not list (it lists A)"
    )
    assert problem.offending == "(10)B"


def test_a_lot_typed_with_trailing_zeros_is_counted_as_typed() -> None:
    """R5, R15: "the line types 1 of lot A", never "1.000"."""
    vax = {"VAX": Item(lic="VAX", track_mfr_lot=True, serialized=True, perishable=True)}
    picks = Entry(
        lots=(LotPick(mfr_lot="A", quantity=Decimal("1.000")),),
        scans=("(10)A(21)S1", "(10)A(21)S2"),
    )
    problem = _refusal(
        RequestLine(line_no=1, lic="VAX", quantity=Decimal(2), entry=picks), items=vax
    )
    assert problem.reason == (
        "scan (10)A(21)S2 is serial S2 of manufacturer lot A, but the line types 1 of lot A, "
        "fewer than the serials scanned in it"
    )
    assert problem.offending == "(10)A(21)S2"


def test_an_unreadable_scan_and_a_bad_span_pass_on_plain_reasons() -> None:
    """shared/serials.py and shared/barcodes.py word these; shipping passes them on."""
    scan = _refusal(line("CAM", 1, picks=entry(scans=[f"01{GTIN}{GS}21SN,7"])))
    assert scan.reason == (
        f"scan 01{GTIN}<GS>21SN,7 has an unusable serial: typed entry reads it as 2 serials: SN, 7"
    )
    span = _refusal(line("CAM", 3, picks=entry(serials="A1...B3")))
    assert span.reason == "span A1...B3 starts with prefix A but ends with prefix B"


# --- R8 and the lifecycle (services/shipping/domain.py) ---------------------------------------


def test_what_an_incomplete_line_lacks_is_counted_as_typed() -> None:
    """R8: "names manufacturer lots for 3 of 5", never "of 5.000" or "1.50 of 2.000"."""
    desk = Desk()
    milk, cam, plain = desk.send(
        request(
            RequestLine(line_no=1, lic="MILK", quantity=Decimal("5.000")),
            RequestLine(line_no=2, lic="CAM", quantity=Decimal("2.000")),
            RequestLine(line_no=3, lic="PLAIN", quantity=Decimal("2.000")),
        )
    ).commands
    desk.allocated(milk, lot_moves(("A1", 3), (None, 2)))
    desk.allocated(cam, serial_moves("X1") + lot_moves((None, 1)))
    assert isinstance(plain, Allocate)
    half = Moved(lot_id="PO-1/1", quantity=Decimal("1.50"), unit_cost=Decimal(2))
    desk.reply(
        Allocated(command_id=plain.command_id, lic="PLAIN", complete=False, movements=(half,))
    )
    (status,) = desk.send(ship_request()).statuses
    assert isinstance(status, ShipRefusedStatus)
    assert [p.reason for p in status.problems] == [
        "line 1 (MILK) names manufacturer lots for 3 of 5",
        "line 2 (CAM) has serials for 1 of 2 units",
        "line 3 (PLAIN) is allocated 1.5 of 2 without every manufacturer lot and serial named",
    ]
    assert [p.offending for p in status.problems] == ["S-1/1", "S-1/2", "S-1/3"]
    _plain(status.reason)


def test_a_partly_shipped_shipment_counts_its_lines_and_says_its_phase_in_words() -> None:
    """R8: "1 line was not shipped"; a picks update for the shipped line of a shipment whose
    other line then failed: "is not fully allocated", never "is allocation_failed"."""
    desk, _ = allocated_desk(line("PLAIN", 1), line("PLAIN", 1, no=2))
    first, second = desk.send(ship_request()).commands
    assert isinstance(first, Ship) and isinstance(second, Ship)
    desk.shipped(first)
    (refused,) = desk.refused(second, ReasonCode.INSUFFICIENT_STOCK, "1 > 0").statuses
    assert isinstance(refused, ShipRefusedStatus)
    assert refused.reason == "shipment S-1: line 1 shipped; 1 line was not shipped: refused: 1 > 0"
    (bad_span,) = desk.send(update(2, entry(serials="10...8"))).commands
    desk.echoed(bad_span)
    assert desk.phase == "allocation_failed"
    (status,) = desk.send(update(1, entry())).statuses
    assert isinstance(status, AllocationFailedStatus)
    (problem,) = status.problems
    assert problem.reason == "shipment S-1 is not fully allocated: line 1 was shipped"
    assert (problem.reason_code, problem.offending) == (ReasonCode.UNKNOWN_SHIPMENT, "S-1")


def test_a_failed_line_is_said_in_words() -> None:
    """R8: a line that failed without a problem of its own (so shipping words it): "could not
    be allocated", never "is failed"."""
    desk, _ = allocated_desk(line("PLAIN", 1))
    assert desk.shipment is not None
    (allocated,) = desk.shipment.lines
    failed = replace(allocated, status="failed", movements=(), held_lics=(), problem=None)
    desk.shipment = replace(desk.shipment, phase="allocation_failed", lines=(failed,))
    (status,) = desk.send(ship_request()).statuses
    assert isinstance(status, ShipRefusedStatus)
    (problem,) = status.problems
    assert problem.reason == "line 1 (PLAIN) could not be allocated"
    assert (problem.reason_code, problem.offending) == (ReasonCode.SHIPMENT_INCOMPLETE, "S-1/1")


def test_documents_past_the_waiting_cap_say_what_they_wait_for_in_words() -> None:
    """DESIGN §6: "(while it is being shipped)", never "(for its shipping)"."""
    limits = Limits(max_waiting_documents=2)
    desk, _ = allocated_desk(line("PLAIN", 1))
    desk.send(ship_request())
    shipment = desk.shipment
    for _ in range(2):
        decision = domain.handle(shipment, update(1, entry()), ITEMS, limits)
        assert decision.statuses == ()
        shipment = decision.shipment
    (status,) = domain.handle(shipment, update(1, entry()), ITEMS, limits).statuses
    assert isinstance(status, AllocationFailedStatus)
    (problem,) = status.problems
    assert problem.reason.startswith(
        "shipment S-1 has 2 documents waiting (while it is being shipped), the most one "
        "shipment may hold (2 documents, "
    )
    _plain(problem.reason)
