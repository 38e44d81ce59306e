"""Receiving's use cases: check and split incoming documents; settle them from allocation's answers.

Both run inside the consumer's unit of work (one transaction with the inbox, the stored offsets
and the outbox), so a document's commands, its record and its status leave together or not at all.
"""

from __future__ import annotations

from typing import Any

from services.receiving import domain as d
from services.receiving import translate
from services.receiving.repository import Finished, NewReceipt, PgReceivingRepository
from shared.config import Settings
from shared.consumer import Inbound, UnitOfWork
from shared.contracts import events as e
from shared.contracts import status as s
from shared.contracts import upstream as u
from shared.ids import derived_id


class ReceivingService:
    def __init__(self, settings: Settings, repository: PgReceivingRepository | None = None) -> None:
        self._topics = settings.topics
        self._repository = repository or PgReceivingRepository()
        self._limits = d.Limits(max_span=settings.max_serial_span)

    async def receive_documents(
        self, uow: UnitOfWork, batch: list[Inbound[u.ShipmentReceived]]
    ) -> None:
        """Check every document whole; refuse it with every problem, or send one command a line."""
        docs = [inbound.message for inbound in batch]
        lics = sorted({line.lic for doc in docs for line in doc.lines})
        items = await self._repository.items(uow.conn, lics)
        recorded = []
        for doc in docs:
            receipt = translate.receipt(doc)
            checked = d.check_receipt(receipt, items, self._limits)
            if checked.accepted:
                for line in checked.commands:
                    uow.outbox.emit(self._topics.commands, line.lic, translate.command(doc, line))
            else:
                status_id = derived_id(doc.message_id, "rejected")
                refusal = translate.rejected(status_id, doc.shipment_id, checked.problems)
                uow.outbox.emit(self._topics.status, doc.shipment_id, refusal)
            recorded.append(NewReceipt(receipt, checked))
        await self._repository.add_receipts(uow.conn, recorded)

    async def collect_answers(self, uow: UnitOfWork, batch: list[Inbound[Any]]) -> None:
        """Keep the item read model; record answers; publish the status of finished documents."""
        events: list[e.Event] = [inbound.message for inbound in batch]
        items = [translate.item(ev) for ev in events if isinstance(ev, e.ItemUpserted)]
        if items:
            await self._repository.upsert_items(uow.conn, items)
        answers: list[d.Answer] = []
        results: dict[str, s.LineResult] = {}  # command id → what a posted line moved
        for ev in events:
            answer = translate.answer(ev)
            if answer is None:
                continue
            answers.append(answer)
            if isinstance(ev, e.StockReceived | e.StockReturned):
                results[ev.command_id] = translate.line_result(ev)
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
        for receipt in await self._repository.answered_receipts(
            uow.conn, recorded.documents, answered
        ):
            settled = d.settle(receipt.lines)
            if settled is None:
                continue
            lines = [
                results[command_id]
                if (command_id := receipt.command_ids[p.line_no]) in answered
                else translate.stored_line_result(receipt.stored_results[p.line_no])
                for p in settled.posted
            ]
            self._publish(uow, receipt.message_id, receipt.shipment_id, settled, lines)
            status = "posted" if settled.fully_posted else "rejected"
            finished.append(Finished(receipt.message_id, status, settled.problems))
        await self._repository.finish(uow.conn, finished)

    def _publish(
        self,
        uow: UnitOfWork,
        message_id: str,
        shipment_id: str,
        settled: d.Settled,
        lines: list[s.LineResult],
    ) -> None:
        if settled.fully_posted:
            status_id = derived_id(message_id, "posted")
            message: Any = translate.posted(status_id, shipment_id, lines)
        else:
            status_id = derived_id(message_id, "rejected")
            message = translate.rejected(status_id, shipment_id, settled.problems, lines)
        uow.outbox.emit(self._topics.status, shipment_id, message)
