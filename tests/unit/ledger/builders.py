"""Facts for the ledger core's tests, shaped like the events allocation publishes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.ledger.domain.costing import BookedUsage, PoUpdate
from services.ledger.domain.model import Action, Fact, LotKind, Move, NewLot, UsageRow

D = Decimal
DAY = date(2023, 8, 1)
LIC = "DC-IP3VO-4"
_seq = iter(range(1, 1_000_000))


def _id(prefix: str) -> str:
    return f"{prefix}-{next(_seq)}"


def move(
    lot_id: str | None,
    quantity: str | int,
    cost: str | int = "10",
    *,
    mfr_lot: str | None = None,
    serial: str | None = None,
    expires_on: date | None = None,
) -> Move:
    return Move(
        lot_id=lot_id,
        mfr_lot=mfr_lot,
        expires_on=expires_on,
        serial=serial,
        quantity=D(quantity),
        unit_cost=D(cost),
    )


def receipt(
    lot_id: str,
    quantity: str | int,
    cost: str | int = "10",
    *,
    po: str | None = "PO-1",
    kind: LotKind = "purchase",
    moves: tuple[Move, ...] | None = None,
    lic: str = LIC,
    on: date = DAY,
    office: str = "AI",
) -> Fact:
    """A StockReceived: one new lot with its moves (default: one plain move of everything)."""
    return Fact(
        event_id=_id("received"),
        lic=lic,
        action="receipt",
        office=office,
        document=f"SHIP-{lot_id}",
        line_no=1,
        on=on,
        moves=moves if moves is not None else (move(lot_id, quantity, cost),),
        new_lot=NewLot(
            lot_id=lot_id,
            kind=kind,
            office=office,
            reference=po,
            received_on=on,
            quantity=D(quantity),
            unit_cost=D(cost),
        ),
    )


def act(
    action: Action,
    *moves: Move,
    document: str = "S-1",
    counterparty: str | None = None,
    lic: str = LIC,
    on: date = DAY,
    office: str = "AI",
) -> Fact:
    """Any other action on existing lots (allocation, shipment, count, return …)."""
    return Fact(
        event_id=_id(action),
        lic=lic,
        action=action,
        office=office,
        document=document,
        line_no=1,
        counterparty=counterparty,
        on=on,
        moves=tuple(moves),
    )


def po_update(
    po: str = "PO-1",
    *,
    actual: str | int | None = None,
    closed: bool | None = None,
    ordered: str | int | None = None,
    purchased: str | int | None = None,
    lic: str = LIC,
    on: date = DAY,
) -> PoUpdate:
    return PoUpdate(
        event_id=_id("po"),
        po=po,
        lic=lic,
        on=on,
        ordered_qty=None if ordered is None else D(ordered),
        purchased_qty=None if purchased is None else D(purchased),
        act_unit_cost=None if actual is None else D(actual),
        closed=closed,
    )


def booked(usage: list[UsageRow]) -> list[BookedUsage]:
    """Usage rows as the reconciliation reads them back: booked at their own record's cost,
    with their date."""
    return [
        BookedUsage(
            usage_id=u.usage_id,
            lic=u.lic,
            lot_id=u.lot_id or "",
            source=u.source,
            quantity=u.quantity,
            booked=u.total_cost,
            used_on=u.used_on,
        )
        for u in usage
    ]
