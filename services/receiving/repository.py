"""Receiving's SQL: the item read model, documents and their lines, held documents.
Set-based writes.

Bound to the unit of work's connection (search_path = `receiving`); never opens a transaction.
JSON columns are written as text and cast in SQL, so the queries do not depend on the
connection's jsonb codec.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

import asyncpg
from pydantic import TypeAdapter

from services.receiving import domain as d
from shared.contracts import events as e
from shared.db import bucket_lock, lock_names

T = TypeVar("T")
_PROBLEM = TypeAdapter(d.Problem)
_PROBLEMS = TypeAdapter(tuple[d.Problem, ...])
_LICS = TypeAdapter(tuple[str, ...])
_WARNINGS = TypeAdapter(tuple[d.ReceiptWarning, ...])


def item_lock(lic: str) -> str:
    """The name of the lock serializing, for a LIC, holding documents and the item's arrival
    (bucketed: a receipt of 10,000 new items holds a bounded number)."""
    return bucket_lock("lotline.receiving.items", lic)


async def arrival_locks(_conn: asyncpg.Connection, events: Sequence[e.Event]) -> list[str]:
    """The item locks a batch of allocation's events may take: those of the items arriving
    (`Route.locks`)."""
    return [item_lock(ev.lic) for ev in events if isinstance(ev, e.ItemUpserted)]


@dataclass(frozen=True, slots=True)
class NewReceipt:
    """A document as checked: its lines went out, or its problems did.

    `arrived_at`: when a held document arrived (its wait counts as waiting); None: now.
    """

    receipt: d.Receipt
    checked: d.Checked
    arrived_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ToHold:
    """A document to hold until the items it names arrive (`document`: its JSON) and, when
    `after` names one, until that earlier version of it is answered."""

    message_id: str
    shipment_id: str
    document: str
    awaited: tuple[str, ...]
    after: str | None = None


@dataclass(frozen=True, slots=True)
class Earlier:
    """An earlier version of a document that was received: still being posted, or (some of
    it) posted."""

    message_id: str
    posting: bool


@dataclass(frozen=True, slots=True)
class Held:
    """A held document just settled (its row is locked and no longer 'held')."""

    message_id: str
    document: str
    held_at: datetime


@dataclass(frozen=True, slots=True)
class Superseded:
    """A held version of a document answered now because a newer one arrived (its row is
    locked and no longer 'held')."""

    message_id: str
    shipment_id: str
    document: str
    held_at: datetime


@dataclass(frozen=True, slots=True)
class AnsweredReceipt:
    """A document sent to allocation whose every line is answered.

    `command_ids`: line_no → the line's command id; `stored_results`: line_no → the result
    (JSON) of posted lines an earlier batch answered; `warnings`: found when it was checked,
    said if it posts; `source` and `received_on`: the document's (a customer return's posted
    lines are read for lots expired on that day, `domain.posting_warnings`).
    """

    message_id: str
    shipment_id: str
    source: d.Source
    received_on: date
    lines: list[d.LineOutcome]
    command_ids: dict[int, str]
    stored_results: dict[int, str]
    warnings: tuple[d.ReceiptWarning, ...] = ()

    @property
    def is_return(self) -> bool:
        return self.source == "customer_return"


@dataclass(frozen=True, slots=True)
class ConfirmedLine:
    """A held line confirmed ('confirmed'), waiting for its posted answer."""

    command_id: str
    line_no: int
    lic: str


@dataclass(frozen=True, slots=True)
class Recorded:
    """What storing a batch's answers touched: the documents (locked) and the lines answered."""

    documents: list[str]
    answered: frozenset[str]


@dataclass(frozen=True, slots=True)
class Finished:
    message_id: str
    status: str  # 'posted' | 'rejected'
    problems: tuple[d.Problem, ...]


def _json(adapter: TypeAdapter[T], value: T | None) -> str | None:
    return None if value is None else adapter.dump_json(value).decode()


def _status(answer: d.Answer) -> str:
    """The line status an answer gives."""
    if answer.held:
        return "held"
    return "refused" if answer.posted is None else "posted"


class PgReceivingRepository:
    async def items(self, conn: asyncpg.Connection, lics: Sequence[str]) -> dict[str, d.Item]:
        rows = await conn.fetch(
            "SELECT lic, track_mfr_lot, serialized, perishable, next_serial, gtin"
            " FROM items WHERE lic = ANY($1::text[])",
            list(lics),
        )
        return {row["lic"]: d.Item(**dict(row)) for row in rows}

    async def unknown_items(self, conn: asyncpg.Connection, lics: Collection[str]) -> list[str]:
        """Those of the LICs receiving has no item for."""
        rows = await conn.fetch(
            "SELECT v.lic FROM unnest($1::text[]) AS v(lic)"
            " WHERE NOT EXISTS (SELECT 1 FROM items AS i WHERE i.lic = v.lic)",
            sorted(set(lics)),
        )
        return [row["lic"] for row in rows]

    async def upsert_items(self, conn: asyncpg.Connection, items: Sequence[d.Item]) -> None:
        """The latest state of each LIC wins (events arrive in partition order per LIC)."""
        latest = {item.lic: item for item in items}
        await conn.execute(
            "INSERT INTO items (lic, track_mfr_lot, serialized, perishable, next_serial, gtin)"
            " SELECT * FROM unnest($1::text[], $2::bool[], $3::bool[], $4::bool[],"
            "   $5::text[], $6::text[])"
            " ON CONFLICT (lic) DO UPDATE SET track_mfr_lot = excluded.track_mfr_lot,"
            "   serialized = excluded.serialized, perishable = excluded.perishable,"
            "   next_serial = excluded.next_serial, gtin = excluded.gtin, updated_at = now()",
            [i.lic for i in latest.values()],
            [i.track_mfr_lot for i in latest.values()],
            [i.serialized for i in latest.values()],
            [i.perishable for i in latest.values()],
            [i.next_serial for i in latest.values()],
            [i.gtin for i in latest.values()],
        )

    async def add_receipts(self, conn: asyncpg.Connection, receipts: Sequence[NewReceipt]) -> None:
        """Record the batch's documents and the lines sent for them, one statement each."""
        if not receipts:
            return
        await conn.execute(
            "INSERT INTO receipts (message_id, shipment_id, office, source, received_on,"
            "   status, problems, created_at, settled_at, warnings)"
            " SELECT m, s, o, src, r, st, p::jsonb, coalesce(a, now()),"
            "   CASE WHEN st = 'rejected' THEN now() END, w::jsonb"
            " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::date[],"
            "   $6::text[], $7::text[], $8::timestamptz[], $9::text[])"
            "   AS v(m, s, o, src, r, st, p, a, w)",
            [n.receipt.message_id for n in receipts],
            [n.receipt.shipment_id for n in receipts],
            [n.receipt.office for n in receipts],
            [n.receipt.source for n in receipts],
            [n.receipt.received_on for n in receipts],
            ["posting" if n.checked.accepted else "rejected" for n in receipts],
            [
                None if n.checked.accepted else _PROBLEMS.dump_json(n.checked.problems).decode()
                for n in receipts
            ],
            [n.arrived_at for n in receipts],
            [_json(_WARNINGS, n.checked.warnings or None) for n in receipts],
        )
        lines = [(n.receipt.message_id, cmd) for n in receipts for cmd in n.checked.commands]
        if not lines:
            return
        await conn.execute(
            "INSERT INTO receipt_lines (message_id, line_no, lic, quantity, command_id, status)"
            " SELECT m, n, l, q, c, 'pending'"
            " FROM unnest($1::text[], $2::int[], $3::text[], $4::numeric[], $5::text[])"
            "   AS v(m, n, l, q, c)",
            [m for m, _ in lines],
            [cmd.line_no for _, cmd in lines],
            [cmd.lic for _, cmd in lines],
            [cmd.quantity for _, cmd in lines],
            [cmd.command_id for _, cmd in lines],
        )

    async def being_posted(
        self, conn: asyncpg.Connection, shipment_ids: Collection[str]
    ) -> dict[str, str]:
        """shipment_id → the latest message recorded for it whose lines are still being
        decided ('posting').

        The rows are locked (shared) until this transaction ends: a transaction answering one
        of them (`record_answers` locks it first) then sees a document held after it, and one
        that answered it already is seen here as answered."""
        if not shipment_ids:
            return {}
        # Locked in message_id order, as `record_answers` locks documents.
        rows = await conn.fetch(
            "SELECT shipment_id, message_id, created_at FROM receipts"
            " WHERE shipment_id = ANY($1::text[]) AND status = 'posting'"
            " ORDER BY message_id FOR SHARE",
            sorted(shipment_ids),
        )
        latest = sorted(rows, key=lambda row: (row["created_at"], row["message_id"]))
        return {row["shipment_id"]: row["message_id"] for row in latest}

    async def received_before(
        self, conn: asyncpg.Connection, shipment_ids: Collection[str], others_than: Collection[str]
    ) -> dict[str, Earlier]:
        """shipment_id → the first message, not among `others_than`, recorded for it that was
        posted (some of its lines, at least) or is being posted. A rejected one changed nothing,
        unless allocation refused to confirm a line after confirming another (`settle`)."""
        if not shipment_ids:
            return {}
        rows = await conn.fetch(
            "SELECT DISTINCT ON (shipment_id) shipment_id, message_id,"
            "   status = 'posting' AS posting"
            " FROM receipts AS r"
            " WHERE shipment_id = ANY($1::text[]) AND NOT message_id = ANY($2::text[])"
            "   AND (status IN ('posting', 'posted') OR (status = 'rejected' AND EXISTS"
            "     (SELECT 1 FROM receipt_lines AS l"
            "       WHERE l.message_id = r.message_id AND l.status = 'posted')))"
            " ORDER BY shipment_id, created_at, message_id",
            sorted(shipment_ids),
            list(others_than),
        )
        return {row["shipment_id"]: Earlier(row["message_id"], row["posting"]) for row in rows}

    async def confirmed_lines(
        self, conn: asyncpg.Connection, lics: Collection[str]
    ) -> list[ConfirmedLine]:
        """The confirmed lines of these LICs (a handful: each waits only for its answer)."""
        rows = await conn.fetch(
            "SELECT command_id, line_no, lic FROM receipt_lines"
            " WHERE status = 'confirmed' AND lic = ANY($1::text[])",
            sorted(set(lics)),
        )
        return [ConfirmedLine(row["command_id"], row["line_no"], row["lic"]) for row in rows]

    async def record_answers(
        self,
        conn: asyncpg.Connection,
        answers: Sequence[d.Answer],
        posted_json: Sequence[str | None],
    ) -> Recorded:
        """Store answers to waiting lines (`posted_json`: each posted line's result as JSON).

        Returns the documents they belong to, locked, and the lines this batch answered.
        Locking the documents first (in a fixed order) serializes two transactions answering
        lines of the same document, so exactly one of them sees the last line answered.
        A line is held only while 'pending': a `LineHeld` delivered again after its document
        was decided changes nothing.
        """
        ids = [a.command_id for a in answers]
        docs = await conn.fetch(
            "SELECT r.message_id FROM receipts r"
            " WHERE r.status = 'posting' AND r.message_id IN"
            "   (SELECT message_id FROM receipt_lines WHERE command_id = ANY($1::text[]))"
            " ORDER BY r.message_id FOR UPDATE OF r",
            ids,
        )
        if not docs:
            return Recorded([], frozenset())
        updated = await conn.fetch(
            "UPDATE receipt_lines AS l"
            " SET status = v.status, posted = v.posted::jsonb, problem = v.problem::jsonb"
            " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
            "   AS v(command_id, status, posted, problem)"
            " WHERE l.command_id = v.command_id"
            "   AND (l.status = 'pending' OR (l.status = 'confirmed' AND v.status <> 'held'))"
            " RETURNING l.command_id",
            ids,
            [_status(a) for a in answers],
            list(posted_json),
            [_json(_PROBLEM, a.problem) for a in answers],
        )
        return Recorded(
            [row["message_id"] for row in docs], frozenset(row["command_id"] for row in updated)
        )

    async def answered_receipts(
        self, conn: asyncpg.Connection, message_ids: Sequence[str], answered: Collection[str] = ()
    ) -> list[AnsweredReceipt]:
        """Those of the documents whose every line is answered, with their lines.

        A posted line's stored result is read back only when an earlier batch answered it: the
        caller holds the results of the lines it answered itself (`answered`: command ids), and
        one result may list 100,000 serials.
        """
        rows = await conn.fetch(
            "SELECT r.message_id, r.shipment_id, r.source, r.received_on,"
            "   l.line_no, l.lic, l.quantity, l.command_id,"
            "   l.status, l.posted ->> 'lot_id' AS lot_id,"
            "   CASE WHEN l.status = 'posted' AND NOT l.command_id = ANY($2::text[])"
            "     THEN l.posted::text END AS posted,"
            "   l.problem::text AS problem,"
            # The document's warnings on its first line's row only: one copy per document.
            "   CASE WHEN l.line_no = min(l.line_no) OVER (PARTITION BY r.message_id)"
            "     THEN r.warnings::text END AS warnings"
            " FROM receipts r JOIN receipt_lines l USING (message_id)"
            " WHERE r.message_id = ANY($1::text[]) AND r.status = 'posting'"
            "   AND NOT EXISTS (SELECT 1 FROM receipt_lines w"
            "     WHERE w.message_id = r.message_id AND w.status IN ('pending', 'confirmed'))"
            " ORDER BY r.message_id, l.line_no",
            list(message_ids),
            list(answered),
        )
        grouped: dict[str, AnsweredReceipt] = {}
        for row in rows:
            receipt = grouped.get(row["message_id"])
            if receipt is None:
                # Its first row is its first line's, the one carrying its warnings.
                warnings = row["warnings"]
                receipt = AnsweredReceipt(
                    row["message_id"],
                    row["shipment_id"],
                    row["source"],
                    row["received_on"],
                    [],
                    {},
                    {},
                    () if warnings is None else _WARNINGS.validate_json(warnings),
                )
                grouped[row["message_id"]] = receipt
            problem = None if row["problem"] is None else _PROBLEM.validate_json(row["problem"])
            posted = None
            if row["status"] == "posted":
                posted = d.Posted(
                    line_no=row["line_no"],
                    lic=row["lic"],
                    quantity=row["quantity"],
                    lot_id=row["lot_id"],
                )
            receipt.lines.append(
                d.LineOutcome(
                    line_no=row["line_no"],
                    lic=row["lic"],
                    posted=posted,
                    problem=problem,
                    held=row["status"] == "held",
                )
            )
            receipt.command_ids[row["line_no"]] = row["command_id"]
            if row["posted"] is not None:
                receipt.stored_results[row["line_no"]] = row["posted"]
        return list(grouped.values())

    async def decide_held(
        self, conn: asyncpg.Connection, confirmed: Sequence[str], cancelled: Sequence[str]
    ) -> None:
        """Move held lines (command ids) on: 'confirmed' (waiting for their posted answer) or
        'cancelled' (their document is rejected)."""
        if not confirmed and not cancelled:
            return
        await conn.execute(
            "UPDATE receipt_lines AS l SET status = v.status"
            " FROM unnest($1::text[], $2::text[]) AS v(command_id, status)"
            " WHERE l.command_id = v.command_id AND l.status = 'held'",
            [*confirmed, *cancelled],
            ["confirmed"] * len(confirmed) + ["cancelled"] * len(cancelled),
        )

    async def finish(self, conn: asyncpg.Connection, finished: Sequence[Finished]) -> None:
        if not finished:
            return
        await conn.execute(
            "UPDATE receipts AS r SET status = v.status, problems = v.problems::jsonb,"
            "   settled_at = now()"
            " FROM unnest($1::text[], $2::text[], $3::text[]) AS v(message_id, status, problems)"
            " WHERE r.message_id = v.message_id",
            [f.message_id for f in finished],
            [f.status for f in finished],
            [_PROBLEMS.dump_json(f.problems).decode() if f.problems else None for f in finished],
        )

    # -- held documents ----------------------------------------------------------------------

    async def lock_items(self, conn: asyncpg.Connection, lics: Collection[str]) -> None:
        """Serialize, per LIC, holding a document for an item and that item's arrival.

        Without it, a receipt could read the item as unknown while the item's arrival, not yet
        committed, looks for held documents before the receipt's is committed: neither would see
        the other. A transaction-scoped advisory lock of each LIC's bucket (taken in a fixed
        order), then a fresh read, makes the later one see the earlier one. The consumer takes
        a batch's locks for both topics before either handler runs
        (`ReceivingService.receipt_locks`, `arrival_locks`), so these are granted at once.
        """
        await lock_names(conn, map(item_lock, lics))

    async def hold(
        self, conn: asyncpg.Connection, documents: Sequence[ToHold], wait_seconds: float
    ) -> list[tuple[str, datetime]]:
        """Hold documents until `wait_seconds` from now; returns those held now, with their
        deadline (a document already held, or settled, is left as it is)."""
        if not documents:
            return []
        rows = await conn.fetch(
            "INSERT INTO held_receipts"
            "   (message_id, shipment_id, document, awaited, after_message, deadline)"
            " SELECT m, s, doc, ARRAY(SELECT jsonb_array_elements_text(a::jsonb)), af,"
            "   now() + make_interval(secs => $6::float8)"
            " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])"
            "   AS v(m, s, doc, a, af)"
            " ON CONFLICT (message_id) DO NOTHING"
            " RETURNING message_id, deadline",
            [h.message_id for h in documents],
            [h.shipment_id for h in documents],
            [h.document for h in documents],
            [_LICS.dump_json(h.awaited).decode() for h in documents],
            [h.after for h in documents],
            wait_seconds,
        )
        return [(row["message_id"], row["deadline"]) for row in rows]

    async def release(self, conn: asyncpg.Connection, arrived: Collection[str]) -> list[Held]:
        """Settle ('released') the held documents waiting for the `arrived` LICs that are
        ready now (`_release_ready`).

        The documents waiting for them are locked first, waiting for any other transaction
        that has one (another arrival, the periodic job): that one may settle it, or store an
        item this one must see. The next statement reads afresh, past those commits.
        """
        locked = await conn.fetch(
            "SELECT message_id FROM held_receipts"
            " WHERE status = 'held' AND awaited && $1::text[]"
            " ORDER BY message_id FOR UPDATE",
            sorted(arrived),
        )
        return await self._release_ready(conn, [row["message_id"] for row in locked])

    async def release_after(
        self, conn: asyncpg.Connection, answered: Collection[str]
    ) -> list[Held]:
        """Settle ('released') the held documents waiting for the earlier versions just
        `answered` (message ids) that are ready now (`_release_ready`); locked first, as
        `release` locks them."""
        if not answered:
            return []
        locked = await conn.fetch(
            "SELECT message_id FROM held_receipts"
            " WHERE status = 'held' AND after_message = ANY($1::text[])"
            " ORDER BY message_id FOR UPDATE",
            sorted(answered),
        )
        return await self._release_ready(conn, [row["message_id"] for row in locked])

    async def _release_ready(self, conn: asyncpg.Connection, locked: Sequence[str]) -> list[Held]:
        """Of the `locked` held documents, settle ('released') those whose every awaited item
        is known and whose earlier version, if they wait for one, is no longer being posted."""
        if not locked:
            return []
        rows = await conn.fetch(
            "UPDATE held_receipts AS h SET status = 'released', settled_at = now(), document = NULL"
            " FROM (SELECT message_id, document FROM held_receipts AS w"
            "   WHERE w.message_id = ANY($1::text[]) AND w.status = 'held'"
            "     AND NOT EXISTS (SELECT 1 FROM unnest(w.awaited) AS a(lic)"
            "       WHERE NOT EXISTS (SELECT 1 FROM items AS i WHERE i.lic = a.lic))"
            "     AND NOT EXISTS (SELECT 1 FROM receipts AS r"
            "       WHERE r.message_id = w.after_message AND r.status = 'posting')) AS ready"
            # On the row itself too: PostgreSQL checks that again after any wait for its lock.
            " WHERE h.message_id = ready.message_id AND h.status = 'held'"
            " RETURNING h.message_id, ready.document, h.held_at",
            list(locked),
        )
        return [Held(row["message_id"], row["document"], row["held_at"]) for row in rows]

    async def supersede(
        self, conn: asyncpg.Connection, shipment_ids: Collection[str], others_than: Collection[str]
    ) -> list[Superseded]:
        """Settle ('superseded') the held versions of these documents that are not among the
        messages `others_than` (a held message delivered again does not supersede itself).

        Their rows are locked first, waiting for a transaction that has one (an arrival, the
        periodic job): if that one settles it, it is answered there, before this transaction's
        answers."""
        if not shipment_ids:
            return []
        locked = await conn.fetch(
            "SELECT message_id FROM held_receipts"
            " WHERE status = 'held' AND shipment_id = ANY($1::text[])"
            "   AND NOT message_id = ANY($2::text[])"
            " ORDER BY message_id FOR UPDATE",
            sorted(shipment_ids),
            list(others_than),
        )
        if not locked:
            return []
        rows = await conn.fetch(
            "UPDATE held_receipts AS h"
            " SET status = 'superseded', settled_at = now(), document = NULL"
            " FROM (SELECT message_id, document FROM held_receipts"
            "   WHERE message_id = ANY($1::text[]) AND status = 'held') AS old"
            " WHERE h.message_id = old.message_id AND h.status = 'held'"
            " RETURNING h.message_id, h.shipment_id, old.document, h.held_at",
            [row["message_id"] for row in locked],
        )
        settled = [
            Superseded(row["message_id"], row["shipment_id"], row["document"], row["held_at"])
            for row in rows
        ]
        return sorted(settled, key=lambda s: (s.held_at, s.message_id))

    async def expire(self, conn: asyncpg.Connection, limit: int) -> list[Held]:
        """Settle ('expired') up to `limit` held documents whose deadline has passed, oldest
        first. Documents another transaction has locked are skipped: that one settles them,
        or leaves them for the next round."""
        rows = await conn.fetch(
            "UPDATE held_receipts AS h SET status = 'expired', settled_at = now(), document = NULL"
            " FROM (SELECT message_id, document FROM held_receipts"
            "   WHERE status = 'held' AND deadline <= now()"
            "   ORDER BY deadline LIMIT $1 FOR UPDATE SKIP LOCKED) AS due"
            " WHERE h.message_id = due.message_id AND h.status = 'held'"
            " RETURNING h.message_id, due.document, h.held_at",
            limit,
        )
        return [Held(row["message_id"], row["document"], row["held_at"]) for row in rows]
