"""Reason codes of the public contract (DESIGN.md §4). Pure: domain cores import it too."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from enum import StrEnum


class ReasonCode(StrEnum):
    UNKNOWN_ITEM = "UNKNOWN_ITEM"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    LOT_REQUIRED = "LOT_REQUIRED"
    EXPIRY_REQUIRED = "EXPIRY_REQUIRED"
    SERIAL_REQUIRED = "SERIAL_REQUIRED"
    SERIAL_COUNT_MISMATCH = "SERIAL_COUNT_MISMATCH"
    DUPLICATE_SERIAL = "DUPLICATE_SERIAL"
    SERIAL_NOT_AVAILABLE = "SERIAL_NOT_AVAILABLE"
    SERIAL_NOT_SHIPPED = "SERIAL_NOT_SHIPPED"
    LOT_NOT_FOUND = "LOT_NOT_FOUND"
    LOT_EXPIRED = "LOT_EXPIRED"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    LOT_QTY_EXCEEDS_USED = "LOT_QTY_EXCEEDS_USED"
    RETURN_EXCEEDS_SHIPPED = "RETURN_EXCEEDS_SHIPPED"
    TRACKING_LOCKED = "TRACKING_LOCKED"
    SHIPMENT_INCOMPLETE = "SHIPMENT_INCOMPLETE"
    UNKNOWN_SHIPMENT = "UNKNOWN_SHIPMENT"
    INVALID_SERIAL_SPAN = "INVALID_SERIAL_SPAN"
    INVALID_BARCODE = "INVALID_BARCODE"


def listed_expiring(dates: Iterable[date | None]) -> str:
    """How a manufacturer lot is listed, for a reason: "expiring on 2026-12-31 and
    2027-01-31", "expiring on 2026-12-31 and without one", "without an expiry date"; never
    "None"."""
    given = set(dates)
    dated = sorted(str(day) for day in given if day is not None)
    parts = [f"expiring on {' and '.join(dated)}"] if dated else []
    if None in given:
        parts.append("without one" if dated else "without an expiry date")
    return " and ".join(parts)
