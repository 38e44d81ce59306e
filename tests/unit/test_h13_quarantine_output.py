"""What `lotline send` and `lotline watch` print for a quarantine's answer (`send.describe`,
the one formatter of both): which quarantine, held or released, what it names, its reason and
the stock it covers, a few rows then how many more; and a serial a loss removed, signed like
the lot quantities a loss removes."""

from __future__ import annotations

import json
from typing import Any

from shared.send import Outcome, check, describe
from shared.watch import Seen

QUARANTINE = json.dumps(
    {
        "type": "QuarantineStock",
        "message_id": "q-1",
        "quarantine_id": "Q-1",
        "lic": "YOG-1",
        "mfr_lot": "X",
        "quarantined": True,
        "reason": "failed QA",
    }
)


def _stock(lot_id: str, on_hand: str, allocated: str = "0", **fields: Any) -> dict[str, Any]:
    return {"lot_id": lot_id, "office": "MAIN", "mfr_lot": "X", "on_hand": on_hand} | {
        "allocated": allocated,
        **fields,
    }


def _answer(**fields: Any) -> dict[str, Any]:
    return {
        "type": "StockQuarantined",
        "lic": "YOG-1",
        "command_id": "quarantine:q-1",
        "quarantine_id": "Q-1",
        "quarantined": True,
        "reason": "failed QA",
        "mfr_lot": "X",
        "lot_id": None,
        "office": None,
        "quarantined_on": "2026-11-22",
        "stock": [_stock("PO-1/1", "5", "2"), _stock("PO-2/1", "3", office="EAST")],
    } | fields


def test_a_hold_names_its_id_what_it_holds_its_reason_and_the_stock() -> None:
    summary = Outcome(check("f:1", QUARANTINE), answer=_answer()).summary()

    assert summary.splitlines() == [
        "f:1  QuarantineStock YOG-1  → StockQuarantined Q-1 held: mfr lot X at every office"
        " (failed QA)",
        "      held: 5 of X in lot PO-1/1 at MAIN (2 allocated)",
        "      held: 3 of X in lot PO-2/1 at EAST",
    ]


def test_a_release_reads_otherwise_than_a_hold() -> None:
    released = describe(
        _answer(
            quarantined=False,
            reason="",
            mfr_lot=None,
            lot_id="PO-1/1",
            office="MAIN",
            stock=[_stock("PO-1/1", "5", mfr_lot=None)],
        )
    )

    assert released.splitlines() == [
        "StockQuarantined Q-1 released: lot PO-1/1 at MAIN",
        "      released: 5 in lot PO-1/1 at MAIN",
    ]


def test_a_hold_of_nothing_on_hand_says_so() -> None:
    """The rule stands with no stock: a manufacturer lot received later is held too."""
    assert describe(_answer(stock=[])).splitlines()[1:] == [
        "      held: nothing on hand now (stock received later is held too)"
    ]


def test_a_hold_of_many_lots_lists_a_few_then_counts_the_rest() -> None:
    stock = [_stock(f"PO-{n}/1", "1") for n in range(1, 21)]
    rows = describe(_answer(stock=stock)).splitlines()[1:]

    assert rows[:5] == [f"      held: 1 of X in lot PO-{n}/1 at MAIN" for n in range(1, 6)]
    assert rows[5:] == ["      … 15 more lots held"]


def test_watch_prints_a_quarantine_as_send_does() -> None:
    seen = Seen("events", "YOG-1", describe(_answer()), _answer())
    assert seen.summary().splitlines()[0] == (
        "events YOG-1  StockQuarantined Q-1 held: mfr lot X at every office (failed QA)"
    )


def test_a_serial_loss_is_signed_as_a_lot_loss_is() -> None:
    adjusted = describe(
        {
            "type": "InventoryAdjusted",
            "lic": "THERM-1",
            "kind": "loss",
            "movements": [
                {"lot_id": "PO-7/1", "serial": "SN-103", "quantity": "-1"},
                {"lot_id": "PO-7/1", "mfr_lot": "L100", "serial": "SN-104", "quantity": "-1"},
            ],
        }
    )

    assert adjusted.splitlines()[1].strip() == (
        "THERM-1: -1 serial SN-103 from lot PO-7/1, -1 serial SN-104 of L100 from lot PO-7/1"
    )


def test_a_serial_received_or_counted_back_is_unsigned_as_a_lot_is() -> None:
    counted = describe(
        {
            "type": "InventoryAdjusted",
            "lic": "THERM-1",
            "movements": [{"lot_id": "PO-7/1", "serial": "SN-103", "quantity": "1"}],
        }
    )
    assert counted.splitlines()[1].strip() == "THERM-1: serial SN-103 into lot PO-7/1"
