"""R9 and R11 stated as properties over fractional (6-place) quantities.

- R9: an automatic allocation of a perishable lot-tracked item takes first-expired-first-out
  (ties by receipt date, then decision order, then mfr lot), skips every lot expired before the
  ship date (one expiring on it still ships), takes exactly the line and nothing allocated
  already; short, it is refused naming what was free and fresh.
- R11: a count or loss may put back into a manufacturer lot at most what was used from it; the
  seed's remedy (put back what fits, a beginning balance for the rest) always works.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocation.domain.decide import decide
from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import InventoryAdjusted, LineAllocated
from tests.unit.allocation.builders import Book, D, adjust, allocate, item, lot, receive, ship

SHIP = date(2024, 3, 1)
QUANTITY = st.decimals(min_value=D("0.000001"), max_value=D(50), places=6)


def lots_expiring(latest: int) -> st.SearchStrategy[list[tuple[str, Decimal, int, int]]]:
    """Receipts of manufacturer lots A–C: (lot, quantity, expiry in days from the ship date,
    from 2 before to `latest` after, receipt date in days from the first)."""
    return st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "C"]),
            QUANTITY,
            st.integers(min_value=-2, max_value=latest),
            st.integers(min_value=0, max_value=2),
        ),
        min_size=1,
        max_size=6,
    )


LOTS = lots_expiring(2)


@settings(max_examples=150, deadline=None)
@given(lots=LOTS, wanted=QUANTITY, first=QUANTITY)
def test_r9_automatic_perishable_allocation_is_fefo_over_fresh_free_stock(
    lots: list[tuple[str, Decimal, int, int]], wanted: Decimal, first: Decimal
) -> None:
    book = Book(item(track=True))
    order: dict[tuple[str, str], tuple[date, date, int, str]] = {}
    for n, (name, quantity, expires, received) in enumerate(lots):
        lot_id = f"PO-{n}/1"
        expiry, on = SHIP + timedelta(days=expires), SHIP - timedelta(days=10 - received)
        book.ok(receive(lot_id, str(quantity), lots=[lot(name, str(quantity), expiry)], on=on))
        if expiry >= SHIP:  # R9: expiring on the ship date still ships that day
            order[(lot_id, name)] = (expiry, on, n, name)
    fresh = sum((q for (_, q, e, _) in lots if e >= 0), Decimal(0))
    # Stock an earlier line holds is not free: nothing is allocated twice.
    if first <= fresh:
        book.ok(allocate("S-0", str(first), ship_on=SHIP))
        fresh -= first

    decision = decide(book.state, allocate("S-1", str(wanted), ship_on=SHIP))

    if wanted > fresh:
        rejected = decision.rejected
        assert rejected is not None and rejected.reason_code is ReasonCode.INSUFFICIENT_STOCK
        asked, available = rejected.offending.split(" > ")
        assert (Decimal(asked), Decimal(available)) == (wanted, fresh)
        return
    (event,) = decision.events
    assert isinstance(event, LineAllocated) and event.complete
    taken = [(str(m.lot_id), str(m.mfr_lot)) for m in event.movements]
    assert sum((m.quantity for m in event.movements), Decimal(0)) == wanted
    assert all(key in order for key in taken)  # never an expired lot
    assert taken == sorted(taken, key=lambda key: order[key])  # FEFO
    rows = decision.state.mfr_lots
    # FEFO takes a row only once every row before it is fully allocated.
    ahead = [key for key in sorted(order, key=order.__getitem__) if order[key] < order[taken[-1]]]
    assert all(rows[key].free == 0 for key in ahead)


@settings(max_examples=150, deadline=None)
@given(received=QUANTITY, used=st.decimals(min_value=0, max_value=1, places=3), found=QUANTITY)
def test_r11_count_puts_back_at_most_the_used_quantity_and_the_remedy_always_works(
    received: Decimal, used: Decimal, found: Decimal
) -> None:
    shipped = (received * used).quantize(D("0.000001"))
    book = Book(
        item(track=True), receive("PO-1/1", str(received), lots=[lot("A", str(received), SHIP)])
    )
    if shipped:
        book.ok(allocate("S-1", str(shipped), ship_on=SHIP))
        book.ok(ship("S-1"))

    whole = decide(book.state, adjust("ADJ-1", "count", str(found), lots=[lot("A", str(found))]))

    if found > shipped:
        rejected = whole.rejected
        assert rejected is not None
        assert rejected.reason_code is ReasonCode.LOT_QTY_EXCEEDS_USED
        assert "adjusted quantity exceeds the previously used quantity" in rejected.reason
        # The seed's remedy: reverse the usage for as many as possible, then a beginning
        # balance for the rest; together they add exactly what was found.
        if shipped:
            back = book.ok(adjust("ADJ-2", "count", str(shipped), lots=[lot("A", str(shipped))]))
            assert isinstance(back[0], InventoryAdjusted)
        rest = found - shipped
        book.ok(adjust("ADJ-3", "beginning_balance", str(rest), lots=[lot("A", str(rest), SHIP)]))
    else:
        assert whole.rejected is None
        book.state = whole.state
    on_hand = sum((row.on_hand for row in book.state.mfr_lots.values()), Decimal(0))
    assert on_hand == received - shipped + found
    first = book.state.mfr_lots[("PO-1/1", "A")]
    assert first.on_hand <= first.initial_qty  # the initial quantity is the ceiling
