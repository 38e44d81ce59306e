"""Refusal reasons read plainly on a dashboard (shared/reasons.py states the style): yes/no as
JSON spells it, numbers as typed, identifiers unquoted, statuses in words, never a Python
spelling ("True", "None", "Decimal(", "'PX-0006'") nor an enum name ("AVAILABLE")."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from services.allocation.domain.decide import decide
from services.allocation.domain.model import Command, CommandRejected, LicState
from services.receiving.domain import Item, LotEntry, Receipt, ReceiptLine, check_receipt
from shared.reasons import ReasonCode
from tests.unit.allocation.builders import (
    DAY,
    Book,
    adjust,
    allocate,
    give_back,
    item,
    lot,
    pick,
    receive,
    release,
    ship,
)

# Python spellings and internal names no reason may show: a repr'd value, a bool or None as
# Python writes them, a Decimal's noise (trailing zeros, an exponent), a serial status's enum.
_PYTHON = re.compile(
    r"Decimal\(|\bNone\b|\bTrue\b|\bFalse\b|\[\'|\d\.\d*0\b|\dE[+-]?\d"
    r"|\b(AVAILABLE|ALLOCATED|SHIPPED|RETURNED_TO_VENDOR|REMOVED|HELD)\b"
)


def _plain(reason: str) -> None:
    assert _PYTHON.search(reason) is None, reason


# --- allocation --------------------------------------------------------------------------------


def test_tracking_locked_says_true_and_false_as_json_does() -> None:
    """R2: the reason spells the flags as upstream sends them."""
    book = Book(item(track=True), receive("PO-1/1", 1, lots=[lot("A", 1, date(2024, 1, 1))]))
    rejection = book.refused(item(track=False), ReasonCode.TRACKING_LOCKED)
    assert rejection.reason == (
        "track_mfr_lot of item L cannot change from true to false: "
        "records already refer to the item"
    )
    assert rejection.offending == "track_mfr_lot"


def test_a_shipped_serial_is_refused_saying_when_and_on_which_shipment_it_left() -> None:
    """R9: the serial's status in words, with its ship date, never "wanted AVAILABLE"."""
    book = Book(
        item(serialized=True),
        receive("PO-1/1", 1, serials=["PX-0005"]),
        allocate("S-1", 1, serials=["PX-0005"]),
        ship("S-1"),
    )
    rejection = book.refused(
        allocate("S-2", 1, serials=["PX-0005"]), ReasonCode.SERIAL_NOT_AVAILABLE
    )
    assert rejection.reason == (
        "serial PX-0005 of L is not in stock: it was shipped on 2023-08-01 (shipment S-1 line 1)"
    )
    assert rejection.offending == "PX-0005"


def test_an_allocated_or_unknown_serial_is_refused_in_words() -> None:
    """R9: allocated to which line; never received at all."""
    book = Book(
        item(serialized=True),
        receive("PO-1/1", 1, serials=["PX-0005"]),
        allocate("S-1", 1, serials=["PX-0005"]),
    )
    taken = book.refused(allocate("S-2", 1, serials=["PX-0005"]), ReasonCode.SERIAL_NOT_AVAILABLE)
    assert taken.reason == "serial PX-0005 of L is already allocated to shipment S-1 line 1"
    unknown = book.refused(allocate("S-3", 1, serials=["PX-0009"]), ReasonCode.SERIAL_NOT_AVAILABLE)
    assert unknown.reason == "serial PX-0009 of L is not in stock: it was never received"


def test_an_expired_serial_names_the_serial_and_its_lot() -> None:
    """R9: a named serial of an expired lot says "serial …" and which lot expired."""
    book = Book(
        item(track=True, serialized=True),
        receive("PO-1/1", 1, lots=[lot("A", 1, date(2023, 7, 1))], serials=["PX-1"]),
    )
    rejection = book.refused(allocate("S-1", 1, serials=["PX-1"]), ReasonCode.LOT_EXPIRED)
    assert rejection.reason == (
        "serial PX-1 of L is in manufacturer lot A, which expired on 2023-07-01, "
        "before the ship date 2023-08-01"
    )
    assert rejection.offending == "PX-1"


def test_quantities_in_reasons_read_as_typed_while_offending_keeps_its_text() -> None:
    """R9: "requested 7, available 5", not "7.000" and "5.000"; `offending` is contract."""
    book = Book(item(), receive("PO-1/1", "5.000"))
    rejection = book.refused(allocate("S-1", "7.000"), ReasonCode.INSUFFICIENT_STOCK)
    assert rejection.reason == "item L at office AI: requested 7, available 5"
    assert rejection.offending == "7.000 > 5.000"


def test_a_line_no_longer_open_says_what_became_of_it() -> None:
    """Released or shipped, in words: "it was released", "it was already shipped"."""
    book = Book(item(), receive("PO-1/1", 5), allocate("S-1", 1), allocate("S-2", 1))
    book.ok(release("S-1"))
    released = book.refused(release("S-1"), ReasonCode.UNKNOWN_SHIPMENT)
    assert released.reason == "shipment S-1 line 1 has no open allocation: it was released"
    book.ok(ship("S-2"))
    shipped = book.refused(release("S-2"), ReasonCode.UNKNOWN_SHIPMENT)
    assert shipped.reason == "shipment S-2 line 1 has no open allocation: it was already shipped"


def test_a_next_serial_without_a_numeric_tail_is_named_unquoted() -> None:
    """R6: identifiers appear as they are, never in Python's quotes."""
    book = Book(item(serialized=True, next_serial="SN-A"))
    rejection = book.refused(receive("PO-1/1", 2, generate=True), ReasonCode.SERIAL_REQUIRED)
    assert rejection.reason == "Next Serial SN-A has no numeric tail to continue from"


def _rejections(*commands: Command) -> list[CommandRejected]:
    """Each command decided against the state the ones before it left (refused or not)."""
    state = LicState.empty("L")
    out = []
    for command in commands:
        decision = decide(state, command)
        state = decision.state
        if decision.rejected is not None:
            out.append(decision.rejected)
    return out


def test_no_allocation_reason_shows_a_python_spelling() -> None:
    """A representative set of refusals, quantities sent with trailing zeros and exponents."""
    perishable = date(2023, 7, 1)
    lots = [lot("A", "2.000", perishable), lot("B", "2.000", date(2024, 1, 1))]
    refused = _rejections(
        item(track=True, perishable=True),
        receive("PO-1/1", "4.0", lots=lots),
        allocate("S-1", "9.000"),  # INSUFFICIENT_STOCK
        allocate("S-2", "1.0", lots=[pick("A", "1.0")]),  # LOT_EXPIRED
        allocate("S-3", "1.0", lots=[pick("Z", "1.0")]),  # LOT_NOT_FOUND
        allocate("S-4", "1.0", lots=[pick("B", "2.000")]),  # more than the line
        receive("PO-2/1", "5.000", lots=[lot("C", "2.50", perishable)]),  # lots total 2.5 of 5
        receive("PO-3/1", "1", lots=[lot("D", "1")]),  # no expiry date
        adjust("ADJ-1", "count", "0.000"),
        adjust("ADJ-2", "beginning_balance", "-2.50", lots=[lot("B", "2.50")]),
        adjust("ADJ-3", "count", "3.000", lots=[lot("B", "3.000")]),  # LOT_QTY_EXCEEDS_USED
        give_back("R-1", "2.000", lots=[pick("B", "2.000")]),  # RETURN_EXCEEDS_SHIPPED
        item(track=False, serialized=True),  # TRACKING_LOCKED
        release("S-9"),  # UNKNOWN_SHIPMENT
    )
    assert len(refused) == 12, [r.reason for r in refused]
    for rejection in refused:
        _plain(rejection.reason)


# --- receiving ---------------------------------------------------------------------------------

_ITEMS = {
    i.lic: i
    for i in (
        Item(lic="CAM", serialized=True),
        Item(lic="BOLT", track_mfr_lot=True, perishable=False),
        Item(lic="SCOPE", serialized=True, gtin="9506000134352"),
    )
}


def _refused(*lines: ReceiptLine) -> list[str]:
    receipt = Receipt(
        message_id="m-1",
        shipment_id="PO-1",
        office="AI",
        source="purchase",
        received_on=DAY,
        lines=lines,
    )
    checked = check_receipt(receipt, _ITEMS)
    assert not checked.accepted
    return [p.reason for p in checked.problems]


def _line(no: int, lic: str, quantity: str, **fields: object) -> ReceiptLine:
    return ReceiptLine(line_no=no, lic=lic, quantity=Decimal(quantity), **fields)  # type: ignore[arg-type]


def test_receiving_names_serials_unquoted_as_allocation_does() -> None:
    """R4: 'PX-0006' and PX-0005 were two styles; both are PX-0006 now."""
    (across,) = _refused(
        _line(1, "CAM", "1", serials="PX-0006"), _line(2, "CAM", "1", serials="PX-0006")
    )
    assert across == "serial PX-0006 of CAM is already received on line 1"
    # typed and scanned (a duplicate within the typed entry is shared/serials.py's to word)
    scan = "(01)09506000134352(21)PX-0006"
    (within,) = _refused(_line(1, "SCOPE", "2", serials="PX-0006", scans=(scan,)))
    assert within == "serial PX-0006 is entered more than once on the line"


def test_receiving_shows_a_scan_unquoted_with_its_group_separator_escaped() -> None:
    """R5: the raw scan as scanned, FNC1 written <GS>, never in Python's quotes."""
    raw = "]d20104006381333931\x1d21SN1"
    (reason,) = _refused(_line(1, "SCOPE", "1", scans=(raw,)))
    assert reason == (
        "scan ]d20104006381333931<GS>21SN1 carries GTIN 04006381333931, but item SCOPE has "
        "GTIN 09506000134352"
    )


def test_no_receiving_reason_shows_a_python_spelling() -> None:
    """Quantities with trailing zeros, lots that do not add up, counts that do not match."""
    reasons = _refused(
        _line(1, "BOLT", "5.000", lots=(_lot("A", "2.00"), _lot("B", "2.00"))),
        _line(2, "CAM", "2.000", serials="S1"),
        _line(3, "CAM", "1.50"),
        _line(4, "BOLT", "3.0"),
    )
    assert reasons[0] == "manufacturer lots total 4 but the line quantity is 5"
    assert len(reasons) == 4, reasons
    for reason in reasons:
        _plain(reason)


def _lot(name: str, quantity: str) -> LotEntry:
    return LotEntry(mfr_lot=name, quantity=Decimal(quantity))
