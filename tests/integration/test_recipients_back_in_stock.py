"""A recall never chases a unit that is on our shelf (R4, R11, R13, R15), on a real PostgreSQL:
a serial shipped to a customer and then brought back into stock by any later record (a
beginning balance, a count or loss that adds, a receipt, a customer return) is held by no
customer, in every trace form (`lic=` with `serial=`, `mfr_lot=` or `lot_id=`, `mfr_lot=`
alone) and in the customer sheet; and a recipient's `held` counts the serials they hold."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest

from shared.contracts import events as e
from tests.integration.test_ledger import Wire, api, get, mv, pool, record

__all__ = ["api", "pool"]

PUMP = "PUMP-9"
P1 = "P-001"
MX = "MX-1"  # the pumps' manufacturer lot
HOSP, MARY = "CITY-HOSP", "ST-MARY"


def _pump(lot: str, serial: str = P1, quantity: int = 1) -> e.Movement:
    return mv(lot, quantity, "900", serial=serial, mfr_lot=MX)


def _recipients(trace: dict[str, Any]) -> list[tuple[str, str, str, str, list[str]]]:
    return [
        (r["customer"], r["shipped"], r["returned"], r["held"], r["serials_held"])
        for r in trace["recipients"]
    ]


def _beginning_balance(w: Wire, lic: str, lot: str, moves: list[e.Movement], on: date) -> Any:
    """A beginning balance creating adjustment lot `lot` (R11)."""
    adjusted = w.adjusted(lic, lot.split("/")[0], "beginning_balance", moves, on=on)
    return adjusted.model_copy(update={"lot_id": lot})


async def _month_end(pool: asyncpg.Pool, w: Wire) -> None:
    """The manager's story: P-001 and P-002 received (lot-tracked and serialized, MX-1), both
    shipped to CITY-HOSP on SO-1; then a beginning balance finds P-001 on the shelf."""
    await record(
        pool,
        w.item(PUMP, track_mfr_lot=True, serialized=True, perishable=False),
        w.received(
            PUMP,
            "L1",
            2,
            "900",
            [_pump("L1"), _pump("L1", "P-002")],
            po="PO-1",
            on=date(2025, 1, 2),
        ),
    )
    await record(
        pool,
        w.sale(
            PUMP, "SO-1", [_pump("L1"), _pump("L1", "P-002")], customer=HOSP, on=date(2025, 1, 10)
        ),
    )
    await record(
        pool, _beginning_balance(w, PUMP, "BB-1/BB", [_pump("BB-1/BB")], date(2025, 1, 31))
    )


async def test_a_serial_back_in_stock_by_a_beginning_balance_is_held_by_no_customer(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """P-001 is available in the beginning-balance lot and counted on hand: CITY-HOSP is
    named P-002 only, and `held` says 1 with it, in every trace form of P-001's stock."""
    await _month_end(pool, Wire())

    serial = await get(api, f"/serials/{PUMP}/{P1}")
    item = await get(api, f"/items/{PUMP}")
    traces = {
        "serial": await get(api, "/trace", lic=PUMP, serial=P1),
        "mfr_lot": await get(api, "/trace", lic=PUMP, mfr_lot=MX),
        "lot_id": await get(api, "/trace", lic=PUMP, lot_id="L1"),
        "lot alone": (await get(api, "/trace", mfr_lot=MX))["items"][0],
    }

    assert (serial["status"], serial["current"]["lot_id"]) == ("available", "BB-1/BB")
    assert [o["on_hand"] for o in item["stock"]] == ["1"]
    assert _recipients(traces["serial"]) == [(HOSP, "1", "0", "0", [])]
    for form in ("mfr_lot", "lot_id", "lot alone"):
        assert _recipients(traces[form]) == [(HOSP, "2", "0", "1", ["P-002"])], form


async def test_the_customer_sheet_says_what_the_json_says(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """`format=csv&part=recipients`, of the manufacturer lot and of the serial: "Held" and
    "Serials held" are the JSON's, P-001 named nowhere."""
    await _month_end(pool, Wire())

    sheets = []
    for params in ({"mfr_lot": MX}, {"lic": PUMP, "serial": P1}):
        response = await api.get("/trace", params={**params, "format": "csv", "part": "recipients"})
        assert response.status_code == 200, response.text
        sheets.append(list(csv.DictReader(io.StringIO(response.text))))

    assert [[(r["Customer"], r["Held"], r["Serials held"]) for r in s] for s in sheets] == [
        [(HOSP, "1", "P-002")],
        [(HOSP, "0", "")],
    ]


async def test_a_unit_shipped_again_after_a_beginning_balance_is_the_new_customers(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """P-001 found by the beginning balance, then sold to ST-MARY from that lot: ST-MARY holds
    it, CITY-HOSP does not; the first lot's trace names CITY-HOSP holding P-002 only."""
    w = Wire()
    await _month_end(pool, w)
    await record(pool, w.sale(PUMP, "SO-2", [_pump("BB-1/BB")], customer=MARY, on=date(2025, 2, 3)))

    by_serial = await get(api, "/trace", lic=PUMP, serial=P1)
    by_lot = await get(api, "/trace", lic=PUMP, lot_id="L1")
    new_lot = await get(api, "/trace", lic=PUMP, lot_id="BB-1/BB")
    by_mfr_lot = await get(api, "/trace", lic=PUMP, mfr_lot=MX)

    assert _recipients(by_serial) == [(HOSP, "1", "0", "0", []), (MARY, "1", "0", "1", [P1])]
    assert _recipients(by_lot) == [(HOSP, "2", "0", "1", ["P-002"])]
    assert _recipients(new_lot) == [(MARY, "1", "0", "1", [P1])]
    assert _recipients(by_mfr_lot) == [
        (HOSP, "2", "0", "1", ["P-002"]),
        (MARY, "1", "0", "1", [P1]),
    ]


# -- histories of one serial ------------------------------------------------------------------

CAM = "CAM-H15"


@dataclass(frozen=True)
class Step:
    """One recorded change of S-1 of CAM (each recorded in its own batch, in list order)."""

    build: Callable[[Wire, date], Any]
    on_day: int | None = None  # its business date: the step's place in the list unless given


def _s1(lot: str, quantity: int = 1) -> e.Movement:
    return mv(lot, quantity, "300", serial="S-1")


def ship(doc: str, customer: str, lot: str = "L1") -> Step:
    return Step(lambda w, on: w.sale(CAM, doc, [_s1(lot)], customer=customer, on=on))


def give_back(doc: str, customer: str | None, lot: str = "L1") -> Step:
    def build(w: Wire, on: date) -> Any:
        returned = w.returned(CAM, doc, [_s1(lot)], customer="-", on=on)
        return returned.model_copy(update={"customer": customer})

    return Step(build)


def beginning_balance(lot: str, on_day: int | None = None) -> Step:
    return Step(lambda w, on: _beginning_balance(w, CAM, lot, [_s1(lot)], on), on_day)


def adjust(kind: str, adjustment: str, quantity: int, lot: str = "L1") -> Step:
    return Step(lambda w, on: w.adjusted(CAM, adjustment, kind, [_s1(lot, quantity)], on=on))


def receive(lot: str) -> Step:
    return Step(lambda w, on: w.received(CAM, lot, 1, "300", [_s1(lot)], po=f"PO-{lot}", on=on))


def to_vendor(doc: str, lot: str) -> Step:
    return Step(lambda w, on: w.vendor_return(CAM, doc, [_s1(lot)], vendor="Acme", on=on))


A, B = "Alpha", "Bravo"
Held = list[tuple[str, str, list[str]]]

# (history after S-1 is received into L1, recipients of `?serial=S-1`, of `?lot_id=L1`)
HISTORIES: dict[str, tuple[list[Step], Held, Held]] = {
    "shipped": ([ship("O-1", A)], [(A, "1", ["S-1"])], [(A, "1", ["S-1"])]),
    "beginning balance": (
        [ship("O-1", A), beginning_balance("BB-1/BB")],
        [(A, "0", [])],
        [(A, "0", [])],
    ),
    "beginning balance dated before the sale": (
        [ship("O-1", A), beginning_balance("BB-1/BB", on_day=1)],
        [(A, "0", [])],
        [(A, "0", [])],
    ),
    "beginning balance, sold to another": (
        [ship("O-1", A), beginning_balance("BB-1/BB"), ship("O-2", B, "BB-1/BB")],
        [(A, "0", []), (B, "1", ["S-1"])],
        [(A, "0", [])],
    ),
    "beginning balance, sold to another, who returns it": (
        [
            ship("O-1", A),
            beginning_balance("BB-1/BB"),
            ship("O-2", B, "BB-1/BB"),
            give_back("RMA-1", B, "BB-1/BB"),
        ],
        [(A, "0", []), (B, "0", [])],
        [(A, "0", [])],
    ),
    "beginning balance, sold back to the same customer": (
        [ship("O-1", A), beginning_balance("BB-1/BB"), ship("O-2", A, "BB-1/BB")],
        [(A, "1", ["S-1"])],
        [(A, "0", [])],
    ),
    "beginning balance, counted out": (
        [ship("O-1", A), beginning_balance("BB-1/BB"), adjust("count", "CNT-2", -1, "BB-1/BB")],
        [(A, "0", [])],
        [(A, "0", [])],
    ),
    "beginning balance, returned to the vendor": (
        [ship("O-1", A), beginning_balance("BB-1/BB"), to_vendor("RTV-1", "BB-1/BB")],
        [(A, "0", [])],
        [(A, "0", [])],
    ),
    "counted in": ([ship("O-1", A), adjust("count", "CNT-1", 1)], [(A, "0", [])], [(A, "0", [])]),
    "a loss reversed": (
        [ship("O-1", A), adjust("loss", "LOSS-1", 1)],
        [(A, "0", [])],
        [(A, "0", [])],
    ),
    "received again": ([ship("O-1", A), receive("L2")], [(A, "0", [])], [(A, "0", [])]),
    "returned by its customer": (
        [ship("O-1", A), give_back("RMA-1", A)],
        [(A, "0", [])],
        [(A, "0", [])],
    ),
    "returned naming no customer": (
        [ship("O-1", A), give_back("RMA-1", None)],
        [(A, "0", [])],
        [(A, "0", [])],
    ),
    "returned, sold to another": (
        [ship("O-1", A), give_back("RMA-1", A), ship("O-2", B)],
        [(A, "0", []), (B, "1", ["S-1"])],
        [(A, "0", []), (B, "1", ["S-1"])],
    ),
    "counted in, then sold to another from the lot": (
        [ship("O-1", A), adjust("count", "CNT-1", 1), ship("O-2", B)],
        [(A, "0", []), (B, "1", ["S-1"])],
        [(A, "0", []), (B, "1", ["S-1"])],
    ),
}


@pytest.mark.parametrize("name", list(HISTORIES))
async def test_a_serial_is_held_by_its_last_customer_until_any_record_brings_it_back(
    pool: asyncpg.Pool, api: httpx.AsyncClient, name: str
) -> None:
    """R4, as a table of histories: S-1 is a customer's after its last shipment to them until
    any later record (as recorded, whatever its date) brings it back into stock; `held` counts
    the serials held; and the trace agrees with `/serials` on who has the unit."""
    steps, by_serial, by_lot = HISTORIES[name]
    w = Wire()
    await record(
        pool,
        w.item(CAM, serialized=True),
        w.received(CAM, "L1", 1, "300", [_s1("L1")], po="PO-1", on=date(2025, 3, 1)),
    )
    for day, step in enumerate(steps, start=2):
        await record(
            pool, step.build(w, date(2025, 3, day if step.on_day is None else step.on_day))
        )

    serial = await get(api, f"/serials/{CAM}/S-1")
    traced = await get(api, "/trace", lic=CAM, serial="S-1")
    lot = await get(api, "/trace", lic=CAM, lot_id="L1")

    assert [(c, h, s) for c, _, _, h, s in _recipients(traced)] == by_serial
    assert [(c, h, s) for c, _, _, h, s in _recipients(lot)] == by_lot
    holders = [r["customer"] for r in traced["recipients"] if r["serials_held"]]
    shipped_to = serial["current"]["counterparty"] if serial["status"] == "shipped" else None
    assert holders == ([shipped_to] if shipped_to else [])
