"""R9: an automatic pick short of stock is refused `INSUFFICIENT_STOCK` with a reason that says
what the free stock at the office is, in the numbers `GET /items` gives: available (fresh
enough, not held), then each part it could not take, only where there is some: "and N more
with less" (shelf life), "and N more expired by <ship date>", "and N more in quarantine".
The parts add up to the free stock at the office; `offending` is requested > available. A sale
at an office that never had a lot of the item names where the item's stock is."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocation.domain.decide import decide
from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import AllocateLine
from tests.unit.allocation.builders import Book, D, allocate, item, lot, quarantine, receive

SHIP = date(2026, 11, 25)
LATE = date(2027, 6, 30)


def flu(*lots: tuple[str, int, date], office: str = "MAIN") -> Book:
    """VAX-FLU, perishable and lot-tracked, one receipt per (mfr lot, quantity, expiry)."""
    book = Book(item("VAX-FLU", track=True), lic="VAX-FLU")
    for n, (name, quantity, expires) in enumerate(lots, start=1):
        book.ok(
            receive(
                f"PO-{n}/1",
                quantity,
                lic="VAX-FLU",
                office=office,
                lots=[lot(name, quantity, expires)],
            )
        )
    return book


def sale(quantity: int, *, office: str = "MAIN", days: int = 0) -> AllocateLine:
    return allocate(
        "S-1", quantity, lic="VAX-FLU", office=office, ship_on=SHIP, min_shelf_life_days=days
    )


def refused(book: Book, quantity: int, *, office: str = "MAIN", days: int = 0) -> tuple[str, str]:
    command = sale(quantity, office=office, days=days)
    refusal = book.refused(command, ReasonCode.INSUFFICIENT_STOCK)
    return refusal.reason, str(refusal.offending)


def held_and_free(free_expires: date) -> Book:
    """3 free of FL-FREE, 150 of FL-HELD held by a recall (both well dated)."""
    book = flu(("FL-FREE", 3, free_expires), ("FL-HELD", 150, LATE))
    book.ok(quarantine("Q-1", lic="VAX-FLU", mfr_lot="FL-HELD"))
    return book


def test_shelf_life_shortfall_leaves_quarantined_stock_out_of_available() -> None:
    """The clerk's case: 3 free, 150 held; one day of shelf life required."""
    reason, offending = refused(held_and_free(LATE), 5, days=1)
    assert reason == (
        "item VAX-FLU at office MAIN: requested 5, available 3 with at least 1 day of shelf "
        "life left, and 150 more in quarantine"
    )
    assert offending == "5 > 3"


def test_shelf_life_shortfall_says_what_has_less_and_what_is_held_apart() -> None:
    """60 days required: the 3 free expire sooner, the 150 with enough are all held."""
    reason, offending = refused(held_and_free(SHIP + timedelta(days=30)), 5, days=60)
    assert reason == (
        "item VAX-FLU at office MAIN: requested 5, available 0 with at least 60 days of shelf "
        "life left, and 3 more with less, and 150 more in quarantine"
    )
    assert offending == "5 > 0"


def test_shortfall_without_shelf_life_reads_as_before() -> None:
    reason, offending = refused(held_and_free(LATE), 5)
    assert reason == (
        "item VAX-FLU at office MAIN: requested 5, available 3, and 150 more in quarantine"
    )
    assert offending == "5 > 3"


def test_shortfall_names_stock_expired_by_the_ship_date() -> None:
    """R9 never takes a lot expired on the ship date: the refusal says how much there is."""
    book = flu(("FL2611A", 40, SHIP - timedelta(days=1)), ("FL2703B", 200, LATE))
    reason, offending = refused(book, 250)
    assert reason == (
        "item VAX-FLU at office MAIN: requested 250, available 200, and 40 more expired by "
        "2026-11-25"
    )
    assert offending == "250 > 200"


def test_a_lot_expiring_on_the_ship_date_is_available_not_expired() -> None:
    book = flu(("FL2611B", 40, SHIP))
    assert refused(book, 50)[0] == "item VAX-FLU at office MAIN: requested 50, available 40"


def test_every_part_at_once_adds_up_to_the_free_stock() -> None:
    """Expired, short-dated, held (whatever its expiry: releasing it is what frees it) and
    eligible stock, each counted once; allocated stock is in none."""
    book = flu(
        ("OLD", 7, SHIP - timedelta(days=3)),
        ("SOON", 4, SHIP + timedelta(days=10)),
        ("GOOD", 6, LATE),
        ("BAD", 20, SHIP - timedelta(days=2)),
    )
    book.ok(quarantine("Q-1", lic="VAX-FLU", mfr_lot="BAD"))
    book.ok(allocate("S-0", 2, lic="VAX-FLU", office="MAIN", ship_on=SHIP))  # 2 of SOON (FEFO)
    reason, offending = refused(book, 9, days=30)
    assert reason == (
        "item VAX-FLU at office MAIN: requested 9, available 6 with at least 30 days of shelf "
        "life left, and 2 more with less, and 7 more expired by 2026-11-25, and 20 more in "
        "quarantine"
    )
    assert offending == "9 > 6"


def test_serialized_units_expired_by_the_ship_date_are_named() -> None:
    book = Book(item("VAX-FLU", track=True, serialized=True), lic="VAX-FLU")
    book.ok(
        receive(
            "PO-1/1",
            2,
            lic="VAX-FLU",
            office="MAIN",
            lots=[lot("OLD", 2, SHIP - timedelta(days=1))],
            serials=["V1", "V2"],
        )
    )
    reason, _ = refused(book, 1)
    assert reason == (
        "item VAX-FLU at office MAIN: requested 1, available 0, and 2 more expired by 2026-11-25"
    )


def test_a_sale_at_an_office_without_the_item_names_where_its_stock_is() -> None:
    """A typo ("MIAN" for "MAIN"): the office never had a lot of the item."""
    book = flu(("FL2703B", 200, LATE))
    reason, offending = refused(book, 5, office="MIAN")
    assert reason == (
        "item VAX-FLU at office MIAN: requested 5, available 0: none at office MIAN; the item "
        "has stock at office MAIN"
    )
    assert offending == "5 > 0"
    book.ok(receive("PO-9/1", 1, lic="VAX-FLU", office="NORTH", lots=[lot("X", 1, LATE)]))
    assert refused(book, 5, office="MIAN")[0].endswith("the item has stock at offices MAIN, NORTH")


def test_no_office_hint_where_the_office_had_a_lot_or_no_office_has_stock() -> None:
    # The office's lot is sold out: it is the right office, only empty.
    book = flu(("A", 2, LATE), office="MIAN")
    book.ok(receive("PO-9/1", 1, lic="VAX-FLU", office="MAIN", lots=[lot("X", 1, LATE)]))
    book.ok(allocate("S-0", 2, lic="VAX-FLU", office="MIAN", ship_on=SHIP))
    assert refused(book, 5, office="MIAN")[0] == (
        "item VAX-FLU at office MIAN: requested 5, available 0"
    )
    # No stock anywhere: nothing to point to.
    book = Book(item("VAX-FLU", track=True), lic="VAX-FLU")
    assert refused(book, 5, office="MIAN")[0] == (
        "item VAX-FLU at office MIAN: requested 5, available 0"
    )


# -- the numbers add up ---------------------------------------------------------------------

QUANTITY = st.decimals(min_value=D("0.000001"), max_value=D(50), places=6)
LOTS = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C"]),
        QUANTITY,
        st.integers(min_value=-3, max_value=6),  # expiry, days from the ship date
        st.sampled_from(["AI", "BE"]),
    ),
    min_size=1,
    max_size=6,
)
PART = re.compile(r", and (\S+) more ")


@settings(max_examples=200, deadline=None)
@given(
    lots=LOTS,
    held=st.lists(st.sampled_from(["A", "B", "C"]), max_size=2, unique=True),
    first=QUANTITY,
    wanted=QUANTITY,
    days=st.integers(min_value=0, max_value=4),
    office=st.sampled_from(["AI", "BE"]),
    serialized=st.booleans(),
)
def test_the_numbers_of_a_shortfall_add_up_to_the_free_stock_at_the_office(
    lots: list[tuple[str, Decimal, int, str]],
    held: list[str],
    first: Decimal,
    wanted: Decimal,
    days: int,
    office: str,
    serialized: bool,
) -> None:
    """available + every "N more" = the free stock (on hand − allocated) at the office, and
    `offending` is requested > available."""
    book = Book(item(track=True, serialized=serialized))
    for n, (name, quantity, expires, where) in enumerate(lots):
        count = int(quantity) + 1 if serialized else quantity  # whole units, at least one
        serials = [f"{n}-{k}" for k in range(int(count))] if serialized else []
        entry = lot(name, str(count), SHIP + timedelta(days=expires))
        book.ok(receive(f"PO-{n}/1", str(count), office=where, lots=[entry], serials=serials))
    for n, name in enumerate(held):
        if any(name == other for other, *_ in lots):
            book.ok(quarantine(f"Q-{n}", mfr_lot=name))
    first = Decimal(int(first) + 1) if serialized else first
    earlier = decide(book.state, allocate("S-0", str(first), office=office, ship_on=SHIP))
    if earlier.rejected is None:  # stock an earlier line holds is free no more
        book.state = earlier.state
    wanted = Decimal(int(wanted) + 1) if serialized else wanted

    decision = decide(
        book.state,
        allocate("S-1", str(wanted), office=office, ship_on=SHIP, min_shelf_life_days=days),
    )

    rejected = decision.rejected
    if rejected is None:
        return
    assert rejected.reason_code is ReasonCode.INSUFFICIENT_STOCK
    state = decision.state
    free = sum(
        (
            row.free
            for (lot_id, _), row in state.mfr_lots.items()
            if state.lots[lot_id].office == office
        ),
        Decimal(0),
    )
    match = re.match(r".*: requested (\S+), available ([^\s,:]+)", rejected.reason)
    assert match is not None, rejected.reason
    asked, available = (Decimal(match[1]), Decimal(match[2]))
    more = [Decimal(n) for n in PART.findall(rejected.reason)]
    assert available + sum(more, Decimal(0)) == free, rejected.reason
    assert all(more), rejected.reason  # a part only where there is some
    assert asked == wanted and available < wanted
    offending = tuple(Decimal(n) for n in str(rejected.offending).split(" > "))
    assert offending == (asked, available)
