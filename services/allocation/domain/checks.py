"""Small guards shared by the rules; each raises a `Refusal` naming the offending value."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from services.allocation.domain.draft import Draft
from services.allocation.domain.errors import ReasonCode, Refusal
from services.allocation.domain.holding import where_held
from services.allocation.domain.model import Item, SerialStatus, Unit
from shared.reasons import listed, number

MAX_SERIALS_PER_LINE = 100_000
"""A sane upper size for one line's serials (R5): bigger lines are refused, not generated."""


def positive(quantity: Decimal, what: str = "quantity") -> Decimal:
    """Quantities are finite and > 0 (DESIGN §4)."""
    if not quantity.is_finite() or quantity <= 0:
        raise Refusal(
            ReasonCode.INVALID_QUANTITY,
            f"{what} must be greater than 0, got {number(quantity)}",
            str(quantity),
        )
    return quantity


def nonzero(quantity: Decimal) -> Decimal:
    """An adjustment's signed quantity: finite and not zero."""
    if not quantity.is_finite() or quantity == 0:
        raise Refusal(
            ReasonCode.INVALID_QUANTITY,
            f"quantity must be a number other than 0, got {number(quantity)}",
            str(quantity),
        )
    return quantity


def cost(unit_cost: Decimal | None, item: Item) -> Decimal:
    """The line's unit cost, or the item's estimated unit cost when none is given."""
    value = item.est_unit_cost if unit_cost is None else unit_cost
    if not value.is_finite() or value < 0:
        raise Refusal(
            ReasonCode.INVALID_QUANTITY,
            f"unit cost must not be negative, got {number(value)}",
            str(value),
        )
    return value


def whole_for(item: Item, quantity: Decimal, what: str = "quantity") -> None:
    """Serialized quantities are whole and of a sane size (R4, R5)."""
    if not item.serialized:
        return
    if quantity != quantity.to_integral_value():
        raise Refusal(
            ReasonCode.INVALID_QUANTITY,
            f"{what} of serialized item {item.lic} must be whole, got {number(quantity)}",
            str(quantity),
        )
    if abs(quantity) > MAX_SERIALS_PER_LINE:
        raise Refusal(
            ReasonCode.INVALID_QUANTITY,
            f"{what} {number(quantity)} exceeds the limit of {MAX_SERIALS_PER_LINE} serials "
            "per line",
            str(quantity),
        )


def lot_sum(quantity: Decimal, parts: Iterable[Decimal], what: str = "manufacturer lots") -> None:
    """Named lots cover the line exactly (R3)."""
    total = sum(parts, Decimal(0))
    if total != quantity:
        raise Refusal(
            ReasonCode.INVALID_QUANTITY,
            f"{what} total {number(total)} but the line quantity is {number(quantity)}",
            f"{total} != {quantity}",
        )


def picks_within(quantity: Decimal, parts: Iterable[Decimal]) -> None:
    """Picks may cover part of the line (R8: saved and allocated at any time, shipped only
    once complete), never more than the line."""
    total = sum(parts, Decimal(0))
    if total > quantity:
        raise Refusal(
            ReasonCode.INVALID_QUANTITY,
            f"manufacturer lots total {number(total)}, more than the line quantity "
            f"{number(quantity)}",
            f"{total} > {quantity}",
        )


def serial_list(
    item: Item, serials: tuple[str, ...], quantity: Decimal, *, partial: bool = False
) -> tuple[str, ...]:
    """Exactly `quantity` serials (R4), or at most that many when `partial` (picks, R8); none
    blank, none twice."""
    if len(serials) > quantity or (not partial and len(serials) != quantity):
        raise Refusal(
            ReasonCode.SERIAL_COUNT_MISMATCH,
            f"item {item.lic} needs {number(quantity)} serials, got {len(serials)}",
            f"{len(serials)} != {quantity}",
        )
    seen: set[str] = set()
    for serial in serials:
        if not serial:
            raise Refusal(ReasonCode.SERIAL_REQUIRED, "a serial is blank", serial)
        if serial in seen:
            raise Refusal(ReasonCode.DUPLICATE_SERIAL, f"serial {serial} is listed twice", serial)
        seen.add(serial)
    return serials


def in_stock(item: Item, serial: str, draft: Draft | None = None) -> Refusal:
    """R4: a serial identifies one unit; it cannot be in stock twice. Given the `draft`, the
    reason says where the unit in stock is: "serial IP200-0005 of X is already in stock at
    office WEST, in inventory lot PO-1/1, allocated to shipment SO-2 line 1"."""
    held = None if draft is None else draft.serial_in_stock(serial)
    where = "" if held is None or draft is None else _held_at(draft, held)
    return Refusal(
        ReasonCode.DUPLICATE_SERIAL,
        f"serial {serial} of {item.lic} is already in stock{where}",
        serial,
    )


def _held_at(draft: Draft, unit: Unit) -> str:
    """Where a unit in stock is, to follow "is already in stock": its office and inventory lot,
    and what holds it when it is not free."""
    where = f" at office {draft.lots[unit.lot_id].office}, in inventory lot {unit.lot_id}"
    if unit.status is SerialStatus.ALLOCATED:
        line = "" if unit.line_no is None else f" line {unit.line_no}"
        shipment = "a shipment" if unit.shipment_id is None else f"shipment {unit.shipment_id}"
        return f"{where}, allocated to {shipment}{line}"
    held = where_held(draft, unit)
    return where if held is None else f"{where}, {held}"


def no_serials(item: Item, serials: tuple[str, ...]) -> None:
    if serials and not item.serialized:
        raise Refusal(
            ReasonCode.SERIAL_COUNT_MISMATCH,
            f"item {item.lic} is not serialized: expected no serials, got {len(serials)}",
            ", ".join(serials[:5]),
        )


def no_lots(item: Item, names: Iterable[str]) -> None:
    if item.track_mfr_lot:
        return
    given = list(names)
    if given:
        raise Refusal(
            ReasonCode.INVALID_QUANTITY,
            f"item {item.lic} is not tracked by manufacturer lot: got lots {listed(given)}",
            given[0],
        )
