"""Error vocabulary of the allocation core.

- `ReasonCode`: the contract's refusal codes (DESIGN.md §4), exactly as on the wire.
- `Refusal`: a business "no" raised inside a rule and turned into a `CommandRejected` event by
  `decide()`; it never escapes the core.
- `IllegalTransition`: a serial unit asked to move along an edge its state machine does not have.
  The rules check states before moving units, so this escaping `decide()` is a bug (a broken
  invariant): fail loudly, do not acknowledge.
"""

from __future__ import annotations

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


class Refusal(Exception):
    """A command breaks a rule; `decide()` answers it with `CommandRejected`."""

    def __init__(self, code: ReasonCode, reason: str, offending: str = "") -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.offending = offending


class IllegalTransition(Exception):
    """A serial unit was asked for a state change its state machine forbids (a bug)."""

    def __init__(self, serial: str, current: str, target: str) -> None:
        super().__init__(f"serial {serial!r} cannot go from {current} to {target}")
        self.serial = serial
        self.current = current
        self.target = target
