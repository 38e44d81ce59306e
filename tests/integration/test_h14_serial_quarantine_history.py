"""A serial's own history shows its quarantine, on a real PostgreSQL (docs/contract.md
"Quarantine", R15): for a serialized item a quarantine's and a release's records are split as
the lot's other records are, one per serial in stock in the lot (1 unit at the serial's unit
cost) and one of the lot for units in no serial, so `/serials/{lic}/{serial}` and
`/trace?serial=` list the hold and the release, and the lot's records still add up."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from services.ledger import quarantine, service
from shared.consumer import Inbound, UnitOfWork
from shared.contracts import events as e
from shared.outbox import Outbox
from tests.integration.test_ledger import Wire, api, get, mv, pool, record, record_costs

__all__ = ["api", "pool"]

D = Decimal
STENT = "STENT-3"
LOT = "SL-9"
ON = date(2026, 3, 2)
LATER = date(2026, 3, 9)
EXP = date(2028, 6, 30)


def _unit(serial: str, *, quantity: int = 1, mfr_lot: str | None = None) -> e.Movement:
    expires_on = EXP if mfr_lot else None
    return mv(LOT, quantity, "300.00", serial=serial, mfr_lot=mfr_lot, expires_on=expires_on)


def _stents(w: Wire) -> list[e.Event]:
    """ST0001–ST0004 received into SL-9 at 300.00; ST0001 sold before any hold."""
    return [
        w.item(STENT, serialized=True),
        w.received(
            STENT,
            LOT,
            4,
            "300.00",
            [_unit(f"ST000{n}") for n in range(1, 5)],
            po="PO-7",
            on=date(2026, 1, 5),
        ),
        *w.sale(STENT, "SO-1", [_unit("ST0001")], customer="Clinic A", on=date(2026, 2, 1)),
    ]


def _hold(
    w: Wire,
    on_hand: int,
    *,
    quarantined: bool = True,
    mfr_lot: str | None = None,
    lot_id: str | None = LOT,
) -> e.StockQuarantined:
    """QA-503 on SL-9 (or one of its manufacturer lots), or its release QA-503-R."""
    return e.StockQuarantined(
        message_id=w._id("quarantined"),
        command_id="c",
        lic=STENT,
        quarantine_id="QA-503" if quarantined else "QA-503-R",
        released_quarantine_id=None if quarantined else "QA-503",
        quarantined=quarantined,
        reason="failed sterility check" if quarantined else "retested",
        mfr_lot=mfr_lot,
        lot_id=lot_id,
        quarantined_on=ON if quarantined else LATER,
        stock=[e.QuarantinedStock(lot_id=LOT, office="AI", mfr_lot=mfr_lot, on_hand=D(on_hand))],
    )


async def _records(pool: asyncpg.Pool, event_id: str) -> list[tuple[Any, ...]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT txn_id, serial, mfr_lot, record, quantity, stock_change, unit_cost, cost,"
            " expires_on, document FROM transactions WHERE event_id = $1 ORDER BY seq",
            event_id,
        )
    return [tuple(r.values()) for r in rows]


def _history(answer: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(x["event_type"], x["document"], x["quantity"]) for x in answer]


async def test_a_held_serials_history_and_trace_list_its_hold_and_release(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """The clerk's case: SL-9's three stents in stock are held (QA-503), then released; each
    one's history and trace list both, the sold one's neither."""
    w = Wire()
    held = _hold(w, 3)
    await record(pool, *_stents(w), held)
    released = _hold(w, 3, quarantined=False)
    await record(pool, released)

    h = held.message_id
    assert await _records(pool, h) == [
        (f"{h}/0/serial/{s}", s, None, "serial", D(1), D(0), D("300.00"), D("300.00"), None,
         "QA-503")
        for s in ("ST0002", "ST0003", "ST0004")
    ]  # fmt: skip
    assert [r[1] for r in await _records(pool, released.message_id)] == [
        "ST0002",
        "ST0003",
        "ST0004",
    ]

    unit = await get(api, f"/serials/{STENT}/ST0002")
    expected = [
        ("receipt", "IN-PO-7", "1"),
        ("quarantine", "QA-503", "1"),
        ("quarantine_release", "QA-503-R", "1"),
    ]
    assert _history(unit["history"]) == expected
    assert unit["history"][2]["reason"] == "releases quarantine QA-503: retested"
    assert _history((await get(api, "/trace", lic=STENT, serial="ST0002"))["events"]) == expected
    sold = await get(api, f"/serials/{STENT}/ST0001")
    assert {x["event_type"] for x in sold["history"]} == {"receipt", "allocation", "shipment"}

    # The lot's trace lists the same 3 units held and released as before, now by serial.
    events = (await get(api, "/trace", lic=STENT, lot_id=LOT))["events"]
    for kind in ("quarantine", "quarantine_release"):
        rows = [x for x in events if x["event_type"] == kind]
        assert sum(D(x["quantity"]) for x in rows) == 3
        assert sum(D(x["cost"]) for x in rows) == D("900.00")
        assert all(x["serial"] for x in rows)


async def test_a_held_serial_is_costed_at_its_own_unit_cost(pool: asyncpg.Pool) -> None:
    """R16: once PO-7 closes at 320.00 the serials carry it, and so do their hold records."""
    w = Wire()
    await record(pool, *_stents(w))
    await record_costs(pool, w.po("PO-7", STENT, act_unit_cost=D("320.00"), closed=True))
    held = _hold(w, 3)
    await record(pool, held)
    assert {(r[6], r[7]) for r in await _records(pool, held.message_id)} == {
        (D("320.00"), D("320.00"))
    }


async def test_a_held_manufacturer_lot_covers_only_its_own_serials(pool: asyncpg.Pool) -> None:
    """An item with manufacturer lots and serials: holding M-1 in SL-9 writes a record for each
    serial of M-1 there (with its expiry), none for M-2's."""
    w = Wire()
    units = [
        _unit("V-1", mfr_lot="M-1"),
        _unit("V-2", mfr_lot="M-2"),
        _unit("V-3", mfr_lot="M-1"),
    ]
    held = _hold(w, 2, mfr_lot="M-1", lot_id=None)
    await record(
        pool,
        w.item(STENT, serialized=True, track_mfr_lot=True, perishable=True),
        w.received(STENT, LOT, 3, "300.00", units, po="PO-7", on=ON),
        held,
    )
    assert [(r[1], r[2], r[4], r[8]) for r in await _records(pool, held.message_id)] == [
        ("V-1", "M-1", D(1), EXP),
        ("V-3", "M-1", D(1), EXP),
    ]


async def test_units_in_no_serial_get_one_record_of_the_lot(pool: asyncpg.Pool) -> None:
    """As a closing's cost changes split a lot: a hold naming more on hand than the lot has
    serials in stock writes the rest as one record of the lot, keyed as the lot's only record
    was; the entry's records add up to its stock on hand."""
    w = Wire()
    held = _hold(w, 5)
    await record(pool, *_stents(w), held)
    rows = await _records(pool, held.message_id)
    assert [(r[0].removeprefix(held.message_id), r[1], r[3], r[4]) for r in rows] == [
        ("/0/serial/ST0002", "ST0002", "serial", D(1)),
        ("/0/serial/ST0003", "ST0003", "serial", D(1)),
        ("/0/serial/ST0004", "ST0004", "serial", D(1)),
        ("/0", None, "lot", D(2)),
    ]


async def test_a_redelivered_hold_writes_no_record_twice(pool: asyncpg.Pool) -> None:
    w = Wire()
    held = _hold(w, 3)
    await record(pool, *_stents(w), held)
    await record(pool, held)
    assert len(await _records(pool, held.message_id)) == 3


def _moved_after_the_hold(w: Wire) -> list[e.Event]:
    """ST0002 written off and ST0001 returned by the customer into SL-9, after the hold."""
    return [
        w.adjusted(STENT, "ADJ-1", "loss", [_unit("ST0002", quantity=-1)], on=ON),
        w.returned(STENT, "RMA-1", [_unit("ST0001")], customer="Clinic A", on=ON),
    ]


async def test_serials_moved_after_a_hold_in_its_batch_count_as_they_were_at_it(
    pool: asyncpg.Pool,
) -> None:
    """`quarantine.record` given the batch: the hold's records are of the serials in stock at
    it (ST0002–ST0004), not of those in stock at the batch's end (ST0001, ST0003, ST0004)."""
    w = Wire()
    await record(pool, *_stents(w))
    held = _hold(w, 3)
    after = _moved_after_the_hold(w)
    async with pool.acquire() as conn, conn.transaction():
        batch = [Inbound(x, "inventory.events", 0, n, b"") for n, x in enumerate(after)]
        await service.record_events(UnitOfWork(conn, Outbox()), batch)  # type: ignore[arg-type]
        await quarantine.record(conn, [held], [held, *after])
    assert [r[1] for r in await _records(pool, held.message_id)] == ["ST0002", "ST0003", "ST0004"]


async def test_the_service_counts_serials_at_the_hold_in_its_batch(pool: asyncpg.Pool) -> None:
    w = Wire()
    await record(pool, *_stents(w))
    held = _hold(w, 3)
    await record(pool, held, *_moved_after_the_hold(w))
    assert [r[1] for r in await _records(pool, held.message_id)] == ["ST0002", "ST0003", "ST0004"]


async def test_a_serial_arriving_into_a_held_lot_gets_its_own_quarantine_record(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """ST0001 returned into SL-9 while QA-503 holds it: its history shows it held."""
    w = Wire()
    await record(pool, *_stents(w), _hold(w, 3))
    back = w.returned(STENT, "RMA-1", [_unit("ST0001")], customer="Clinic A", on=LATER)
    await record(pool, back)
    rows = await _records(pool, back.message_id)
    assert [(r[1], r[3], r[4], r[6], r[9]) for r in rows if r[9] == "QA-503"] == [
        ("ST0001", "serial", D(1), D("300.00"), "QA-503")
    ]
    history = (await get(api, f"/serials/{STENT}/ST0001"))["history"]
    assert history[-1]["event_type"] == "quarantine"
