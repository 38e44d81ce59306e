"""shared.barcodes: saying what a scan read, and when its lot may hold an AI run into it (R5).

AI 10 (lot) is of variable length: a GS (FNC1) must end it when another AI follows. A scanner
that drops it makes GS1 read the next AI as part of the lot: "10L7" + "21SN9" is lot L721SN9.
"""

from __future__ import annotations

import pytest

from shared.barcodes import decode_scan, read_as, separator_hint

GTIN = "00300123456785"


def test_read_as_names_every_ai_the_scan_carries() -> None:
    scan = decode_scan(f"01{GTIN}17271231" + "10L7\x1d21SN9")
    assert read_as(scan) == (
        f"GTIN {GTIN}, manufacturer lot L7, expiry date 2027-12-31 and serial SN9"
    )


def test_read_as_a_product_barcode_says_only_its_gtin() -> None:
    assert read_as(decode_scan(f"(01){GTIN}")) == f"only GTIN {GTIN}"


def test_read_as_two_ais() -> None:
    assert read_as(decode_scan("(10)L7(21)SN9")) == "manufacturer lot L7 and serial SN9"


def test_a_lot_holding_21_and_more_may_hold_the_serial() -> None:
    scan = decode_scan(f"01{GTIN}10L721SN9")
    assert separator_hint(scan) == (
        "manufacturer lot L721SN9 as scanned may hold the serial: a scanner that drops the "
        "group separator (GS, FNC1) after the lot runs AI 21 into it"
    )
    assert separator_hint(scan, "21") == separator_hint(scan)
    assert separator_hint(scan, "17") is None


def test_a_lot_holding_a_date_after_17_may_hold_the_expiry() -> None:
    scan = decode_scan(f"01{GTIN}10L717270100")
    assert separator_hint(scan, "17") == (
        "manufacturer lot L717270100 as scanned may hold the expiry date: a scanner that drops "
        "the group separator (GS, FNC1) after the lot runs AI 17 into it"
    )


def test_a_lot_holding_both_says_both() -> None:
    scan = decode_scan(f"01{GTIN}10L71727123121SN9")
    hint = separator_hint(scan, "21")
    assert hint is not None
    assert "may hold the expiry date and the serial" in hint
    assert hint.endswith("runs AIs 17 and 21 into it")


def test_a_separator_dropped_after_the_lot_only_is_found() -> None:
    """The scanner sent GS after the serial but not after the lot."""
    scan = decode_scan(f"01{GTIN}10L721SN9\x1d17271231")
    assert scan.expires_on is not None
    hint = separator_hint(scan)
    assert hint is not None and "runs AI 21 into it" in hint


@pytest.mark.parametrize(
    "raw",
    [
        f"01{GTIN}10L721",  # nothing after 21
        f"01{GTIN}1021SN9",  # 21 first: the lot would be empty, which a lot never is
        f"01{GTIN}10L7\x1d21SN9",  # the serial is read: the lot's text is the lot
        f"(01){GTIN}(10)L721SN9",  # bracketed: every AI is marked, none can run on
        f"https://id.gs1.org/01/{GTIN}/10/L721SN9",  # a Digital Link has no separators
        f"01{GTIN}10L717271399",  # no date after 17 (month 13)
        f"(01){GTIN}",  # no lot
    ],
)
def test_no_hint_where_no_separator_can_be_missing(raw: str) -> None:
    assert separator_hint(decode_scan(raw)) is None


def test_a_lot_holding_a_date_when_the_scan_has_its_own_expiry_is_the_lot() -> None:
    scan = decode_scan(f"01{GTIN}1727123110L717270100")
    assert scan.expires_on is not None
    assert separator_hint(scan, "17") is None
