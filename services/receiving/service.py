"""Receiving's use cases: check and split incoming documents; settle them from allocation's answers.

Both run inside the consumer's unit of work (one transaction with the inbox, the stored offsets
and the outbox), so a document's commands, its record and its status leave together or not at all.

A document refused only for items receiving does not know yet is held (`domain.awaited_items`),
publishing nothing, until the last of those items arrives (`collect_answers` releases it in the
transaction that stores the item) or its deadline passes (`settle_expired`, a periodic job).
Either way it is then checked in full, as if it had just arrived, and settled exactly once: the
settling transaction locks its row and moves it out of 'held'. A newer version of a document is
held the same way while an earlier version is still being posted (`_after_earlier`), and
released in the transaction that answers that one: sent at once, a receipt's lines would meet
the earlier version's held lines in allocation and be refused as received before, and a
customer return would be refused as received before (R13), even when the earlier version is
refused and nothing of the document was received.

A document is answered once per version (message): a version still held when a newer one of the
same document (`shipment_id`) arrives is refused at once, superseded, so its refusal precedes the
newer version's answer (a newer version that fails its schema but names its ids too:
`supersede_refused`, just before the consumer writes its refusal); and a customer return whose
document was received before (posted, or still being posted once it may wait no longer) is
refused, since it would put the same units back twice (R13).

A document of several lines is received whole or not at all: its lines go out with `hold`, and
once every line is answered (`domain.settle`, in the transaction that recorded the last answer,
the document's row locked) the held lines are all confirmed, or all cancelled and the document
rejected. A confirmation allocation refuses (`_refused_settles`) refuses its line: the document
is then rejected, naming the lines the other confirmations posted.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

import asyncpg
import structlog

from services.receiving import domain as d
from services.receiving import translate
from services.receiving.repository import (
    AnsweredReceipt,
    Earlier,
    Finished,
    Held,
    NewReceipt,
    PgReceivingRepository,
    ToHold,
    item_lock,
)
from shared.config import Settings
from shared.consumer import Inbound, Refused, UnitOfWork
from shared.contracts import commands as c
from shared.contracts import events as e
from shared.contracts import status as s
from shared.contracts import upstream as u
from shared.ids import derived_id
from shared.offload import compute, entry_weight

log = structlog.get_logger(__name__)


def check_weight(message: u.ShipmentReceived) -> int:
    """About how many microseconds checking `message` takes (`shared.offload`)."""
    return sum(entry_weight(line, line.quantity) for line in message.lines)


# Held documents settled per round of the periodic job: each is up to a few megabytes of JSON.
EXPIRE_AT_ONCE = 100


@dataclass(frozen=True, slots=True)
class _Document:
    """A document and its verdict; `awaited`: the unknown LICs it is to be held for; `after`:
    the earlier version (message id), still being posted, it is to be held for."""

    message: u.ShipmentReceived
    receipt: d.Receipt
    checked: d.Checked
    awaited: tuple[str, ...] = ()
    arrived_at: datetime | None = None
    after: str | None = None

    @property
    def waits(self) -> bool:
        return bool(self.awaited) or self.after is not None


def _latest_held(docs: Sequence[_Document]) -> list[_Document]:
    """Of several versions of a document in one batch, an earlier one that would be held is
    answered at once instead (`domain.superseded`): at most one version of a document waits."""
    newest = {doc.message.shipment_id: doc.message.message_id for doc in docs}
    latest = []
    for doc in docs:
        newer = newest[doc.message.shipment_id]
        if doc.waits and newer != doc.message.message_id:
            checked = d.superseded(doc.checked, newer)
            doc = replace(doc, checked=checked, awaited=(), after=None)
        latest.append(doc)
    return latest


def _logged(warning: d.ReceiptWarning) -> dict[str, Any]:
    """A warning as the log names it (its sentence is in the status)."""
    return {
        "line_no": warning.line_no,
        "lic": warning.lic,
        "code": warning.code,
        "mfr_lot": warning.mfr_lot,
        "expires_on": None if warning.expires_on is None else warning.expires_on.isoformat(),
        "lot_id": warning.lot_id,
        **({"quarantine_id": warning.quarantine_id} if warning.quarantine_id else {}),
    }


class ReceivingService:
    def __init__(self, settings: Settings, repository: PgReceivingRepository | None = None) -> None:
        self._topics = settings.topics
        self._repository = repository or PgReceivingRepository()
        self._limits = d.Limits(max_span=settings.max_serial_span)
        self._wait = settings.unknown_item_wait_seconds

    @property
    def settle_every(self) -> float:
        """Seconds between looks for expired held documents: a tenth of the wait, 0.25 to 5 s
        (a document is settled at most that long after its deadline)."""
        return min(5.0, max(0.25, self._wait / 10))

    async def receipt_locks(
        self, conn: asyncpg.Connection, receipts: list[u.ShipmentReceived]
    ) -> list[str]:
        """The item locks `receive_documents` may take: those of the items its lines name that
        receiving does not know (an item known stays known, so it never locks one;
        `Route.locks`)."""
        if self._wait <= 0:
            return []
        lics = {line.lic for receipt in receipts for line in receipt.lines}
        return [item_lock(lic) for lic in await self._repository.unknown_items(conn, lics)]

    async def receive_documents(
        self, uow: UnitOfWork, batch: list[Inbound[u.ShipmentReceived]]
    ) -> None:
        """Check every document whole; refuse it with every problem, or send one command a line.
        A document refused only for unknown items is held for them instead."""
        messages = [inbound.message for inbound in batch]
        lics = sorted({line.lic for doc in messages for line in doc.lines})
        items = await self._repository.items(uow.conn, lics)
        docs = await self._check_many(messages, items, may_wait=self._wait > 0)
        awaited = {lic for doc in docs for lic in doc.awaited}
        if awaited:
            # An awaited item may have arrived since it was read: read it again with its LIC
            # locked, so that an arrival from now on finds the document held.
            await self._repository.lock_items(uow.conn, awaited)
            items |= await self._repository.items(uow.conn, sorted(awaited))
            again = iter(
                await self._check_many([doc.message for doc in docs if doc.awaited], items)
            )
            docs = [next(again) if doc.awaited else doc for doc in docs]
        newest = {doc.message.shipment_id: doc.message.message_id for doc in docs}
        superseded = await self._supersede(uow, newest, [doc.message.message_id for doc in docs])
        # After superseding: a held version another transaction releases meanwhile (its rows
        # waited for) is being posted by the time the earlier versions are read.
        docs = _latest_held(await self._after_earlier(uow, docs))
        docs = await self._once_per_return(uow, docs)
        await self._hold(uow, [doc for doc in docs if doc.waits])
        # The superseded versions first: their refusals precede the newer versions' answers.
        await self._admit(uow, [*superseded, *(doc for doc in docs if not doc.waits)])

    async def supersede_refused(self, uow: UnitOfWork, refused: list[Refused]) -> None:
        """Receipts that failed their schema but name their ids, answered with their refusal
        right after this (the consumer's `refuse_receipts`, in this transaction): a newer
        version all the same, so the held versions of their documents are answered first,
        superseded, as a valid newer version's would be. Never again on redelivery (the
        consumer calls this only for ids new to the inbox)."""
        newest: dict[str, str] = {}
        for document in refused:
            shipment_id = translate.refused_shipment(document.document)
            if shipment_id is not None:
                newest[shipment_id] = document.message_id
        superseded = await self._supersede(uow, newest, [r.message_id for r in refused])
        if superseded:
            await self._admit(uow, superseded)

    async def settle_expired(self, uow: UnitOfWork) -> bool:
        """The periodic job: settle held documents whose wait is over on what is known now,
        refusing `UNKNOWN_ITEM` the lines whose item never came (one waiting for an earlier
        version still being posted is sent as it would have been without waiting). True: a
        full round, more may be due (`ServiceRuntime.every` runs the next one at once)."""
        expired = await self._repository.expire(uow.conn, EXPIRE_AT_ONCE)
        await self._settle(uow, expired, "expired")
        return len(expired) >= EXPIRE_AT_ONCE

    async def _check_many(
        self,
        messages: Sequence[u.ShipmentReceived],
        items: dict[str, d.Item],
        *,
        may_wait: bool = True,
        arrived: Sequence[datetime] | None = None,
    ) -> list[_Document]:
        """`_check` each document (`arrived`: when each was held), in a worker thread when
        they are heavy (`shared.offload`): 200,000 scans take 20 s to read."""
        when = arrived if arrived is not None else [None] * len(messages)
        return await compute(
            lambda: [
                self._check(m, items, may_wait=may_wait, arrived_at=at)
                for m, at in zip(messages, when, strict=True)
            ],
            weight=sum(map(check_weight, messages)),
        )

    def _check(
        self,
        message: u.ShipmentReceived,
        items: dict[str, d.Item],
        *,
        may_wait: bool = True,
        arrived_at: datetime | None = None,
    ) -> _Document:
        receipt = translate.receipt(message)
        checked = d.check_receipt(receipt, items, self._limits)
        awaited = d.awaited_items(checked) if may_wait else ()
        return _Document(message, receipt, checked, awaited, arrived_at)

    async def _after_earlier(self, uow: UnitOfWork, docs: Sequence[_Document]) -> list[_Document]:
        """Mark the documents to hold until an earlier version of the same document
        (shipment_id), still being posted, is answered: one recorded before, or sent earlier in
        this batch. Allocation decides each line of a receipt once (its lot
        `<shipment_id>/<line_no>` exists from then on, held or not), and a customer return is
        received once (R13, `_once_per_return`), so a version sent beside the earlier one would
        be refused as received before, even when the earlier version is refused and nothing of
        the document was received. Released, it is checked as if it had just arrived. A version
        refused at the door is answered at once (its own problems stand whatever the earlier
        one's answer). Without a wait (`LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS` 0), nothing is
        held."""
        if self._wait <= 0:
            return list(docs)

        def may_wait(doc: _Document) -> bool:
            return doc.checked.accepted or bool(doc.awaited)

        shipments = {doc.message.shipment_id for doc in docs if may_wait(doc)}
        posting = await self._repository.being_posted(uow.conn, shipments)
        marked = []
        for doc in docs:
            if may_wait(doc):
                earlier = posting.get(doc.message.shipment_id)
                if earlier is not None:
                    doc = replace(doc, after=earlier)
                elif not doc.awaited:  # sent now: later versions in the batch wait for it
                    posting[doc.message.shipment_id] = doc.message.message_id
            marked.append(doc)
        return marked

    async def _supersede(
        self, uow: UnitOfWork, newest: dict[str, str], message_ids: Collection[str]
    ) -> list[_Document]:
        """Answer now the held versions of the batch's documents (`newest`: shipment_id → its
        latest message in the batch; `message_ids`: all of them, never superseding
        themselves): a newer version (another message, same shipment_id) replaces them, and
        answered later their refusal could follow its posting. Checked again in full, then
        refused, each saying so."""
        held = await self._repository.supersede(uow.conn, newest.keys(), message_ids)
        if not held:
            return []
        messages = [translate.held_document(h.document) for h in held]
        lics = sorted({line.lic for m in messages for line in m.lines})
        items = await self._repository.items(uow.conn, lics)
        answered = []
        checked = await self._check_many(
            messages, items, may_wait=False, arrived=[h.held_at for h in held]
        )
        for h, doc in zip(held, checked, strict=True):
            newer = newest[h.shipment_id]
            answered.append(replace(doc, checked=d.superseded(doc.checked, newer)))
            log.info(
                "receiving.receipt_superseded",
                message_id=h.message_id,
                shipment_id=h.shipment_id,
                by=newer,
            )
        return answered

    async def _once_per_return(self, uow: UnitOfWork, docs: Sequence[_Document]) -> list[_Document]:
        """R13: refuse, whole and at once, a customer return whose document was received
        before (by an earlier batch or earlier in this one): posted, or being posted when it
        does not wait for that version's answer (`_after_earlier`; no wait, or its wait is
        over)."""
        returns = {doc.message.shipment_id for doc in docs if doc.receipt.is_return}
        if not returns:
            return list(docs)
        earlier = await self._repository.received_before(
            uow.conn, returns, [doc.message.message_id for doc in docs]
        )
        checked = []
        for doc in docs:
            shipment_id = doc.message.shipment_id
            before = earlier.get(shipment_id)
            if before is not None and before.message_id == doc.message.message_id:
                before = None
            waits_for_it = before is not None and before.posting and doc.after is not None
            if doc.receipt.is_return and before is not None and not waits_for_it:
                refused = d.received_before(
                    doc.receipt, doc.checked, before.message_id, posting=before.posting
                )
                doc = replace(doc, checked=refused, awaited=(), after=None)
            elif doc.checked.accepted and not doc.waits:
                earlier.setdefault(shipment_id, Earlier(doc.message.message_id, posting=True))
            checked.append(doc)
        return checked

    async def _admit(self, uow: UnitOfWork, docs: Sequence[_Document]) -> None:
        """Send an accepted document's line commands, or its refusal; record it."""
        for doc in docs:
            if doc.checked.accepted:
                for line in doc.checked.commands:
                    command = translate.command(doc.message, line)
                    uow.outbox.emit(self._topics.commands, line.lic, command)
            else:
                status_id = derived_id(doc.message.message_id, "rejected")
                refusal = translate.rejected(
                    status_id,
                    doc.message.shipment_id,
                    doc.checked.problems,
                    answers=doc.message.message_id,
                )
                uow.outbox.emit(self._topics.status, doc.message.shipment_id, refusal)
        await self._repository.add_receipts(
            uow.conn, [NewReceipt(doc.receipt, doc.checked, doc.arrived_at) for doc in docs]
        )

    async def _hold(self, uow: UnitOfWork, docs: Sequence[_Document]) -> None:
        """Hold documents for their unknown items and earlier versions; nothing is published
        while they wait."""
        held = await self._repository.hold(
            uow.conn,
            [
                ToHold(
                    doc.message.message_id,
                    doc.message.shipment_id,
                    translate.stored_document(doc.message),
                    doc.awaited,
                    doc.after,
                )
                for doc in docs
            ],
            self._wait,
        )
        by_id = {doc.message.message_id: doc for doc in docs}
        for message_id, deadline in held:
            log.info(
                "receiving.receipt_held",
                message_id=message_id,
                shipment_id=by_id[message_id].message.shipment_id,
                awaited=list(by_id[message_id].awaited),
                after=by_id[message_id].after,
                deadline=deadline.isoformat(),
            )

    async def _release(self, uow: UnitOfWork, arrived: Collection[str]) -> None:
        """Settle the held documents whose last awaited item is among those just stored."""
        await self._repository.lock_items(uow.conn, arrived)
        await self._settle(uow, await self._repository.release(uow.conn, arrived), "released")

    async def _settle(
        self, uow: UnitOfWork, held: Sequence[Held], how: Literal["released", "expired"]
    ) -> None:
        """Check settled documents again in full, as if they had just arrived, and admit them."""
        if not held:
            return
        messages = [translate.held_document(h.document) for h in held]
        lics = sorted({line.lic for m in messages for line in m.lines})
        items = await self._repository.items(uow.conn, lics)
        docs = await self._check_many(
            messages, items, may_wait=False, arrived=[h.held_at for h in held]
        )
        docs = await self._once_per_return(uow, docs)
        await self._admit(uow, docs)
        for doc in docs:
            log.info(
                f"receiving.receipt_{how}",
                message_id=doc.message.message_id,
                shipment_id=doc.message.shipment_id,
                outcome="sent" if doc.checked.accepted else "rejected",
                problems=[p.reason_code.value for p in doc.checked.problems],
            )

    async def collect_answers(self, uow: UnitOfWork, batch: list[Inbound[Any]]) -> None:
        """Keep the item read model (releasing the documents held for an item that arrives);
        record answers; publish the status of finished documents."""
        events: list[e.Event] = [inbound.message for inbound in batch]
        items = [translate.item(ev) for ev in events if isinstance(ev, e.ItemUpserted)]
        if items:
            await self._repository.upsert_items(uow.conn, items)
            await self._release(uow, {item.lic for item in items})
        answers: list[d.Answer] = []
        results: dict[str, s.LineResult] = {}  # command id → what a posted line moved
        for ev in events:
            answer = translate.answer(ev)
            if answer is None:
                continue
            answers.append(answer)
            if isinstance(ev, e.StockReceived | e.StockReturned):
                results[ev.command_id] = translate.line_result(ev)
        answers += await self._refused_settles(uow, events)
        if not answers:
            return
        # Each result is serialized once, for the record; the status reuses the objects.
        posted_json = [
            None if a.posted is None else results[a.command_id].model_dump_json() for a in answers
        ]
        recorded = await self._repository.record_answers(uow.conn, answers, posted_json)
        del posted_json  # up to ~11 MB per line: not held while the status is built
        answered = recorded.answered & results.keys()
        finished = []
        confirmed: list[str] = []  # command ids of held lines confirmed now
        cancelled: list[str] = []  # and of held lines cancelled now
        receipts = await self._repository.answered_receipts(uow.conn, recorded.documents, answered)
        # A customer return's warnings are read off its posted lines against its items (R9).
        returned = sorted(
            {line.lic for receipt in receipts if receipt.is_return for line in receipt.lines}
        )
        known = await self._repository.items(uow.conn, returned) if returned else {}
        for receipt in receipts:
            decision = d.settle(receipt.lines)
            if decision is None:
                continue
            if isinstance(decision, d.Confirm):
                # Every line held: publish them; their answers settle the document later.
                confirmed += self._send(uow, receipt, decision.held, translate.confirm_held)
                continue
            cancelled += self._send(uow, receipt, decision.cancelled, translate.cancel_held)
            lines = [
                results[command_id]
                if (command_id := receipt.command_ids[p.line_no]) in answered
                else translate.stored_line_result(receipt.stored_results[p.line_no])
                for p in decision.posted
            ]
            self._publish(uow, receipt, decision, lines, known)
            status = "posted" if decision.fully_posted else "rejected"
            finished.append(Finished(receipt.message_id, status, decision.problems))
        await self._repository.decide_held(uow.conn, confirmed, cancelled)
        await self._repository.finish(uow.conn, finished)
        # Newer versions held for these documents go out now, after their answers.
        answered_ids = [f.message_id for f in finished]
        await self._settle(
            uow, await self._repository.release_after(uow.conn, answered_ids), "released"
        )

    async def _refused_settles(self, uow: UnitOfWork, events: Sequence[e.Event]) -> list[d.Answer]:
        """The answers allocation's refusals of `ConfirmHeld` give the lines they confirmed.

        Allocation refuses one only for a line it does not hold (a bug, or an operator's hand),
        and then publishes nothing more for the line: refused, it lets its document settle,
        rejected, naming what the other lines did post. A refused `CancelHeld` changes nothing
        (its document is answered already, nothing of it posted): both are logged."""
        refusals = {
            refusal.command_id: refusal
            for ev in events
            if (refusal := translate.refused_settle(ev)) is not None
        }
        if not refusals:
            return []
        for refusal in refusals.values():
            log.warning(
                "receiving.held_settle_refused",
                command_id=refusal.command_id,
                command_type=refusal.command_type,
                lic=refusal.lic,
                reason_code=refusal.reason_code.value,
                reason=refusal.reason,
            )
        confirms = {i: r for i, r in refusals.items() if r.command_type == "ConfirmHeld"}
        lics = {r.lic for r in confirms.values()}
        answers = []
        for line in await self._repository.confirmed_lines(uow.conn, lics):
            refusal = confirms.get(translate.confirm_id(line.command_id))
            if refusal is not None:
                answers.append(
                    translate.confirmation_refused(line.command_id, line.line_no, refusal)
                )
        return answers

    def _send(
        self,
        uow: UnitOfWork,
        receipt: AnsweredReceipt,
        held: Sequence[d.LineOutcome],
        build: Callable[[str, str], c.ConfirmHeld | c.CancelHeld],
    ) -> list[str]:
        """Send `build`'s command for each held line, keyed by its LIC; their command ids."""
        ids = []
        for line in held:
            command_id = receipt.command_ids[line.line_no]
            uow.outbox.emit(self._topics.commands, line.lic, build(command_id, line.lic))
            ids.append(command_id)
        return ids

    def _publish(
        self,
        uow: UnitOfWork,
        receipt: AnsweredReceipt,
        settled: d.Settled,
        lines: list[s.LineResult],
        items: dict[str, d.Item],
    ) -> None:
        """The settled document's status; a posted one says its warnings (found when it was
        checked, and a return's read off its lines: `domain.posting_warnings`), logged too."""
        message_id, shipment_id = receipt.message_id, receipt.shipment_id
        if settled.fully_posted:
            status_id = derived_id(message_id, "posted")
            posting = d.Posting(
                source=receipt.source,
                received_on=receipt.received_on,
                lines=lines,
                stored=receipt.warnings,
            )
            warnings = d.posting_warnings(posting, items, self._limits.max_warnings)
            message: Any = translate.posted(
                status_id, shipment_id, lines, answers=message_id, warnings=warnings
            )
            if warnings:
                log.warning(
                    "receiving.receipt_posted_with_warnings",
                    message_id=message_id,
                    shipment_id=shipment_id,
                    warnings=[_logged(w) for w in warnings],
                )
        else:
            status_id = derived_id(message_id, "rejected")
            message = translate.rejected(
                status_id, shipment_id, settled.problems, lines, answers=message_id
            )
        uow.outbox.emit(self._topics.status, shipment_id, message)
