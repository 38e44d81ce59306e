"""A scanned unit says which manufacturer lot it is from (R3, R5, R15).

Allocation pairs a line's serials with its lots by position (the first lot's quantity of serials
belongs to it, and so on), so receiving orders the serials for that pairing to file each
scanned serial under the lot its scan names. A scan that cannot be filed so (a lot the line does
not list, more scanned serials than the lot holds, another expiry date than the typed one)
refuses the line, naming the scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from random import Random

from hypothesis import given
from hypothesis import strategies as st

from services.receiving import translate
from services.receiving.domain import Item, LineCommand, LotEntry, check_receipt
from shared.contracts import codec
from shared.contracts import commands as c
from shared.contracts import upstream as u
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

DEC = date(2026, 12, 31)
JAN = date(2027, 1, 31)
NOW = datetime(2026, 11, 2, 9, tzinfo=UTC)


def unit(mfr_lot: str | None, serial: str | None = None, expires_on: date = DEC) -> str:
    """A GS1 scan of one VAX unit (human-readable form)."""
    text = f"(01){GTIN}(17){expires_on:%y%m%d}"
    if mfr_lot is not None:
        text += f"(10){mfr_lot}"
    return text if serial is None else f"{text}(21){serial}"


def filed(command: LineCommand) -> dict[str, str]:
    """serial → manufacturer lot, as allocation pairs them: by position."""
    owners = [entry.mfr_lot for entry in command.lots for _ in range(int(entry.quantity))]
    assert len(owners) == len(command.serials)
    return dict(zip(command.serials, owners, strict=True))


def test_serials_scanned_against_typed_lots_are_filed_under_their_scanned_lot() -> None:
    """R5, R15: the scans say S1 is of lot B and S2 of lot A, whatever order the lots are typed."""
    (command,) = accepted(
        line(
            "VAX", 2,
            lots=[lot("A", 1, DEC), lot("B", 1, DEC)],
            scans=[unit("B", "S1"), unit("A", "S2")],
        )
    )  # fmt: skip
    assert command.lots == (lot("A", 1, DEC), lot("B", 1, DEC))
    assert filed(command) == {"S1": "B", "S2": "A"}


def test_typed_serials_fill_the_places_scanned_serials_leave() -> None:
    """R5: S3 is scanned from lot A; the typed S1 and S2 take the places left, in order."""
    (command,) = accepted(
        line(
            "VAX", 3,
            lots=[lot("A", 2, DEC), lot("B", 1, DEC)],
            serials="S1, S2",
            scans=[unit("A", "S3")],
        )
    )  # fmt: skip
    assert filed(command) == {"S3": "A", "S1": "A", "S2": "B"}


def test_scans_alone_give_the_lots_and_a_typed_serial_takes_the_unit_scanned_without_one() -> None:
    """R5: scans of [lot B, serial S2] and [lot A, no serial] with S1 typed: S1 is lot A's."""
    (command,) = accepted(line("VAX", 2, serials="S1", scans=[unit("B", "S2"), unit("A")]))
    assert command.lots == (lot("B", 1, DEC), lot("A", 1, DEC))
    assert filed(command) == {"S2": "B", "S1": "A"}


def test_a_serial_scanned_without_a_lot_fills_a_place_like_a_typed_one() -> None:
    (command,) = accepted(
        line(
            "VAX", 2,
            lots=[lot("A", 1, DEC), lot("B", 1, DEC)],
            scans=[unit(None, "S1"), unit("A", "S2")],
        )
    )  # fmt: skip
    assert filed(command) == {"S2": "A", "S1": "B"}


def test_a_scan_of_a_lot_the_line_does_not_list_is_refused_naming_the_scan() -> None:
    """R3, R5: typed lot A, but both units say lot B."""
    scans = [unit("B", "S1"), unit("B", "S2")]
    p = only(refused(line("VAX", 2, lots=[lot("A", 2, DEC)], scans=scans)))
    assert (p.line_no, p.reason_code, p.offending) == (1, ReasonCode.INVALID_BARCODE, scans[0])
    assert "lot B" in p.reason


def test_a_scanned_lot_the_line_does_not_list_is_refused_on_an_item_without_serials() -> None:
    scans = [f"(01){GTIN}(10)B"] * 2
    p = only(refused(line("BOLT", 2, lots=[lot("A", 2)], scans=scans)))
    assert (p.reason_code, p.offending) == (ReasonCode.INVALID_BARCODE, scans[0])


def test_more_serials_scanned_from_a_lot_than_it_holds_are_refused() -> None:
    """R3, R5: lot A is typed for one unit and two units scanned say lot A."""
    scans = [unit("A", "S1"), unit("A", "S2")]
    p = only(refused(line("VAX", 2, lots=[lot("A", 1, DEC), lot("B", 1, DEC)], scans=scans)))
    assert (p.reason_code, p.offending) == (ReasonCode.SERIAL_COUNT_MISMATCH, scans[1])


def test_a_scan_whose_expiry_contradicts_the_typed_lot_is_refused() -> None:
    """R3: lot A typed expiring in January, scanned expiring in December (as typed twice)."""
    scan = f"(01){GTIN}(17)261231(10)A"
    p = only(refused(line("BOLT", 1, lots=[lot("A", 1, JAN)], scans=[scan])))
    assert (p.reason_code, p.offending) == (ReasonCode.EXPIRY_REQUIRED, scan)
    assert "2026-12-31" in p.reason and "2027-01-31" in p.reason


def test_a_scan_agreeing_with_the_typed_lot_is_accepted() -> None:
    (command,) = accepted(
        line("VAX", 1, lots=[lot("A", 1, DEC)], scans=[unit("A", "S1", expires_on=DEC)])
    )
    assert filed(command) == {"S1": "A"}


def test_a_returns_scanned_expiry_is_not_checked() -> None:
    """R13: returned units go back into the lots they were shipped from, expiry and all."""
    scan = f"(01){GTIN}(17)261231(10)A"
    (command,) = accepted(
        line("BOLT", 1, lots=[lot("A", 1, JAN)], scans=[scan]), source="customer_return"
    )
    assert command.lots == (lot("A", 1, JAN),)


def test_a_returns_serials_scanned_with_their_lots_go_to_allocation_paired_with_them() -> None:
    """R5, R13, R15, unit by unit: only allocation knows which lot a returned unit was shipped
    from, and the lots beside the serials only let it count how many of them each lot holds
    (two serials scanned with each other's lots pass). So a return line sends each serial
    scanned with its lot paired with that lot (`ReturnStock.serial_lots`); a typed serial, or
    one scanned without a lot, pairs with nothing."""
    scans = [unit("B", "S1"), unit("A", "S2"), unit(None, "S4")]
    doc = receipt(
        line("VAX", 4, lots=[lot("A", 2), lot("B", 2)], serials="S3", scans=scans),
        source="customer_return",
    )
    (command,) = check_receipt(doc, ITEMS).commands
    assert command.is_return
    assert sorted(command.serials) == ["S1", "S2", "S3", "S4"]
    assert command.serial_lots == (("S1", "B"), ("S2", "A"))

    message = u.ShipmentReceived.model_validate(
        {
            "message_id": "m-1",
            "occurred_at": NOW,
            "shipment_id": "RMA-1",
            "office": "AI",
            "source": "customer_return",
            "customer": "Montboro",
            "received_on": DEC,
            "lines": [
                {
                    "line_no": 1,
                    "lic": "VAX",
                    "quantity": 2,
                    "scans": [unit("B", "S1"), unit("A", "S2")],
                }
            ],
        }
    )
    (command,) = check_receipt(translate.receipt(message), ITEMS).commands
    wire = translate.command(message, command)
    assert isinstance(wire, c.ReturnStock)
    assert wire.serial_lots == {"S1": "B", "S2": "A"}
    assert sorted(wire.serials) == ["S1", "S2"]
    assert [(x.mfr_lot, x.quantity) for x in wire.lots] == [("B", 1), ("A", 1)]
    assert c.ReturnStock.model_validate_json(codec.encode(wire)) == wire


def test_only_a_return_of_a_lot_tracked_serialized_item_pairs_its_scanned_serials() -> None:
    """R5, R15: a receipt files each scanned serial under its lot itself (by position, R3), so
    it sends no pairs; an item not tracked by lot has no lot to pair a serial with, whatever
    its labels carry."""
    scans = [unit("B", "S1"), unit("A", "S2")]
    (received,) = accepted(line("VAX", 2, scans=scans))
    assert received.serial_lots == () and filed(received) == {"S1": "B", "S2": "A"}
    scope = [f"(01){GTIN}(10)A(21)C1", f"(01){GTIN}(10)B(21)C2"]
    (returned,) = accepted(line("SCOPE", 2, scans=scope), source="customer_return")
    assert (returned.serials, returned.lots, returned.serial_lots) == (("C1", "C2"), (), ())


# --- the pairing, over many lines -------------------------------------------------------------


@given(
    st.lists(st.sampled_from("ABC"), min_size=1, max_size=8),
    st.lists(st.booleans(), min_size=8, max_size=8),
    st.randoms(use_true_random=False),
)
def test_every_scanned_serial_is_filed_under_its_scanned_lot(
    lots: Sequence[str], scanned: Sequence[bool], rng: Random
) -> None:
    """R5, R15: unit i (serial Si) is of lot `lots[i]`; some units are scanned (serial and
    lot), in any order, the others typed; the lots are typed one entry per unit."""
    units = [(f"S{i}", name) for i, name in enumerate(lots)]
    scans = [f"(10){name}(21){serial}" for i, (serial, name) in enumerate(units) if scanned[i]]
    rng.shuffle(scans)
    typed = tuple(serial for i, (serial, _) in enumerate(units) if not scanned[i])
    entries = [LotEntry(mfr_lot=name, quantity=Decimal(1)) for _, name in units]
    doc = receipt(line("LS", len(units), lots=entries, serials=typed, scans=scans))
    checked = check_receipt(doc, {"LS": Item(lic="LS", track_mfr_lot=True, serialized=True)})

    assert checked.accepted, checked.problems
    placed = filed(checked.commands[0])
    assert sorted(placed) == sorted(serial for serial, _ in units)
    assert {serial: placed[serial] for serial, _ in units if serial not in typed} == {
        serial: name for serial, name in units if serial not in typed
    }
