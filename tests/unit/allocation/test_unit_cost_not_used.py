"""A count or loss that adds units with a `unit_cost` puts them back into existing lots at the
lot's own cost (R11: it reverses usage), so the cost the clerk gave goes unused for them:
`InventoryAdjusted.warnings` says so (`UNIT_COST_NOT_USED`), one warning per inventory lot. The
unallocated rest of a plain item (R12) does take the cost given, and a beginning balance makes
a new lot at it: neither is warned of, nor a cost equal to the lot's."""

from __future__ import annotations

from datetime import date

from services.allocation.domain.adjustment_warnings import unit_cost_not_used
from services.allocation.domain.model import AdjustmentWarning, InventoryAdjusted, LotMovement
from tests.unit.allocation.builders import (
    Book,
    D,
    adjust,
    allocate,
    item,
    lot,
    pick,
    receive,
    ship,
)

AX_EXPIRES = date(2025, 6, 30)


def adjusted(events: tuple[object, ...]) -> InventoryAdjusted:
    (event,) = events
    assert isinstance(event, InventoryAdjusted)
    return event


def cost_warnings(event: InventoryAdjusted) -> list[AdjustmentWarning]:
    return [w for w in event.warnings if w.code == "UNIT_COST_NOT_USED"]


def says(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, (part, message)


def acid_sold() -> Book:
    """ACID (lot-tracked): inventory lot RC-4/2 of manufacturer lot AX at 3.00, 3 of 5 sold."""
    return Book(
        item("ACID", track=True),
        receive(
            "RC-4/2", 5, lic="ACID", office="MAIN", lots=[lot("AX", 5, AX_EXPIRES)], cost="3.00"
        ),
        allocate("SO-1", 3, lic="ACID", office="MAIN", lots=[pick("AX", 3)]),
        ship("SO-1", lic="ACID"),
        lic="ACID",
    )


def test_a_count_putting_back_a_lot_at_its_cost_says_the_unit_cost_given_was_not_used() -> None:
    """CNT-1: +3 of AX at 5.00 reverse usage at RC-4/2's 3.00 (R11, as the seed): 9, not 15."""
    book = acid_sold()
    event = adjusted(
        book.ok(
            adjust(
                "CNT-1",
                "count",
                3,
                lic="ACID",
                office="MAIN",
                lots=[lot("AX", 3)],
                cost="5.00",
            )
        )
    )
    assert [(m.lot_id, m.quantity, m.unit_cost) for m in event.movements] == [
        ("RC-4/2", D(3), D("3.00"))
    ]
    (warning,) = event.warnings
    assert (
        warning.code,
        warning.lot_id,
        warning.mfr_lot,
        warning.expires_on,
        warning.office,
        warning.serial,
    ) == ("UNIT_COST_NOT_USED", "RC-4/2", "AX", AX_EXPIRES, "MAIN", None)
    says(
        warning.message,
        "this count put 3 units of ACID (manufacturer lot AX) back into inventory lot RC-4/2 "
        "at office MAIN at the lot's own cost, not the unit_cost given, 5 (15 for them)",
        "the lot was received at 3 each (9), and once its PO closes, or if it has, at the PO's"
        " actual cost, which the ledger books",
        "reverses their usage at the lot's cost (R11)",
        "To add stock at 5, send a beginning_balance, which makes a new lot at the cost it names",
    )


def test_a_plain_count_warns_for_the_units_back_in_a_lot_not_for_the_unallocated_rest() -> None:
    """CNT-5: SALT +10 at 0.60: 4 go back into the lot at its 0.50, the other 6 (R12) take
    0.60 and are warned of only as stock in no lot."""
    book = Book(
        item("SALT"),
        receive("PO-9/1", 5, lic="SALT", office="MAIN", cost="0.50"),
        allocate("SO-1", 4, lic="SALT", office="MAIN"),
        ship("SO-1", lic="SALT"),
        lic="SALT",
    )
    event = adjusted(book.ok(adjust("CNT-5", "count", 10, lic="SALT", office="MAIN", cost="0.60")))
    assert [(m.lot_id, m.quantity, m.unit_cost) for m in event.movements] == [
        ("PO-9/1", D(4), D("0.50")),
        (None, D(6), D("0.60")),
    ]
    assert sorted(w.code for w in event.warnings) == ["STOCK_IN_NO_LOT", "UNIT_COST_NOT_USED"]
    (warning,) = cost_warnings(event)
    assert (warning.lot_id, warning.mfr_lot, warning.office) == ("PO-9/1", None, "MAIN")
    says(
        warning.message,
        "4 units of SALT back into inventory lot PO-9/1 at office MAIN at the lot's own cost, "
        "not the unit_cost given, 0.6 (2.4 for them)",
        "the lot was received at 0.5 each (2)",
    )
    assert "6 unit" not in warning.message


def test_a_count_all_into_no_lot_took_its_unit_cost_and_is_not_warned_of_it() -> None:
    book = Book(item("SALT"), lic="SALT")
    event = adjusted(book.ok(adjust("CNT-6", "count", 6, lic="SALT", office="MAIN", cost="0.60")))
    assert [w.code for w in event.warnings] == ["STOCK_IN_NO_LOT"]
    assert book.state.unallocated["MAIN"].value == D("3.6")


def test_a_loss_putting_back_units_is_warned_of_as_a_count() -> None:
    book = acid_sold()
    event = adjusted(
        book.ok(
            adjust("LOSS-1", "loss", 1, lic="ACID", office="MAIN", lots=[lot("AX", 1)], cost="4")
        )
    )
    (warning,) = event.warnings
    assert warning.code == "UNIT_COST_NOT_USED"
    says(warning.message, "this loss put 1 unit of ACID", "given, 4 (4 for it)", "at 3 each (3)")


def test_a_unit_cost_equal_to_the_lots_or_none_at_all_is_not_warned_of() -> None:
    for cost in ("3", "3.000", None):
        book = acid_sold()
        count = adjust(
            "CNT-2", "count", 2, lic="ACID", office="MAIN", lots=[lot("AX", 2)], cost=cost
        )
        assert adjusted(book.ok(count)).warnings == (), cost


def test_a_beginning_balance_at_its_unit_cost_is_the_remedy_and_has_no_warning() -> None:
    """The warning's way to add stock at 5.00: a new adjustment lot at the cost it names."""
    book = acid_sold()
    balance = adjust(
        "BB-1",
        "beginning_balance",
        3,
        lic="ACID",
        office="MAIN",
        lots=[lot("AX", 3, AX_EXPIRES)],
        cost="5.00",
    )
    event = adjusted(book.ok(balance))
    assert event.warnings == ()
    assert book.state.lots["BB-1/ACID/BB"].unit_cost == D("5.00")


def test_one_warning_per_inventory_lot_whose_cost_differs() -> None:
    """AX in two inventory lots at 3 and 5: a count at 5 warns only of the lot at 3; the lot
    at 5 took the cost given."""
    book = Book(
        item("ACID", track=True),
        receive("RC-1/1", 2, lic="ACID", office="MAIN", lots=[lot("AX", 2, AX_EXPIRES)], cost="3"),
        receive("RC-2/1", 2, lic="ACID", office="MAIN", lots=[lot("AX", 2, AX_EXPIRES)], cost="5"),
        allocate("SO-1", 4, lic="ACID", office="MAIN", lots=[pick("AX", 4)]),
        ship("SO-1", lic="ACID"),
        lic="ACID",
    )
    event = adjusted(
        book.ok(
            adjust("CNT-3", "count", 4, lic="ACID", office="MAIN", lots=[lot("AX", 4)], cost="5")
        )
    )
    assert {m.lot_id for m in event.movements} == {"RC-1/1", "RC-2/1"}
    (warning,) = event.warnings
    assert (warning.lot_id, warning.mfr_lot) == ("RC-1/1", "AX")
    says(warning.message, "2 units of ACID (manufacturer lot AX) back into inventory lot RC-1/1")


def test_serials_counted_back_name_the_serial() -> None:
    book = Book(
        item("CAM", serialized=True),
        receive("PO-1/1", 2, lic="CAM", office="MAIN", serials=["S1", "S2"], cost="100"),
        lic="CAM",
    )
    book.ok(adjust("LOSS-1", "loss", -1, lic="CAM", office="MAIN", serials=["S1"]))
    event = adjusted(
        book.ok(adjust("CNT-4", "count", 1, lic="CAM", office="MAIN", serials=["S1"], cost="120"))
    )
    (warning,) = event.warnings
    assert (warning.code, warning.serial, warning.lot_id) == ("UNIT_COST_NOT_USED", "S1", "PO-1/1")
    says(warning.message, "1 unit of CAM (serial S1) back into inventory lot PO-1/1")


def test_the_pure_rule_skips_removals_beginning_balances_and_units_in_no_lot() -> None:
    """`unit_cost_not_used` alone: only positive movements into a lot, for a count or loss."""
    ax = LotMovement(
        lot_id="RC-4/2",
        mfr_lot="AX",
        expires_on=None,
        serial=None,
        quantity=D(3),
        unit_cost=D(3),
    )
    no_lot = LotMovement(
        lot_id=None, mfr_lot=None, expires_on=None, serial=None, quantity=D(6), unit_cost=D(5)
    )
    acid = acid_sold().state.item
    assert acid is not None
    count = adjust("CNT-1", "count", 9, lic="ACID", cost="5")
    assert [w.lot_id for w in unit_cost_not_used(acid, count, (ax, no_lot))] == ["RC-4/2"]
    balance = adjust("BB-1", "beginning_balance", 3, lic="ACID", cost="5")
    assert unit_cost_not_used(acid, balance, (ax,)) == []
    removal = adjust("CNT-9", "count", -3, lic="ACID", cost="5")
    assert unit_cost_not_used(acid, removal, (ax,)) == []
