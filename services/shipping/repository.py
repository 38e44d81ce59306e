"""Shipping's SQL: the item read model and shipments (header, lines, pending commands).

Bound to the unit of work's connection (search_path = `shipping`); never opens a transaction.
A shipment is loaded `FOR UPDATE` (in shipment id order), so the documents consumer and the
answers consumer never decide on the same shipment at once, and written back set-based: one
statement per table for the whole batch. JSON columns are written as text and cast in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import asyncpg
from pydantic import TypeAdapter

from services.shipping import model
from shared.movements import Moved

T = TypeVar("T")
_PICKS = TypeAdapter(model.Picks)
_MOVEMENTS = TypeAdapter(tuple[Moved, ...])
_PROBLEM = TypeAdapter(model.Problem)


def _json(adapter: TypeAdapter[T], value: T | None) -> str | None:
    return None if value is None else adapter.dump_json(value).decode()


class PgShippingRepository:
    async def items(self, conn: asyncpg.Connection, lics: Sequence[str]) -> dict[str, model.Item]:
        rows = await conn.fetch(
            "SELECT lic, track_mfr_lot, serialized, perishable, gtin"
            " FROM items WHERE lic = ANY($1::text[])",
            list(lics),
        )
        return {row["lic"]: model.Item(**dict(row)) for row in rows}

    async def upsert_items(self, conn: asyncpg.Connection, items: Sequence[model.Item]) -> None:
        latest = list({item.lic: item for item in items}.values())
        await conn.execute(
            "INSERT INTO items (lic, track_mfr_lot, serialized, perishable, gtin)"
            " SELECT * FROM unnest($1::text[], $2::bool[], $3::bool[], $4::bool[], $5::text[])"
            " ON CONFLICT (lic) DO UPDATE SET track_mfr_lot = excluded.track_mfr_lot,"
            "   serialized = excluded.serialized, perishable = excluded.perishable,"
            "   gtin = excluded.gtin, updated_at = now()",
            [i.lic for i in latest],
            [i.track_mfr_lot for i in latest],
            [i.serialized for i in latest],
            [i.perishable for i in latest],
            [i.gtin for i in latest],
        )

    async def awaiting(self, conn: asyncpg.Connection, command_ids: Sequence[str]) -> set[str]:
        """The shipments waiting for any of these commands' answers."""
        rows = await conn.fetch(
            "SELECT DISTINCT shipment_id FROM pending_commands WHERE command_id = ANY($1::text[])",
            list(command_ids),
        )
        return {row["shipment_id"] for row in rows}

    async def load(
        self, conn: asyncpg.Connection, shipment_ids: Sequence[str]
    ) -> dict[str, model.Shipment]:
        """The shipments, locked for this transaction; unknown ids are simply absent."""
        ids = sorted(set(shipment_ids))
        heads = await conn.fetch(
            "SELECT shipment_id, office, kind, counterparty, reference, ship_on, phase"
            " FROM shipments WHERE shipment_id = ANY($1::text[])"
            " ORDER BY shipment_id FOR UPDATE",
            ids,
        )
        if not heads:
            return {}
        lines = await conn.fetch(
            "SELECT shipment_id, line_no, lic, quantity, status, awaiting, held_lic, complete,"
            "   picks::text AS picks, movements::text AS movements, problem::text AS problem"
            " FROM shipment_lines WHERE shipment_id = ANY($1::text[])"
            " ORDER BY shipment_id, line_no",
            ids,
        )
        pending = await conn.fetch(
            "SELECT command_id, shipment_id, action, line_no, lic"
            " FROM pending_commands WHERE shipment_id = ANY($1::text[]) ORDER BY command_id",
            ids,
        )
        by_id: dict[str, tuple[list[model.Line], list[model.Pending]]] = {
            row["shipment_id"]: ([], []) for row in heads
        }
        for row in lines:
            by_id[row["shipment_id"]][0].append(_line(row))
        for row in pending:
            by_id[row["shipment_id"]][1].append(
                model.Pending(
                    command_id=row["command_id"],
                    action=row["action"],
                    line_no=row["line_no"],
                    lic=row["lic"],
                )
            )
        return {
            row["shipment_id"]: model.Shipment(
                shipment_id=row["shipment_id"],
                office=row["office"],
                kind=row["kind"],
                ship_on=row["ship_on"],
                counterparty=row["counterparty"],
                reference=row["reference"],
                phase=row["phase"],
                lines=tuple(by_id[row["shipment_id"]][0]),
                pending=tuple(by_id[row["shipment_id"]][1]),
            )
            for row in heads
        }

    async def save(self, conn: asyncpg.Connection, shipments: Sequence[model.Shipment]) -> None:
        """Write the shipments back whole: header upserted, lines and pending replaced."""
        if not shipments:
            return
        ids = [s.shipment_id for s in shipments]
        await conn.execute(
            "INSERT INTO shipments (shipment_id, office, kind, counterparty, reference, ship_on,"
            "   phase)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
            "   $6::date[], $7::text[])"
            " ON CONFLICT (shipment_id) DO UPDATE SET office = excluded.office,"
            "   kind = excluded.kind, counterparty = excluded.counterparty,"
            "   reference = excluded.reference, ship_on = excluded.ship_on,"
            "   phase = excluded.phase, updated_at = now()",
            ids,
            [s.office for s in shipments],
            [s.kind for s in shipments],
            [s.counterparty for s in shipments],
            [s.reference for s in shipments],
            [s.ship_on for s in shipments],
            [s.phase for s in shipments],
        )
        await conn.execute("DELETE FROM shipment_lines WHERE shipment_id = ANY($1::text[])", ids)
        await conn.execute("DELETE FROM pending_commands WHERE shipment_id = ANY($1::text[])", ids)
        lines = [(s.shipment_id, line) for s in shipments for line in s.lines]
        await conn.execute(
            "INSERT INTO shipment_lines (shipment_id, line_no, lic, quantity, status, awaiting,"
            "   held_lic, complete, picks, movements, problem)"
            " SELECT s, n, l, q, st, a, h, c, p::jsonb, m::jsonb, pr::jsonb"
            " FROM unnest($1::text[], $2::int[], $3::text[], $4::numeric[], $5::text[],"
            "   $6::text[], $7::text[], $8::bool[], $9::text[], $10::text[], $11::text[])"
            "   AS v(s, n, l, q, st, a, h, c, p, m, pr)",
            [sid for sid, _ in lines],
            [line.line_no for _, line in lines],
            [line.lic for _, line in lines],
            [line.quantity for _, line in lines],
            [line.status for _, line in lines],
            [line.awaiting for _, line in lines],
            [line.held_lic for _, line in lines],
            [line.complete for _, line in lines],
            [_json(_PICKS, line.picks) for _, line in lines],
            [_json(_MOVEMENTS, line.movements) for _, line in lines],
            [_json(_PROBLEM, line.problem) for _, line in lines],
        )
        pending = [(s.shipment_id, p) for s in shipments for p in s.pending]
        await conn.execute(
            "INSERT INTO pending_commands (command_id, shipment_id, action, line_no, lic)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[])",
            [p.command_id for _, p in pending],
            [sid for sid, _ in pending],
            [p.action for _, p in pending],
            [p.line_no for _, p in pending],
            [p.lic for _, p in pending],
        )


def _line(row: asyncpg.Record) -> model.Line:
    return model.Line(
        line_no=row["line_no"],
        lic=row["lic"],
        quantity=row["quantity"],
        picks=_PICKS.validate_json(row["picks"]),
        status=row["status"],
        awaiting=row["awaiting"],
        held_lic=row["held_lic"],
        complete=row["complete"],
        movements=_MOVEMENTS.validate_json(row["movements"]),
        problem=None if row["problem"] is None else _PROBLEM.validate_json(row["problem"]),
    )
