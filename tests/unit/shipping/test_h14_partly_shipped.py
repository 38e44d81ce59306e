"""A partly shipped shipment: allocation refused one line's ShipLine (its lot went into
quarantine after it was allocated) while the others shipped. The refusal says what shipped,
line by line; a cancel releases the lines not shipped and closes the shipment; a line picked
again ships with a new ship request."""

from __future__ import annotations

from services.shipping import translate
from services.shipping.model import (
    Allocate,
    AllocatedStatus,
    AllocationFailedStatus,
    CancelledStatus,
    Release,
    Ship,
    ShippedStatus,
    ShipRefusedStatus,
)
from shared.contracts import status as s
from shared.reasons import ReasonCode
from shared.send import describe
from tests.unit.shipping.test_lifecycle import (
    Desk,
    cancel,
    entry,
    line,
    lot_moves,
    request,
    ship_request,
    update,
)


def _partly_shipped() -> tuple[Desk, ShipRefusedStatus]:
    """SO-1011 as the clerk had it: line 1 (lot-tracked, lot FL2612B) refused at ship,
    line 2 (plain) shipped."""
    desk = Desk()
    first, second = desk.send(
        request(line("MILK", 5, picks=entry(lots=[("FL2612B", 5)])), line("PLAIN", 5, no=2))
    ).commands
    desk.allocated(first, lot_moves(("FL2612B", 5)))
    desk.allocated(second)
    ship_one, ship_two = desk.send(ship_request()).commands
    assert isinstance(ship_one, Ship) and isinstance(ship_two, Ship)
    desk.refused(ship_one, ReasonCode.SHIPMENT_INCOMPLETE, "S-1/1")
    (refusal,) = desk.shipped(ship_two).statuses
    assert isinstance(refusal, ShipRefusedStatus)
    return desk, refusal


def test_a_refusal_after_some_lines_shipped_says_which_shipped_and_lists_every_line() -> None:
    _, refusal = _partly_shipped()
    assert refusal.reason.startswith("shipment S-1: line 2 shipped; 1 line was not shipped: ")
    assert [(v.line_no, v.shipped) for v in refusal.lines] == [(1, False), (2, True)]
    assert [m.mfr_lot for m in refusal.lines[0].movements] == ["FL2612B"]
    wire = translate.status(refusal)
    assert isinstance(wire, s.ShipmentShipRefused)
    assert [(x.line_no, x.shipped) for x in wire.lines] == [(1, False), (2, True)]
    assert wire.reason == refusal.reason


def test_a_refusal_with_nothing_shipped_lists_no_lines_as_before() -> None:
    desk = Desk()
    (allocate,) = desk.send(request(line("PLAIN", 1))).commands
    desk.allocated(allocate)
    (ship,) = desk.send(ship_request()).commands
    (refusal,) = desk.refused(ship, ReasonCode.SHIPMENT_INCOMPLETE, "S-1/1").statuses
    assert isinstance(refusal, ShipRefusedStatus)
    assert refusal.lines == ()
    assert refusal.reason == "shipment S-1: 1 line was not shipped: refused: S-1/1"
    assert translate.status(refusal).lines == []


def test_several_lines_shipped_are_named_in_the_refusal() -> None:
    desk = Desk()
    lines = [line("PLAIN", 1, no=n) for n in range(1, 9)]
    for command in desk.send(request(*lines)).commands:
        desk.allocated(command)
    ships = desk.send(ship_request()).commands
    for command in ships[:-1]:
        desk.shipped(command)
    (refusal,) = desk.refused(ships[-1], ReasonCode.SHIPMENT_INCOMPLETE, "S-1/8").statuses
    assert isinstance(refusal, ShipRefusedStatus)
    assert refusal.reason.startswith(
        "shipment S-1: lines 1, 2, 3, 4, 5 and 2 more shipped; 1 line was not shipped: "
    )
    assert [v.shipped for v in refusal.lines] == [True] * 7 + [False]


def test_cancel_of_a_partly_shipped_shipment_releases_the_rest_and_closes_it() -> None:
    desk, _ = _partly_shipped()
    cancelled = cancel()
    decision = desk.send(cancelled)
    assert [(type(c), c.line_no) for c in decision.commands] == [(Release, 1)]
    assert decision.statuses == ()
    (release,) = decision.commands
    (status,) = desk.released(release).statuses
    assert isinstance(status, CancelledStatus)
    assert status.refused is None
    assert status.answers == (cancelled.message_id,)
    assert [v.line_no for v in status.released_lines] == [1]
    assert desk.phase == "cancelled"
    assert desk.shipment is not None
    assert [(x.line_no, x.status) for x in desk.shipment.lines] == [
        (1, "released"),
        (2, "shipped"),
    ]
    # Final: nothing more ships, is picked or requested; a cancel again is answered alike.
    (ship,) = desk.send(ship_request()).statuses
    assert isinstance(ship, ShipRefusedStatus)
    assert ship.reason == "shipment S-1 is cancelled"
    (picks,) = desk.send(update(1, entry(lots=[("FL2612C", 5)]))).statuses
    assert isinstance(picks, AllocationFailedStatus)
    assert picks.problems[0].reason == "shipment S-1 is cancelled: its picks can no longer change"
    again = desk.send(request(line("PLAIN", 5, no=2)))
    assert again.commands == ()
    (refused,) = again.statuses
    assert isinstance(refused, AllocationFailedStatus)
    assert refused.problems[0].reason == "shipment S-1 is cancelled: it cannot be requested again"
    assert [(v.line_no, v.shipped) for v in refused.allocated_lines] == [(2, True)]
    (twice,) = desk.send(cancel()).statuses
    assert isinstance(twice, CancelledStatus) and twice.refused is None
    assert desk.phase == "cancelled"


def test_a_shipped_shipment_still_cannot_be_cancelled() -> None:
    desk = Desk()
    (allocate,) = desk.send(request(line("PLAIN", 1))).commands
    desk.allocated(allocate)
    (ship,) = desk.send(ship_request()).commands
    desk.shipped(ship)
    decision = desk.send(cancel())
    assert decision.commands == ()
    (status,) = decision.statuses
    assert isinstance(status, CancelledStatus) and status.refused is not None
    assert (
        status.refused.reason == "shipment S-1 is shipped: a shipped shipment cannot be cancelled"
    )


def test_the_line_left_picked_again_ships_with_a_new_ship_request() -> None:
    desk, _ = _partly_shipped()
    (allocate,) = desk.send(update(1, entry(lots=[("FL2612C", 5)]))).commands
    assert isinstance(allocate, Allocate) and allocate.line_no == 1
    (allocated,) = desk.allocated(allocate, lot_moves(("FL2612C", 5))).statuses
    assert isinstance(allocated, AllocatedStatus)
    (ship,) = desk.send(ship_request()).commands
    assert isinstance(ship, Ship) and ship.line_no == 1
    (shipped,) = desk.shipped(ship).statuses
    assert isinstance(shipped, ShippedStatus)
    assert [(v.line_no, v.shipped) for v in shipped.lines] == [(1, True), (2, True)]
    assert [m.mfr_lot for m in shipped.lines[0].movements] == ["FL2612C"]
    assert desk.phase == "shipped"


def test_an_incomplete_refusal_of_a_partly_shipped_shipment_says_what_shipped() -> None:
    """R8 (line 1 picked again, its allocation under way): refused, saying line 2 shipped."""
    desk, _ = _partly_shipped()
    desk.send(update(1, entry(lots=[("FL2612C", 5)])))
    (refusal,) = desk.send(ship_request()).statuses
    assert isinstance(refusal, ShipRefusedStatus)
    assert refusal.reason == (
        "shipment S-1: line 2 shipped; the rest cannot be marked shipped: "
        "line 1 (MILK) is still being allocated"
    )
    assert [(v.line_no, v.shipped) for v in refusal.lines] == [(1, False), (2, True)]


def test_send_prints_the_shipped_lines_as_shipped_never_still_allocated() -> None:
    _, refusal = _partly_shipped()
    text = describe(translate.status(refusal).model_dump(mode="json"))
    assert text.startswith(
        "ShipmentShipRefused SHIPMENT_INCOMPLETE: shipment S-1: line 2 shipped; 1 line was not"
    )
    assert "\n      not shipped: line 1 MILK quantity 5: 5 of FL2612B from lot PO-1/1" in text
    assert "\n      shipped: line 2 PLAIN quantity 5: 5 from lot PO-1/1" in text
    assert "still allocated" not in text


def test_send_prints_a_shipped_line_of_a_refused_picks_update_as_shipped() -> None:
    desk, _ = _partly_shipped()
    (allocate,) = desk.send(update(1, entry(lots=[("FL2612C", 5)]))).commands
    (failed,) = desk.refused(allocate, ReasonCode.INSUFFICIENT_STOCK, "5").statuses
    assert isinstance(failed, AllocationFailedStatus)
    text = describe(translate.status(failed).model_dump(mode="json"))
    assert "\n      still allocated: line 1 MILK quantity 5: 5 of FL2612B" in text
    assert "\n      shipped: line 2 PLAIN quantity 5: 5 from lot PO-1/1" in text


def test_more_lines_than_listed_are_counted_by_state() -> None:
    shipped = {"line_no": 1, "lic": "P", "quantity": "1", "shipped": True}
    waiting = {"line_no": 2, "lic": "P", "quantity": "1", "shipped": False}
    text = describe(
        {
            "type": "ShipmentShipRefused",
            "reason_code": "SHIPMENT_INCOMPLETE",
            "reason": "r",
            "lines": [shipped] * 12 + [waiting] * 3,
        }
    )
    assert "\n      … 2 more lines shipped" in text
    assert "\n      … 3 more lines not shipped" in text


def test_a_partly_shipped_refusal_too_big_to_list_goes_without_movements() -> None:
    """As the other statuses: its lines' units are left out, saying so, and it still answers."""
    _, refusal = _partly_shipped()
    wire = translate.status(refusal, max_bytes=200, measured_from=1)
    assert wire.movements_omitted is True
    assert [(x.line_no, x.shipped, x.movements) for x in wire.lines] == [
        (1, False, []),
        (2, True, []),
    ]
    assert wire.answers == list(refusal.answers) != []
