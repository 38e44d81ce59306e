"""`lotline send`: publish upstream documents as an upstream system does, and show the answers.

A file holds JSON documents one after another (JSON Lines, pretty-printed objects, or one JSON
array of them). Each document goes to its contract topic with its contract key (DESIGN §4:
`UPSTREAM_ROUTES`), byte for byte as written, so what the services read is what the file says.
Every document is first checked against the contract the way the services check it; if any
fails, nothing is sent: a file is sent whole or not at all. Fields the contract does not know
are ignored by the services, so they are only named (`unknown_fields`): a misspelled optional
field would otherwise lose its meaning without a word.

Then each document's answer is awaited, read from where lotline answers it:
- receipts and shipment documents: `inventory.status`, by the `answers` a status lists (the
  message_ids it answers: one status may answer several documents), or, from services that
  do not list them, by document id and status type, in the order sent;
- items and adjustments: `inventory.events`, by the command id allocation derives from the
  `message_id` (`item:…`, `adjustment:…`, `quarantine:…`);
- a document a service could not read: `inventory.dlq`, the same bytes;
- `PurchaseOrderUpdated` has no answer in the contract: it is only sent.
A document whose `message_id` was processed before gets no new answer (a redelivery): send
documents with fresh ids to see them decided again.

Documents on different topics are not ordered with each other (a shipment may be decided before
the receipt sent just before it): `one_at_a_time` sends each document only once the one before
it is answered, as an order system that waits for its answers does, and stops at the first
that is not answered in time.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import time
import types
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache, partial
from typing import Annotated, Any, Literal, TextIO, Union, get_args, get_origin

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError
from pydantic import AliasChoices, AliasPath, BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from shared.config import Settings
from shared.contracts import invalid
from shared.contracts.codec import InvalidMessage, decode
from shared.contracts.upstream import TOPIC_MESSAGES, UPSTREAM_ROUTES
from shared.ids import namespaced
from shared.kafka import kafka_client_options, make_producer

# The status answers a document waits for, by its type. Items, adjustments and quarantines are
# answered on inventory.events with one of ANSWERED_ON_EVENTS.
STATUS_ANSWERS: dict[str, frozenset[str]] = {
    "ShipmentReceived": frozenset({"ReceiptPosted", "ReceiptRejected"}),
    "ShipmentRequested": frozenset({"ShipmentAllocated", "ShipmentAllocationFailed"}),
    "ShipmentPicksUpdated": frozenset({"ShipmentAllocated", "ShipmentAllocationFailed"}),
    "ShipmentShipRequested": frozenset({"ShipmentShipped", "ShipmentShipRefused"}),
    "ShipmentCancelled": frozenset({"ShipmentCancelled"}),
}
EVENT_ORIGINS = {
    "UpsertItem": "item",
    "AdjustInventory": "adjustment",
    "QuarantineStock": "quarantine",
}
ANSWERED_ON_EVENTS = frozenset(
    {"ItemUpserted", "InventoryAdjusted", "StockQuarantined", "CommandRejected"}
)
# How long `send` reads on to the answer topics' true end before sending (see `_Answers.start`).
DRAIN_SECONDS = 2.0
# Documents a service may hold, publishing nothing, while the item they name is not known yet
# (LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS): a shipment's documents only with scans, but a note that
# says "may" needs no more precision.
MAY_BE_HELD = frozenset(
    {
        "ShipmentReceived",
        "AdjustInventory",
        "QuarantineStock",
        "ShipmentRequested",
        "ShipmentPicksUpdated",
    }
)
# Silence this long while answers are awaited earns one note saying why (`_Answers._read`).
HELD_NOTE_SECONDS = 5.0
# A summary lists this many problems, and lines a refusal left standing, at most.
MAX_LISTED = 10
# Reading a file names this many bad documents, and documents with unknown fields, at most.
MAX_NAMED = 50

_ADAPTERS = {topic: TypeAdapter(message) for topic, message in TOPIC_MESSAGES.items()}


class BrokerError(RuntimeError):
    """The broker could not be reached or did not take a document; the message says which
    and what may have been sent."""


class DocumentError(ValueError):
    """A document that would not be accepted as sent; `where` is `file:line`."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class BadDocuments(DocumentError):
    """Documents that would not be accepted (`bad`, in input order; the first is this error's
    own `where` and `reason`); `documents`: the ones that would, for their warnings."""

    def __init__(self, bad: Sequence[DocumentError], documents: Sequence[Document]) -> None:
        super().__init__(bad[0].where, bad[0].reason)
        self.bad = list(bad)
        self.documents = list(documents)

    def lines(self) -> list[str]:
        """Each bad document's `file:line: problems`, MAX_NAMED at most, then a count."""
        if len(self.bad) == 1:
            return [f"{self} (nothing was sent)"]
        lines = [str(error) for error in self.bad[:MAX_NAMED]]
        if len(self.bad) > MAX_NAMED:
            lines.append(f"… and {plural(len(self.bad) - MAX_NAMED, 'more bad document')}")
        total = len(self.bad) + len(self.documents)
        lines.append(
            f"{len(self.bad)} of {plural(total, 'document')} would not be accepted"
            " (nothing was sent)"
        )
        return lines


@dataclass(frozen=True)
class Document:
    """One upstream document, checked against the contract and ready to publish."""

    where: str
    type: str
    message_id: str
    topic: str  # the contract's name, without the deployment's prefix
    key: str
    value: bytes
    unknown: tuple[str, ...] = ()  # paths of the fields the contract does not know (ignored)

    @property
    def answered_on_status(self) -> bool:
        return self.type in STATUS_ANSWERS

    @property
    def command_id(self) -> str | None:
        origin = EVENT_ORIGINS.get(self.type)
        return namespaced(origin, self.message_id) if origin else None

    @property
    def answered(self) -> bool:
        """Whether the contract answers this document at all."""
        return self.answered_on_status or self.command_id is not None


@dataclass
class Outcome:
    document: Document
    answer: dict[str, Any] | None = None
    dead_letter: str | None = None  # the error a service dead-lettered the document with
    sent: bool = True  # False: one at a time, not sent (one before it was not answered)

    def summary(self) -> str:
        doc = self.document
        head = f"{doc.where}  {doc.type} {doc.key}"
        if not self.sent:
            return f"{head}  → not sent (a document before it was not answered)"
        if self.dead_letter is not None:
            return f"{head}  → dead-lettered: {self.dead_letter}"
        if not doc.answered:
            return f"{head}  → sent (the contract has no answer for it)"
        if self.answer is None:
            # Not answered again by design: the services drop a redelivered message_id.
            return (
                f"{head}  → no answer yet (a message_id processed before is not answered"
                " again: look for its first answer)"
            )
        return f"{head}  → {describe(self.answer)}"


def describe(answer: dict[str, Any]) -> str:
    """An answer as `send` and `watch` print it: its type and refusal, then, indented, what
    each line (or an event) moved, what a refusal left standing, and what a quarantine
    holds or released."""
    text = str(answer.get("type"))
    if answer.get("reason_code"):
        text += f" {answer['reason_code']}: {answer.get('reason')}"
    # A refusal's `lines` (a partly shipped shipment's) say, line by line, what shipped and
    # what did not: listed with the rest of what it left standing (`_details`).
    into = answer.get("type") in _STOCK_IN
    for line in [] if answer.get("reason_code") else answer.get("lines") or []:
        text += f"\n      line {line.get('line_no')} {line.get('lic')}: {_taken(line, into)}"
    if answer.get("movements"):  # an event: an adjustment, an allocation, a shipment …
        text += f"\n      {answer.get('lic')}: {_taken(answer, into)}"
    if answer.get("type") == "InventoryAdjusted":
        text += _stock_change(answer)
    if answer.get("type") == "StockQuarantined":
        text += _quarantined(answer)
    details = [*_warnings(answer), *_details(answer)]
    return text + "".join(f"\n      {detail}" for detail in details)


def _warnings(answer: dict[str, Any]) -> list[str]:
    """A posted receipt's warnings (`warning: line 1 MILK LOT_EXPIRED_ON_RECEIPT: …`) or an
    adjustment's (`warning: SAL-500 STOCK_IN_NO_LOT: …`), each with its sentence: accepted all
    the same, but its clerk must hear it at once."""
    warnings = [w for w in answer.get("warnings") or [] if isinstance(w, dict)]
    shown = [
        f"warning: {_warned(answer, w)} {w.get('code')}: {w.get('message')}"
        for w in warnings[:MAX_LISTED]
    ]
    if len(warnings) > MAX_LISTED:
        shown.append(f"… {plural(len(warnings) - MAX_LISTED, 'more warning')}")
    return shown


def _warned(answer: dict[str, Any], warning: dict[str, Any]) -> str:
    """What a warning is about: a receipt's line (`line 1 MILK`), else the answer's item."""
    if warning.get("line_no") is not None:
        return f"line {warning.get('line_no')} {warning.get('lic')}"
    return str(warning.get("lic") or answer.get("lic"))


def _stock_change(answer: dict[str, Any]) -> str:
    """Which way an adjustment moved stock: a count or loss may add as well as remove (R11),
    so a loss sent without its minus sign adds, and the answer must say so plainly."""
    quantity = str(answer.get("quantity", ""))
    if not quantity or quantity.lstrip("-").strip("0.") == "":
        return ""
    if quantity.startswith("-"):
        return f"\n      stock change {quantity}: removed"
    note = (
        " (a loss that adds: was the minus sign left out?)" if answer.get("kind") == "loss" else ""
    )
    return f"\n      stock change +{quantity}: added{note}"


def _quarantined(answer: dict[str, Any]) -> str:
    """` Q-1 held: mfr lot X at every office (failed QA)`, then the stock it covers, a row
    each (`held: 5 of X in lot PO-1/1 at MAIN (2 allocated)`): a hold and its release read
    apart, and a recall shows what it caught."""
    state = "held" if answer.get("quarantined") else "released"
    named = [f"mfr lot {answer['mfr_lot']}"] if answer.get("mfr_lot") else []
    if answer.get("lot_id"):
        named.append(f"lot {answer['lot_id']}")
    text = f" {answer.get('quarantine_id')} {state}: {' in '.join(named)}"
    text += f" at {answer['office']}" if answer.get("office") else " at every office"
    if answer.get("reason"):
        text += f" ({answer['reason']})"
    stock = [row for row in answer.get("stock") or [] if isinstance(row, dict)]
    if not stock:
        # The rule stands without stock: what arrives of it later is held too.
        return text + f"\n      {state}: nothing on hand now (stock received later is held too)"
    shown = stock if len(stock) <= 6 else stock[:5]
    text += "".join(f"\n      {state}: {_covered(row)}" for row in shown)
    if len(shown) < len(stock):
        text += f"\n      … {plural(len(stock) - len(shown), 'more lot')} {state}"
    return text


def _covered(row: dict[str, Any]) -> str:
    """`5 of X in lot PO-1/1 at MAIN (2 allocated)`: one lot a quarantine covers."""
    what = f"{row.get('on_hand')} of {row['mfr_lot']}" if row.get("mfr_lot") else row.get("on_hand")
    text = f"{what} in lot {row.get('lot_id')} at {row.get('office')}"
    allocated = row.get("allocated")
    return f"{text} ({allocated} allocated)" if _some(allocated) else text


def _some(amount: object) -> bool:
    """Whether a wire amount (`"2"`, 2; not `"0.000"` nor left out) is more than nothing."""
    try:
        return Decimal(str(amount)) != 0
    except ArithmeticError:  # None, or not a number: nothing to show
        return False


def _details(answer: dict[str, Any]) -> list[str]:
    """What a status says beyond its headline: every problem when it has several (the
    headline names the first), a refused cancel's problem, and the lines a refusal or a
    cancel left posted, allocated or released (a line that shipped, as of a partly shipped
    shipment, says so), each bounded to MAX_LISTED."""
    problems = [p for p in answer.get("problems") or [] if isinstance(p, dict)]
    refused = answer.get("refused")
    if isinstance(refused, dict):
        problems = [refused]
    elif len(problems) < 2:
        problems = []
    label = "refused" if isinstance(refused, dict) else "problem"
    details = [f"{label}: {_problem(p)}" for p in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        details.append(f"… {plural(len(problems) - MAX_LISTED, 'more problem')}")
    omitted = bool(answer.get("movements_omitted"))
    for field_name, state in (
        ("lines", "not shipped"),  # a refusal's only (a partly shipped shipment's): `describe`
        ("allocated_lines", "still allocated"),
        ("posted_lines", "posted"),
        ("released_lines", "released"),
    ):
        if field_name == "lines" and not answer.get("reason_code"):
            continue
        lines = [line for line in answer.get(field_name) or [] if isinstance(line, dict)]
        details += [f"{_state(line, state)}: {_held(line, omitted)}" for line in lines[:MAX_LISTED]]
        rest = Counter(_state(line, state) for line in lines[MAX_LISTED:])
        details += [f"… {plural(n, 'more line')} {each}" for each, n in sorted(rest.items())]
    return details


def _state(line: dict[str, Any], state: str) -> str:
    """A line's state as a refusal left it: a shipped line (`shipped`: its units left with the
    shipment) holds nothing, whatever list it is in; any other is in `state`."""
    return "shipped" if line.get("shipped") is True else state


def _problem(problem: dict[str, Any]) -> str:
    """`line 1 BOLT INSUFFICIENT_STOCK: requested 60, available 52 (offending: "60")`."""
    where = ""
    if problem.get("line_no") is not None:
        where = f"line {problem['line_no']} {problem.get('lic') or ''}".rstrip() + " "
    return f"{where}{problem.get('reason_code')}: {problem.get('reason')}" + _offending(
        problem.get("offending")
    )


def _offending(value: object) -> str:
    """` (offending: "yes")`: the value as the services' refusals carry it (already escaped
    and clipped by `invalid`), clipped further for one line of output."""
    if value is None:
        return ""
    text = str(value)
    return f' (offending: "{text if len(text) <= 80 else text[:80] + "…"}")'


def _held(line: dict[str, Any], omitted: bool) -> str:
    """`line 2 PX quantity 1: serial PX-0002 from lot PO-1/1`: a line and what it holds."""
    text = f"line {line.get('line_no')} {line.get('lic')} quantity {line.get('quantity')}"
    if line.get("movements"):
        return f"{text}: {_taken(line)}"
    if omitted:
        return f"{text} (units not listed: too many for one message; see the ledger)"
    return f"{text} (lot {line['lot_id']})" if line.get("lot_id") else text


def plural(count: int, noun: str) -> str:
    """`1 document`, `2 documents`: a count as people write it."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


# Answers whose movements bring stock into their lots (a receipt's, a customer return's); an
# adjustment's go in or out by their sign; every other answer's take stock out of them.
_STOCK_IN = frozenset({"ReceiptPosted", "StockReceived", "StockReturned"})


def _taken(line: dict[str, Any], into: bool = False) -> str:
    """`40 of LB-7 (expires 2026-12-12) from lot PO-1/1, serial SN-1 of LB-7 …`: what a line
    (or an adjustment) moved, `into` its lot or out of it (an adjustment's by the sign of each
    movement); a serial names its manufacturer lot when it has one, and a movement of no lot is
    unallocated stock (R12)."""
    parts = []
    adjusted = line.get("type") == "InventoryAdjusted"
    for move in line.get("movements") or []:
        if move.get("serial"):
            what = f"serial {move['serial']}"
            if move.get("mfr_lot"):
                what += f" of {move['mfr_lot']}"
            if str(move.get("quantity")).startswith("-"):  # out, as a loss's "-5 of L100"
                what = f"{move['quantity']} {what}"
        elif move.get("mfr_lot"):
            what = f"{move.get('quantity')} of {move['mfr_lot']}"
        else:
            what = f"{move.get('quantity')}"
        if move.get("mfr_lot") and move.get("expires_on"):
            what += f" (expires {move['expires_on']})"
        going_in = not str(move.get("quantity")).startswith("-") if adjusted else into
        if move.get("lot_id"):
            what += f" {'into' if going_in else 'from'} lot {move['lot_id']}"
        else:
            what += " in no lot (unallocated stock, R12)"
        parts.append(what)
    if not parts:
        return f"{line.get('quantity')} (lot {line.get('lot_id')})"
    if len(parts) > 6:
        parts = [*parts[:5], f"… {len(parts) - 5} more"]
    return ", ".join(parts)


def decode_source(source: str, data: bytes) -> str:
    """A file's (or standard input's) bytes as text: UTF-8, the contract's encoding.

    A leading UTF-8 byte order mark is dropped (it belongs to no document) and line ends are
    kept as they are, so each document is sent byte for byte as the file holds it. DocumentError
    naming the line of the first byte that is not UTF-8."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise DocumentError(f"{source}:1", "the text is UTF-32: save it as UTF-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DocumentError(f"{source}:1", "the text is UTF-16: save it as UTF-8")
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DocumentError(
            f"{source}:{line}", f"not UTF-8 (byte 0x{data[exc.start]:02x}): save it as UTF-8"
        ) from None


def split_documents(text: str, source: str) -> Iterator[tuple[str, str]]:
    """(`source:line`, the document's own text) for each JSON value in `text`: values one after
    another (JSON Lines, pretty-printed objects), or one array of them. The text of each is kept
    as written, so numbers reach the services with every digit."""
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 0)
    in_array = text.startswith("[", pos)
    if in_array:
        pos = _skip_space(text, pos + 1)
    while pos < len(text):
        if in_array and text[pos] == "]":
            if _skip_space(text, pos + 1) < len(text):
                raise DocumentError(_where(source, text, pos), "text after the array's end")
            return
        where = _where(source, text, pos)
        try:
            _, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DocumentError(_where(source, text, exc.pos), f"not JSON: {exc.msg}") from None
        yield where, text[pos:end]
        pos = _skip_space(text, end)
        if in_array and pos < len(text):
            if text.startswith(",", pos):
                pos = _skip_space(text, pos + 1)
            elif not text.startswith("]", pos):
                raise DocumentError(_where(source, text, pos), "expected ',' or ']' in the array")
    if in_array:
        raise DocumentError(_where(source, text, pos), "the array is not closed")


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _where(source: str, text: str, pos: int) -> str:
    return f"{source}:{text.count(chr(10), 0, pos) + 1}"


def check(where: str, raw: str) -> Document:
    """The document as the contract's topic for its `type` would read it, or DocumentError."""
    try:
        head = json.loads(raw)
    except ValueError as exc:
        raise DocumentError(where, f"not JSON: {exc}") from None
    if not isinstance(head, dict):
        raise DocumentError(where, "a document must be a JSON object")
    kind = head.get("type")
    if not isinstance(kind, str) or kind not in UPSTREAM_ROUTES:
        known = ", ".join(sorted(UPSTREAM_ROUTES))
        raise DocumentError(where, f"type {kind!r} is not an upstream document; one of {known}")
    topic, key_field = UPSTREAM_ROUTES[kind]
    value = raw.encode()
    try:
        message = decode(_ADAPTERS[topic], value)
    except InvalidMessage as exc:
        raise DocumentError(where, _invalid_reason(exc)) from None
    return Document(
        where=where,
        type=kind,
        message_id=message.message_id,
        topic=topic,
        key=str(getattr(message, key_field)),
        value=value,
        unknown=tuple(unknown_fields(head, TOPIC_MESSAGES[topic])),
    )


def _invalid_reason(exc: InvalidMessage) -> str:
    """Why a document fails its schema, as the services' refusals say it: each field's path
    and problem with the offending value (`invalid.problems`), a few of them at most."""
    if exc.document is None or exc.error is None:
        return exc.reason  # not a message at all (duplicate keys, NaN …): the codec's words
    found = invalid.problems(exc.document, exc.error.errors(include_url=False))
    reasons = [p.reason + _offending(p.offending) for p in found[:5]]
    more = f"; and {plural(len(found) - 5, 'more problem')}" if len(found) > 5 else ""
    return "; ".join(reasons) + more


def read_documents(sources: Iterable[tuple[str, str]]) -> list[Document]:
    """Every document of every (name, text) source, checked; BadDocuments naming every bad
    one (a source is not read past text that is not JSON), DocumentError when there are none."""
    documents: list[Document] = []
    bad: list[DocumentError] = []
    for name, text in sources:
        try:
            for where, raw in split_documents(text, name):
                try:
                    documents.append(check(where, raw))
                except DocumentError as exc:
                    bad.append(exc)
        except DocumentError as exc:
            bad.append(exc)
    if bad:
        raise BadDocuments(bad, documents)
    if not documents:
        raise DocumentError("input", "no documents")
    return documents


def unknown_field_warnings(documents: Sequence[Document]) -> list[str]:
    """`file:line: fields not in the contract, … : a, lines[0].b` for each document with fields
    the contract does not know (MAX_NAMED documents at most, then a count): the services ignore
    them, so a misspelled optional field silently loses its meaning."""
    flagged = [doc for doc in documents if doc.unknown]
    lines = []
    for doc in flagged[:MAX_NAMED]:
        names = ", ".join(doc.unknown[:MAX_LISTED])
        if len(doc.unknown) > MAX_LISTED:
            names += f" and {len(doc.unknown) - MAX_LISTED} more"
        word = "fields" if len(doc.unknown) > 1 else "field"
        lines.append(f"{doc.where}: {word} not in the contract, ignored (misspelled?): {names}")
    if len(flagged) > MAX_NAMED:
        more = plural(len(flagged) - MAX_NAMED, "more document")
        lines.append(f"… and {more} with fields not in the contract")
    return lines


# --- fields the contract does not know -------------------------------------------------------
# Unknown fields are ignored by design (DESIGN §4: fields are added freely, and an older service
# must read a newer sender's documents), so they are only named, by walking the contract's
# models as pydantic reads a document: fields by their aliases, nested models, lists of them,
# unions discriminated by a field (`type`).


def unknown_fields(document: object, annotation: Any) -> list[str]:
    """The path of each key of `document` that the contract's `annotation` does not read, as
    the services' refusals write paths (`lines[0].minShelfLifeDays`); keys inside an unknown
    key are not listed again."""
    found: list[str] = []
    _walk_unknown(document, annotation, "", "type", found)
    return found


def _walk_unknown(
    value: object, annotation: Any, path: str, discriminator: str, found: list[str]
) -> None:
    if get_origin(annotation) is Annotated:  # `Field(discriminator=…)` of a nested union
        for meta in get_args(annotation)[1:]:
            named = getattr(meta, "discriminator", None)
            discriminator = named if isinstance(named, str) else discriminator
    options = _options(annotation)
    if isinstance(value, dict):
        models = [a for a in options if isinstance(a, type) and issubclass(a, BaseModel)]
        chosen = _discriminated(models, value, discriminator)
        if chosen is not None:
            _walk_model(value, chosen, path, found)
            return
        mappings = [a for a in options if _origin_is(a, Mapping)]
        if mappings and (item := _item_annotation(mappings[0], 1)) is not None:
            for key, item_value in value.items():
                _walk_unknown(item_value, item, _join(path, key), "type", found)
    elif isinstance(value, list):
        sequences = [a for a in options if _origin_is(a, Sequence)]
        item = _item_annotation(sequences[0], 0) if sequences else None
        if item is not None and _holds_models(item):  # not a million serials for nothing
            for index, item_value in enumerate(value):
                _walk_unknown(item_value, item, f"{path}[{index}]", discriminator, found)


def _walk_model(value: dict[str, Any], model: type[BaseModel], path: str, found: list[str]) -> None:
    if model.model_config.get("extra") == "allow":
        return  # every key is the model's
    fields = _model_keys(model)
    for key, item_value in value.items():
        info = fields.get(key)
        if info is None:
            found.append(_join(path, key))
        else:
            where = info.discriminator if isinstance(info.discriminator, str) else "type"
            _walk_unknown(item_value, info.annotation, _join(path, key), where, found)


@cache
def _model_keys(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The keys a model reads, each with its field: its aliases, and its name unless an alias
    replaces it (pydantic reads a field by name too only when the model says so)."""
    by_name = bool(
        model.model_config.get("populate_by_name") or model.model_config.get("validate_by_name")
    )
    keys: dict[str, FieldInfo] = {}
    for name, info in model.model_fields.items():
        aliases = _aliases(info)
        for alias in aliases:
            keys[alias] = info
        if by_name or not aliases:
            keys[name] = info
    return keys


def _aliases(info: FieldInfo) -> list[str]:
    alias = info.validation_alias if info.validation_alias is not None else info.alias
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
    keys = []
    for choice in choices:
        # An alias path's first step names the document's key.
        key = choice.path[0] if isinstance(choice, AliasPath) else choice
        if isinstance(key, str):
            keys.append(key)
    return keys


def _options(annotation: Any) -> list[Any]:
    """The types a value of `annotation` may be: Annotated and unions (Optional too) unwrapped."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _options(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [option for arg in get_args(annotation) for option in _options(arg)]
    return [annotation]


def _discriminated(
    models: list[type[BaseModel]], value: dict[str, Any], discriminator: str
) -> type[BaseModel] | None:
    """The one model a JSON object is read as: the only one, or the one whose discriminator
    field's literal is the object's; None when that cannot tell (nothing is then named)."""
    if len(models) == 1:
        return models[0]
    tag = value.get(discriminator)
    matching = [
        model
        for model in models
        if (info := model.model_fields.get(discriminator)) is not None
        and get_origin(info.annotation) is Literal
        and tag in get_args(info.annotation)
    ]
    return matching[0] if len(matching) == 1 else None


def _origin_is(annotation: Any, kind: type) -> bool:
    origin = get_origin(annotation)
    return isinstance(origin, type) and issubclass(origin, kind) and not issubclass(origin, str)


def _item_annotation(annotation: Any, position: int) -> Any:
    """A container's item type (`list[X]`, `tuple[X, ...]`: position 0; `dict[K, X]`: 1)."""
    args = get_args(annotation)
    return args[position] if len(args) > position else None


def _holds_models(annotation: Any) -> bool:
    """Whether a value of `annotation` may hold a model, at any depth of containers."""
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return True
        if any(_holds_models(arg) for arg in get_args(option) if arg is not Ellipsis):
            return True
    return False


def _join(path: str, key: object) -> str:
    """`lines[0]` + `min_shelf_life` → `lines[0].min_shelf_life`; a key shown as typed, escaped
    and clipped (it may be anything)."""
    name = invalid.safe_text(str(key))
    name = name if len(name) <= 80 else name[:80] + "…"
    return f"{path}.{name}" if path else name


async def send(
    settings: Settings,
    documents: Sequence[Document],
    *,
    wait: float = 30.0,
    out: TextIO | None = None,
    as_json: bool = False,
    one_at_a_time: bool = False,
    notes: TextIO | None = None,
) -> list[Outcome]:
    """Publish `documents` in order; with `wait` > 0, collect their answers for that long at
    most, printing each outcome to `out` as it arrives (`as_json`: the answer's JSON).
    `one_at_a_time` (with `wait` > 0): each document once the one before it is answered,
    waiting `wait` seconds at most for each; the ones after an unanswered one are not sent.
    `notes`: where to say, once per wait, why answers may be slow to come (`held_note`)."""
    reader = _Answers(settings, documents, notes=notes) if wait > 0 else None
    try:
        producer = make_producer(settings)
        try:
            try:
                if reader is not None:
                    await reader.start()  # from the topics' ends as of now: what is sent next
                await producer.start()
            except KafkaConnectionError as exc:
                raise BrokerError(
                    f"the broker at {settings.require_bootstrap()} does not answer: {exc}"
                    " (nothing was sent)"
                ) from None
            if one_at_a_time and reader is not None:
                return await reader.in_turn(producer, wait, out, as_json)
            await _publish(producer, settings, documents)
        finally:
            await producer.stop()
        if reader is None:
            outcomes = [Outcome(doc) for doc in documents]
            for outcome in outcomes:
                _print(out, outcome, as_json, sent_only=True)
            return outcomes
        return await reader.collect(wait, out, as_json)
    finally:
        if reader is not None:
            await reader.stop()


async def _publish(
    producer: AIOKafkaProducer, settings: Settings, documents: Sequence[Document], before: int = 0
) -> None:
    """Send `documents` in order and wait until the broker has acknowledged every one;
    BrokerError naming the first one it did not take (`before`: how many were sent earlier)."""
    topics = settings.topics
    sent: list[asyncio.Future[Any]] = []
    for doc in documents:
        try:
            sent.append(
                await producer.send(topics.name(doc.topic), doc.value, key=doc.key.encode())
            )
        except KafkaError as exc:
            raise BrokerError(
                f"{doc.where}: not sent: {exc} ({_maybe_sent(before + len(sent))})"
            ) from None
    results = await asyncio.gather(*sent, return_exceptions=True)
    for number, (doc, result) in enumerate(zip(documents, results, strict=True)):
        if isinstance(result, KafkaError):
            raise BrokerError(
                f"{doc.where}: the broker did not take it: {result}"
                f" ({_maybe_sent(before + number)})"
            )
        if isinstance(result, BaseException):
            raise result


def _maybe_sent(before: int) -> str:
    """What may have been sent when the document after the first `before` was not."""
    if before == 0:
        return "nothing was sent"
    if before == 1:
        return "the document before it may have been sent"
    return f"the {before} documents before it may have been sent"


def _print(out: TextIO | None, outcome: Outcome, as_json: bool, sent_only: bool = False) -> None:
    if out is None:
        return
    if as_json:
        record: dict[str, Any] = {
            "where": outcome.document.where,
            "type": outcome.document.type,
            "key": outcome.document.key,
        }
        if not outcome.sent:
            record["sent"] = False
        elif not sent_only:
            record["answer"] = outcome.answer
            if outcome.dead_letter is not None:
                record["dead_letter"] = outcome.dead_letter
        print(json.dumps(record), file=out, flush=True)
    elif sent_only:
        doc = outcome.document
        print(f"{doc.where}  {doc.type} {doc.key}  → sent", file=out, flush=True)
    else:
        print(outcome.summary(), file=out, flush=True)


@dataclass
class _Answers:
    """Reads inventory.status, inventory.events and inventory.dlq from their ends (as of
    `start`, before anything is sent) and matches what arrives to the documents sent."""

    settings: Settings
    documents: Sequence[Document]
    notes: TextIO | None = None
    clock: Callable[[], float] = time.monotonic
    outcomes: list[Outcome] = field(default_factory=list)
    _consumer: AIOKafkaConsumer | None = None

    def __post_init__(self) -> None:
        self.outcomes = [Outcome(doc) for doc in self.documents]
        self._by_command = {
            o.document.command_id: o for o in self.outcomes if o.document.command_id is not None
        }
        self._by_value: dict[bytes, list[Outcome]] = {}
        for outcome in self.outcomes:
            self._by_value.setdefault(outcome.document.value, []).append(outcome)

    async def start(self) -> None:
        consumer = answer_consumer(self.settings)
        self._consumer = consumer  # `stop` closes it even if it does not start
        await consumer.start()
        await consumer.seek_to_end(*await assign_answer_topics(consumer, self.settings))
        # The embedded broker's end offset can trail the true end by a batch: read on to the
        # true end (until a poll comes back empty) so no earlier answer is taken for a new
        # one; on a busy stack a poll is never empty, so for DRAIN_SECONDS at most.
        deadline = self.clock() + DRAIN_SECONDS
        while await consumer.getmany(timeout_ms=250) and self.clock() < deadline:
            pass

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    def _pending(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.sent and o.document.answered and _open(o)]

    async def collect(self, wait: float, out: TextIO | None, as_json: bool) -> list[Outcome]:
        for outcome in self.outcomes:
            if not outcome.document.answered:
                _print(out, outcome, as_json)
        await self._read(self.clock() + wait, out, as_json, lambda: bool(self._pending()))
        for outcome in self._pending():
            _print(out, outcome, as_json)
        return self.outcomes

    async def in_turn(
        self, producer: AIOKafkaProducer, wait: float, out: TextIO | None, as_json: bool
    ) -> list[Outcome]:
        """Send each document once the one before it is answered (`wait` seconds at most
        each); after one that is not, the rest are not sent."""
        for outcome in self.outcomes:
            outcome.sent = False
        for number, outcome in enumerate(self.outcomes):
            await _publish(producer, self.settings, [outcome.document], before=number)
            outcome.sent = True
            if outcome.document.answered:
                await self._read(self.clock() + wait, out, as_json, partial(_open, outcome))
            if not outcome.document.answered or _open(outcome):
                _print(out, outcome, as_json)  # sent, no answer in the contract; or none yet
            if outcome.document.answered and _open(outcome):
                for rest in self.outcomes[number + 1 :]:
                    _print(out, rest, as_json)
                break
        return self.outcomes

    async def _read(
        self, deadline: float, out: TextIO | None, as_json: bool, waiting: Callable[[], bool]
    ) -> None:
        """Match what arrives to the documents, printing each answered, while `waiting()`
        and until `deadline`; after HELD_NOTE_SECONDS with no answer, one `held_note`."""
        assert self._consumer is not None
        quiet_since = self.clock()
        noted = False
        while waiting() and self.clock() < deadline:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    for outcome in self._match(record):
                        quiet_since = self.clock()
                        _print(out, outcome, as_json)
            if not noted and waiting() and self.clock() - quiet_since >= HELD_NOTE_SECONDS:
                noted = True
                note = self.held_note()
                if note is not None and self.notes is not None:
                    print(note, file=self.notes, flush=True)

    def held_note(self) -> str | None:
        """Why documents still waiting may be silent: a service holds one naming an item it
        does not know yet, publishing nothing, for LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS; it is a
        resend of a message_id processed before, which is never answered again; or it is just
        large (a receipt of 100,000 serials takes seconds). They look alike from here, so the
        note names all three."""
        seconds = self.settings.unknown_item_wait_seconds
        held = [o for o in self._pending() if o.document.type in MAY_BE_HELD]
        if not held or seconds <= 0:
            return None
        return (
            f"lotline send: no answer yet for {plural(len(held), 'document')}, still waiting:"
            " one of thousands of serials or lines takes seconds; one naming an item lotline"
            f" does not know yet is held up to {seconds:g} s (LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS),"
            " then refused UNKNOWN_ITEM; a resent message_id (processed before) is never"
            " answered again; and a service stalled or behind answers late: its"
            " lotline_consumer_lag_records and lotline_consumer_stalled_seconds say so"
        )

    def _match(self, record: ConsumerRecord[bytes, bytes]) -> list[Outcome]:
        topics = self.settings.topics
        if record.topic == topics.dlq:
            error = dict(record.headers).get("error", b"").decode(errors="replace")
            for outcome in self._by_value.get(record.value or b"", []):
                if outcome.sent and _open(outcome):
                    outcome.dead_letter = error or "(no error header)"
                    return [outcome]
            return []
        try:
            answer = json.loads(record.value or b"")
        except ValueError:
            return []
        if not isinstance(answer, dict):
            return []
        if record.topic == topics.events:
            decided = self._by_command.get(str(answer.get("command_id")))
            if (
                decided is not None
                and decided.sent
                and decided.answer is None
                and answer.get("type") in ANSWERED_ON_EVENTS
            ):
                decided.answer = answer
                return [decided]
            return []
        named = answer.get("answers")
        if isinstance(named, list) and named:
            # The status names the documents it answers (one may answer several: a request
            # and its picks update allocated together, a request a cancel overrode).
            ids = {str(i) for i in named}
            matched = [
                o
                for o in self._pending()
                if o.document.answered_on_status
                and o.document.key == answer.get("shipment_id")
                and o.document.message_id in ids
            ]
            for outcome in matched:
                outcome.answer = answer
            return matched
        for outcome in self.outcomes:  # status: the first document of that id waiting for it
            doc = outcome.document
            if (
                outcome.sent
                and _open(outcome)
                and doc.key == answer.get("shipment_id")
                and answer.get("type") in STATUS_ANSWERS.get(doc.type, ())
            ):
                outcome.answer = answer
                return [outcome]
        return []


def _open(outcome: Outcome) -> bool:
    """Neither answered nor dead-lettered (yet)."""
    return outcome.answer is None and outcome.dead_letter is None


def answer_consumer(settings: Settings) -> AIOKafkaConsumer:
    """A consumer of the topics lotline answers on (not started, no group: nothing is
    committed), polling often enough for a person waiting at a terminal."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.require_bootstrap(),
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        **kafka_client_options(settings),
    )


async def assign_answer_topics(
    consumer: AIOKafkaConsumer, settings: Settings
) -> list[TopicPartition]:
    """Assign every partition of inventory.status, inventory.events and inventory.dlq to the
    started `consumer`; returns them."""
    topics = settings.topics
    partitions = [
        TopicPartition(topic, p)
        for topic in (topics.status, topics.events, topics.dlq)
        for p in await topic_partitions(consumer, topic)
    ]
    consumer.assign(partitions)
    return partitions


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    """A topic's partitions, once the consumer's metadata knows it."""
    for _ in range(50):
        if topic in await consumer.topics():
            found = consumer.partitions_for_topic(topic)
            if found:
                return sorted(found)
        await asyncio.sleep(0.1)
    raise DocumentError(topic, "topic not found on the broker (is lotline up?)")
