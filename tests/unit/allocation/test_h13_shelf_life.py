"""R9 with a minimum remaining shelf life: a sale of a perishable item with
`min_shelf_life_days` N takes only lots expiring at least N days after the ship date
(`expires_on >= ship_on + N`). N = 0 is R9 as before (a lot expiring on the ship date still
ships); a vendor return (R14) and an item that is not perishable ignore N."""

from __future__ import annotations

from datetime import date, timedelta

from services.allocation import translate
from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import AllocateLine, LineAllocated
from shared.contracts import commands as c
from tests.unit.allocation.builders import Book, allocate, item, lot, pick, receive

SHIP = date(2026, 11, 2)


def days(n: int) -> date:
    return SHIP + timedelta(days=n)


def milk(*lots: tuple[str, int, int]) -> Book:
    """A perishable lot-tracked item with one receipt per (mfr lot, quantity, days left)."""
    book = Book(item(track=True))
    for n, (name, quantity, left) in enumerate(lots, start=1):
        book.ok(receive(f"PO-{n}/1", quantity, lots=[lot(name, quantity, days(left))]))
    return book


def taken(events: tuple[object, ...]) -> list[tuple[str | None, str]]:
    (event,) = events
    assert isinstance(event, LineAllocated)
    return [(m.mfr_lot, str(m.quantity)) for m in event.movements]


def test_r9_automatic_sale_skips_lots_with_less_shelf_life_than_required() -> None:
    """FEFO among the eligible lots only: SOON (10 days left) is passed over for N = 30."""
    book = milk(("SOON", 5, 10), ("LATE", 5, 40), ("LATER", 5, 60))
    events = book.ok(allocate("S-1", 7, ship_on=SHIP, min_shelf_life_days=30))
    assert taken(events) == [("LATE", "5"), ("LATER", "2")]
    assert book.mfr("PO-1/1", "SOON")[1] == 0  # nothing allocated from it


def test_r9_lot_expiring_exactly_n_days_after_the_ship_date_is_eligible() -> None:
    """The boundary: `expires_on == ship_on + N` ships, one day less does not."""
    book = milk(("EDGE", 2, 29), ("JUST", 2, 30))
    assert taken(book.ok(allocate("S-1", 2, ship_on=SHIP, min_shelf_life_days=30))) == [
        ("JUST", "2")
    ]
    refusal = book.refused(
        allocate("S-2", 1, ship_on=SHIP, min_shelf_life_days=30), ReasonCode.INSUFFICIENT_STOCK
    )
    assert refusal.offending == "1 > 0"


def test_r9_no_requirement_keeps_shipping_a_lot_expiring_on_the_ship_date() -> None:
    """N = 0 (or left out) is R9 unchanged: a lot expiring on the ship date still ships, one
    expired the day before does not."""
    book = milk(("OLD", 3, -1), ("TODAY", 3, 0))
    assert taken(book.ok(allocate("S-1", 3, ship_on=SHIP, min_shelf_life_days=0))) == [
        ("TODAY", "3")
    ]
    book = milk(("OLD", 3, -1), ("TODAY", 3, 0))
    assert taken(book.ok(allocate("S-1", 3, ship_on=SHIP))) == [("TODAY", "3")]


def test_r14_vendor_return_ignores_the_shelf_life_requirement() -> None:
    """A vendor return sends back what it sends back: short-dated, expired or not."""
    book = milk(("SOON", 4, 3), ("GONE", 2, -5))
    events = book.ok(
        allocate(
            "RV-1",
            6,
            kind="vendor_return",
            to="Vendor",
            ship_on=SHIP,
            lots=[pick("SOON", 4), pick("GONE", 2)],
            min_shelf_life_days=30,
        )
    )
    assert taken(events) == [("SOON", "4"), ("GONE", "2")]


def test_r9_item_not_perishable_ignores_the_shelf_life_requirement() -> None:
    """Lot-tracked but not perishable: expiry dates do not order or exclude anything."""
    book = Book(item(track=True, perishable=False))
    book.ok(receive("PO-1/1", 3, lots=[lot("A", 3, days(2))]))
    assert taken(book.ok(allocate("S-1", 3, ship_on=SHIP, min_shelf_life_days=30))) == [("A", "3")]


def test_r9_named_lot_without_the_shelf_life_required_is_refused_lot_expired() -> None:
    """A named pick of a lot that is not eligible: LOT_EXPIRED, naming the lot, its expiry,
    the ship date and the days required."""
    book = milk(("SOON", 5, 8))
    refusal = book.refused(
        allocate("S-1", 2, ship_on=SHIP, lots=[pick("SOON", 2)], min_shelf_life_days=30),
        ReasonCode.LOT_EXPIRED,
    )
    assert refusal.reason == (
        "manufacturer lot SOON of L expires on 2026-11-10, 8 days after the ship date "
        "2026-11-02, but the line requires at least 30 days of shelf life left"
    )
    assert refusal.offending == "SOON"


def test_r9_named_lot_expiring_on_the_ship_date_names_it_so() -> None:
    book = milk(("TODAY", 5, 0))
    refusal = book.refused(
        allocate("S-1", 1, ship_on=SHIP, lots=[pick("TODAY", 1)], min_shelf_life_days=1),
        ReasonCode.LOT_EXPIRED,
    )
    assert refusal.reason == (
        "manufacturer lot TODAY of L expires on 2026-11-02, the ship date, but the line "
        "requires at least 1 day of shelf life left"
    )


def test_r9_named_lot_already_expired_keeps_its_reason() -> None:
    """Expired before the ship date: said so, whatever the requirement."""
    book = milk(("OLD", 5, -3))
    refusal = book.refused(
        allocate("S-1", 1, ship_on=SHIP, lots=[pick("OLD", 1)], min_shelf_life_days=30),
        ReasonCode.LOT_EXPIRED,
    )
    assert refusal.reason == (
        "manufacturer lot OLD of L expired on 2026-10-30, before the ship date 2026-11-02"
    )


def test_r9_named_eligible_lot_is_allocated() -> None:
    book = milk(("LATE", 5, 45))
    events = book.ok(
        allocate("S-1", 2, ship_on=SHIP, lots=[pick("LATE", 2)], min_shelf_life_days=45)
    )
    assert taken(events) == [("LATE", "2")]


def test_r9_named_serial_in_a_lot_without_the_shelf_life_required_is_refused() -> None:
    """A serial named (typed or scanned) in a lot that is not eligible: LOT_EXPIRED."""
    book = Book(item(track=True, serialized=True))
    book.ok(receive("PO-1/1", 2, lots=[lot("SOON", 2, days(5))], serials=["V1", "V2"]))
    book.ok(receive("PO-2/1", 1, lots=[lot("LATE", 1, days(90))], serials=["V3"]))
    refusal = book.refused(
        allocate("S-1", 1, ship_on=SHIP, serials=["V2"], min_shelf_life_days=30),
        ReasonCode.LOT_EXPIRED,
    )
    assert refusal.reason == (
        "serial V2 of L is in manufacturer lot SOON, which expires on 2026-11-07, 5 days after "
        "the ship date 2026-11-02, but the line requires at least 30 days of shelf life left"
    )
    assert refusal.offending == "V2"
    events = book.ok(allocate("S-2", 1, ship_on=SHIP, serials=["V3"], min_shelf_life_days=30))
    assert taken(events) == [("LATE", "1")]


def test_r9_automatic_serialized_sale_skips_units_of_short_dated_lots() -> None:
    book = Book(item(track=True, serialized=True))
    book.ok(receive("PO-1/1", 2, lots=[lot("SOON", 2, days(5))], serials=["V1", "V2"]))
    book.ok(receive("PO-2/1", 2, lots=[lot("LATE", 2, days(90))], serials=["V3", "V4"]))
    (event,) = book.ok(allocate("S-1", 2, ship_on=SHIP, min_shelf_life_days=30))
    assert isinstance(event, LineAllocated)
    assert [m.serial for m in event.movements] == ["V3", "V4"]
    refusal = book.refused(
        allocate("S-2", 1, ship_on=SHIP, min_shelf_life_days=30), ReasonCode.INSUFFICIENT_STOCK
    )
    assert refusal.reason == (
        "item L at office AI: requested 1, available 0 with at least 30 days of shelf life "
        "left, and 2 more with less"
    )


def test_r9_shortfall_says_what_has_the_shelf_life_and_what_more_has_less() -> None:
    """Short of eligible stock: INSUFFICIENT_STOCK naming what is free with at least N days
    left, how much more is free with less, and how much more expired by the ship date (which
    is neither)."""
    book = milk(("GONE", 9, -1), ("SOON", 4, 10), ("LATE", 3, 40))
    refusal = book.refused(
        allocate("S-1", 5, ship_on=SHIP, min_shelf_life_days=30), ReasonCode.INSUFFICIENT_STOCK
    )
    assert refusal.reason == (
        "item L at office AI: requested 5, available 3 with at least 30 days of shelf life "
        "left, and 4 more with less, and 9 more expired by 2026-11-02"
    )
    assert refusal.offending == "5 > 3"


def test_r9_shortfall_with_nothing_shorter_dated_says_only_what_is_available() -> None:
    book = milk(("LATE", 3, 40))
    refusal = book.refused(
        allocate("S-1", 5, ship_on=SHIP, min_shelf_life_days=1), ReasonCode.INSUFFICIENT_STOCK
    )
    assert refusal.reason == (
        "item L at office AI: requested 5, available 3 with at least 1 day of shelf life left"
    )


def test_r9_shortfall_without_requirement_reads_as_before() -> None:
    book = milk(("SOON", 4, 10))
    refusal = book.refused(allocate("S-1", 5, ship_on=SHIP), ReasonCode.INSUFFICIENT_STOCK)
    assert refusal.reason == "item L at office AI: requested 5, available 4"


def test_r9_requirement_past_the_last_date_refuses_without_crashing() -> None:
    """A ship date near the calendar's end plus N days is past it: a refusal, never an
    overflow in the consumer (only the calendar's last day, "never expires", would do)."""
    ship_on = date(9999, 12, 1)
    book = Book(item(track=True))
    book.ok(receive("PO-1/1", 3, lots=[lot("A", 3, date(9999, 12, 30))]))
    refusal = book.refused(
        allocate("S-1", 1, ship_on=ship_on, min_shelf_life_days=3650),
        ReasonCode.INSUFFICIENT_STOCK,
    )
    assert refusal.offending == "1 > 0"
    refusal = book.refused(
        allocate("S-2", 1, ship_on=ship_on, lots=[pick("A", 1)], min_shelf_life_days=3650),
        ReasonCode.LOT_EXPIRED,
    )
    assert "at least 3650 days of shelf life" in refusal.reason


def test_the_wire_command_carries_the_requirement_into_the_domain() -> None:
    """`AllocateLine.min_shelf_life_days` (0 when left out) reaches the domain's command."""
    fields = {
        "message_id": "m-1",
        "lic": "L",
        "shipment_id": "S-1",
        "line_no": 1,
        "office": "AI",
        "ship_on": SHIP,
        "quantity": "2",
    }
    command = translate.to_domain(c.AllocateLine(**fields, min_shelf_life_days=30))
    assert isinstance(command, AllocateLine) and command.min_shelf_life_days == 30
    command = translate.to_domain(c.AllocateLine(**fields))
    assert isinstance(command, AllocateLine) and command.min_shelf_life_days == 0


def test_r9_item_without_manufacturer_lots_has_no_expiry_to_require_shelf_life_of() -> None:
    """Perishable but not lot-tracked: no stock has an expiry date, so N changes nothing, not
    even how a shortfall reads."""
    book = Book(item(perishable=True), receive("PO-1/1", 3))
    assert taken(book.ok(allocate("S-1", 2, ship_on=SHIP, min_shelf_life_days=30))) == [(None, "2")]
    refusal = book.refused(
        allocate("S-2", 2, ship_on=SHIP, min_shelf_life_days=30), ReasonCode.INSUFFICIENT_STOCK
    )
    assert refusal.reason == "item L at office AI: requested 2, available 1"
