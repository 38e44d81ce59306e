"""Wire ↔ domain at receiving's edge: upstream documents and allocation's events in, commands
and document statuses out."""

from __future__ import annotations

import unicodedata

from services.receiving import domain as d
from shared.contracts import commands as c
from shared.contracts import events as e
from shared.contracts import status as s
from shared.contracts import upstream as u
from shared.movements import moved

_MAX_TEXT = 1_900


def receipt(m: u.ShipmentReceived) -> d.Receipt:
    return d.Receipt(
        message_id=m.message_id,
        shipment_id=m.shipment_id,
        office=m.office,
        source=m.source,
        received_on=m.received_on,
        reference=m.reference,
        customer=m.customer,
        lines=tuple(_line(line) for line in m.lines),
    )


def _line(line: u.ReceiptLine) -> d.ReceiptLine:
    return d.ReceiptLine(
        line_no=line.line_no,
        lic=line.lic,
        quantity=line.quantity,
        unit_cost=line.unit_cost,
        lots=tuple(
            d.LotEntry(mfr_lot=x.mfr_lot, quantity=x.quantity, expires_on=x.expires_on)
            for x in line.lots
        ),
        serials=line.serials if isinstance(line.serials, str | None) else tuple(line.serials),
        scans=tuple(line.scans),
    )


def item(m: e.ItemUpserted) -> d.Item:
    return d.Item(
        lic=m.lic,
        track_mfr_lot=m.track_mfr_lot,
        serialized=m.serialized,
        perishable=m.perishable,
        next_serial=m.next_serial,
        gtin=m.gtin,
    )


def command(doc: u.ShipmentReceived, line: d.LineCommand) -> c.ReceiveStock | c.ReturnStock:
    lots = [
        u.LotQuantity(mfr_lot=x.mfr_lot, expires_on=x.expires_on, quantity=x.quantity)
        for x in line.lots
    ]
    if line.is_return:
        return c.ReturnStock(
            message_id=line.command_id,
            occurred_at=doc.occurred_at,
            lic=line.lic,
            shipment_id=doc.shipment_id,
            line_no=line.line_no,
            office=doc.office,
            customer=doc.customer,
            received_on=doc.received_on,
            quantity=line.quantity,
            lots=lots,
            serials=list(line.serials),
        )
    assert line.lot_id is not None, "a receipt line always names its inventory lot"
    return c.ReceiveStock(
        message_id=line.command_id,
        occurred_at=doc.occurred_at,
        lic=line.lic,
        shipment_id=doc.shipment_id,
        line_no=line.line_no,
        lot_id=line.lot_id,
        office=doc.office,
        kind="production" if doc.source == "production" else "purchase",
        reference=doc.reference,
        vendor=doc.vendor if doc.source == "purchase" else None,
        received_on=doc.received_on,
        quantity=line.quantity,
        unit_cost=line.unit_cost,
        lots=lots,
        serials=list(line.serials),
        generate_serials=line.generate_serials,
    )


def answer(event: e.Event) -> d.Answer | None:
    """The answer an event gives to a receipt line command, if it is one."""
    match event:
        case e.StockReceived():
            return d.Answer(
                command_id=event.command_id,
                posted=d.Posted(
                    line_no=event.line_no,
                    lic=event.lic,
                    quantity=event.quantity,
                    lot_id=event.lot_id,
                    generated_serials=tuple(event.generated_serials),
                    movements=moved(event.movements),
                ),
            )
        case e.StockReturned():
            return d.Answer(
                command_id=event.command_id,
                posted=d.Posted(
                    line_no=event.line_no,
                    lic=event.lic,
                    quantity=event.quantity,
                    movements=moved(event.movements),
                ),
            )
        case e.CommandRejected() if event.command_type in ("ReceiveStock", "ReturnStock"):
            return d.Answer(
                command_id=event.command_id,
                problem=d.Problem(
                    line_no=event.line_no,
                    lic=event.lic,
                    reason_code=event.reason_code,
                    reason=event.reason,
                    offending=event.offending,
                ),
            )
    return None


# --- statuses ---------------------------------------------------------------------------------


def rejected(
    message_id: str,
    shipment_id: str,
    problems: tuple[d.Problem, ...],
    posted: tuple[d.Posted, ...] = (),
) -> s.ReceiptRejected:
    return s.ReceiptRejected(
        message_id=message_id,
        shipment_id=shipment_id,
        problems=[problem(p) for p in problems],
        posted_lines=[line_result(p) for p in posted],
    )


def posted(message_id: str, shipment_id: str, lines: tuple[d.Posted, ...]) -> s.ReceiptPosted:
    return s.ReceiptPosted(
        message_id=message_id,
        shipment_id=shipment_id,
        lines=[line_result(p) for p in lines],
    )


def problem(p: d.Problem) -> s.LineProblem:
    return s.LineProblem(
        line_no=p.line_no,
        lic=p.lic,
        reason_code=p.reason_code,
        reason=safe_text(p.reason) or p.reason_code.value,
        offending=None if p.offending is None else safe_text(p.offending),
    )


def line_result(p: d.Posted) -> s.LineResult:
    return s.LineResult(
        line_no=p.line_no,
        lic=p.lic,
        quantity=p.quantity,
        lot_id=p.lot_id,
        generated_serials=list(p.generated_serials),
        movements=[
            e.Movement(
                lot_id=m.lot_id,
                mfr_lot=m.mfr_lot,
                expires_on=m.expires_on,
                serial=m.serial,
                quantity=m.quantity,
                unit_cost=m.unit_cost,
            )
            for m in p.movements
        ],
    )


def safe_text(value: str) -> str:
    """Text the contract accepts: control characters (a scanner's GS, NUL) escaped, clipped.

    Offending values are echoed from hostile input; they must never make the refusal itself
    invalid.
    """
    out = []
    for ch in value:
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs"):
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape", "backslashreplace").decode("ascii"))
    text = "".join(out)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"
