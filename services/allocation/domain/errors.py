"""Error vocabulary of the allocation core.

- `ReasonCode`: the contract's refusal codes (DESIGN.md §4), from `shared.reasons` (pure).
- `Refusal`: a business "no" raised inside a rule and turned into a `CommandRejected` event by
  `decide()`; it never escapes the core.
- `IllegalTransition`: a serial unit asked to move along an edge its state machine does not have.
  The rules check states before moving units, so this escaping `decide()` is a bug (a broken
  invariant): fail loudly, do not acknowledge.
"""

from __future__ import annotations

from shared.reasons import ReasonCode

__all__ = ["IllegalTransition", "ReasonCode", "Refusal"]


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
