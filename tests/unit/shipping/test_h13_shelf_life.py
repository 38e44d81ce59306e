"""R9, a sale's minimum remaining shelf life, in shipping's core: a line keeps the requirement
(its own, else the request's; none on a vendor return) and every AllocateLine of it carries it,
a picks update's too; a request sent again with another requirement releases the line's
allocation before allocating it again, as another ship date does."""

from __future__ import annotations

import itertools
from decimal import Decimal

import orjson
from pydantic import TypeAdapter

from services.shipping import domain, repository, translate
from services.shipping.model import Allocate, Ready, Release, Request, RequestLine
from shared.contracts import upstream as u
from shared.contracts.codec import decode
from tests.unit.shipping.test_lifecycle import DAY, Desk, cancel, entry, line, update

_ids = itertools.count(1)


def request(*lines: RequestLine, kind: str = "sale", days: int = 0, sid: str = "S-1") -> Request:
    return Request(
        message_id=f"h13-{next(_ids)}",
        shipment_id=sid,
        office="AI",
        kind="sale" if kind == "sale" else "vendor_return",
        ship_on=DAY,
        lines=lines,
        counterparty="Montboro",
        min_shelf_life_days=days,
    )


def shelf(lic: str, quantity: int, no: int, days: int | None) -> RequestLine:
    return RequestLine(line_no=no, lic=lic, quantity=Decimal(quantity), min_shelf_life_days=days)


def allocates(commands: tuple[object, ...]) -> dict[int, int]:
    """line → the minimum shelf life its AllocateLine carries."""
    return {c.line_no: c.min_shelf_life_days for c in commands if isinstance(c, Allocate)}


def test_a_line_takes_its_own_requirement_else_the_documents() -> None:
    decision = Desk().send(
        request(line("MILK", 2), shelf("MILK", 1, 2, 10), shelf("MILK", 1, 3, 0), days=30)
    )
    assert allocates(decision.commands) == {1: 30, 2: 10, 3: 0}


def test_a_request_without_requirement_sends_none() -> None:
    assert allocates(Desk().send(request(line("MILK", 2))).commands) == {1: 0}


def test_a_vendor_return_carries_no_requirement() -> None:
    """R14: a vendor return sends back what it names, whatever its shelf life."""
    decision = Desk().send(
        request(line("PLAIN", 2), shelf("PLAIN", 1, 2, 10), kind="vendor_return", days=30)
    )
    assert allocates(decision.commands) == {1: 0, 2: 0}


def test_a_picks_update_keeps_the_lines_requirement() -> None:
    """The picks update names lots only; its AllocateLine still carries the line's 30 days."""
    desk = Desk()
    for command in desk.send(request(line("MILK", 2), shelf("MILK", 1, 2, 10), days=30)).commands:
        desk.allocated(command)
    assert desk.phase == "allocated"

    decision = desk.send(update(1, entry(lots=[("A1", 2)])))
    (command,) = decision.commands
    assert isinstance(command, Allocate) and command.picks.lots
    assert (command.line_no, command.min_shelf_life_days) == (1, 30)
    desk.allocated(command)
    (command,) = desk.send(update(2, entry(lots=[("A1", 1)]))).commands
    assert isinstance(command, Allocate)
    assert (command.line_no, command.min_shelf_life_days) == (2, 10)


def test_a_resend_with_another_requirement_releases_before_allocating_again() -> None:
    """Like another ship date: no allocation may stand on the old requirement if the new one
    is refused. Only the lines whose requirement changed are released."""
    desk = Desk()
    first = request(shelf("MILK", 2, 1, None), shelf("MILK", 1, 2, 10), days=30)
    for command in desk.send(first).commands:
        desk.allocated(command)

    again = desk.send(request(shelf("MILK", 2, 1, None), shelf("MILK", 1, 2, 10), days=45))
    kinds = [(type(c).__name__, c.line_no) for c in again.commands]
    assert kinds == [("Release", 1), ("Allocate", 1), ("Allocate", 2)]
    assert allocates(again.commands) == {1: 45, 2: 10}
    assert desk.shipment is not None
    assert [x.min_shelf_life_days for x in desk.shipment.lines] == [45, 10]


def test_a_resend_with_the_same_requirement_lets_the_allocation_stand() -> None:
    desk = Desk()
    for command in desk.send(request(line("MILK", 2), days=30)).commands:
        desk.allocated(command)
    again = desk.send(request(line("MILK", 2), days=30))
    assert not any(isinstance(c, Release) for c in again.commands)
    assert allocates(again.commands) == {1: 30}


def test_the_wire_request_and_command_carry_the_requirement() -> None:
    """ShipmentRequested → the line's requirement → AllocateLine.min_shelf_life_days."""
    document = {
        "type": "ShipmentRequested",
        "message_id": "m-1",
        "shipment_id": "S-9",
        "office": "AI",
        "customer": "Clinic",
        "ship_on": DAY.isoformat(),
        "min_shelf_life_days": 30,
        "lines": [
            {"line_no": 1, "lic": "MILK", "quantity": 1},
            {"line_no": 2, "lic": "MILK", "quantity": 1, "min_shelf_life_days": "7"},
        ],
    }
    message = decode(TypeAdapter(u.ShipmentRequested), orjson.dumps(document))
    model = translate.upstream(message)
    assert isinstance(model, Request)
    decision = domain.handle(None, model, {})
    wire = [translate.command(c) for c in decision.commands]
    assert [(c.line_no, c.min_shelf_life_days) for c in wire] == [(1, 30), (2, 7)]


def test_old_documents_decode_without_a_requirement() -> None:
    document = {
        "type": "ShipmentRequested",
        "message_id": "m-1",
        "shipment_id": "S-9",
        "office": "AI",
        "ship_on": DAY.isoformat(),
        "lines": [{"line_no": 1, "lic": "MILK", "quantity": 1}],
    }
    message = u.ShipmentRequested.model_validate(document)
    assert message.min_shelf_life_days is None and message.lines[0].min_shelf_life_days is None
    model = translate.upstream(message)
    assert isinstance(model, Request)
    assert allocates(domain.handle(None, model, {}).commands) == {1: 0}


def test_a_request_waiting_for_a_cancel_keeps_its_requirement_stored_and_then_sends_it() -> None:
    """A request read while the shipment is being cancelled waits, stored as JSON: its lines'
    requirement survives that (one stored before it existed reads as none), and is sent once
    the cancel is answered."""
    desk = Desk()
    for command in desk.send(request(line("MILK", 2))).commands:
        desk.allocated(command)
    (release,) = desk.send(cancel()).commands
    desk.send(request(line("MILK", 2), days=30))
    assert desk.shipment is not None
    (waiting,) = desk.shipment.queued
    assert isinstance(waiting, Ready) and waiting.lines[0].min_shelf_life_days == 30

    stored = repository._queued_json(desk.shipment.queued)
    assert stored is not None
    assert repository._queued(orjson.dumps(stored).decode()) == (waiting,)
    old = orjson.loads(orjson.dumps(stored))
    del old[0]["request"]["lines"][0]["min_shelf_life_days"]
    (before,) = repository._queued(orjson.dumps(old).decode())
    assert isinstance(before, Ready) and before.lines[0].min_shelf_life_days == 0

    assert allocates(desk.released(release).commands) == {1: 30}
