"""A GS1 label of a logistic unit (a case or pallet: AI 02, the GTIN of the trade items it
contains, with AI 37, their count) is not a unit's label (R5).

Each scan stands for one unit (of its lot, with its serial), and the item's GTIN is checked on
AI 01 only: read as a unit, a case label counted as one unit of its lot, and a case of another
product passed the GTIN check, since it names its product in AI 02. Such a scan is refused
`INVALID_BARCODE`, naming it.
"""

from __future__ import annotations

import pytest

from shared.barcodes import INVALID_BARCODE, BarcodeError, decode_scan
from shared.reasons import ReasonCode
from tests.unit.receiving.test_receipt_checks import line, only, refused

OTHER_GTIN = "04006381333931"


@pytest.mark.parametrize(
    "raw",
    [
        f"(02){OTHER_GTIN}(37)12(10)L1",
        f"(02){OTHER_GTIN}(10)L1",
        "(37)12(10)L1",
        f"]C102{OTHER_GTIN}3712\x1d10L1",
    ],
)
def test_a_case_label_is_not_a_unit_scan(raw: str) -> None:
    with pytest.raises(BarcodeError) as refusal:
        decode_scan(raw)
    assert (refusal.value.code, refusal.value.offending) == (INVALID_BARCODE, raw)
    assert "not one unit" in refusal.value.reason


def test_a_case_of_another_product_is_refused_on_a_receipt_naming_the_scan() -> None:
    """R5: SCOPE has a GTIN; a case label of another product is not one of its units."""
    raw = f"(02){OTHER_GTIN}(37)1(21)X1"
    p = only(refused(line("SCOPE", 1, scans=[raw])))
    assert (p.reason_code, p.offending) == (ReasonCode.INVALID_BARCODE, raw)


def test_a_unit_label_is_still_read() -> None:
    scan = decode_scan("(01)09506000134352(10)L1(21)X1")
    assert (scan.gtin, scan.mfr_lot, scan.serial) == ("09506000134352", "L1", "X1")
