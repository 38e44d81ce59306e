"""R5: a scan is checked against its item. A request or picks update with scans on a line whose
item shipping does not know yet (a sale read before the item's first `ItemUpserted`) waits for
it, and is read against it once it is known; its wait over, the line is refused
`UNKNOWN_ITEM`. Before, such scans were read as if the item were serialized and lot-tracked,
skipping the GTIN check."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from services.shipping import domain
from services.shipping.model import (
    Allocate,
    Cancel,
    Decision,
    Entry,
    Item,
    Limits,
    Line,
    LotPick,
    Picks,
    PicksUpdate,
    Problem,
    Request,
    RequestLine,
    Shipment,
    ShipRequest,
)
from services.shipping.picks import parse_picks
from shared.reasons import ReasonCode

DAY = date(2026, 11, 22)
GTIN = "09506000134352"
OTHER = "04012345000009"  # a valid GTIN of another product
CAM = Item(lic="CAM", serialized=True, gtin=GTIN)
PLAIN = Item(lic="PLAIN", gtin=GTIN)
NONE: Mapping[str, Item] = {}


def request(*lines: RequestLine, message_id: str = "m-1", sid: str = "S-1") -> Request:
    return Request(
        message_id=message_id,
        shipment_id=sid,
        office="AI",
        kind="sale",
        ship_on=DAY,
        lines=lines,
        counterparty="Montboro",
    )


def scanned(lic: str, *scans: str, no: int = 1) -> RequestLine:
    return RequestLine(
        line_no=no, lic=lic, quantity=Decimal(len(scans)), entry=Entry(scans=tuple(scans))
    )


def allocations(decision: Decision) -> list[Allocate]:
    return [c for c in decision.commands if isinstance(c, Allocate)]


def held(message: Request, items: Mapping[str, Item] = NONE) -> Shipment:
    decision = domain.handle(None, message, items)
    assert decision.changed and decision.shipment is not None
    return decision.shipment


def test_parse_picks_refuses_scans_of_an_item_it_does_not_know() -> None:
    """The pure defect: with no item, a scan of another product's barcode was read as a
    serial (no GTIN check); now the line is refused UNKNOWN_ITEM naming the LIC."""
    header = Shipment(shipment_id="S-1", office="AI", kind="sale", ship_on=DAY)
    line = Line(line_no=1, lic="CAM", quantity=Decimal(1))
    parsed = parse_picks(header, line, Entry(scans=(f"(01){OTHER}(21)X1",)), None, Limits())
    assert isinstance(parsed, Problem)
    assert (parsed.reason_code, parsed.offending) == (ReasonCode.UNKNOWN_ITEM, "CAM")
    assert parsed.reason == "item CAM is not known"


def test_parse_picks_without_scans_still_reads_typed_picks_of_an_unknown_item() -> None:
    """Typed picks need no item: allocation decides them, as before."""
    header = Shipment(shipment_id="S-1", office="AI", kind="sale", ship_on=DAY)
    line = Line(line_no=1, lic="NEW", quantity=Decimal(2))
    typed = Entry(lots=(LotPick(mfr_lot="A", quantity=Decimal(2)),))
    assert parse_picks(header, line, typed, None, Limits()) == Picks(lots=typed.lots)


def test_a_request_scanning_an_unknown_item_waits_for_it_publishing_nothing() -> None:
    message = request(
        scanned("CAM", f"(01){GTIN}(21)X1"), RequestLine(line_no=2, lic="B", quantity=Decimal(1))
    )
    decision = domain.handle(None, message, NONE)
    assert decision.commands == () and decision.statuses == ()
    assert decision.shipment is not None
    assert decision.shipment.queued == (message,)
    assert decision.shipment.awaited == ("CAM",)
    assert decision.shipment.lines == ()


def test_a_wrong_gtin_scan_is_refused_once_the_item_arrives() -> None:
    """(a): the scan of another product is refused INVALID_BARCODE against the item read."""
    waiting = held(request(scanned("CAM", f"(01){OTHER}(21)X1")))
    (command,) = allocations(domain.resume(waiting, {"CAM": CAM}))
    assert command.refusal is not None
    assert command.refusal.reason_code is ReasonCode.INVALID_BARCODE
    assert command.refusal.offending == f"(01){OTHER}(21)X1"


def test_a_good_scan_is_sent_as_its_serial_once_the_item_arrives() -> None:
    waiting = held(request(scanned("CAM", f"(01){GTIN}(21)X1", f"(01){GTIN}(21)X2")))
    decision = domain.resume(waiting, {"CAM": CAM})
    (command,) = allocations(decision)
    assert command.refusal is None and command.picks.serials == ("X1", "X2")
    assert decision.shipment is not None
    assert decision.shipment.queued == () and decision.shipment.awaited == ()
    assert decision.shipment.phase == "allocating"


def test_lots_scanned_for_a_plain_item_are_dropped_once_it_is_known() -> None:
    """(b): a plain item's scans carrying AI 10 name no lots (allocation would refuse
    them), as when the item is known from the start."""
    waiting = held(request(scanned("PLAIN", f"(01){GTIN}(10)L1", f"(01){GTIN}(10)L1")))
    (command,) = allocations(domain.resume(waiting, {"PLAIN": PLAIN}))
    assert command.refusal is None and command.picks == Picks()


def test_the_wait_over_refuses_the_line_unknown_item_and_sends_the_others() -> None:
    other = RequestLine(line_no=2, lic="B", quantity=Decimal(1))
    waiting = held(request(scanned("CAM", f"(01){GTIN}(21)X1"), other))
    refused, sent = allocations(domain.resume(waiting, NONE, may_wait=False))
    assert refused.refusal is not None
    assert (refused.line_no, refused.refusal.reason_code, refused.refusal.offending) == (
        1,
        ReasonCode.UNKNOWN_ITEM,
        "CAM",
    )
    assert (sent.line_no, sent.refusal) == (2, None)


def test_without_a_wait_the_line_is_refused_unknown_item_at_once() -> None:
    """LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS 0."""
    decision = domain.handle(
        None, request(scanned("CAM", f"(01){GTIN}(21)X1")), NONE, may_wait=False
    )
    (command,) = allocations(decision)
    assert command.refusal is not None and command.refusal.reason_code is ReasonCode.UNKNOWN_ITEM


def test_a_line_without_scans_does_not_wait_for_its_item() -> None:
    """Allocation is authoritative for lines naming no scans."""
    typed = RequestLine(line_no=1, lic="NEW", quantity=Decimal(1), entry=Entry(serials="SN-1"))
    decision = domain.handle(None, request(typed), NONE)
    (command,) = allocations(decision)
    assert command.refusal is None and command.picks.serials == ("SN-1",)
    assert decision.shipment is not None and decision.shipment.awaited == ()


def test_documents_read_after_a_waiting_one_wait_behind_it_and_follow_in_order() -> None:
    waiting = held(request(scanned("CAM", f"(01){GTIN}(21)X1")))
    ship = ShipRequest(message_id="m-2", shipment_id="S-1")
    behind = domain.handle(waiting, ship, NONE)
    assert behind.commands == () and behind.statuses == ()
    assert behind.shipment is not None and behind.shipment.queued == (*waiting.queued, ship)
    cancel = Cancel(message_id="m-3", shipment_id="S-1")
    shipment = domain.handle(behind.shipment, cancel, NONE).shipment
    assert shipment is not None
    decision = domain.resume(shipment, {"CAM": CAM})
    # In the order read, as if read just now: the request is allocated, the ship request
    # refused while it is, the cancel applied (answered with the request once it settles).
    (command,) = allocations(decision)
    assert command.picks.serials == ("X1",)
    (refused,) = decision.statuses
    assert refused.answers == ("m-2",)
    assert decision.shipment is not None
    assert (decision.shipment.phase, decision.shipment.unanswered) == ("cancelling", ("m-1", "m-3"))
    assert decision.shipment.queued == () and decision.shipment.awaited == ()


def test_a_second_unknown_item_keeps_the_documents_waiting() -> None:
    waiting = held(request(scanned("CAM", f"(01){GTIN}(21)X1"), scanned("PLAIN", GTIN, no=2)))
    assert waiting.awaited == ("CAM", "PLAIN")
    decision = domain.resume(waiting, {"CAM": CAM})
    assert decision.commands == () and decision.statuses == ()
    assert decision.shipment is not None and decision.shipment.awaited == ("PLAIN",)
    assert decision.shipment.queued == waiting.queued


def test_new_picks_scanning_a_line_of_an_unknown_item_wait_for_it() -> None:
    """A line allocated without picks (allocation knew the item) is re-picked by scans
    before shipping read the item: the update waits, then is read against it."""
    first = domain.handle(
        None, request(RequestLine(line_no=1, lic="CAM", quantity=Decimal(1))), NONE
    )
    assert first.shipment is not None and len(allocations(first)) == 1
    update = PicksUpdate(
        message_id="m-2", shipment_id="S-1", line_no=1, entry=Entry(scans=(f"(01){OTHER}(21)X1",))
    )
    waits = domain.handle(first.shipment, update, NONE)
    assert waits.commands == () and waits.shipment is not None
    assert waits.shipment.awaited == ("CAM",)
    (command,) = allocations(domain.resume(waits.shipment, {"CAM": CAM}))
    assert command.refusal is not None
    assert command.refusal.reason_code is ReasonCode.INVALID_BARCODE


def test_resume_without_anything_waiting_for_an_item_changes_nothing() -> None:
    decision = domain.handle(
        None, request(RequestLine(line_no=1, lic="B", quantity=Decimal(1))), NONE
    )
    assert decision.shipment is not None
    again = domain.resume(decision.shipment, NONE, may_wait=False)
    assert not again.changed and again.commands == () and again.statuses == ()
