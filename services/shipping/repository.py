"""Shipping's SQL: the item read model and shipments (header, lines, pending commands).

Bound to the unit of work's connection (search_path = `shipping`); never opens a transaction.
A batch costs a fixed number of statements whatever its size (documents: 4, answers: 3, or 4
when a loaded shipment has documents waiting, whose decision may need its items):

- lock: the batch's shipments are locked (`FOR NO KEY UPDATE`, in shipment id order) before
  they are read. The consumer's epoch fence makes each *partition* single-writer, but one
  shipment is written from two topics keyed differently (its documents by shipment id, the
  answers to its lines by LIC), so two shipping processes can own its messages at once.
- load: the shipments' header, line and pending command rows in one result, then (documents
  only) the items of their lines. Both run after the lock, so they see whatever it waited for.
- save: one statement writing only what differs from what was loaded: headers that changed
  (with the status ids owed to documents waiting for the phase under way and the documents
  they answer, the documents waiting for the cancel or ship under way or for an item, and
  those applied but not answered yet), lines that changed (upserted) or went away,
  pending commands sent or answered.
- documents waiting for an item (`model.Shipment.awaited`): found by the items arriving
  (`load_awaiting`) or, their wait over, by the periodic job (`due`). Each waiting document
  has its own deadline, from when it was read (`queued_until`, migration 011); the first's is
  the shipment's `awaited_until`. `load` tells which have passed (`model.Shipment.overdue`).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import asyncpg
import orjson
from pydantic import TypeAdapter

from services.shipping import model
from shared.db import json_rows
from shared.movements import Moved

T = TypeVar("T")
_PICKS = TypeAdapter(model.Picks)
_MOVEMENTS = TypeAdapter(tuple[Moved, ...])
_PROBLEM = TypeAdapter(model.Problem)
_TEXTS = TypeAdapter(tuple[str, ...])
_PAIRS = TypeAdapter(tuple[tuple[str, str], ...])
_READY = TypeAdapter(model.Ready)
_PICKS_UPDATE = TypeAdapter(model.PicksUpdate)
_REQUEST = TypeAdapter(model.Request)


# A waiting document, as stored: its kind is the key (a ship request and a cancel carry the
# same fields).
@dataclass(frozen=True, slots=True)
class _Request:
    request: model.Ready


@dataclass(frozen=True, slots=True)
class _Picks:
    picks: model.PicksUpdate


@dataclass(frozen=True, slots=True)
class _PicksWithNul:
    """A picks update whose picks as entered hold a NUL (a scanner's raw text, which the
    contract accepts and deciding refuses): jsonb cannot hold one, so its JSON is kept in
    base64."""

    picks_base64: str


@dataclass(frozen=True, slots=True)
class _Unread:
    """A request waiting, unread, for an item its scans name (migration 010)."""

    unread: model.Request


@dataclass(frozen=True, slots=True)
class _UnreadWithNul:
    """An unread request holding a NUL (as `_PicksWithNul`), with its lines' LICs, for
    `_ITEMS` to read their items by."""

    unread_base64: str
    lics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Ship:
    ship: model.ShipRequest


@dataclass(frozen=True, slots=True)
class _Cancel:
    cancel: model.Cancel


_Stored = _Request | _Unread | _UnreadWithNul | _Picks | _PicksWithNul | _Ship | _Cancel
_QUEUED = TypeAdapter(tuple[_Stored, ...])

# Locks the batch's shipments; rows, not advisory locks, so a batch holds no lock-table slots.
_LOCK_IDS = (
    "SELECT shipment_id FROM shipments WHERE shipment_id = ANY($1::text[])"
    " ORDER BY shipment_id FOR NO KEY UPDATE"
)
_LOCK_AWAITING = (
    "SELECT shipment_id FROM shipments WHERE shipment_id IN"
    "   (SELECT shipment_id FROM pending_commands WHERE command_id = ANY($1::text[]))"
    " ORDER BY shipment_id FOR NO KEY UPDATE OF shipments"
)
# The same, with the shipments whose waiting document awaits any of the items arriving ($2).
_LOCK_AWAITING_OR_ITEMS = (
    "SELECT shipment_id FROM shipments WHERE shipment_id IN"
    "   (SELECT shipment_id FROM pending_commands WHERE command_id = ANY($1::text[])"
    "    UNION ALL SELECT shipment_id FROM shipments"
    "    WHERE awaited && $2::text[] AND awaited_until IS NOT NULL)"
    " ORDER BY shipment_id FOR NO KEY UPDATE OF shipments"
)
_AWAITING_ITEMS = (
    "SELECT shipment_id FROM shipments WHERE awaited && $1::text[] AND awaited_until IS NOT NULL"
)
# Shipments whose waiting document may be decided now: its items all known (one that arrived
# while that document was being held, unseen by the arrival's transaction), or its wait over.
# Shipments another transaction has locked are left to it, or to the next round.
_DUE = """
SELECT shipment_id, awaited_until <= now() AS expired FROM shipments AS s
WHERE awaited_until IS NOT NULL
    AND (awaited_until <= now() OR NOT EXISTS (SELECT 1 FROM unnest(s.awaited) AS a(lic)
        WHERE NOT EXISTS (SELECT 1 FROM items AS i WHERE i.lic = a.lic)))
ORDER BY awaited_until LIMIT $1 FOR NO KEY UPDATE SKIP LOCKED
"""

# One statement, one result: header (k = 0), line (1) and pending command (2) rows. Lines come
# in line order, pending commands in command id order (the domain numbers its release commands
# in that order). A header tells, of its waiting documents with a deadline of their own,
# whether each is past (j5: message id → bool), and whether the shipment's is (b: that of the
# documents queued before migration 011). A line's n2 is its minimum shelf life (012).
_LOAD = """
SELECT 0 AS k, shipment_id AS sid, NULL::int AS n, office AS t1, kind AS t2,
    counterparty AS t3, reference AS t4, phase AS t5, ship_on AS d, NULL::numeric AS q,
    awaited_until <= now() AS b, NULL::int AS n2, waiting::text AS j1, queued::text AS j2,
    unanswered::text AS j3, waiting_documents::text AS j4, awaited AS a,
    (SELECT jsonb_object_agg(key, value::timestamptz <= now())
     FROM jsonb_each_text(queued_until))::text AS j5
FROM shipments WHERE shipment_id = ANY($1::text[])
UNION ALL
SELECT 1, shipment_id, line_no, lic, status, awaiting, held_lics::text, NULL, NULL, quantity,
    complete, min_shelf_life_days, picks::text, movements::text, problem::text, NULL, NULL, NULL
FROM shipment_lines WHERE shipment_id = ANY($1::text[])
UNION ALL
SELECT 2, shipment_id, NULL, command_id, action, lic, NULL, NULL, NULL, NULL,
    NULL, line_no, picks::text, NULL, NULL, NULL, NULL, NULL
FROM pending_commands WHERE shipment_id = ANY($1::text[])
ORDER BY k, sid, n, t1
"""

# Items for the batch's request lines and the loaded shipments' lines, and those of requests
# waiting for a cancel or ship, or unread for an item (their flags decide R5, R8 and R14). Its
# own statement: folded into the one above, the plan grows parallel workers. `queued` may also
# be one request as a JSON object, as a process of the version before migration 008 writes it
# (see `_queued`).
_ITEMS = """
SELECT lic, track_mfr_lot, serialized, perishable, gtin FROM items
WHERE lic = ANY(ARRAY(SELECT unnest($2::text[])
                      UNION SELECT lic FROM shipment_lines WHERE shipment_id = ANY($1::text[])
                      UNION SELECT l.lic
                      FROM shipments, jsonb_array_elements(CASE jsonb_typeof(queued)
                          WHEN 'object' THEN jsonb_build_array(
                              jsonb_build_object('request', queued))
                          ELSE queued END) AS q,
                      LATERAL (SELECT x ->> 'lic' FROM jsonb_array_elements(
                                   coalesce(q -> 'request', q -> 'unread') -> 'lines') AS x
                               UNION ALL SELECT jsonb_array_elements_text(q -> 'lics')) AS l(lic)
                      WHERE shipment_id = ANY($1::text[]) AND queued IS NOT NULL))
"""

# Sub-statements of one WITH see one snapshot and touch disjoint rows: `changes` never lists a
# key both to delete and to write. Foreign keys are checked at the end of the statement, so
# lines and commands of a shipment inserted by the same statement pass.
#
# Each row travels as one JSON text (`_encode`), not as one array element per column: asyncpg's
# array encoder checks every element against collections.abc, which cost shipping more than
# building the rows. Text, dates and numbers (a Decimal as `str()`: its digits and scale) are
# cast back from `r->>n`; a jsonb column's value is embedded as JSON and taken whole (`r->n`),
# `nullif(…, 'null')` where the column may be NULL (no stored value is the JSON null).
#
# Each waiting document's deadline (`queued_until`) is set as it joins the queue (r->12 lists
# the queue's message ids, each with whether it was queued before: `old`'s row) and kept while
# it waits; `awaited_until` is the first's, the one that waits for items. One queued before
# migration 011, or by a process of the version before, has none: it keeps the shipment's.
_SAVE = """
WITH heads AS (
    INSERT INTO shipments (shipment_id, office, kind, counterparty, reference, ship_on, phase,
        waiting, queued, unanswered, waiting_documents, awaited, awaited_until, queued_until)
    SELECT r->>0, r->>1, r->>2, r->>3, r->>4, (r->>5)::date, r->>6, r->7,
        nullif(r->8, 'null'), r->9, r->10, ARRAY(SELECT jsonb_array_elements_text(r->11)),
        CASE WHEN r->11 = '[]' THEN NULL
            ELSE coalesce((u.until ->> (r->12->0->>0))::timestamptz, f.until) END,
        u.until
    FROM unnest($1::text[]::jsonb[]) AS r
    LEFT JOIN shipments AS old ON old.shipment_id = r->>0
    CROSS JOIN LATERAL (SELECT now() + make_interval(secs => $6::float8) AS until) AS f
    CROSS JOIN LATERAL (
        SELECT coalesce(jsonb_object_agg(q->>0, CASE WHEN (q->1)::bool
                THEN coalesce(old.queued_until -> (q->>0), to_jsonb(old.awaited_until),
                    to_jsonb(f.until))
                ELSE to_jsonb(f.until) END), '{}') AS until
        FROM jsonb_array_elements(r->12) AS q
    ) AS u
    ON CONFLICT (shipment_id) DO UPDATE SET office = excluded.office, kind = excluded.kind,
        counterparty = excluded.counterparty, reference = excluded.reference,
        ship_on = excluded.ship_on, phase = excluded.phase, waiting = excluded.waiting,
        queued = excluded.queued, unanswered = excluded.unanswered,
        waiting_documents = excluded.waiting_documents, awaited = excluded.awaited,
        awaited_until = excluded.awaited_until, queued_until = excluded.queued_until,
        updated_at = now()
), dropped AS (
    DELETE FROM shipment_lines AS l USING unnest($2::text[]::jsonb[]) AS d
    WHERE l.shipment_id = d->>0 AND l.line_no = (d->>1)::int
), lines AS (
    INSERT INTO shipment_lines (shipment_id, line_no, lic, quantity, status, awaiting,
        held_lics, complete, picks, movements, problem, min_shelf_life_days)
    SELECT r->>0, (r->>1)::int, r->>2, (r->>3)::numeric, r->>4, r->>5, r->6, (r->>7)::bool,
        r->8, r->9, nullif(r->10, 'null'), (r->>11)::int
    FROM unnest($3::text[]::jsonb[]) AS r
    ON CONFLICT (shipment_id, line_no) DO UPDATE SET lic = excluded.lic,
        quantity = excluded.quantity, status = excluded.status, awaiting = excluded.awaiting,
        held_lics = excluded.held_lics, complete = excluded.complete, picks = excluded.picks,
        movements = excluded.movements, problem = excluded.problem,
        min_shelf_life_days = excluded.min_shelf_life_days
), answered AS (
    DELETE FROM pending_commands WHERE command_id = ANY($4::text[])
)
INSERT INTO pending_commands (command_id, shipment_id, action, line_no, lic, picks)
SELECT r->>0, r->>1, r->>2, (r->>3)::int, r->>4, nullif(r->5, 'null')
FROM unnest($5::text[]::jsonb[]) AS r
"""


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a batch decides over: its shipments (unknown ids absent) and their items."""

    shipments: dict[str, model.Shipment]
    items: dict[str, model.Item]


class PgShippingRepository:
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

    async def lock(self, conn: asyncpg.Connection, shipment_ids: Iterable[str]) -> None:
        """Lock these shipments (those that exist) until the transaction ends, in one
        statement: what `load` and `load_awaiting` lock, taken at once for both topics of a
        batch (`Route.locks`)."""
        await conn.execute(_LOCK_IDS, sorted(set(shipment_ids)))

    async def load(
        self, conn: asyncpg.Connection, shipment_ids: Iterable[str], lics: Iterable[str] = ()
    ) -> Loaded:
        """Lock and read the shipments, with the items of `lics` and of the shipments' lines."""
        ids = sorted(set(shipment_ids))
        known = [r[0] for r in await conn.fetch(_LOCK_IDS, ids)]
        shipments = _shipments(await conn.fetch(_LOAD, known)) if known else {}
        return Loaded(shipments, await self._items(conn, known, lics))

    async def load_items(
        self, conn: asyncpg.Connection, shipment_ids: Iterable[str]
    ) -> dict[str, model.Item]:
        """The items of the (loaded, locked) shipments' lines and waiting requests' lines."""
        return await self._items(conn, sorted(set(shipment_ids)), ())

    @staticmethod
    async def _items(
        conn: asyncpg.Connection, shipment_ids: list[str], lics: Iterable[str]
    ) -> dict[str, model.Item]:
        rows = await conn.fetch(_ITEMS, shipment_ids, sorted(set(lics)))
        return {row["lic"]: model.Item(**dict(row)) for row in rows}

    async def load_awaiting(
        self, conn: asyncpg.Connection, command_ids: Sequence[str], arrived: Iterable[str] = ()
    ) -> dict[str, model.Shipment]:
        """Lock and read the shipments waiting for any of these commands' answers, or for any
        of the items `arrived` (LICs), in one statement."""
        lics = sorted(set(arrived))
        if lics:
            rows = await conn.fetch(_LOCK_AWAITING_OR_ITEMS, list(command_ids), lics)
        else:
            rows = await conn.fetch(_LOCK_AWAITING, list(command_ids))
        ids = [r[0] for r in rows]
        if not ids:
            return {}
        return _shipments(await conn.fetch(_LOAD, ids))

    async def awaiting_items(self, conn: asyncpg.Connection, lics: Iterable[str]) -> list[str]:
        """The shipments whose waiting document awaits any of these items (not locked)."""
        return [r[0] for r in await conn.fetch(_AWAITING_ITEMS, sorted(set(lics)))]

    async def due(self, conn: asyncpg.Connection, limit: int) -> dict[str, bool]:
        """Lock up to `limit` shipments whose waiting document may be decided now (`_DUE`),
        those waiting longest first: shipment id → whether its wait is over."""
        return {r[0]: r[1] for r in await conn.fetch(_DUE, limit)}

    async def save(
        self,
        conn: asyncpg.Connection,
        before: Mapping[str, model.Shipment],
        after: Iterable[model.Shipment],
        wait_seconds: float = 0,
    ) -> None:
        """Write what differs between the shipments as loaded (`before`) and as decided.
        `wait_seconds`: how long a document that begins waiting for items may wait."""
        heads: list[tuple[model.Shipment | None, model.Shipment]] = []
        dropped: list[tuple[str, int]] = []
        lines: list[tuple[str, model.Line]] = []
        answered: list[str] = []
        sent: list[tuple[str, model.Pending]] = []
        for new in after:
            old = before.get(new.shipment_id)
            if old is new:
                continue
            _changes(old, new, heads, dropped, lines, answered, sent)
        if not (heads or dropped or lines or answered or sent):
            return
        await conn.execute(
            _SAVE,
            json_rows(_head_row(old, new) for old, new in heads),
            json_rows(dropped),
            json_rows(_line_row(sid, line) for sid, line in lines),
            answered,
            json_rows(_pending_row(sid, p) for sid, p in sent),
            wait_seconds,
        )


def _head_row(old: model.Shipment | None, s: model.Shipment) -> tuple[object, ...]:
    before = {document.message_id for document in old.queued} if old is not None else set()
    return (
        s.shipment_id,
        s.office,
        s.kind,
        s.counterparty,
        s.reference,
        s.ship_on,
        s.phase,
        s.waiting,
        _queued_json(s.queued),
        s.unanswered,
        s.waiting_documents,
        s.awaited,
        # The waiting documents, each with whether it waited already (its deadline is kept).
        [(document.message_id, document.message_id in before) for document in s.queued],
    )


def _line_row(sid: str, line: model.Line) -> tuple[object, ...]:
    return (
        sid,
        line.line_no,
        line.lic,
        str(line.quantity),
        line.status,
        line.awaiting,
        line.held_lics,
        line.complete,
        _picks_json(line.picks),
        orjson.Fragment(_MOVEMENTS.dump_json(line.movements)),
        None if line.problem is None else orjson.Fragment(_PROBLEM.dump_json(line.problem)),
        line.min_shelf_life_days,
    )


def _pending_row(sid: str, p: model.Pending) -> tuple[object, ...]:
    return (
        p.command_id,
        sid,
        p.action,
        p.line_no,
        p.lic,
        None if p.picks is None else _picks_json(p.picks),
    )


def _changes(
    old: model.Shipment | None,
    new: model.Shipment,
    heads: list[tuple[model.Shipment | None, model.Shipment]],
    dropped: list[tuple[str, int]],
    lines: list[tuple[str, model.Line]],
    answered: list[str],
    sent: list[tuple[str, model.Pending]],
) -> None:
    """Append the rows of `new` that differ from `old` (None: not stored yet)."""
    sid = new.shipment_id
    # The waiting documents by identity, as lines are: quantities' digits are the decided ones.
    if old is None or _head(old) != _head(new) or old.queued is not new.queued:
        heads.append((old, new))
    old_lines = {line.line_no: line for line in old.lines} if old is not None else {}
    for line in new.lines:
        # The domain keeps the objects of lines it does not touch. Identity, not equality:
        # Decimal("2.5") == Decimal("2.50"), but the stored digits must be the decided ones.
        if old_lines.pop(line.line_no, None) is not line:
            lines.append((sid, line))
    dropped.extend((sid, n) for n in old_lines)
    # A pending command never changes: its id is derived from the message and line it is for.
    old_pending = {p.command_id for p in old.pending} if old is not None else set()
    new_pending = {p.command_id for p in new.pending}
    answered.extend(c for c in old_pending if c not in new_pending)
    sent.extend((sid, p) for p in new.pending if p.command_id not in old_pending)


def _head(s: model.Shipment) -> tuple[object, ...]:
    return (
        s.office,
        s.kind,
        s.counterparty,
        s.reference,
        s.ship_on,
        s.phase,
        s.waiting,
        s.waiting_documents,
        s.unanswered,
        s.awaited,
    )


def _shipments(rows: Sequence[asyncpg.Record]) -> dict[str, model.Shipment]:
    heads: list[asyncpg.Record] = []
    lines: dict[str, list[model.Line]] = {}
    pending: dict[str, list[model.Pending]] = {}
    for row in rows:
        k, sid = row[0], row[1]
        if k == 1:
            lines.setdefault(sid, []).append(
                model.Line(
                    line_no=row[2],
                    lic=row[3],
                    status=row[4],
                    awaiting=row[5],
                    held_lics=_texts(row[6]),
                    quantity=row[9],
                    complete=row[10],
                    picks=_picks(row[12]),
                    movements=_MOVEMENTS.validate_json(row[13]),
                    problem=None if row[14] is None else _PROBLEM.validate_json(row[14]),
                    min_shelf_life_days=row[11],
                )
            )
        elif k == 2:
            pending.setdefault(sid, []).append(
                model.Pending(
                    command_id=row[3],
                    action=row[4],
                    lic=row[5],
                    line_no=row[11],
                    picks=None if row[12] is None else _picks(row[12]),
                )
            )
        else:
            heads.append(row)
    shipments: dict[str, model.Shipment] = {}
    for row in heads:
        queued = _queued(row[13])
        shipments[row[1]] = model.Shipment(
            shipment_id=row[1],
            office=row[3],
            kind=row[4],
            counterparty=row[5],
            reference=row[6],
            phase=row[7],
            ship_on=row[8],
            lines=tuple(lines.get(row[1], ())),
            pending=tuple(pending.get(row[1], ())),
            waiting=_texts(row[12]),
            waiting_documents=_ids(_PAIRS, row[15]),
            unanswered=_ids(_TEXTS, row[14]),
            queued=queued,
            awaited=tuple(row[16]),
            overdue=_overdue(queued, row[17], row[10]),
        )
    return shipments


def _overdue(
    queued: tuple[model.Queued, ...], past: str | None, shipment_past: bool | None
) -> frozenset[str]:
    """The waiting documents whose wait is over: by their own deadlines (`past`: message id →
    whether it has passed), or, for one without (queued before migration 011), the
    shipment's."""
    own: dict[str, bool] = orjson.loads(past) if past is not None else {}
    return frozenset(
        document.message_id
        for document in queued
        if own.get(document.message_id, bool(shipment_past))
    )


def _queued_json(queued: tuple[model.Queued, ...]) -> orjson.Fragment | None:
    if not queued:
        return None
    return orjson.Fragment(_QUEUED.dump_json(tuple(_stored(document) for document in queued)))


def _stored(document: model.Queued) -> _Stored:
    match document:
        case model.Ready():
            return _Request(document)
        case model.Request():
            text = _REQUEST.dump_json(document)
            if b"\\u0000" in text:
                lics = tuple(sorted({line.lic for line in document.lines}))
                return _UnreadWithNul(base64.b64encode(text).decode("ascii"), lics)
            return _Unread(document)
        case model.PicksUpdate():
            text = _PICKS_UPDATE.dump_json(document)
            if b"\\u0000" in text:
                return _PicksWithNul(base64.b64encode(text).decode("ascii"))
            return _Picks(document)
        case model.ShipRequest():
            return _Ship(document)
        case model.Cancel():
            return _Cancel(document)


def _queued(text: str | None) -> tuple[model.Queued, ...]:
    """The documents waiting, in the order read. A JSON object is the one request a process
    of the version before migration 008 held waiting (007's shape): during a rolling upgrade
    such a process still writes it after the migration turned every stored one into an array,
    so it is read as a queue of that one request (written back, it takes the array shape)."""
    if text is None:
        return ()
    if text.lstrip().startswith("{"):
        return (_READY.validate_json(text),)
    documents: list[model.Queued] = []
    for stored in _QUEUED.validate_json(text):
        match stored:
            case _Request():
                documents.append(stored.request)
            case _Unread():
                documents.append(stored.unread)
            case _UnreadWithNul():
                documents.append(_REQUEST.validate_json(base64.b64decode(stored.unread_base64)))
            case _Picks():
                documents.append(stored.picks)
            case _PicksWithNul():
                documents.append(_PICKS_UPDATE.validate_json(base64.b64decode(stored.picks_base64)))
            case _Ship():
                documents.append(stored.ship)
            case _Cancel():
                documents.append(stored.cancel)
    return tuple(documents)


@lru_cache(maxsize=4096)
def _picks_json(picks: model.Picks) -> orjson.Fragment:
    return orjson.Fragment(_PICKS.dump_json(picks))


@lru_cache(maxsize=4096)
def _picks(text: str) -> model.Picks:
    """Most lines name nothing (or the same few picks): decode each text once."""
    return _PICKS.validate_json(text)


def _ids(adapter: TypeAdapter[tuple[T, ...]], text: str) -> tuple[T, ...]:
    return () if text == "[]" else adapter.validate_json(text)


@lru_cache(maxsize=4096)
def _texts(text: str) -> tuple[str, ...]:
    return _TEXTS.validate_json(text)
