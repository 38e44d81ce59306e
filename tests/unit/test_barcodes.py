"""GS1 scans: rule R5 (AI 01 GTIN, 10 lot, 17 expiry, 21 serial) and hostile input.

Expected values are worked out by hand: GTIN 09506000134352 is GS1's example GTIN (mod-10
check digit over 0950600013435 with weights 3,1 from the right: 78 -> 2); expiry YYMMDD with
day 00 means the last day of that month.
"""

from __future__ import annotations

import datetime as dt
import pickle
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.barcodes import MAX_SCAN_LENGTH, BarcodeError, Scan, decode_scan
from shared.serials import parse_serials

GS = "\x1d"
GTIN = "09506000134352"


def check_digit(payload: str) -> str:
    """GS1 mod-10: weights 3,1,3,... from the rightmost payload digit."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(payload)))
    return str((10 - total % 10) % 10)


def refusal(raw: str) -> BarcodeError:
    with pytest.raises(BarcodeError) as caught:
        decode_scan(raw)
    assert caught.value.code == "INVALID_BARCODE"
    return caught.value


def test_check_digit_helper_agrees_with_the_hand_computed_example() -> None:
    """R5: the test's own GTIN arithmetic is right (0950600013435 -> 2, 400638133393 -> 1)."""
    assert check_digit("0950600013435") == "2"
    assert check_digit("400638133393") == "1"


# --- accepted forms ---------------------------------------------------------------------------


def test_gs1_128_scan_with_symbology_identifier_and_fnc1_gives_all_four_fields() -> None:
    """R5: ]C1 GS1-128 with GTIN, expiry, lot (ended by GS) and serial."""
    raw = f"]C101{GTIN}17261231" + f"10ABC123{GS}21XYZ9"
    assert decode_scan(raw) == Scan(
        gtin=GTIN, mfr_lot="ABC123", expires_on=dt.date(2026, 12, 31), serial="XYZ9", raw=raw
    )


def test_element_string_without_symbology_identifier_is_read() -> None:
    """R5: fixed-length AIs 01 and 17 need no separator; the lot runs to the end."""
    scan = decode_scan(f"01{GTIN}17261231" + "1012345")
    assert (scan.gtin, scan.expires_on, scan.mfr_lot, scan.serial) == (
        GTIN,
        dt.date(2026, 12, 31),
        "12345",
        None,
    )


def test_gs1_datamatrix_identifier_is_accepted() -> None:
    """R5: ]d2 (GS1 DataMatrix) prefix."""
    scan = decode_scan(f"]d201{GTIN}21SN-0001{GS}10L7")
    assert (scan.gtin, scan.serial, scan.mfr_lot) == (GTIN, "SN-0001", "L7")


def test_gs1_qr_identifier_is_accepted() -> None:
    """R5: ]Q3 (GS1 QR Code) prefix."""
    scan = decode_scan(f"]Q301{GTIN}21XYZ")
    assert (scan.gtin, scan.serial, scan.expires_on) == (GTIN, "XYZ", None)


@pytest.mark.parametrize(
    ("yymmdd", "expected"),
    [
        ("261200", dt.date(2026, 12, 31)),
        ("270200", dt.date(2027, 2, 28)),
        ("280200", dt.date(2028, 2, 29)),  # leap year
        ("260400", dt.date(2026, 4, 30)),
        ("260415", dt.date(2026, 4, 15)),
    ],
)
def test_expiry_day_00_means_the_last_day_of_the_month(yymmdd: str, expected: dt.date) -> None:
    """R5: AI 17 with day 00 is the month's last day (GS1 General Specifications)."""
    assert decode_scan(f"01{GTIN}17{yymmdd}").expires_on == expected


def test_human_readable_form_with_parentheses_is_read() -> None:
    """R5: the HRI printed under the barcode, typed or pasted."""
    raw = f"(01){GTIN}(17)261231(10)ABC123(21)XYZ"
    assert decode_scan(raw) == Scan(
        gtin=GTIN, mfr_lot="ABC123", expires_on=dt.date(2026, 12, 31), serial="XYZ", raw=raw
    )


def test_human_readable_form_tolerates_spaces() -> None:
    """R5: people type the HRI with spaces between the elements."""
    scan = decode_scan(f"(01) {GTIN} (21) XYZ")
    assert (scan.gtin, scan.serial) == (GTIN, "XYZ")


@pytest.mark.parametrize(
    "raw",
    [
        "(01)(10)L1(21)S1",  # an empty GTIN: the item's GTIN check would be skipped
        "(17)(10)L1(21)S1",
        f"(01){GTIN}(10)L1(21)",
        f"(01){GTIN}(10)L1()(21)S1",
        f"(01){GTIN}(10)A(B)C(21)S1",  # would be read as lot "A"
        f"(01){GTIN}x(10)L1",
    ],
)
def test_human_readable_form_with_an_element_it_cannot_read_is_refused(raw: str) -> None:
    """R5: the HRI reader (biip) skips what does not look like `(AI)value`: an AI without a
    value, `()`, a value holding `(` (cut short at it). Read that way, a mistyped label gives
    another lot, or no GTIN to check against the item; the whole text must be elements."""
    error = refusal(raw)
    assert error.offending == raw


def test_gs1_digital_link_uri_is_read() -> None:
    """R5: a GS1 QR code may carry a Digital Link URI with the same AIs."""
    scan = decode_scan(f"https://id.gs1.org/01/{GTIN}/10/L%2F7/21/XY?17=270200")
    assert (scan.gtin, scan.mfr_lot, scan.serial, scan.expires_on) == (
        GTIN,
        "L/7",
        "XY",
        dt.date(2027, 2, 28),
    )


@pytest.mark.parametrize(
    ("raw", "gtin"),
    [
        ("4006381333931", "04006381333931"),  # EAN-13, check digit 1
        ("]E04006381333931", "04006381333931"),  # with the EAN symbology identifier
        ("036000291452", "00036000291452"),  # UPC-A, check digit 2
    ],
)
def test_bare_product_barcode_gives_the_gtin_only(raw: str, gtin: str) -> None:
    """R5: a plain EAN/UPC names the item (as GTIN-14) and nothing else."""
    assert decode_scan(raw) == Scan(gtin=gtin, mfr_lot=None, expires_on=None, serial=None, raw=raw)


def test_scanner_suffixes_and_leading_fnc1_are_ignored_but_raw_is_kept() -> None:
    """R5: scanners add CR/LF and may send FNC1 first; the raw text is kept as received."""
    raw = f"{GS}01{GTIN}21A1\r\n"
    scan = decode_scan(raw)
    assert (scan.gtin, scan.serial, scan.raw) == (GTIN, "A1", raw)


def test_an_ai_repeated_with_the_same_value_is_harmless() -> None:
    """R5: some printers repeat an element; identical values do not conflict."""
    assert decode_scan(f"01{GTIN}10L1{GS}10L1").mfr_lot == "L1"


def test_scanned_serial_equals_the_same_serial_typed() -> None:
    """R5: a unit scanned and the same unit typed compare equal."""
    assert decode_scan(f"01{GTIN}21SN-0099").serial == parse_serials("SN-0099")[0]


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("serial", ["SN,7", "SN;7", "A1..A3", "7..7"])
def test_a_scanned_serial_typed_entry_cannot_name_is_refused(serial: str) -> None:
    """R5 (R6's reasoning): AI 21 allows ',' ';' and '..', which typed entry reads as
    separators or a span. Received as "SN,7", the unit could never be named by an adjustment,
    and naming it would touch 'SN' and '7' instead: the scan is refused INVALID_BARCODE."""
    for raw in (f"(21){serial}", f"01{GTIN}21{serial}"):
        error = refusal(raw)
        assert "unusable serial" in error.reason and "typed entry" in error.reason
        assert error.offending == raw


@pytest.mark.parametrize("raw", ["", "   ", "\r\n", GS])
def test_empty_scan_is_refused(raw: str) -> None:
    """R5: an empty scan is unreadable."""
    assert "empty" in refusal(raw).reason


@pytest.mark.parametrize("raw", ["garbage", "123", "]", "]C", "]Yx1", "(01)", "(99999)x"])
def test_garbage_is_refused_with_the_raw_text(raw: str) -> None:
    """R5: unreadable scans are refused with INVALID_BARCODE and the offending text."""
    assert refusal(raw).offending == raw


def test_wrong_gtin_check_digit_is_refused() -> None:
    """R5: AI 01 with check digit 3 instead of 2 is a misread."""
    error = refusal("0109506000134353")
    assert "GTIN" in error.reason
    assert error.offending == "0109506000134353"


@pytest.mark.parametrize("yymmdd", ["261331", "260230", "260001"])
def test_impossible_expiry_dates_are_refused(yymmdd: str) -> None:
    """R5: month 13, February 30 and month 00 are not dates."""
    refusal(f"01{GTIN}17{yymmdd}")


def test_scan_with_none_of_the_four_ais_is_refused() -> None:
    """R5: an SSCC-only pallet label carries no GTIN, lot, expiry or serial."""
    assert "none of the GS1 AIs" in refusal("(00)095060001343520000").reason


def test_an_ai_repeated_with_different_values_is_refused() -> None:
    """R5: two different serials in one scan cannot describe one unit."""
    assert "repeats AI (21)" in refusal(f"01{GTIN}21A{GS}21B").reason


def test_scan_longer_than_the_limit_is_refused_and_clipped() -> None:
    """R5 + hostile input: a megabyte 'scan' is refused without being copied into the event."""
    assert MAX_SCAN_LENGTH == 512
    decode_scan(f"01{GTIN}" + " " * (MAX_SCAN_LENGTH - 16))  # at the limit: trailing blanks
    error = refusal("9" * (MAX_SCAN_LENGTH + 1))
    assert "longer than 512" in error.reason
    error = refusal("A" * 1_000_000)
    assert len(error.offending) < 120


@pytest.mark.parametrize(
    "raw",
    [f"01{GTIN}21A\x00B", f"01{GTIN}21A\ud800", f"01{GTIN}21A\u200bB", "01０９506000134352"],
    ids=["NUL", "lone-surrogate", "zero-width", "full-width-digits"],
)
def test_characters_no_gs1_barcode_carries_are_refused_and_escaped(raw: str) -> None:
    """R5 + hostile input: only printable ASCII and GS occur in GS1 data; others are refused."""
    error = refusal(raw)
    assert "not GS1 data" in error.reason
    error.offending.encode("utf-8")
    assert "\x00" not in error.offending


def test_non_text_scan_is_refused() -> None:
    """R5 + hostile input: a JSON number in the scans list is refused, not a crash."""
    with pytest.raises(BarcodeError) as caught:
        decode_scan(9506000134352)  # type: ignore[arg-type]
    assert caught.value.code == "INVALID_BARCODE"


def test_barcode_error_survives_pickling() -> None:
    """R5: refusals cross process boundaries intact."""
    error = refusal("garbage")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.reason, copy.offending) == (error.code, error.reason, error.offending)


# --- properties -------------------------------------------------------------------------------

# GS1 charset 82 subset without the characters that would need escaping in an HRI: "(" ")".
_AI_TEXT = st.text(string.ascii_letters + string.digits + "-./", min_size=1, max_size=20)


@settings(max_examples=200)
@given(
    payload=st.text(string.digits, min_size=13, max_size=13),
    lot=_AI_TEXT,
    serial=_AI_TEXT.filter(lambda s: ".." not in s),  # "A..B" is a span to typed entry
    expires_on=st.dates(dt.date(2001, 1, 1), dt.date(2069, 12, 31)),
    form=st.sampled_from(["]C1", "]d2", "]Q3", "", "hri"]),
)
def test_any_well_formed_scan_decodes_to_what_was_encoded(
    payload: str, lot: str, serial: str, expires_on: dt.date, form: str
) -> None:
    """R5: GTIN, lot, expiry and serial encoded in any accepted form come back unchanged."""
    gtin = payload + check_digit(payload)
    yymmdd = expires_on.strftime("%y%m%d")
    if form == "hri":
        raw = f"(01){gtin}(17){yymmdd}(10){lot}(21){serial}"
    else:
        raw = f"{form}01{gtin}17{yymmdd}10{lot}{GS}21{serial}"
    assert decode_scan(raw) == Scan(
        gtin=gtin, mfr_lot=lot, expires_on=expires_on, serial=serial, raw=raw
    )


@settings(max_examples=500)
@given(
    raw=st.one_of(
        st.text(max_size=60),
        st.text(string.digits + "]()" + GS + "CdQe\ud800\x00", max_size=60),
        st.text(st.characters(codec="utf-8"), max_size=600),
    )
)
def test_any_input_gives_a_scan_or_an_invalid_barcode(raw: str) -> None:
    """R5 + hostile input: nothing raised from a scan is anything but BarcodeError."""
    try:
        scan = decode_scan(raw)
    except BarcodeError as error:
        assert error.code == "INVALID_BARCODE"
        error.offending.encode("utf-8")
        return
    assert scan.raw == raw
    assert any(
        value is not None for value in (scan.gtin, scan.mfr_lot, scan.expires_on, scan.serial)
    )
