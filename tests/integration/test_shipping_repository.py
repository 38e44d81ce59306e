"""The shipping repository writes only what changed and loads back exactly what was decided;
a second writer of the same shipment waits for the first and decides on what it wrote."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from pydantic import TypeAdapter

from services.shipping import model
from services.shipping.app import MIGRATIONS, SCHEMA
from services.shipping.repository import PgShippingRepository
from shared import db
from shared.movements import Moved
from shared.reasons import ReasonCode
from tests.fixtures.infra import LotlineEnv
from tests.fixtures.locks import waits_for_a_lock

REPO = PgShippingRepository()


@pytest.fixture
async def pool(lotline_env: Any) -> AsyncIterator[asyncpg.Pool]:
    env: LotlineEnv = lotline_env(topics=False)
    await db.migrate(env.dsn, SCHEMA, db.migration_files(MIGRATIONS))
    pool = await db.create_pool(env.dsn, SCHEMA, size=3)
    try:
        yield pool
    finally:
        await pool.close()


def _shipment(shipment_id: str = "S-1") -> model.Shipment:
    return model.Shipment(
        shipment_id=shipment_id,
        office="AI",
        kind="sale",
        ship_on=date(2026, 3, 1),
        counterparty="Montboro",
        reference="SO-1",
        lines=(
            model.Line(
                line_no=1,
                lic="MILK",
                quantity=Decimal("2.50"),
                picks=model.Picks(lots=(model.LotPick(mfr_lot="M-1", quantity=Decimal("2.5")),)),
                awaiting=f"{shipment_id}/allocate/1",
            ),
            model.Line(
                line_no=2,
                lic="CAM",
                quantity=Decimal("2"),
                picks=model.Picks(serials=("SN-1", "SN-2")),
                awaiting=f"{shipment_id}/allocate/2",
            ),
            model.Line(line_no=3, lic="PLAIN", quantity=Decimal("1"), awaiting=None),
        ),
        pending=(
            model.Pending(
                command_id=f"{shipment_id}/allocate/1",
                action="allocate",
                line_no=1,
                lic="MILK",
                picks=model.Picks(lots=(model.LotPick(mfr_lot="M-2", quantity=Decimal("2.5")),)),
            ),
            model.Pending(
                command_id=f"{shipment_id}/allocate/2",
                action="allocate",
                line_no=2,
                lic="CAM",
                picks=model.Picks(),
            ),
        ),
    )


async def _load(pool: asyncpg.Pool, *ids: str, lics: tuple[str, ...] = ()) -> Any:
    async with pool.acquire() as conn, conn.transaction():
        return await REPO.load(conn, ids, lics)


async def _save(
    pool: asyncpg.Pool, before: dict[str, model.Shipment], *after: model.Shipment
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await REPO.save(conn, before, after)


async def _counts(conn: Any) -> dict[str, tuple[int, ...]]:
    """Rows inserted, updated and deleted by this backend, not yet reported, per table."""
    rows = await conn.fetch(
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables"
        " WHERE schemaname = 'shipping'"
    )
    return {r["relname"]: (r["n_tup_ins"], r["n_tup_upd"], r["n_tup_del"]) for r in rows}


async def test_what_is_saved_loads_back_equal(pool: asyncpg.Pool) -> None:
    first = _shipment()
    await _save(pool, {}, first, _shipment("S-2"))
    loaded = await _load(pool, "S-1", "S-2", "S-unknown")
    assert loaded.shipments == {"S-1": first, "S-2": _shipment("S-2")}

    # Line 1 answered, line 2 gone, line 4 new, a release sent, the phase moved on.
    line1 = replace(
        first.lines[0],
        status="allocated",
        awaiting=None,
        held_lics=("CAM", "MILK"),  # CAM: released by a resend, not answered yet
        complete=True,
        movements=(
            Moved(
                lot_id="L-1",
                quantity=Decimal("2.50"),
                unit_cost=Decimal("1.25"),
                mfr_lot="M-1",
                expires_on=date(2026, 4, 1),
            ),
        ),
    )
    line4 = model.Line(
        line_no=4,
        lic="VAX",
        quantity=Decimal("1"),
        status="failed",
        problem=model.Problem(
            line_no=4,
            lic="VAX",
            reason_code=ReasonCode.LOT_REQUIRED,
            reason="line 4 (VAX) names no lot",
            offending="S-1/4",
        ),
    )
    release = model.Pending(command_id="S-1/release/2", action="release", line_no=2, lic="CAM")
    stored = loaded.shipments["S-1"]  # decisions keep the loaded objects of untouched lines
    second = replace(
        stored,
        phase="cancelling",
        waiting=("S-1:cancel-2/status",),
        waiting_documents=(("S-1:cancel-2/status", "S-1:cancel-2"),),
        unanswered=("m-1", "m-2", "m-ü"),  # applied, not answered yet, in the order applied
        lines=(line1, stored.lines[2], line4),
        pending=(stored.pending[1], release),
    )
    async with pool.acquire() as conn, conn.transaction():
        start = await _counts(conn)  # may hold this backend's not yet reported earlier rows
        await REPO.save(conn, loaded.shipments, [second, loaded.shipments["S-2"]])
        end = await _counts(conn)
    counts = {t: tuple(b - a for a, b in zip(start[t], end[t], strict=True)) for t in end}
    # One header changed, one line new, one changed, one gone, one command answered and one
    # sent: nothing else is written (line 3 and shipment S-2 did not change).
    assert counts["shipments"] == (0, 1, 0)
    assert counts["shipment_lines"] == (1, 1, 1)
    assert counts["pending_commands"] == (1, 0, 1)
    assert (await _load(pool, "S-1")).shipments == {"S-1": second}
    assert (await _load(pool, "S-2")).shipments == {"S-2": _shipment("S-2")}


async def test_items_of_requested_and_stored_lines_are_loaded(pool: asyncpg.Pool) -> None:
    items = [model.Item(lic=lic, track_mfr_lot=lic == "MILK") for lic in ("MILK", "CAM", "X")]
    async with pool.acquire() as conn, conn.transaction():
        await REPO.upsert_items(conn, items)
    await _save(pool, {}, _shipment())
    loaded = await _load(pool, "S-1", "S-9", lics=("X", "NOT-AN-ITEM"))
    assert loaded.items == {i.lic: i for i in items}
    assert (await _load(pool, "S-9", lics=("X",))).items == {"X": items[2]}


async def test_a_second_writer_waits_and_sees_the_first_writers_state(
    pool: asyncpg.Pool,
) -> None:
    """Documents (keyed by shipment) and answers (keyed by LIC) of one shipment may be handled
    by two processes at once: the lock taken on load serializes them."""
    await _save(pool, {}, _shipment())
    leader_holds = asyncio.Event()

    async def second_writer() -> dict[str, model.Shipment]:
        await leader_holds.wait()
        async with pool.acquire() as conn, conn.transaction():
            return await REPO.load_awaiting(conn, ["S-1/allocate/2"])

    waiting = asyncio.create_task(second_writer())
    try:
        async with pool.acquire() as first, first.transaction():
            before = (await REPO.load(first, ["S-1"])).shipments
            leader_holds.set()
            await waits_for_a_lock(pool)  # the second writer is blocked on the leader's lock
            assert not waiting.done()
            decided = replace(before["S-1"], phase="cancelling")
            await REPO.save(first, before, [decided])
        assert await asyncio.wait_for(waiting, 10) == {"S-1": decided}
    finally:
        waiting.cancel()


def _waiting_documents() -> tuple[model.Queued, ...]:
    """One of each kind a shipment may hold waiting, in the order read (a ship request and a
    cancel carry the same fields: only the order and kind tell them apart)."""
    ready = model.Ready(
        message_id="m-2",
        shipment_id="S-1",
        office="AI",
        kind="vendor_return",
        ship_on=date(2026, 3, 2),
        counterparty="Aperture",
        lines=(
            model.ReadyLine(line_no=1, lic="VAX", quantity=Decimal("2.50")),
            model.ReadyLine(
                line_no=2,
                lic="BOLT",
                quantity=Decimal("1"),
                refusal=model.Problem(
                    line_no=2,
                    lic="BOLT",
                    reason_code=ReasonCode.INVALID_SERIAL_SPAN,
                    reason="span 9...1 runs backwards",
                    offending="9...1",
                ),
            ),
        ),
    )
    picks = model.PicksUpdate(
        message_id="m-3",
        shipment_id="S-1",
        line_no=1,
        entry=model.Entry(
            lots=(model.LotPick(mfr_lot="A", quantity=Decimal("2.50")),),
            serials="V1...V3",
            scans=("(10)A(21)V9",),
        ),
    )
    return (
        model.Cancel(message_id="m-1", shipment_id="S-1"),
        ready,
        picks,
        model.ShipRequest(message_id="m-4", shipment_id="S-1"),
        model.Cancel(message_id="m-5", shipment_id="S-1"),
    )


async def test_documents_waiting_for_the_phase_under_way_load_back_in_the_order_read(
    pool: asyncpg.Pool,
) -> None:
    """The waiting documents of every kind, in the order read, with their digits; their
    requests' items are loaded with the shipment's own, for deciding them once it settles."""
    items = [model.Item(lic=lic) for lic in ("MILK", "VAX", "BOLT", "OTHER")]
    async with pool.acquire() as conn, conn.transaction():
        await REPO.upsert_items(conn, items)
    shipping = replace(_shipment(), phase="shipping", queued=_waiting_documents())
    await _save(pool, {}, shipping)
    loaded = await _load(pool, "S-1")
    assert loaded.shipments == {"S-1": shipping}
    assert [type(x) for x in loaded.shipments["S-1"].queued] == [type(x) for x in shipping.queued]
    request = loaded.shipments["S-1"].queued[1]
    assert isinstance(request, model.Ready) and str(request.lines[0].quantity) == "2.50"
    async with pool.acquire() as conn, conn.transaction():
        assert set(await REPO.load_items(conn, ["S-1"])) == {"MILK", "VAX", "BOLT"}

    settled = replace(loaded.shipments["S-1"], phase="allocated", queued=())
    await _save(pool, loaded.shipments, settled)
    assert (await _load(pool, "S-1")).shipments == {"S-1": settled}
    rows = await _fetch(pool, "SELECT queued FROM shipments WHERE shipment_id = 'S-1'")
    assert [r["queued"] for r in rows] == [None]


async def test_a_waiting_picks_update_whose_scan_holds_a_nul_loads_back_as_read(
    pool: asyncpg.Pool,
) -> None:
    """A scan is a scanner's raw text, NUL included (the contract accepts it; reading the
    picks refuses it): waiting in the queue, which jsonb cannot hold a NUL in, it is kept
    encoded and loads back as read (review: the save failed and the document was
    dead-lettered)."""
    nul = model.PicksUpdate(
        message_id="m-nul",
        shipment_id="S-1",
        line_no=1,
        entry=model.Entry(
            serials=r"V\u0000 as typed, not a NUL", scans=("0109501101020917\x0021SN-1",)
        ),
    )
    shipping = replace(_shipment(), phase="shipping", queued=(*_waiting_documents(), nul))
    await _save(pool, {}, shipping)
    assert (await _load(pool, "S-1")).shipments == {"S-1": shipping}


async def _fetch(pool: asyncpg.Pool, sql: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch(sql))


async def test_a_request_waiting_before_the_migration_still_waits_after_it(
    lotline_env: Any,
) -> None:
    """Migration 008: the one request a shipment held waiting (007's JSON object) becomes the
    first and only document waiting, unchanged."""
    env: LotlineEnv = lotline_env(topics=False)
    files = db.migration_files(MIGRATIONS)
    await db.migrate(env.dsn, SCHEMA, [f for f in files if not f.name.startswith("008_")])
    (_, ready, *_) = _waiting_documents()
    assert isinstance(ready, model.Ready)
    legacy = TypeAdapter(model.Ready).dump_json(ready).decode()
    pool = await db.create_pool(env.dsn, SCHEMA, size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO shipments (shipment_id, office, kind, ship_on, phase, queued)"
                " VALUES ('S-1', 'AI', 'sale', '2026-03-01', 'cancelling', $1::text::jsonb),"
                " ('S-2', 'AI', 'sale', '2026-03-01', 'allocated', NULL)",
                legacy,
            )
        assert await db.migrate(env.dsn, SCHEMA, files) == ["008_shipping_queued_documents.sql"]
        loaded = await _load(pool, "S-1", "S-2")
        assert loaded.shipments["S-1"].queued == (ready,)
        assert loaded.shipments["S-2"].queued == ()
    finally:
        await pool.close()


async def test_a_request_an_older_process_left_waiting_after_the_migration_loads(
    pool: asyncpg.Pool,
) -> None:
    """A rolling upgrade: a process of the version before 008, still running after the
    migration, writes its one waiting request as 007 did (a JSON object, not an array). The
    reader takes it as a queue of that one request, and its items load with the shipment's."""
    items = [model.Item(lic=lic) for lic in ("MILK", "VAX", "BOLT")]
    async with pool.acquire() as conn, conn.transaction():
        await REPO.upsert_items(conn, items)
    (_, ready, *_) = _waiting_documents()
    assert isinstance(ready, model.Ready)
    await _save(pool, {}, replace(_shipment(), phase="cancelling"))
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE shipments SET queued = $1::text::jsonb WHERE shipment_id = 'S-1'",
            TypeAdapter(model.Ready).dump_json(ready).decode(),
        )
    loaded = await _load(pool, "S-1", lics=("MILK",))
    shipment = loaded.shipments["S-1"]
    assert shipment.queued == (ready,)
    request = shipment.queued[0]
    assert isinstance(request, model.Ready) and str(request.lines[0].quantity) == "2.50"
    assert set(loaded.items) == {"MILK", "VAX", "BOLT"}
    async with pool.acquire() as conn, conn.transaction():
        assert set(await REPO.load_items(conn, ["S-1"])) == {"MILK", "VAX", "BOLT"}

    # Written back by this version, it takes the new shape.
    settled = replace(shipment, phase="allocated")
    await _save(pool, loaded.shipments, settled)
    rows = await _fetch(pool, "SELECT jsonb_typeof(queued) AS t FROM shipments")
    assert [r["t"] for r in rows] == ["array"]
    assert (await _load(pool, "S-1")).shipments == {"S-1": settled}


async def test_a_shipment_stored_before_answers_were_kept_loads_with_none_owed(
    lotline_env: Any,
) -> None:
    """Migration 009: a row written before it (or by a process of the version before, which
    does not write the new columns) loads with no document unanswered and none owed."""
    env: LotlineEnv = lotline_env(topics=False)
    files = db.migration_files(MIGRATIONS)
    await db.migrate(env.dsn, SCHEMA, [f for f in files if not f.name.startswith("009_")])
    pool = await db.create_pool(env.dsn, SCHEMA, size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO shipments (shipment_id, office, kind, ship_on, phase, waiting)"
                " VALUES ('S-1', 'AI', 'sale', '2026-03-01', 'shipping', '[\"m-9/status\"]')"
            )
        assert await db.migrate(env.dsn, SCHEMA, files) == ["009_shipping_answered_documents.sql"]
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO shipments (shipment_id, office, kind, ship_on, phase)"
                " VALUES ('S-2', 'AI', 'sale', '2026-03-01', 'allocating')"
            )
        loaded = (await _load(pool, "S-1", "S-2")).shipments
        assert (loaded["S-1"].waiting, loaded["S-1"].waiting_documents) == (("m-9/status",), ())
        assert [s.unanswered for s in loaded.values()] == [(), ()]
    finally:
        await pool.close()
