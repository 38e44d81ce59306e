"""R14 in shipping's core: every AllocateLine of a vendor return carries the document's
`reference` (its PO, whose lots alone allocation takes for a line naming nothing), a picks
update's too; a sale's carries none (its reference is the customer's order). A vendor return
sent again with another reference is on new terms: its allocations are released first."""

from __future__ import annotations

import itertools
from dataclasses import replace

import orjson
from pydantic import TypeAdapter

from services.shipping import domain, translate
from services.shipping.model import Allocate, Kind, Release, Request, RequestLine
from shared.contracts import upstream as u
from shared.contracts.codec import decode
from shared.contracts.commands import AllocateLine
from tests.unit.shipping.test_lifecycle import DAY, Desk, entry, line, update

_ids = itertools.count(1)


def request(*lines: RequestLine, kind: Kind = "vendor_return", reference: str | None) -> Request:
    return Request(
        message_id=f"h16-{next(_ids)}",
        shipment_id="RTV-1",
        office="MAIN",
        kind=kind,
        ship_on=DAY,
        lines=lines,
        counterparty="SweetCo",
        reference=reference,
    )


def references(commands: tuple[object, ...]) -> list[str | None]:
    return [c.reference for c in commands if isinstance(c, Allocate)]


def test_a_vendor_returns_lines_carry_its_reference() -> None:
    decision = Desk().send(request(line("PLAIN", 5), line("PLAIN", 1, no=2), reference="PO-100"))
    assert references(decision.commands) == ["PO-100", "PO-100"]


def test_a_sales_lines_carry_no_reference() -> None:
    decision = Desk().send(request(line("PLAIN", 5), kind="sale", reference="CUST-PO-7"))
    assert references(decision.commands) == [None]


def test_a_picks_update_carries_the_returns_reference() -> None:
    desk = Desk()
    (command,) = desk.send(
        request(line("MILK", 2, picks=entry(lots=[("A1", 2)])), reference="PO-100")
    ).commands
    desk.allocated(command)
    (again,) = desk.send(update(1, entry(lots=[("B2", 2)]), sid="RTV-1")).commands
    assert references((again,)) == ["PO-100"]


def test_a_vendor_return_sent_again_with_another_reference_releases_first() -> None:
    """Like another ship date: no allocation of PO-100's stock may stand for PO-200."""
    desk = Desk()
    for command in desk.send(request(line("PLAIN", 5), reference="PO-100")).commands:
        desk.allocated(command)
    again = desk.send(request(line("PLAIN", 5), reference="PO-200")).commands
    assert [type(c).__name__ for c in again] == ["Release", "Allocate"]
    assert references(again) == ["PO-200"]


def test_a_sale_sent_again_with_another_reference_keeps_its_allocation() -> None:
    desk = Desk()
    for command in desk.send(request(line("PLAIN", 5), kind="sale", reference="A")).commands:
        desk.allocated(command)
    again = desk.send(request(line("PLAIN", 5), kind="sale", reference="B")).commands
    assert not any(isinstance(c, Release) for c in again)


def test_the_wire_request_and_command_carry_the_reference() -> None:
    """ShipmentRequested.reference → AllocateLine.reference, and back through the codec."""
    document = {
        "type": "ShipmentRequested",
        "message_id": "m-1",
        "shipment_id": "RTV-9",
        "office": "MAIN",
        "kind": "vendor_return",
        "vendor": "SweetCo",
        "reference": "PO-100",
        "ship_on": DAY.isoformat(),
        "lines": [{"line_no": 1, "lic": "SUGAR", "quantity": 5}],
    }
    message = decode(TypeAdapter(u.ShipmentRequested), orjson.dumps(document))
    model = translate.upstream(message)
    assert isinstance(model, Request)
    (command,) = domain.handle(None, model, {}).commands
    wire = translate.command(command)
    assert isinstance(wire, AllocateLine) and wire.reference == "PO-100"
    assert AllocateLine.model_validate_json(wire.model_dump_json()).reference == "PO-100"
    blank = replace(model, reference=None)
    (command,) = domain.handle(None, blank, {}).commands
    assert translate.command(command).model_dump().get("reference") is None
