"""A customer return of an item both serialized and tracked by lot (R13, R5).

The serials name the units that come back, and each goes back into the lot it was shipped
from, which allocation knows unit by unit: a return may name the lots beside the serials (then
they must hold them), but need not. Receiving refused such a return `LOT_REQUIRED` at the door
although allocation takes it and docs/contract.md describes a serialized return "that also
names manufacturer lots".
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from services.receiving.domain import Limits, check_receipt
from shared.contracts import events, status
from shared.contracts.codec import encode
from shared.contracts.types import MAX_ID_LENGTH
from shared.ids import derived_id
from shared.reasons import ReasonCode
from tests.unit.receiving.test_receipt_checks import (
    GTIN,
    ITEMS,
    accepted,
    line,
    lot,
    only,
    receipt,
    refused,
)


def test_a_return_of_a_lot_tracked_serialized_item_may_name_only_its_serials() -> None:
    """R13: the serials are enough; allocation puts each back into the lot it left."""
    (command,) = accepted(line("VAX", 2, serials="V1, V2"), source="customer_return")
    assert (command.serials, command.lots, command.serial_lots) == (("V1", "V2"), (), ())


def test_a_return_scanned_without_lots_names_its_serials_only() -> None:
    scans = [f"(01){GTIN}(21)V1", f"(01){GTIN}(21)V2"]
    (command,) = accepted(line("VAX", 2, scans=scans), source="customer_return")
    assert (command.serials, command.lots) == (("V1", "V2"), ())


def test_a_return_whose_scans_name_the_lots_of_some_units_sends_their_pairs_not_lots() -> None:
    """R5: one unit scanned with its lot, one typed: the scanned lots do not cover the line, so
    they are not sent as the line's lots; the scanned pair still is, for allocation to check
    that unit against the lot its label names."""
    (command,) = accepted(
        line("VAX", 2, serials="V2", scans=[f"(01){GTIN}(10)A(21)V1"]),
        source="customer_return",
    )
    assert set(command.serials) == {"V1", "V2"}
    assert command.lots == ()
    assert command.serial_lots == (("V1", "A"),)


def test_lots_typed_on_a_serialized_return_must_still_cover_its_quantity() -> None:
    """R3, R13: lots the return does name are checked as always."""
    p = only(
        refused(
            line("VAX", 2, serials="V1, V2", lots=[lot("A", 1)]),
            source="customer_return",
        )
    )
    assert p.reason_code is ReasonCode.INVALID_QUANTITY


def test_a_return_of_a_lot_tracked_item_without_serials_still_names_its_lots() -> None:
    """R13: without serials, only the lots say what comes back."""
    p = only(refused(line("MILK", 2), source="customer_return"))
    assert p.reason_code is ReasonCode.LOT_REQUIRED


def test_a_receipt_of_a_lot_tracked_serialized_item_still_needs_its_lots() -> None:
    """R3: a new inventory lot must know the manufacturer lot of every unit."""
    p = only(refused(line("VAX", 2, serials="V1, V2")))
    assert p.reason_code is ReasonCode.LOT_REQUIRED
    scans = [f"(01){GTIN}(17)271231(10)A(21)V1", f"(01){GTIN}(21)V2"]
    checked = check_receipt(receipt(line("VAX", 2, scans=scans)), ITEMS)
    # The unit scanned without a lot is the problem, named (LOT_REQUIRED), not the total.
    assert [(p.reason_code, p.offending) for p in checked.problems] == [
        (ReasonCode.LOT_REQUIRED, scans[1])
    ]


def test_a_return_scanning_more_lot_units_than_it_returns_is_refused() -> None:
    scans = [f"(01){GTIN}(10)A", f"(01){GTIN}(10)A"]
    p = only(refused(line("VAX", 1, serials="V1", scans=scans), source="customer_return"))
    assert (p.reason_code, p.offending) == (ReasonCode.INVALID_QUANTITY, "2 != 1")


def test_the_size_a_return_naming_no_lots_is_checked_at_is_never_below_its_real_answer() -> None:
    """The answer lists each unit with the lot and manufacturer lot it went back into, and the
    lot's unit cost, none of which the return names: each is counted at its longest (a unit
    cost typed on a return line is not the one the answer carries). With the limit one byte
    below the largest answer the return can have, it is refused."""
    serials = tuple(f"V{n}" for n in range(300))
    longest = "😀" * MAX_ID_LENGTH
    cost = Decimal("999999999999.999999")
    return_ = receipt(
        replace(line("VAX", 300, serials=serials), unit_cost=Decimal(1)),
        source="customer_return",
    )
    assert check_receipt(return_, ITEMS).accepted
    posted = status.ReceiptPosted(
        message_id=derived_id("m-1", "status"),
        shipment_id=return_.shipment_id,
        lines=[
            status.LineResult(
                line_no=1,
                lic="VAX",
                quantity=Decimal(300),
                movements=[
                    events.Movement(
                        lot_id=longest,
                        mfr_lot=longest,
                        expires_on=date(2027, 1, 31),
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
    refused = check_receipt(return_, ITEMS, Limits(max_posting_bytes=size - 1))
    assert [p.reason_code for p in refused.problems] == [ReasonCode.INVALID_QUANTITY]
