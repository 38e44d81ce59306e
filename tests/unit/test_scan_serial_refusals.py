"""A serialized receipt line short of serials because a scan carries none (R4, R5, R6, R13).

The clerk scanned the unit: a refusal saying only "the line needs 1 serials and the item has no
Next Serial" gives them nothing to act on. The scan without AI (21) is named (`offending` = the
scan, as scanned), with what it reads; when its lot holds "21" and more, the likely cause is
said: a scanner that drops the group separator (FNC1) after the lot runs the serial into it.
The same hint goes with the lot-tracked refusals a swallowed AI 17 or 21 causes.
"""

from __future__ import annotations

from datetime import date

from shared.reasons import ReasonCode, shown
from tests.unit.receiving.test_receipt_checks import JAN, accepted, line, lot, only, refused

# The reported scan: (01)00300123456785 (17)271231 (10)LOTD21D0012, the GS after the lot lost.
RUN_ON = "0100300123456785172712311" + "0LOTD21D0012"
SEPARATED = "0100300123456785172712311" + "0LOTD\x1d21D0012"  # the same label, GS sent
PRODUCT = "(01)00300123456785"  # a product barcode: GTIN only
HINT = (
    "Manufacturer lot LOTD21D0012 as scanned may hold the serial: a scanner that drops the "
    "group separator (GS, FNC1) after the lot runs AI 21 into it; have the scanner send the "
    "group separator and scan again, or type the serials"
)


def test_r5_a_scan_whose_lot_swallowed_the_serial_is_named_with_what_it_reads() -> None:
    """R5, R6: the reported case, refused SERIAL_REQUIRED naming the scan, not the item."""
    problem = only(refused(line("CAM", 1, scans=[RUN_ON])))
    assert (problem.reason_code, problem.offending) == (ReasonCode.SERIAL_REQUIRED, RUN_ON)
    assert problem.reason == (
        f"scan {RUN_ON} carries no serial (AI 21): it reads GTIN 00300123456785, manufacturer "
        "lot LOTD21D0012 and expiry date 2027-12-31; item CAM is serialized: the line needs 1 "
        f"serials and the item has no Next Serial. {HINT}"
    )


def test_r5_the_same_label_with_its_group_separator_is_received() -> None:
    (command,) = accepted(line("CAM", 1, scans=[SEPARATED]))
    assert command.serials == ("D0012",)


def test_r5_a_scan_without_a_serial_and_no_lot_to_hide_it_asks_for_one() -> None:
    problem = only(refused(line("CAM", 1, scans=[PRODUCT])))
    assert (problem.reason_code, problem.offending) == (ReasonCode.SERIAL_REQUIRED, PRODUCT)
    assert problem.reason == (
        f"scan {PRODUCT} carries no serial (AI 21): it reads only GTIN 00300123456785; item CAM "
        "is serialized: the line needs 1 serials and the item has no Next Serial. Scan a label "
        "with the unit's serial, or type the serials"
    )


def test_r5_a_lot_holding_21_in_the_bracketed_form_is_the_lot() -> None:
    """The human-readable form brackets every AI: no separator can be missing from it."""
    scan = "(01)00300123456785(17)271231(10)LOTD21D0012"
    problem = only(refused(line("CAM", 1, scans=[scan])))
    assert (problem.reason_code, problem.offending) == (ReasonCode.SERIAL_REQUIRED, scan)
    assert "group separator" not in problem.reason
    assert problem.reason.endswith("Scan a label with the unit's serial, or type the serials")


def test_r4_a_line_short_of_serials_names_the_scan_without_one() -> None:
    """R4: two units, one scanned with its serial, one scanned without: the count stays
    SERIAL_COUNT_MISMATCH, and the scan missing its serial is the offending value."""
    problem = only(refused(line("CAM", 2, scans=["(01)00300123456785(21)S1", RUN_ON])))
    assert (problem.reason_code, problem.offending) == (ReasonCode.SERIAL_COUNT_MISMATCH, RUN_ON)
    assert problem.reason.startswith(f"scan {RUN_ON} carries no serial (AI 21): it reads GTIN")
    assert "; item CAM needs 2 serials, got 1. Manufacturer lot LOTD21D0012 as scanned" in (
        problem.reason
    )


def test_r4_typed_serials_short_beside_a_scan_without_one_name_the_scan() -> None:
    problem = only(refused(line("CAM", 3, serials="S1", scans=[PRODUCT])))
    assert (problem.reason_code, problem.offending) == (
        ReasonCode.SERIAL_COUNT_MISMATCH,
        PRODUCT,
    )


def test_r4_a_short_count_whose_scans_all_carry_serials_is_said_as_before() -> None:
    problem = only(refused(line("CAM", 3, scans=["(01)00300123456785(21)S1"], serials="S2")))
    assert (problem.reason_code, problem.offending) == (ReasonCode.SERIAL_COUNT_MISMATCH, "2 != 3")
    assert problem.reason == "item CAM needs 3 serials, got 2"


def test_r4_too_many_serials_are_said_as_before_whatever_the_scans() -> None:
    problem = only(refused(line("CAM", 1, serials="S1, S2", scans=[PRODUCT])))
    assert (problem.reason_code, problem.offending) == (ReasonCode.SERIAL_COUNT_MISMATCH, "2 != 1")


def test_r6_a_scan_without_a_serial_still_takes_the_next_serial() -> None:
    """R6: not refused, so nothing to say: the item's Next Serial numbers the unit."""
    (command,) = accepted(line("CAM-NS", 1, scans=[PRODUCT]))
    assert command.generate_serials


def test_r6_a_line_without_scans_is_refused_as_before() -> None:
    problem = only(refused(line("CAM", 1)))
    assert (problem.reason_code, problem.offending) == (ReasonCode.SERIAL_REQUIRED, "CAM")
    assert problem.reason == (
        "item CAM is serialized: the line needs 1 serials and the item has no Next Serial"
    )


def test_r13_a_return_scanned_without_a_serial_names_the_scan() -> None:
    problem = only(refused(line("CAM", 1, scans=[RUN_ON]), source="customer_return"))
    assert (problem.reason_code, problem.offending) == (ReasonCode.SERIAL_REQUIRED, RUN_ON)
    assert problem.reason == (
        f"scan {RUN_ON} carries no serial (AI 21): it reads GTIN 00300123456785, manufacturer "
        "lot LOTD21D0012 and expiry date 2027-12-31; a customer return of serialized item CAM "
        f"must name the 1 serials that come back. {HINT}"
    )


def test_r5_a_long_scan_is_clipped_in_the_reason_and_whole_in_offending() -> None:
    """As every refusal shows a scan: 100 characters, then "…"."""
    scan = "(01)00300123456785(10)LOTD21D0012(91)" + "X" * 90
    problem = only(refused(line("CAM", 1, scans=[scan])))
    assert (problem.reason_code, problem.offending) == (ReasonCode.SERIAL_REQUIRED, scan)
    assert problem.reason.startswith(f"scan {shown(scan)} carries no serial (AI 21)")
    assert shown(scan).endswith("…") and scan not in problem.reason


def test_r5_the_group_separator_in_a_scan_is_shown_as_gs() -> None:
    scan = "]d201003001234567851727123110LOTD21D0012\x1d"
    problem = only(refused(line("CAM", 1, scans=[scan])))
    assert problem.offending == scan
    assert problem.reason.startswith(
        "scan ]d201003001234567851727123110LOTD21D0012<GS> carries no serial (AI 21)"
    )
    assert HINT in problem.reason


# --- lot-tracked lines: a lot that swallowed AI 17 or 21 ----------------------------------------


def test_r5_a_scanned_lot_the_line_does_not_list_says_it_may_hold_the_serial() -> None:
    """R3, R5: lot ABC typed, but the scan's lot reads ABC21X (INVALID_BARCODE, as before)."""
    scan = "01003001234567851727013110ABC21X"
    problems = refused(line("MILK", 1, lots=[lot("ABC", 1, JAN)], scans=[scan]))
    problem = only(problems)
    assert (problem.reason_code, problem.offending) == (ReasonCode.INVALID_BARCODE, scan)
    assert problem.reason == (
        f"scan {scan} is a unit of manufacturer lot ABC21X, which the line does not list (it "
        "lists ABC); manufacturer lot ABC21X as scanned may hold the serial: a scanner that "
        "drops the group separator (GS, FNC1) after the lot runs AI 21 into it"
    )


def test_r3_a_scanned_lot_without_expiry_says_it_may_hold_the_expiry() -> None:
    """R3, R5: a perishable lot read from a scan with no AI 17, the date run into the lot."""
    scan = "010030012345678510ABC17271231"
    problem = only(refused(line("MILK", 1, scans=[scan])))
    assert (problem.reason_code, problem.offending) == (
        ReasonCode.EXPIRY_REQUIRED,
        "ABC17271231",
    )
    assert problem.reason == (
        "perishable item MILK: manufacturer lot ABC17271231 needs an expiry date; scan "
        f"{scan} carries none (AI 17), and manufacturer lot ABC17271231 as scanned may hold the "
        "expiry date: a scanner that drops the group separator (GS, FNC1) after the lot runs "
        "AI 17 into it"
    )


def test_r3_a_scanned_lot_without_expiry_and_no_date_in_it_is_said_as_before() -> None:
    problem = only(refused(line("MILK", 1, scans=["010030012345678510ABC21X"])))
    assert problem.reason == "perishable item MILK: manufacturer lot ABC21X needs an expiry date"


def test_r3_a_typed_lot_without_expiry_gets_no_scan_hint() -> None:
    """The typed lot is the clerk's, not a scanner's reading, even when a scan names it."""
    problems = refused(
        line("MILK", 1, lots=[lot("ABC17271231", 1)], scans=["010030012345678510ABC17271231"])
    )
    assert [(p.reason_code, p.reason) for p in problems] == [
        (
            ReasonCode.EXPIRY_REQUIRED,
            "perishable item MILK: manufacturer lot ABC17271231 needs an expiry date",
        )
    ]


def test_r3_a_listed_scanned_lot_with_its_own_serial_is_received() -> None:
    """A lot holding 21 with a serial read on its own is simply that lot."""
    scan = f"(01)09506000134352(17){date(2027, 1, 31):%y%m%d}(10)A21B(21)V1"
    (command,) = accepted(line("VAX", 1, lots=[lot("A21B", 1, JAN)], scans=[scan]))
    assert command.serials == ("V1",)


def test_r6_a_scan_whose_lot_swallowed_the_serial_takes_no_next_serial() -> None:
    """R5, R6: an item with a Next Serial takes it for a line naming no serials; but a scan
    whose lot likely holds its serial (the separator lost) would be received under a made-up
    serial and a wrong lot name: refused INVALID_BARCODE naming the scan. A label without a
    serial, and the same label with its separator, still take the Next Serial and the serial
    scanned."""
    problem = only(refused(line("CAM-NS", 1, scans=[RUN_ON])))
    assert (problem.reason_code, problem.offending) == (ReasonCode.INVALID_BARCODE, RUN_ON)
    assert problem.reason == (
        f"scan {RUN_ON} carries no serial (AI 21): it reads GTIN 00300123456785, manufacturer "
        "lot LOTD21D0012 and expiry date 2027-12-31; manufacturer lot LOTD21D0012 as scanned "
        "may hold the serial: a scanner that drops the group separator (GS, FNC1) after the lot "
        "runs AI 21 into it, so the item's Next Serial would give the unit another serial than "
        "its label's. Have the scanner send the group separator and scan again, or type the "
        "serials"
    )
    (generated,) = accepted(line("CAM-NS", 1, scans=[PRODUCT]))
    assert generated.generate_serials and generated.serials == ()
    (scanned,) = accepted(line("CAM-NS", 1, scans=[SEPARATED]))
    assert scanned.serials == ("D0012",)
