"""Postgres persistence of `LicState`: set-based loads for a batch of LICs, set-based writes of
what changed. One statement per table and direction, whatever the batch size.

Rows travel as JSON texts (`shared.db.json_rows`), one parameter per table: the cheapest way for
a batch's few hundred rows. From COPY_MIN_ROWS rows of a table (a receipt or sale of thousands
of serials) they go by COPY instead: a parameter of 100,000 JSON texts is parsed when the
statement is planned and its columns cast again when it runs, which took 3.4 s of a
100,000-serial receipt's save. New rows (keys the state did not have: the state is the LIC's
every row, as committed) are copied straight into their table; changed ones into a scratch
table, then upserted from it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import asyncpg
import orjson
from pydantic import BaseModel

from services.allocation.domain.model import (
    AllocateLine,
    Allocation,
    CustomerShipment,
    HeldLine,
    InventoryLot,
    Item,
    LicState,
    LotPick,
    MfrLot,
    Pick,
    Quarantine,
    SerialStatus,
    Touched,
    UnallocatedStock,
    Unit,
    WaitingLine,
)
from shared.contracts.codec import encode
from shared.db import json_rows
from shared.outbox import TYPE_HEADER

COPY_MIN_ROWS = 2_000
"""A table's upserts go by COPY from this many rows (module docstring)."""


@dataclass(frozen=True)
class Table:
    """How one kind of row maps to one table: columns with their SQL types, key columns."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    to_row: Callable[[str, Any], tuple[Any, ...]]

    def upsert_sql(self, first: int = 1) -> str:
        """The upsert of many rows, given in parameter `first` (`shared.db.json_rows`)."""
        selected = ", ".join(_field(i, t) for i, (_, t) in enumerate(self.columns))
        return self._upsert(selected, _rows(first))

    @property
    def names(self) -> list[str]:
        return [c for c, _ in self.columns]

    @property
    def copies_straight(self) -> bool:
        """Whether COPY may write rows into the table itself: not through a jsonb column, whose
        JSON text the connection's jsonb codec would encode again as a string."""
        return all(t != "jsonb" for _, t in self.columns)

    @property
    def scratch(self) -> str:
        """The temporary table a COPY of this table's rows goes into."""
        return f"scratch_{self.name}"

    def scratch_sql(self) -> str:
        """Create `scratch`: this table's columns, a jsonb one as text (the rows carry its JSON
        text, which the connection's jsonb codec would encode again as a string)."""
        columns = ", ".join(f"{c} {'text' if t == 'jsonb' else t}" for c, t in self.columns)
        return f"CREATE TEMP TABLE {self.scratch} ({columns}) ON COMMIT DROP"

    def upsert_scratch_sql(self) -> str:
        """The upsert of every row in `scratch`."""
        selected = ", ".join(f"{c}::jsonb" if t == "jsonb" else c for c, t in self.columns)
        return self._upsert(selected, self.scratch)

    def _upsert(self, selected: str, source: str) -> str:
        names = ", ".join(c for c, _ in self.columns)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c, _ in self.columns if c not in self.key)
        conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        return (
            f"INSERT INTO {self.name} ({names}) SELECT {selected} FROM {source}"
            f" ON CONFLICT ({', '.join(self.key)}) {conflict}"
        )

    def delete_sql(self, first: int = 1) -> str:
        """The delete of many rows by key, the keys in parameter `first` (`shared.db.json_rows`)."""
        types = dict(self.columns)
        selected = ", ".join(_field(i, types[k]) for i, k in enumerate(self.key))
        keys = ", ".join(self.key)
        return f"DELETE FROM {self.name} WHERE ({keys}) IN (SELECT {selected} FROM {_rows(first)})"

    def key_of(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        names = [c for c, _ in self.columns]
        return tuple(row[names.index(k)] for k in self.key)


# Each row travels as one JSON text (`shared.db.json_rows`), each column cast back.
def _rows(param: int) -> str:
    return f"unnest(${param}::text[]::jsonb[]) AS r"


def _field(index: int, sql_type: str) -> str:
    return f"(r->>{index})::{sql_type}"


def _item_row(lic: str, i: Item) -> tuple[Any, ...]:
    return (
        i.lic, i.description, i.uom, i.track_mfr_lot, i.serialized, i.perishable,
        i.next_serial, i.est_unit_cost, i.gtin, i.locked,
    )  # fmt: skip


def _lot_row(lic: str, r: InventoryLot) -> tuple[Any, ...]:
    return (
        r.lot_id, r.lic, r.office, r.kind, r.reference, r.received_on, r.unit_cost,
        r.received_qty, r.seq, r.on_hand, r.allocated, r.used, r.status, r.held,
    )  # fmt: skip


def _mfr_row(lic: str, m: MfrLot) -> tuple[Any, ...]:
    return (
        m.lot_id, m.mfr_lot, lic, m.expires_on, m.initial_qty, m.on_hand, m.allocated, m.used,
        m.held,
    )  # fmt: skip


def _unit_row(lic: str, u: Unit) -> tuple[Any, ...]:
    return (
        u.lic, u.serial, u.lot_id, u.mfr_lot, u.position, u.status.value, u.shipment_id,
        u.line_no, u.customer,
    )  # fmt: skip


def _picks_json(picks: tuple[Pick, ...]) -> str:
    return _json_text(
        [
            {
                "lot_id": p.lot_id,
                "mfr_lot": p.mfr_lot,
                "serial": p.serial,
                "quantity": str(p.quantity),
            }
            for p in picks
        ]
    )


def _json_text(value: Any) -> str:
    """JSON for a jsonb column: the stored value is the same as from `json.dumps`, faster."""
    return orjson.dumps(value).decode()


def _picks(rows: list[dict[str, Any]]) -> tuple[Pick, ...]:
    return tuple(
        Pick(
            lot_id=p["lot_id"],
            mfr_lot=p["mfr_lot"],
            serial=p["serial"],
            quantity=Decimal(p["quantity"]),
        )
        for p in rows
    )


def _allocation_row(lic: str, a: Allocation) -> tuple[Any, ...]:
    picks = _picks_json(a.picks)
    return (
        a.lic, a.shipment_id, a.line_no, a.office, a.kind, a.counterparty, a.ship_on,
        a.quantity, picks, a.status, a.explicit, a.complete,
    )  # fmt: skip


def _shipment_row(lic: str, s: CustomerShipment) -> tuple[Any, ...]:
    return (lic, s.lot_id, s.mfr_lot or "", s.customer, s.shipped, s.returned)


def _unallocated_row(lic: str, u: UnallocatedStock) -> tuple[Any, ...]:
    return (lic, u.office, u.quantity, u.value)


def _hold_row(lic: str, h: HeldLine) -> tuple[Any, ...]:
    returned = _json_text([[list(key), str(quantity)] for key, quantity in h.returned])
    return (
        lic, h.command_id, h.kind, h.shipment_id, h.line_no, _picks_json(h.picks), h.lot_id,
        returned,
    )  # fmt: skip


def _quarantine_row(lic: str, q: Quarantine) -> tuple[Any, ...]:
    return (lic, q.mfr_lot, q.lot_id, q.office, q.quarantine_id, q.reason)


def _hold(r: asyncpg.Record) -> HeldLine:
    return HeldLine(
        command_id=r["command_id"],
        shipment_id=r["shipment_id"],
        line_no=r["line_no"],
        picks=_picks(r["picks"]),
        lot_id=r["lot_id"],
        returned=tuple(
            ((lot_id, mfr_lot, customer), Decimal(quantity))
            for (lot_id, mfr_lot, customer), quantity in r["returned"]
        ),
    )


def _waiting_row(lic: str, w: WaitingLine) -> tuple[Any, ...]:
    c = w.command
    command = {
        "shipment_id": c.shipment_id,
        "line_no": c.line_no,
        "office": c.office,
        "kind": c.kind,
        "counterparty": c.counterparty,
        "ship_on": c.ship_on.isoformat(),
        "quantity": str(c.quantity),
        "lots": [
            [p.mfr_lot, str(p.quantity), p.lot_id, p.expires_on and p.expires_on.isoformat()]
            for p in c.lots
        ],
        "serials": list(c.serials),
        "serial_lots": [list(pair) for pair in c.serial_lots],
        "min_shelf_life_days": c.min_shelf_life_days,
        "reference": c.reference,
    }
    return (lic, c.message_id, w.seq, _json_text(list(w.awaits)), _json_text(command))


def _waiting(
    lic: str, command_id: str, seq: int, awaits: list[str], c: dict[str, Any]
) -> WaitingLine:
    """A `_waiting_row` read back (a line waiting never carries a `refusal`)."""
    return WaitingLine(
        command=AllocateLine(
            message_id=command_id,
            lic=lic,
            shipment_id=c["shipment_id"],
            line_no=c["line_no"],
            office=c["office"],
            kind=c["kind"],
            counterparty=c["counterparty"],
            ship_on=date.fromisoformat(c["ship_on"]),
            quantity=Decimal(c["quantity"]),
            lots=tuple(
                LotPick(
                    mfr_lot=mfr_lot,
                    quantity=Decimal(quantity),
                    lot_id=lot_id,
                    expires_on=date.fromisoformat(expires_on) if expires_on else None,
                )
                for mfr_lot, quantity, lot_id, expires_on in c["lots"]
            ),
            serials=tuple(c["serials"]),
            serial_lots=tuple((serial, mfr_lot) for serial, mfr_lot in c["serial_lots"]),
            min_shelf_life_days=c["min_shelf_life_days"],
            reference=c["reference"],
        ),
        awaits=tuple(awaits),
        seq=seq,
    )


@dataclass(frozen=True)
class HeldEvent:
    """The encoded event of a held receipt line, published when the line is confirmed."""

    payload: bytes
    headers: dict[str, str]

    @classmethod
    def of(cls, message: BaseModel) -> HeldEvent:
        return cls(encode(message), {TYPE_HEADER: str(getattr(message, "type", ""))})

    def with_next_serial(self, next_serial: str) -> HeldEvent:
        """The event with the item's Next Serial as it is at confirmation: other receipts may
        have moved it on since the line was held. Patched as JSON, the rest as decided."""
        if b'"next_serial":' + json.dumps(next_serial, ensure_ascii=False).encode() in self.payload:
            return self  # unchanged (the usual case): no need to parse up to megabytes
        document = json.loads(self.payload)
        document["next_serial"] = next_serial
        payload = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        return HeldEvent(payload, self.headers)


ITEMS = Table(
    "items",
    (
        ("lic", "text"),
        ("description", "text"),
        ("uom", "text"),
        ("track_mfr_lot", "boolean"),
        ("serialized", "boolean"),
        ("perishable", "boolean"),
        ("next_serial", "text"),
        ("est_unit_cost", "numeric"),
        ("gtin", "text"),
        ("locked", "boolean"),
    ),
    ("lic",),
    _item_row,
)
LOTS = Table(
    "inventory_lots",
    (
        ("lot_id", "text"),
        ("lic", "text"),
        ("office", "text"),
        ("kind", "text"),
        ("reference", "text"),
        ("received_on", "date"),
        ("unit_cost", "numeric"),
        ("received_qty", "numeric"),
        ("seq", "bigint"),
        ("on_hand", "numeric"),
        ("allocated", "numeric"),
        ("used", "numeric"),
        ("status", "text"),
        ("held", "numeric"),
    ),
    ("lot_id",),
    _lot_row,
)
MFR_LOTS = Table(
    "mfr_lots",
    (
        ("lot_id", "text"),
        ("mfr_lot", "text"),
        ("lic", "text"),
        ("expires_on", "date"),
        ("initial_qty", "numeric"),
        ("on_hand", "numeric"),
        ("allocated", "numeric"),
        ("used", "numeric"),
        ("held", "numeric"),
    ),
    ("lot_id", "mfr_lot"),
    _mfr_row,
)
UNITS = Table(
    "units",
    (
        ("lic", "text"),
        ("serial", "text"),
        ("lot_id", "text"),
        ("mfr_lot", "text"),
        ("position", "bigint"),
        ("status", "text"),
        ("shipment_id", "text"),
        ("line_no", "int"),
        ("customer", "text"),
    ),
    ("lic", "serial", "lot_id"),
    _unit_row,
)
ALLOCATIONS = Table(
    "allocations",
    (
        ("lic", "text"),
        ("shipment_id", "text"),
        ("line_no", "int"),
        ("office", "text"),
        ("kind", "text"),
        ("counterparty", "text"),
        ("ship_on", "date"),
        ("quantity", "numeric"),
        ("picks", "jsonb"),
        ("status", "text"),
        ("explicit", "boolean"),
        ("complete", "boolean"),
    ),
    ("lic", "shipment_id", "line_no"),
    _allocation_row,
)
SHIPMENTS = Table(
    "customer_shipments",
    (
        ("lic", "text"),
        ("lot_id", "text"),
        ("mfr_lot", "text"),
        ("customer", "text"),
        ("shipped", "numeric"),
        ("returned", "numeric"),
    ),
    ("lic", "lot_id", "mfr_lot", "customer"),
    _shipment_row,
)
UNALLOCATED = Table(
    "unallocated",
    (("lic", "text"), ("office", "text"), ("quantity", "numeric"), ("value", "numeric")),
    ("lic", "office"),
    _unallocated_row,
)
HOLDS = Table(
    "held_lines",
    (
        ("lic", "text"),
        ("command_id", "text"),
        ("kind", "text"),
        ("shipment_id", "text"),
        ("line_no", "int"),
        ("picks", "jsonb"),
        ("lot_id", "text"),
        ("returned", "jsonb"),
    ),
    ("lic", "command_id"),
    _hold_row,
)
QUARANTINES = Table(
    "quarantines",
    (
        ("lic", "text"),
        ("mfr_lot", "text"),
        ("lot_id", "text"),
        ("office", "text"),
        ("quarantine_id", "text"),
        ("reason", "text"),
    ),
    ("lic", "mfr_lot", "lot_id", "office"),
    _quarantine_row,
)
WAITING = Table(
    "waiting_lines",
    (
        ("lic", "text"),
        ("command_id", "text"),
        ("seq", "int"),
        ("awaits", "jsonb"),
        ("command", "jsonb"),
    ),
    ("lic", "command_id"),
    _waiting_row,
)


def _rows_of(state: LicState) -> dict[str, Mapping[Any, Any]]:
    """Each table's row objects of one LIC, by the key the domain uses."""
    return {
        "items": {state.lic: state.item} if state.item is not None else {},
        "inventory_lots": state.lots,
        "mfr_lots": state.mfr_lots,
        "units": state.units,
        "allocations": state.allocations,
        "customer_shipments": state.shipments,
        "unallocated": state.unallocated,
        "held_lines": state.holds,
        "quarantines": state.quarantines,
        "waiting_lines": state.waiting,
    }


# SQL table -> the LicState field holding its rows (the key of `Touched`); items is one row.
_FIELDS = {
    "inventory_lots": "lots",
    "mfr_lots": "mfr_lots",
    "units": "units",
    "allocations": "allocations",
    "customer_shipments": "shipments",
    "unallocated": "unallocated",
    "held_lines": "holds",
    "quarantines": "quarantines",
    "waiting_lines": "waiting",
}
_MISSING: Any = object()


TABLES = (
    ITEMS, LOTS, MFR_LOTS, UNITS, ALLOCATIONS, SHIPMENTS, UNALLOCATED, HOLDS, QUARANTINES, WAITING,
)  # fmt: skip
# The journaled tables (all but items) with the LicState field holding their rows.
_JOURNALED = tuple((table, _FIELDS[table.name]) for table in TABLES[1:])


class PgStateRepository:
    """Loads and saves the state of many LICs at once, inside the caller's transaction."""

    async def lot_owners(self, conn: asyncpg.Connection, lot_ids: Sequence[str]) -> dict[str, str]:
        """The LIC holding each of these inventory lot ids, for those that exist."""
        rows = await conn.fetch(
            "SELECT lot_id, lic FROM inventory_lots WHERE lot_id = ANY($1::text[])", lot_ids
        )
        return {row["lot_id"]: row["lic"] for row in rows}

    async def load(self, conn: asyncpg.Connection, lics: Sequence[str]) -> dict[str, LicState]:
        parts: dict[str, dict[str, Any]] = {
            lic: {
                "item": None,
                "lots": {},
                "mfr": {},
                "units": {},
                "alloc": {},
                "ship": {},
                "un": {},
                "holds": {},
                "quarantines": {},
                "waiting": {},
            }
            for lic in lics
        }
        # An item's quarantine rules and waiting sale lines come with its row (almost always
        # none): no round trip more per load for tables that are nearly always empty.
        for r in await conn.fetch(
            "SELECT i.*, (SELECT jsonb_agg(jsonb_build_array(q.mfr_lot, q.lot_id, q.office,"
            "   q.quarantine_id, q.reason)) FROM quarantines AS q WHERE q.lic = i.lic)"
            "   AS quarantine_rules,"
            " (SELECT jsonb_agg(jsonb_build_array(w.command_id, w.seq, w.awaits, w.command))"
            "   FROM waiting_lines AS w WHERE w.lic = i.lic) AS waiting_lines"
            " FROM items AS i WHERE i.lic = ANY($1::text[])",
            lics,
        ):
            fields = dict(r)
            rules = fields.pop("quarantine_rules")
            waiting = fields.pop("waiting_lines")
            if isinstance(waiting, str):
                waiting = json.loads(waiting)
            for command_id, seq, awaits, command in waiting or ():
                line = _waiting(r["lic"], command_id, seq, awaits, command)
                parts[r["lic"]]["waiting"][command_id] = line
            parts[r["lic"]]["item"] = Item(**fields)
            if isinstance(rules, str):
                rules = json.loads(rules)
            for mfr_lot, lot_id, office, quarantine_id, reason in rules or ():
                rule = Quarantine(
                    mfr_lot=mfr_lot,
                    lot_id=lot_id,
                    office=office,
                    quarantine_id=quarantine_id,
                    reason=reason,
                )
                parts[r["lic"]]["quarantines"][rule.key] = rule
        for r in await conn.fetch("SELECT * FROM inventory_lots WHERE lic = ANY($1::text[])", lics):
            lot = InventoryLot(**dict(r))
            parts[lot.lic]["lots"][lot.lot_id] = lot
        for r in await conn.fetch("SELECT * FROM mfr_lots WHERE lic = ANY($1::text[])", lics):
            fields = dict(r)
            lic = fields.pop("lic")
            m = MfrLot(**fields)
            parts[lic]["mfr"][(m.lot_id, m.mfr_lot)] = m
        for r in await conn.fetch("SELECT * FROM units WHERE lic = ANY($1::text[])", lics):
            fields = dict(r)
            fields["status"] = SerialStatus(fields["status"])
            u = Unit(**fields)
            parts[u.lic]["units"][u.key] = u
        for r in await conn.fetch("SELECT * FROM allocations WHERE lic = ANY($1::text[])", lics):
            fields = dict(r)
            fields["picks"] = _picks(fields["picks"])
            a = Allocation(**fields)
            parts[a.lic]["alloc"][a.key] = a
        for r in await conn.fetch(
            # In key order, so every reload lists the rows alike (the core sorts what it
            # decides by, but a dict's order should not hang on the heap).
            "SELECT * FROM customer_shipments WHERE lic = ANY($1::text[])"
            " ORDER BY lic, lot_id, mfr_lot, customer",
            lics,
        ):
            s = CustomerShipment(
                lot_id=r["lot_id"],
                mfr_lot=r["mfr_lot"] or None,
                customer=r["customer"],
                shipped=r["shipped"],
                returned=r["returned"],
            )
            parts[r["lic"]]["ship"][s.key] = s
        for r in await conn.fetch("SELECT * FROM unallocated WHERE lic = ANY($1::text[])", lics):
            parts[r["lic"]]["un"][r["office"]] = UnallocatedStock(
                office=r["office"], quantity=r["quantity"], value=r["value"]
            )
        for r in await conn.fetch("SELECT * FROM held_lines WHERE lic = ANY($1::text[])", lics):
            parts[r["lic"]]["holds"][r["command_id"]] = _hold(r)
        return {
            lic: LicState(
                lic=lic,
                item=p["item"],
                lots=p["lots"],
                mfr_lots=p["mfr"],
                units=p["units"],
                allocations=p["alloc"],
                shipments=p["ship"],
                unallocated=p["un"],
                holds=p["holds"],
                quarantines=p["quarantines"],
                waiting=p["waiting"],
            )
            for lic, p in parts.items()
        }

    async def take_held_events(
        self, conn: asyncpg.Connection, command_ids: Sequence[str]
    ) -> dict[str, HeldEvent]:
        """Remove and return the kept events of these held lines (command id -> event)."""
        if not command_ids:
            return {}
        rows = await conn.fetch(
            "DELETE FROM held_events WHERE command_id = ANY($1::text[])"
            " RETURNING command_id, payload, headers",
            list(command_ids),
        )
        return {r["command_id"]: HeldEvent(r["payload"], r["headers"]) for r in rows}

    async def keep_held_events(
        self, conn: asyncpg.Connection, kept: Mapping[str, HeldEvent]
    ) -> None:
        if not kept:
            return
        await conn.execute(
            "INSERT INTO held_events (command_id, payload, headers)"
            " SELECT * FROM unnest($1::text[], $2::bytea[], $3::jsonb[])",
            list(kept),
            [h.payload for h in kept.values()],
            [h.headers for h in kept.values()],
        )

    async def save(
        self,
        conn: asyncpg.Connection,
        before: Mapping[str, LicState],
        after: Mapping[str, LicState],
        touched: Mapping[str, Touched] | None = None,
    ) -> None:
        """Write only the rows that differ: one upsert and one delete per table at most.

        `touched[lic]` (from `decide_batch`, relative to `before[lic]`) names the only rows that
        may differ, so only those are compared: the cost follows the batch, not the LIC's
        history. A LIC without it is compared row by row; decisions keep the row objects they
        did not touch, so an identity test skips most rows there.
        """
        touched = touched or {}
        result = _no_changes()
        for lic, state in after.items():
            _collect(lic, before.get(lic), state, touched.get(lic), result)
        parts: list[str] = []
        args: list[list[str]] = []
        copied: list[Table] = []
        for table in TABLES:
            upserts, deletes, inserts = result[table.name]
            if deletes:
                parts.append(_sql(table, "delete", len(args) + 1))
                args.append(json_rows(deletes))
            if len(inserts) >= COPY_MIN_ROWS and table.copies_straight:
                # Before the statement below, which touches none of these keys (a key is new,
                # changed or deleted); a serial moving between lots is checked at commit.
                await conn.copy_records_to_table(table.name, records=inserts, columns=table.names)
            else:
                upserts += inserts
            if len(upserts) >= COPY_MIN_ROWS:
                await conn.execute(table.scratch_sql())
                await conn.copy_records_to_table(
                    table.scratch, records=upserts, columns=table.names
                )
                parts.append(table.upsert_scratch_sql())
                copied.append(table)
            elif upserts:
                parts.append(_sql(table, "upsert", len(args) + 1))
                args.append(json_rows(upserts))
        if len(parts) == 1:
            await conn.execute(parts[0], *args)
        elif parts:
            # One round trip for every table. Sub-statements of one WITH share a snapshot and
            # must not touch a row twice: a key is either upserted or deleted, never both, and
            # no table has a foreign key into another.
            ctes = ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(parts))
            await conn.execute(f"WITH {ctes} SELECT 1", *args)
        if copied:
            # Dropped at commit anyway; now, so a second save in this transaction makes its own.
            await conn.execute(f"DROP TABLE {', '.join(t.scratch for t in copied)}")


Change = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]
"""A table's rows to upsert, keys to delete, and new rows (none of them in the table yet)."""

_SQL: dict[tuple[str, str, int], str] = {}


def _sql(table: Table, kind: Literal["upsert", "delete"], first: int) -> str:
    """`table`'s upsert or delete with its parameter at `first`, built once."""
    key = (table.name, kind, first)
    sql = _SQL.get(key)
    if sql is None:
        sql = _SQL[key] = table.upsert_sql(first) if kind == "upsert" else table.delete_sql(first)
    return sql


def _no_changes() -> dict[str, Change]:
    return {t.name: ([], [], []) for t in TABLES}


def _changes(
    lic: str, old: LicState | None, new: LicState, touched: Touched | None = None
) -> dict[str, Change]:
    """The upserts and deletes taking `old` to `new`: only the `touched` keys looked at, if
    given, else every row of both states."""
    result = _no_changes()
    _collect(lic, old, new, touched, result)
    return result


def _collect(
    lic: str,
    old: LicState | None,
    new: LicState,
    touched: Touched | None,
    result: dict[str, Change],
) -> None:
    """`_changes`, added to `result` (one for every LIC of a batch)."""
    if old is new:
        return
    if touched is None:
        _walk_all(lic, old, new, result)
        return
    # The item is not journaled (one row, reassigned): compare it whole.
    _compare(ITEMS, lic, old.item if old is not None else None, new.item, result)
    for table, field in _JOURNALED:
        keys = touched.get(field)
        if not keys:
            continue
        before: Mapping[Any, Any] = getattr(old, field) if old is not None else {}
        after: Mapping[Any, Any] = getattr(new, field)
        upserts, deletes, inserts = result[table.name]
        to_row = table.to_row
        for key in keys:
            previous = before.get(key, _MISSING)
            row = after.get(key, _MISSING)
            if previous is row:
                continue
            if row is _MISSING:
                if previous is not _MISSING:
                    deletes.append(table.key_of(to_row(lic, previous)))
            elif previous is _MISSING:
                inserts.append(to_row(lic, row))
            elif previous != row:
                upserts.append(to_row(lic, row))


def _compare(table: Table, lic: str, previous: Any, row: Any, result: dict[str, Change]) -> None:
    """Record one row's change, if any (`_MISSING` or None: no such row)."""
    if previous is row:
        return
    upserts, deletes, _ = result[table.name]
    if row is _MISSING or row is None:
        if previous is not _MISSING and previous is not None:
            deletes.append(table.key_of(table.to_row(lic, previous)))
    elif previous != row:
        upserts.append(table.to_row(lic, row))


def _walk_all(lic: str, old: LicState | None, new: LicState, result: dict[str, Change]) -> None:
    """Compare every row (for states not made by `decide_batch`, e.g. built by hand)."""
    old_rows = _rows_of(old) if old is not None else {}
    new_rows = _rows_of(new)
    for table in TABLES:
        upserts, deletes, _ = result[table.name]
        before = old_rows.get(table.name, {})
        after = new_rows[table.name]
        for key, row in after.items():
            previous = before.get(key)
            if previous is row or previous == row:
                continue
            upserts.append(table.to_row(lic, row))
        for key, row in before.items():
            if key not in after:
                deletes.append(table.key_of(table.to_row(lic, row)))
