"""Building contract models from values the contract already validated, without validating them
again: one home for the trick allocation's events and shipping's statuses use on their hot path.

A "trusted" model gets the same `__dict__` (every field, in declaration order, defaults filled as
validation fills them), fields-set and empty extra/private state that validating the same keyword
arguments gives, so `codec.encode` writes the same bytes. `model_construct` does the same but is
no faster than validating (pydantic 2.14: per-field alias and default lookups). Each caller's
tests hold its bytes against the validating build, so a pydantic upgrade that changes the
internals fails there, not in production.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from shared.contracts.events import Movement
from shared.movements import MovementValues

M = TypeVar("M", bound=BaseModel)

_new = object.__new__
_set = object.__setattr__
_MOVEMENT_FIELDS = frozenset(Movement.model_fields)


def trusted(cls: type[M], values: dict[str, Any], fields_set: frozenset[str]) -> M:
    """`cls` holding `values` (every field, in declaration order) as validation leaves them;
    `fields_set`: the fields the validating build would have been given explicitly."""
    model = _new(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", set(fields_set))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


def movement(m: MovementValues) -> Movement:
    """The wire `Movement` of already validated values."""
    return trusted(
        Movement,
        {
            "lot_id": m.lot_id,
            "mfr_lot": m.mfr_lot,
            "expires_on": m.expires_on,
            "serial": m.serial,
            "quantity": m.quantity,
            "unit_cost": m.unit_cost,
        },
        _MOVEMENT_FIELDS,
    )
