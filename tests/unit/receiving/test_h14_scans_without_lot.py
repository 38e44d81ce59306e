"""A lot-tracked line that types no lots takes them from its scans, one unit each (R3, R5): a
scan without AI (10) is a unit without a lot, so the line is refused `LOT_REQUIRED` naming
that scan, as scanned, not with a total of lots the clerk never typed."""

from __future__ import annotations

from datetime import date

from shared.reasons import ReasonCode
from tests.unit.receiving.test_receipt_checks import accepted, line, lot, only, refused

PRODUCT = "(01)09506000134352"  # the item's product barcode: no lot, no serial
GS_SCAN = "]d20104006381333931\x1d21SN1"  # GTIN and serial, FNC1 as a scanner sends it
DEC = date(2026, 12, 31)


def test_r5_a_scan_without_a_lot_is_named_lot_required() -> None:
    """R3, R5: the scans name lot A for 2 units, and the third unit's scan has no lot."""
    problem = only(refused(line("BOLT", 3, scans=["(10)A", "(10)A", PRODUCT])))
    assert (problem.reason_code, problem.offending) == (ReasonCode.LOT_REQUIRED, PRODUCT)
    assert problem.reason == (
        f"scan {PRODUCT} carries no manufacturer lot (AI 10), and lot-tracked item BOLT takes "
        "the line's lots from its scans, one unit each: scan a label with the lot, or type the "
        "line's lots"
    )


def test_r5_the_scan_without_a_lot_is_shown_as_reasons_show_scans() -> None:
    """The group separator written <GS>, the scan itself in `offending`."""
    problem = only(refused(line("BOLT", 2, scans=["(10)A", GS_SCAN])))
    assert (problem.reason_code, problem.offending) == (ReasonCode.LOT_REQUIRED, GS_SCAN)
    assert problem.reason.startswith(
        "scan ]d20104006381333931<GS>21SN1 carries no manufacturer lot (AI 10)"
    )


def test_r5_scans_none_of_which_carry_a_lot_name_the_first() -> None:
    problem = only(refused(line("MILK", 2, scans=[PRODUCT, PRODUCT])))
    assert (problem.reason_code, problem.offending) == (ReasonCode.LOT_REQUIRED, PRODUCT)


def test_r5_a_product_barcode_beside_labels_covering_the_line_is_harmless() -> None:
    (command,) = accepted(line("BOLT", 2, scans=["(10)A", PRODUCT, "(10)A"]))
    assert command.lots == (lot("A", 2),)


def test_r3_scanned_lots_short_of_the_line_say_they_come_from_the_scans() -> None:
    """Every scan has its lot but there are fewer scans than units: the clerk typed no lots."""
    problem = only(refused(line("BOLT", 3, scans=["(10)A", "(10)B"])))
    assert (problem.reason_code, problem.offending) == (ReasonCode.INVALID_QUANTITY, "2 != 3")
    assert problem.reason == (
        "the scans name manufacturer lots for 2 units (one each) but the line quantity is 3"
    )


def test_r3_typed_lots_short_of_the_line_are_said_as_before() -> None:
    problem = only(refused(line("BOLT", 3, lots=[lot("A", 2)], scans=[PRODUCT])))
    assert problem.reason == "manufacturer lots total 2 but the line quantity is 3"


def test_r13_a_return_by_serials_needs_no_lot_on_its_scans() -> None:
    """R13: its units go back into the lots they were shipped from."""
    scans = [f"(01)09506000134352(17){DEC:%y%m%d}(10)A(21)V1", "(01)09506000134352(21)V2"]
    (command,) = accepted(line("VAX", 2, scans=scans), source="customer_return")
    assert command.serials == ("V1", "V2")


def test_r3_the_scan_without_a_lot_is_listed_with_the_lines_other_problems() -> None:
    """R3: the scanned lot without an expiry date is still said; the short count is not, the
    scan without a lot being its cause."""
    problems = refused(line("MILK", 2, scans=["(10)A", PRODUCT]))
    assert sorted((p.reason_code, p.offending) for p in problems) == [
        (ReasonCode.EXPIRY_REQUIRED, "A"),
        (ReasonCode.LOT_REQUIRED, PRODUCT),
    ]
