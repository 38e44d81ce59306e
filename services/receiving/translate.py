"""Wire ↔ domain at receiving's edge: upstream documents and allocation's events in, commands
and document statuses out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field
from pydantic_core import ErrorDetails

from services.receiving import domain as d
from shared.contracts import commands as c
from shared.contracts import events as e
from shared.contracts import invalid
from shared.contracts import status as s
from shared.contracts import upstream as u
from shared.contracts.codec import encode
from shared.contracts.invalid import safe_text
from shared.ids import derived_id


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
        bin=line.bin,
    )


def stored_document(m: u.ShipmentReceived) -> str:
    """A held document as kept until it is settled: the message's own JSON."""
    return encode(m).decode()


def held_document(text: str) -> u.ShipmentReceived:
    """A held document read back (it was valid when it arrived; it is validated again)."""
    return u.ShipmentReceived.model_validate_json(text)


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
            serial_lots=dict(line.serial_lots),
            hold=line.hold,
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
        hold=line.hold,
        bin=line.bin,
    )


def confirm_id(command_id: str) -> str:
    """The message id of the `ConfirmHeld` of the held line `command_id` (derived from the
    line's: a redecision sends the same one)."""
    return derived_id(command_id, "confirm")


def confirm_held(command_id: str, lic: str) -> c.ConfirmHeld:
    """Publish a held line."""
    return c.ConfirmHeld(message_id=confirm_id(command_id), lic=lic, command_id=command_id)


def cancel_held(command_id: str, lic: str) -> c.CancelHeld:
    """Undo a held line: another line of its document was refused."""
    return c.CancelHeld(message_id=derived_id(command_id, "cancel"), lic=lic, command_id=command_id)


def answer(event: e.Event) -> d.Answer | None:
    """The answer an event gives to a receipt line command, if it is one."""
    match event:
        case e.StockReceived() | e.StockReturned():
            return d.Answer(
                command_id=event.command_id,
                posted=d.Posted(
                    line_no=event.line_no,
                    lic=event.lic,
                    quantity=event.quantity,
                    lot_id=event.lot_id if isinstance(event, e.StockReceived) else None,
                ),
            )
        case e.LineHeld():
            return d.Answer(command_id=event.command_id, held=True)
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


def refused_settle(event: e.Event) -> e.CommandRejected | None:
    """Allocation's refusal of a `ConfirmHeld` or `CancelHeld` receiving sent, if it is one
    (it answers the settling command's id, not the held line's)."""
    if isinstance(event, e.CommandRejected) and event.command_type in (
        "ConfirmHeld",
        "CancelHeld",
    ):
        return event
    return None


def confirmation_refused(command_id: str, line_no: int, refusal: e.CommandRejected) -> d.Answer:
    """The answer a refused `ConfirmHeld` gives the held line (`command_id`) it confirmed:
    allocation publishes nothing more for it, so the line is refused, nothing of it posted."""
    return d.Answer(
        command_id=command_id,
        problem=d.Problem(
            line_no=line_no,
            lic=refusal.lic,
            reason_code=refusal.reason_code,
            reason=f"allocation refused to confirm the held line: {refusal.reason}",
            offending=refusal.offending,
        ),
    )


class PostedLineResult(s.LineResult):
    """A posted line as receiving keeps it until its document posts: the status's `LineResult`
    and the units a quarantine held as they arrived (allocation's `quarantined`), which its
    warnings are read from (`domain.posting_warnings`). In a status it is a `LineResult`:
    pydantic writes a field's declared model, so `quarantined` never reaches the wire there."""

    quarantined: list[e.HeldOnArrival] = Field(default_factory=list)


def line_result(event: e.StockReceived | e.StockReturned) -> PostedLineResult:
    """The status's account of a posted line: allocation's answer, passed through.

    `model_construct` reuses the event's already validated movement models instead of
    building (and validating) 100,000 new ones; pydantic serializes them as they are.
    """
    received = event if isinstance(event, e.StockReceived) else None
    return PostedLineResult.model_construct(
        line_no=event.line_no,
        lic=event.lic,
        quantity=event.quantity,
        lot_id=None if received is None else received.lot_id,
        generated_serials=[] if received is None else received.generated_serials,
        movements=event.movements,
        quarantined=event.quarantined,
    )


def stored_line_result(text: str) -> PostedLineResult:
    """A line result stored by an earlier batch (also reads the older stored shapes, which had
    the same field names, without `quarantined`: none held)."""
    return PostedLineResult.model_validate_json(text)


# --- statuses ---------------------------------------------------------------------------------


def rejected(
    message_id: str,
    shipment_id: str,
    problems: tuple[d.Problem, ...],
    posted: Sequence[s.LineResult] = (),
    *,
    answers: str,
) -> s.ReceiptRejected:
    """`answers`: the message id of the receipt refused (a status answers one receipt)."""
    return s.ReceiptRejected(
        message_id=message_id,
        shipment_id=shipment_id,
        answers=[answers],
        problems=[problem(p) for p in problems],
        posted_lines=list(posted),
    )


def posted(
    message_id: str,
    shipment_id: str,
    lines: Sequence[s.LineResult],
    *,
    answers: str,
    warnings: Sequence[d.ReceiptWarning] = (),
) -> s.ReceiptPosted:
    """`answers`: the message id of the receipt posted; `warnings`: what its clerk should
    hear about it (`domain.expiry_warnings`)."""
    # Model instances are not validated again (pydantic's default), so this costs nothing per
    # movement.
    return s.ReceiptPosted(
        message_id=message_id,
        shipment_id=shipment_id,
        answers=[answers],
        lines=list(lines),
        warnings=[warning(w) for w in warnings],
    )


def warning(w: d.ReceiptWarning) -> s.ReceiptWarning:
    return s.ReceiptWarning(
        line_no=w.line_no,
        lic=w.lic,
        code=w.code,
        mfr_lot=w.mfr_lot,
        expires_on=w.expires_on,
        lot_id=w.lot_id,
        quarantine_id=w.quarantine_id,
        message=safe_text(w.message),
    )


def problem(p: d.Problem) -> s.LineProblem:
    return s.LineProblem(
        line_no=p.line_no,
        lic=p.lic,
        reason_code=p.reason_code,
        reason=safe_text(p.reason) or p.reason_code.value,
        offending=None if p.offending is None else safe_text(p.offending),
    )


# --- invalid documents ------------------------------------------------------------------------


def invalid_receipt(
    raw: dict[str, Any], errors: Sequence[ErrorDetails]
) -> s.ReceiptRejected | None:
    """The refusal of a receipt that failed the contract's validation but names its ids: every
    validation error as a problem (reason code, field path, offending value, line number and
    LIC of its line). None when it cannot be answered (not a receipt, ids missing or invalid).
    Its id is the one a whole-document refusal takes (a message id is answered once)."""
    if raw.get("type") != "ShipmentReceived":
        return None
    ids = invalid.identifiers(raw, "message_id", "shipment_id")
    if ids is None:
        return None
    message_id, shipment_id = ids
    return s.ReceiptRejected(
        message_id=derived_id(message_id, "rejected"),
        shipment_id=shipment_id,
        answers=[message_id],
        problems=[p.line_problem() for p in invalid.problems(raw, errors)],
    )


def refused_shipment(raw: dict[str, Any]) -> str | None:
    """The `shipment_id` of a receipt that failed validation, if it is one that names its ids
    (one `invalid_receipt` answers)."""
    if raw.get("type") != "ShipmentReceived":
        return None
    ids = invalid.identifiers(raw, "message_id", "shipment_id")
    return None if ids is None else ids[1]


def refuse_receipts(status_topic: str) -> invalid.Refuser:
    """The consumer's hook: an invalid receipt's `ReceiptRejected` on `status_topic`."""

    def refuse(raw: dict[str, Any], errors: Sequence[ErrorDetails]) -> list[invalid.Refusal] | None:
        rejected = invalid_receipt(raw, errors)
        return None if rejected is None else [(status_topic, rejected.shipment_id, rejected)]

    return refuse
