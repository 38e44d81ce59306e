"""Quarantine stated as properties (R9): no sale allocation ever takes quarantined stock, named
or automatic; releasing every quarantine gives back exactly the FEFO choice made without any."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocation.domain.decide import decide
from services.allocation.domain.model import LineAllocated, LotPick
from tests.unit.allocation.builders import Book, D, allocate, item, lot, quarantine, receive

SHIP = date(2024, 3, 1)
QUANTITY = st.decimals(min_value=D("0.000001"), max_value=D(50), places=6)
LOTS = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C"]),
        QUANTITY,
        st.integers(min_value=0, max_value=3),  # expiry, days from the ship date
        st.sampled_from(["AI", "BE"]),
    ),
    min_size=1,
    max_size=6,
)
# What is quarantined: a manufacturer lot (at every office or one) or an inventory lot (by n).
RULES = st.lists(
    st.one_of(
        st.tuples(st.just("mfr"), st.sampled_from(["A", "B", "C"]), st.sampled_from([None, "AI"])),
        st.tuples(st.just("lot"), st.integers(min_value=0, max_value=5), st.none()),
    ),
    max_size=3,
)


def _book(lots: list[tuple[str, Decimal, int, str]]) -> Book:
    book = Book(item(track=True))
    for n, (name, quantity, expires, office) in enumerate(lots):
        expiry = SHIP + timedelta(days=expires)
        book.ok(
            receive(
                f"PO-{n}/1", str(quantity), lots=[lot(name, str(quantity), expiry)], office=office
            )
        )
    return book


def _quarantine_all(
    book: Book, lots: list[tuple[str, Decimal, int, str]], rules: list[tuple[str, object, object]]
) -> list[tuple[str | None, str | None, str | None]]:
    """Put the rules in force (those naming stock the item has); returns their keys."""
    applied = []
    for n, (kind, what, office) in enumerate(rules):
        if kind == "mfr":
            mfr_lot, lot_id = str(what), None
            if all(name != mfr_lot for name, *_ in lots):
                continue
        else:
            if int(str(what)) >= len(lots):
                continue
            mfr_lot, lot_id = None, f"PO-{what}/1"
        where = office if isinstance(office, str) else None
        book.ok(quarantine(f"Q-{n}", mfr_lot=mfr_lot, lot_id=lot_id, office=where))
        applied.append((mfr_lot, lot_id, where))
    return applied


def _held(book: Book, lot_id: str, mfr_lot: str | None) -> bool:
    office = book.state.lots[lot_id].office
    return any(r.covers(lot_id, office, mfr_lot) for r in book.state.quarantines.values())


@settings(max_examples=150, deadline=None)
@given(
    lots=LOTS,
    rules=RULES,
    wanted=QUANTITY,
    office=st.sampled_from(["AI", "BE"]),
    named=st.sampled_from([None, "A", "B", "C"]),
)
def test_r9_no_sale_allocation_ever_takes_quarantined_stock(
    lots: list[tuple[str, Decimal, int, str]],
    rules: list[tuple[str, object, object]],
    wanted: Decimal,
    office: str,
    named: str | None,
) -> None:
    book = _book(lots)
    _quarantine_all(book, lots, rules)
    picks = [LotPick(mfr_lot=named, quantity=wanted)] if named else []
    decision = decide(book.state, allocate("S-1", str(wanted), office=office, lots=picks))
    for event in decision.events:
        if isinstance(event, LineAllocated):
            for m in event.movements:
                assert m.lot_id is not None
                assert not _held(book, m.lot_id, m.mfr_lot), m


@settings(max_examples=150, deadline=None)
@given(lots=LOTS, rules=RULES, wanted=QUANTITY, office=st.sampled_from(["AI", "BE"]))
def test_r9_releasing_every_quarantine_restores_the_fefo_choice(
    lots: list[tuple[str, Decimal, int, str]],
    rules: list[tuple[str, object, object]],
    wanted: Decimal,
    office: str,
) -> None:
    book = _book(lots)
    before = decide(book.state, allocate("S-1", str(wanted), office=office)).events
    for mfr_lot, lot_id, where in _quarantine_all(book, lots, rules):
        if (mfr_lot or "", lot_id or "", where or "") in book.state.quarantines:
            book.ok(quarantine(mfr_lot=mfr_lot, lot_id=lot_id, office=where, quarantined=False))
    assert book.state.quarantines == {}
    after = decide(book.state, allocate("S-1", str(wanted), office=office)).events
    assert [_answer(e) for e in after] == [_answer(e) for e in before]


def _answer(event: object) -> object:
    if isinstance(event, LineAllocated):
        return [(m.lot_id, m.mfr_lot, m.quantity) for m in event.movements]
    return (type(event).__name__, getattr(event, "reason", None))
