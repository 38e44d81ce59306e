"""Receiving's pure core: a receipt is checked whole before anything is posted.

Rules: R3 (manufacturer lots), R4 (serial counts, uniqueness), R5 (typed and scanned serials),
R6 (Next Serial), R13 (customer returns name what comes back).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from services.receiving.domain import (
    Checked,
    Item,
    Limits,
    LineCommand,
    LotEntry,
    Problem,
    Receipt,
    ReceiptLine,
    Source,
    check_receipt,
)
from shared.contracts import events, status
from shared.contracts.codec import encode
from shared.ids import derived_id
from shared.reasons import ReasonCode

DAY = date(2026, 11, 2)
JAN = date(2027, 1, 31)
FEB = date(2027, 2, 28)
GTIN = "09506000134352"

ITEMS = {
    i.lic: i
    for i in (
        Item(lic="PLAIN"),
        Item(lic="MILK", track_mfr_lot=True, perishable=True),
        Item(lic="BOLT", track_mfr_lot=True, perishable=False),
        Item(lic="CAM", serialized=True),
        Item(lic="CAM-NS", serialized=True, next_serial="1000"),
        Item(lic="VAX", track_mfr_lot=True, perishable=True, serialized=True, gtin=GTIN),
        Item(lic="SCOPE", serialized=True, gtin="9506000134352"),
    )
}


def line(
    lic: str,
    quantity: str | int,
    *,
    no: int = 1,
    lots: Iterable[LotEntry] = (),
    serials: str | tuple[str, ...] | None = None,
    scans: Iterable[str] = (),
) -> ReceiptLine:
    return ReceiptLine(
        line_no=no,
        lic=lic,
        quantity=Decimal(quantity),
        lots=tuple(lots),
        serials=serials,
        scans=tuple(scans),
    )


def lot(mfr_lot: str, quantity: str | int, expires_on: date | None = None) -> LotEntry:
    return LotEntry(mfr_lot=mfr_lot, quantity=Decimal(quantity), expires_on=expires_on)


def receipt(*lines: ReceiptLine, source: Source = "purchase") -> Receipt:
    return Receipt(
        message_id="m-1",
        shipment_id="PO-60006",
        office="AI",
        source=source,
        received_on=DAY,
        lines=lines,
        customer="Montboro" if source == "customer_return" else None,
    )


def accepted(*lines: ReceiptLine, source: Source = "purchase") -> tuple[LineCommand, ...]:
    checked = check_receipt(receipt(*lines, source=source), ITEMS)
    assert checked.accepted, checked.problems
    return checked.commands


def refused(*lines: ReceiptLine, source: Source = "purchase") -> tuple[Problem, ...]:
    checked: Checked = check_receipt(receipt(*lines, source=source), ITEMS)
    assert not checked.accepted
    assert checked.commands == ()
    return checked.problems


def only(problems: tuple[Problem, ...]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


# --- accepted documents -----------------------------------------------------------------------


def test_plain_line_becomes_one_command_with_deterministic_ids() -> None:
    (command,) = accepted(line("PLAIN", "2.5", no=3))
    assert command.command_id == "receipt:m-1/3"  # namespaced by origin
    assert command.lot_id == "PO-60006/3"
    assert (command.lots, command.serials, command.generate_serials) == ((), (), False)
    assert not command.is_return


def test_lot_tracked_perishable_line_may_carry_two_lots_with_two_expiry_dates() -> None:
    """R3: several lots with different expiry dates summing to the line quantity."""
    (command,) = accepted(line("MILK", 10, lots=[lot("A1", 4, JAN), lot("B2", 6, FEB)]))
    assert command.lots == (lot("A1", 4, JAN), lot("B2", 6, FEB))


def test_a_lot_listed_twice_with_the_same_expiry_is_merged() -> None:
    """R3: one entry per scan of the same lot is one lot."""
    (command,) = accepted(line("MILK", 3, lots=[lot("A1", 1, JAN), lot("A1", 2, JAN)]))
    assert command.lots == (lot("A1", 3, JAN),)


def test_non_perishable_lots_need_no_expiry() -> None:
    """R3: the expiry is required only when the item is perishable."""
    (command,) = accepted(line("BOLT", 5, lots=[lot("X", 5)]))
    assert command.lots == (lot("X", 5),)


def test_serials_typed_as_a_span_keep_prefix_and_width() -> None:
    """R5: `SN-0098...SN-0102` names five serials."""
    (command,) = accepted(line("CAM", 5, serials="SN-0098...SN-0102"))
    assert command.serials == ("SN-0098", "SN-0099", "SN-0100", "SN-0101", "SN-0102")


def test_serials_typed_as_a_list_with_mixed_separators() -> None:
    """R5: commas, semicolons and line breaks separate serials."""
    (command,) = accepted(line("CAM", 3, serials="134593568, 200937842;\r\n300000001"))
    assert command.serials == ("134593568", "200937842", "300000001")


def test_serialized_line_without_serials_takes_them_from_the_next_serial() -> None:
    """R6: allocation hands out `quantity` serials from the item's Next Serial."""
    (command,) = accepted(line("CAM-NS", 4))
    assert command.generate_serials
    assert command.serials == ()


def test_typed_serials_win_over_the_next_serial() -> None:
    """R6: the Next Serial is used only when no serials were entered."""
    (command,) = accepted(line("CAM-NS", 2, serials=("7", "8")))
    assert command.serials == ("7", "8")
    assert not command.generate_serials


def test_scans_give_serials_lots_and_expiry() -> None:
    """R5: GS1 AIs 21 serial, 10 lot, 17 expiry; each scan is one unit of its lot."""
    scans = [
        f"(01){GTIN}(17)261231(10)L7(21)S1",
        f"]d201{GTIN}1726123110L7\x1d21S2",
    ]
    (command,) = accepted(line("VAX", 2, scans=scans))
    assert command.serials == ("S1", "S2")
    assert command.lots == (lot("L7", 2, date(2026, 12, 31)),)


def test_serials_scanned_from_alternating_lots_stay_with_their_lots() -> None:
    """R5, R15: units pair with lots by position; merging lot L7 scanned twice must carry its
    serials along, or a recall of lot L8 would name S3 instead of S2."""
    scans = [
        f"(01){GTIN}(17)261231(10)L7(21)S1",
        f"(01){GTIN}(17)261231(10)L8(21)S2",
        f"(01){GTIN}(17)261231(10)L7(21)S3",
    ]
    (command,) = accepted(line("VAX", 3, scans=scans))
    assert command.lots == (lot("L7", 2, date(2026, 12, 31)), lot("L8", 1, date(2026, 12, 31)))
    assert command.serials == ("S1", "S3", "S2")


def test_typed_lots_named_twice_keep_their_serials() -> None:
    """R3, R4: serials typed against lots A, B, A pair with them in that order."""
    expiry = date(2026, 12, 31)
    typed = line(
        "VAX", 4, lots=[lot("A", 1, expiry), lot("B", 2, expiry), lot("A", 1, expiry)],
        serials="S1, S2, S3, S4",
    )  # fmt: skip
    (command,) = accepted(typed)
    assert command.lots == (lot("A", 2, expiry), lot("B", 2, expiry))
    assert command.serials == ("S1", "S4", "S2", "S3")


def test_a_gtin_13_on_the_item_matches_the_gtin_14_of_the_scan() -> None:
    (command,) = accepted(line("SCOPE", 1, scans=[f"01{GTIN}21X9"]))
    assert command.serials == ("X9",)


def test_the_same_serial_on_two_different_items_is_allowed() -> None:
    """R4: a serial identifies one unit of one LIC."""
    commands = accepted(line("CAM", 1, serials="S1"), line("SCOPE", 1, no=2, serials="S1"))
    assert [c.serials for c in commands] == [("S1",), ("S1",)]


# --- refusals ---------------------------------------------------------------------------------


def test_unknown_item_is_refused() -> None:
    p = only(refused(line("NOPE", 1)))
    assert (p.reason_code, p.offending, p.line_no, p.lic) == (
        ReasonCode.UNKNOWN_ITEM,
        "NOPE",
        1,
        "NOPE",
    )


def test_lot_tracked_line_without_lots_is_refused() -> None:
    """R3: LOT_REQUIRED."""
    p = only(refused(line("MILK", 5)))
    assert (p.reason_code, p.offending) == (ReasonCode.LOT_REQUIRED, "MILK")


def test_lots_not_summing_to_the_quantity_are_refused() -> None:
    """R3: INVALID_QUANTITY naming both totals."""
    p = only(refused(line("MILK", 10, lots=[lot("A1", 4, JAN), lot("B2", 5, FEB)])))
    assert (p.reason_code, p.offending) == (ReasonCode.INVALID_QUANTITY, "9 != 10")


def test_perishable_lot_without_expiry_is_refused() -> None:
    """R3: EXPIRY_REQUIRED naming the lot."""
    p = only(refused(line("MILK", 5, lots=[lot("A1", 5)])))
    assert (p.reason_code, p.offending) == (ReasonCode.EXPIRY_REQUIRED, "A1")


def test_a_lot_listed_with_two_expiry_dates_is_refused() -> None:
    """R3: EXPIRY_REQUIRED: which of the two dates is right?"""
    p = only(refused(line("MILK", 2, lots=[lot("A1", 1, JAN), lot("A1", 1, FEB)])))
    assert (p.reason_code, p.offending) == (ReasonCode.EXPIRY_REQUIRED, "A1")


def test_lots_on_an_item_not_tracked_by_lot_are_refused() -> None:
    p = only(refused(line("PLAIN", 1, lots=[lot("A1", 1)])))
    assert (p.reason_code, p.offending) == (ReasonCode.INVALID_QUANTITY, "A1")


def test_serials_on_an_item_not_serialized_are_refused() -> None:
    p = only(refused(line("PLAIN", 1, serials="S1")))
    assert (p.reason_code, p.offending) == (ReasonCode.SERIAL_COUNT_MISMATCH, "S1")


def test_serialized_line_with_too_few_serials_is_refused() -> None:
    """R4: SERIAL_COUNT_MISMATCH."""
    p = only(refused(line("CAM", 3, serials="1, 2")))
    assert (p.reason_code, p.offending) == (ReasonCode.SERIAL_COUNT_MISMATCH, "2 != 3")


def test_serialized_line_without_serials_or_next_serial_is_refused() -> None:
    """R4/R6: SERIAL_REQUIRED."""
    p = only(refused(line("CAM", 2)))
    assert (p.reason_code, p.offending) == (ReasonCode.SERIAL_REQUIRED, "CAM")


def test_serialized_quantity_must_be_whole() -> None:
    """R4: INVALID_QUANTITY naming the quantity."""
    p = only(refused(line("CAM-NS", "1.5")))
    assert (p.reason_code, p.offending) == (ReasonCode.INVALID_QUANTITY, "1.5")


def test_serialized_quantity_beyond_the_line_limit_is_refused() -> None:
    """R5: a sane upper size; nothing is generated for it."""
    p = only(refused(line("CAM-NS", 100_001)))
    assert (p.reason_code, p.offending) == (ReasonCode.INVALID_QUANTITY, "100001")


def test_backwards_span_is_refused_with_its_text() -> None:
    """R5: INVALID_SERIAL_SPAN with the offending text."""
    p = only(refused(line("CAM", 3, serials="1009...1000")))
    assert (p.reason_code, p.offending) == (ReasonCode.INVALID_SERIAL_SPAN, "1009...1000")


def test_oversized_span_is_refused_before_it_is_expanded() -> None:
    """R5: a span has a sane upper size."""
    checked = check_receipt(
        receipt(line("CAM", 3, serials="1...5000000")), ITEMS, Limits(max_span=1000)
    )
    p = only(checked.problems)
    assert (p.reason_code, p.offending) == (ReasonCode.INVALID_SERIAL_SPAN, "1...5000000")


def test_serial_twice_on_a_line_is_refused() -> None:
    """R4: DUPLICATE_SERIAL."""
    p = only(refused(line("CAM", 2, serials="S1, S1")))
    assert (p.reason_code, p.offending) == (ReasonCode.DUPLICATE_SERIAL, "S1")


def test_serial_typed_and_scanned_is_a_duplicate() -> None:
    """R4/R5: a typed and a scanned serial compare equal."""
    p = only(refused(line("SCOPE", 2, serials="X9", scans=[f"01{GTIN}21X9"])))
    assert (p.reason_code, p.offending) == (ReasonCode.DUPLICATE_SERIAL, "X9")


def test_serial_on_two_lines_of_the_same_item_is_refused_on_the_second() -> None:
    """R4: no serial twice in the document."""
    p = only(refused(line("CAM", 1, serials="S1"), line("CAM", 1, no=2, serials="S1")))
    assert (p.line_no, p.reason_code, p.offending) == (2, ReasonCode.DUPLICATE_SERIAL, "S1")


def test_unreadable_scan_is_refused_with_the_raw_text() -> None:
    """R5: INVALID_BARCODE naming the scan."""
    p = only(refused(line("CAM", 1, scans=["not a barcode"])))
    assert (p.reason_code, p.offending) == (ReasonCode.INVALID_BARCODE, "not a barcode")


def test_scan_of_another_product_is_refused() -> None:
    """R5: the GTIN identifies the item when the item has a GTIN."""
    raw = "010401234500000921A1"
    p = only(refused(line("SCOPE", 1, scans=[raw])))
    assert (p.reason_code, p.offending) == (ReasonCode.INVALID_BARCODE, raw)


def test_scanned_perishable_lot_without_expiry_is_refused() -> None:
    """R3/R5: a scan without AI 17 gives no expiry date."""
    p = only(refused(line("VAX", 1, scans=[f"01{GTIN}10L7\x1d21S1"])))
    assert (p.reason_code, p.offending) == (ReasonCode.EXPIRY_REQUIRED, "L7")


def test_three_failing_lines_refuse_the_whole_document_with_three_reasons() -> None:
    """R3/R4/R5: every failing line is listed; nothing is posted, not even the good line."""
    problems = refused(
        line("PLAIN", 1, no=1),
        line("MILK", 5, no=2),
        line("CAM", 2, no=3, serials="S1"),
        line("CAM", 3, no=4, serials="9...1"),
    )
    assert [(p.line_no, p.reason_code) for p in problems] == [
        (2, ReasonCode.LOT_REQUIRED),
        (3, ReasonCode.SERIAL_COUNT_MISMATCH),
        (4, ReasonCode.INVALID_SERIAL_SPAN),
    ]


def test_document_serial_budget_is_shared_by_its_lines() -> None:
    """R5: a document cannot name more serials than the limit, whatever its line count."""
    limits = Limits(max_serials_per_document=5)
    checked = check_receipt(
        receipt(line("CAM", 3, serials="1...3"), line("CAM", 3, no=2, serials="4...6")),
        ITEMS,
        limits,
    )
    p = only(checked.problems)
    assert (p.line_no, p.reason_code) == (2, ReasonCode.INVALID_QUANTITY)


def test_serials_taken_from_the_next_serial_count_against_the_document_budget() -> None:
    """R5/R6: a sane document size holds however the serials are entered; serials the Next
    Serial hands out count like typed ones (else 10,000 lines of 100,000 would pass)."""
    limits = Limits(max_serials_per_document=5)
    checked = check_receipt(receipt(line("CAM-NS", 3), line("CAM-NS", 3, no=2)), ITEMS, limits)
    p = only(checked.problems)
    assert (p.line_no, p.reason_code, p.offending) == (2, ReasonCode.INVALID_QUANTITY, "3")
    assert check_receipt(receipt(line("CAM-NS", 5)), ITEMS, limits).accepted


def test_a_receipt_whose_answer_would_not_fit_in_one_message_is_refused_whole() -> None:
    """ReceiptPosted lists every serial's movement in one message, which the broker caps: a
    document of four 100,000-serial lines (each line within its limits) would be answered by a
    message of about 55 MB, over what lotline publishes (48 MiB). It is refused at the door,
    naming the line that crosses the limit, instead of being decided and never answered."""
    lines = [
        line("CAM", 100_000, no=n, serials=f"SN{n}-000001...SN{n}-100000") for n in range(1, 5)
    ]
    checked = check_receipt(receipt(*lines), ITEMS)
    p = only(checked.problems)
    assert (p.line_no, p.reason_code, p.offending) == (4, ReasonCode.INVALID_QUANTITY, "100000")
    assert "too large to answer in one message" in p.reason and "split" in p.reason
    assert check_receipt(receipt(*lines[:3]), ITEMS).accepted


def test_the_size_a_receipt_is_checked_at_is_never_below_its_real_answer() -> None:
    """The limit is checked on an estimate, which must not fall short of the `ReceiptPosted`
    it stands for, also for identifiers JSON writes longer than they are (`\\` and `"` are
    escaped, `é` and `😀` take 2 and 4 bytes) and a unit cost of the most digits: with the limit
    one byte below the real answer's size, the receipt is refused."""
    serials = tuple('\\"é😀-' + str(n) for n in range(300))
    mfr_lot = "\\" * 60 + '"'
    cost = Decimal("999999999999.999999")
    receipt_ = receipt(
        replace(line("VAX", 300, serials=serials, lots=[lot(mfr_lot, 300, JAN)]), unit_cost=cost)
    )
    (command,) = check_receipt(receipt_, ITEMS).commands
    assert command.lot_id is not None
    posted = status.ReceiptPosted(
        message_id=derived_id("m-1", "status"),
        shipment_id=receipt_.shipment_id,
        lines=[
            status.LineResult(
                line_no=1,
                lic="VAX",
                quantity=Decimal(300),
                lot_id=command.lot_id,
                movements=[
                    events.Movement(
                        lot_id=command.lot_id,
                        mfr_lot=mfr_lot,
                        expires_on=JAN,
                        serial=serial,
                        quantity=Decimal(1),
                        unit_cost=cost,
                    )
                    for serial in serials
                ],
            )
        ],
    )
    size = len(encode(posted))
    refused = check_receipt(receipt_, ITEMS, Limits(max_posting_bytes=size - 1))
    assert [p.reason_code for p in refused.problems] == [ReasonCode.INVALID_QUANTITY]


# --- customer returns (R13) -------------------------------------------------------------------


def test_customer_return_of_serialized_units_names_serials() -> None:
    """R13: the return command carries the serials; no inventory lot id is made up."""
    (command,) = accepted(line("CAM", 2, serials="S1,S2"), source="customer_return")
    assert command.is_return
    assert command.serials == ("S1", "S2")
    assert command.lot_id is None


def test_customer_return_never_generates_serials() -> None:
    """R13: even an item with a Next Serial must name the returned serials."""
    p = only(refused(line("CAM-NS", 1), source="customer_return"))
    assert (p.reason_code, p.offending) == (ReasonCode.SERIAL_REQUIRED, "CAM-NS")


def test_customer_return_of_a_lot_tracked_item_names_lots() -> None:
    """R13: LOT_REQUIRED when the returned lots are not named."""
    p = only(refused(line("MILK", 2), source="customer_return"))
    assert p.reason_code == ReasonCode.LOT_REQUIRED


def test_customer_return_lots_need_no_expiry() -> None:
    """R13: the lot exists already; its expiry is known."""
    (command,) = accepted(line("MILK", 2, lots=[lot("A1", 2)]), source="customer_return")
    assert command.lots == (lot("A1", 2),)


@pytest.mark.parametrize("base", ["m" * 98, "m" * 128])
def test_derived_ids_stay_short_and_deterministic(base: str) -> None:
    derived = derived_id(base, "10000")
    assert len(derived) <= 100
    assert derived == derived_id(base, "10000")
    assert derived != derived_id(base, "10001")
