"""Reason codes on the wire: the one definition lives in `shared.reasons` (pure, no pydantic)."""

from shared.reasons import ReasonCode

__all__ = ["ReasonCode"]
