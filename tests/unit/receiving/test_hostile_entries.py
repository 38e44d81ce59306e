"""Hostile serial entries and scans never crash the receipt check (DESIGN.md §6): every
document gets a verdict, and every refusal names its line, a reason code and a reason."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.receiving.domain import Item, Limits, LotEntry, Receipt, ReceiptLine, check_receipt
from services.receiving.translate import problem as wire_problem

ITEMS = {
    "CAM": Item(lic="CAM", serialized=True, gtin="09506000134352"),
    "VAX": Item(lic="VAX", track_mfr_lot=True, perishable=True, serialized=True),
    "MILK": Item(lic="MILK", track_mfr_lot=True, perishable=True),
}
_text = st.text(max_size=40) | st.sampled_from(["1...3", "S-01…S-03", "\x00", "\ud800", "9..1"])
_scan = st.text(max_size=40) | st.sampled_from(
    ["(01)09506000134352(21)X", "]d20109506000134352\x1d21Y", "(10)L1(17)270101", "("]
)


@settings(max_examples=300, deadline=None)
@given(
    lic=st.sampled_from(sorted(ITEMS)),
    quantity=st.decimals(min_value=Decimal("0.5"), max_value=Decimal(5), places=1),
    serials=st.none() | _text | st.lists(_text, max_size=4).map(tuple),
    scans=st.lists(_scan, max_size=4).map(tuple),
    lot_names=st.lists(st.sampled_from(["A", "B"]), max_size=3),
)
def test_any_entry_gets_a_verdict_with_valid_wire_refusals(
    lic: str,
    quantity: Decimal,
    serials: str | tuple[str, ...] | None,
    scans: tuple[str, ...],
    lot_names: list[str],
) -> None:
    line = ReceiptLine(
        line_no=1,
        lic=lic,
        quantity=quantity,
        serials=serials,
        scans=scans,
        lots=tuple(LotEntry(mfr_lot=n, quantity=Decimal(1)) for n in lot_names),
    )
    receipt = Receipt(
        message_id="m",
        shipment_id="PO",
        office="AI",
        source="purchase",
        received_on=date(2026, 11, 2),
        lines=(line,),
    )
    checked = check_receipt(receipt, ITEMS, Limits(max_span=50))
    assert checked.accepted == (not checked.problems)
    for problem in checked.problems:
        assert problem.line_no == 1 and problem.reason
        wire_problem(problem)  # the refusal itself is always a valid contract message
    for command in checked.commands:
        assert len(command.serials) in (0, int(quantity))
