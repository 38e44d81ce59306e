"""R9 with a minimum remaining shelf life, stated as a property over fractional quantities:
an automatic sale of a perishable lot-tracked item with `min_shelf_life_days` N never takes a
lot expiring less than N days after the ship date, takes the eligible lots
first-expired-first-out (ties by receipt date, then decision order, then mfr lot), takes
exactly the line and nothing allocated already; short, it is refused naming what was free and
eligible. N = 0 is R9 as before."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocation.domain.decide import decide
from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import LineAllocated
from tests.unit.allocation.builders import Book, allocate, item, lot, receive
from tests.unit.allocation.test_h9_properties import QUANTITY, SHIP, lots_expiring

LOTS = lots_expiring(6)


@settings(max_examples=200, deadline=None)
@given(
    lots=LOTS,
    wanted=QUANTITY,
    first=QUANTITY,
    first_days=st.integers(min_value=0, max_value=5),
    days=st.integers(min_value=0, max_value=5),
)
def test_r9_automatic_sale_never_takes_a_lot_with_less_than_the_required_shelf_life(
    lots: list[tuple[str, Decimal, int, int]],
    wanted: Decimal,
    first: Decimal,
    first_days: int,
    days: int,
) -> None:
    book = Book(item(track=True))
    expiries: dict[tuple[str, str], date] = {}
    order: dict[tuple[str, str], tuple[date, date, int, str]] = {}
    for n, (name, quantity, expires, received) in enumerate(lots):
        lot_id = f"PO-{n}/1"
        expiry, on = SHIP + timedelta(days=expires), SHIP - timedelta(days=10 - received)
        book.ok(receive(lot_id, str(quantity), lots=[lot(name, str(quantity), expiry)], on=on))
        expiries[(lot_id, name)] = expiry
        order[(lot_id, name)] = (expiry, on, n, name)

    def free_with(required: int) -> Decimal:
        rows = book.state.mfr_lots
        return sum(
            (r.free for key, r in rows.items() if expiries[key] >= SHIP + timedelta(required)),
            Decimal(0),
        )

    # An earlier line with its own requirement holds stock: nothing is allocated twice.
    if first <= free_with(first_days):
        book.ok(allocate("S-0", str(first), ship_on=SHIP, min_shelf_life_days=first_days))
    eligible = free_with(days)

    decision = decide(
        book.state, allocate("S-1", str(wanted), ship_on=SHIP, min_shelf_life_days=days)
    )

    if wanted > eligible:
        rejected = decision.rejected
        assert rejected is not None and rejected.reason_code is ReasonCode.INSUFFICIENT_STOCK
        asked, available = rejected.offending.split(" > ")
        assert (Decimal(asked), Decimal(available)) == (wanted, eligible)
        return
    (event,) = decision.events
    assert isinstance(event, LineAllocated) and event.complete
    taken = [(str(m.lot_id), str(m.mfr_lot)) for m in event.movements]
    assert sum((m.quantity for m in event.movements), Decimal(0)) == wanted
    # Never a lot with less than `days` of shelf life left on the ship date.
    assert all(expiries[key] >= SHIP + timedelta(days=days) for key in taken)
    assert all(
        m.expires_on is not None and m.expires_on >= SHIP + timedelta(days) for m in event.movements
    )
    assert taken == sorted(taken, key=lambda key: order[key])  # FEFO
    # FEFO among eligible lots: a row is taken only once every eligible row before it is.
    rows = decision.state.mfr_lots
    last = order[taken[-1]]
    ahead = [
        key for key in order if order[key] < last and expiries[key] >= SHIP + timedelta(days=days)
    ]
    assert all(rows[key].free == 0 for key in ahead)
