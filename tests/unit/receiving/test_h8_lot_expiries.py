"""A manufacturer lot's expiry as the receipt names it, typed and scanned (R3, R5).

A lot received with and without an expiry date is two stocks, as one received with two dates
is: a line whose entries or scans disagree about a lot's expiry is refused, and the refusal says
plainly which dates disagree.
"""

from __future__ import annotations

from datetime import date

from services.receiving.domain import Item, Limits, LotEntry, check_receipt
from shared.reasons import ReasonCode
from tests.unit.receiving.test_receipt_checks import GTIN, ITEMS, line, lot, only, receipt, refused

DEC = date(2026, 12, 31)
# Lot-tracked, not perishable, with a GTIN so that its scans are read against it.
NUTS = Item(lic="NUTS", track_mfr_lot=True, gtin=GTIN)
WITH_NUTS = {**ITEMS, NUTS.lic: NUTS}


def test_a_scanned_expiry_on_a_lot_typed_without_one_is_refused_naming_the_scan() -> None:
    """R3, R5: lot A typed without an expiry date, its unit's label says it expires on
    2026-12-31. Received as typed, the lot's expiry would be lost (another receipt of A with
    the scanned date is another stock), so it is refused as a scan contradicting the typed
    expiry is."""
    scan = f"(01){GTIN}(17)261231(10)A"
    checked = check_receipt(receipt(line("NUTS", 1, lots=[lot("A", 1)], scans=[scan])), WITH_NUTS)
    p = only(checked.problems)
    assert (p.line_no, p.reason_code, p.offending) == (1, ReasonCode.EXPIRY_REQUIRED, scan)
    assert "2026-12-31" in p.reason and "without an expiry date" in p.reason


def test_a_returns_scanned_expiry_on_a_lot_typed_without_one_is_not_checked() -> None:
    """R13: a return's units go back into the lots they were shipped from, expiry and all."""
    scan = f"(01){GTIN}(17)261231(10)A"
    rma = receipt(line("NUTS", 1, lots=[lot("A", 1)], scans=[scan]), source="customer_return")
    (command,) = check_receipt(rma, WITH_NUTS).commands
    assert command.lots == (LotEntry(mfr_lot="A", quantity=command.quantity),)


def test_a_lot_listed_with_and_without_an_expiry_says_so_without_none() -> None:
    """R3: lot A listed twice, once dated, once not (not perishable, so either alone would do):
    refused, the reason naming the date and the entry without one, never "None"."""
    p = only(refused(line("BOLT", 2, lots=[lot("A", 1, DEC), lot("A", 1)])))
    assert (p.reason_code, p.offending) == (ReasonCode.EXPIRY_REQUIRED, "A")
    assert "None" not in p.reason
    assert "2026-12-31" in p.reason and "without one" in p.reason


def test_a_perishable_lot_entry_without_expiry_is_one_problem_not_two() -> None:
    """R3: perishable lot A listed dated and undated: the undated entry is the problem, said
    once (it needs an expiry date), not again as "two expiry dates ... and None"."""
    p = only(refused(line("MILK", 2, lots=[lot("A", 1, DEC), lot("A", 1)])))
    assert (p.reason_code, p.offending) == (ReasonCode.EXPIRY_REQUIRED, "A")
    assert "needs an expiry date" in p.reason


# --- the document's serial budget (R5) -----------------------------------------------------------

BUDGET = Limits(max_serials_per_document=5)


def _unit(serial: str) -> str:
    return f"(01){GTIN}(21){serial}"


def test_serials_scanned_past_the_documents_budget_are_refused() -> None:
    """R5: a document names at most so many serials, typed, scanned or generated: scanned ones
    count too, so three typed and three scanned units of a five-serial budget are refused on
    the line that crosses it."""
    checked = check_receipt(
        receipt(
            line("CAM", 3, serials="S1...S3"),
            line("CAM", 3, no=2, scans=[_unit("U1"), _unit("U2"), _unit("U3")]),
        ),
        ITEMS,
        BUDGET,
    )
    p = only(checked.problems)
    assert (p.line_no, p.reason_code) == (2, ReasonCode.INVALID_QUANTITY)
    assert "5 serials" in p.reason


def test_typed_serials_past_the_documents_budget_name_the_documents_limit() -> None:
    """R5: the refusal names the document's limit (5), not what was left of it (2), which the
    sender never chose and could not make sense of."""
    checked = check_receipt(
        receipt(line("CAM", 3, serials="1...3"), line("CAM", 3, no=2, serials="4...6")),
        ITEMS,
        BUDGET,
    )
    p = only(checked.problems)
    assert (p.line_no, p.reason_code) == (2, ReasonCode.INVALID_QUANTITY)
    assert "5 serials" in p.reason and "limit 2" not in p.reason


def test_a_scan_dating_a_perishable_lot_typed_undated_is_one_problem() -> None:
    """R3: the undated perishable lot is the problem (it needs an expiry date), said once."""
    scan = f"(01){GTIN}(17)261231(10)A(21)S1"
    p = only(refused(line("VAX", 1, lots=[lot("A", 1)], scans=[scan])))
    assert (p.reason_code, p.offending) == (ReasonCode.EXPIRY_REQUIRED, "A")
    assert "needs an expiry date" in p.reason
