"""What the operations dashboard records: document answers, refusals and dead letters.

Pure: plain values in, rows out. Everything shown comes from messages that anyone able to
write to a topic controls (identifiers, reasons, dead-letter bytes and headers), so every text
is made safe to store and show here: clipped, control and invisible characters escaped (no
NUL reaches PostgreSQL, no bidi override reorders a dashboard line). HTML escaping is the
page's job.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

TEXT_CHARS = 500
"""The longest text kept of one value (reasons, offending values, identifiers, headers)."""
PREVIEW_BYTES = 256
"""How much of a dead letter's payload is previewed: never the whole of it (it may be MBs)."""
MAX_PROBLEMS = 20
"""Problems kept per refused document (the first ones: a document may list thousands)."""
MAX_HEADERS = 40
MAX_WARNINGS = 100
"""Warnings kept per document: as many as an `InventoryAdjusted` lists at most; past them the
last kept says how many more there were, as that message's does."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentWarning:
    """A warning an answer carried (`ReceiptPosted.warnings`, `InventoryAdjusted.warnings`): the
    document posted all the same, but its clerk has something to decide."""

    code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentStatus:
    """A document's answer: `status` is the answer's message type. An adjustment's is its
    posting (`InventoryAdjusted`: its refusals are refusals), with the item, the kind and the
    signed quantity it adjusted, which a receipt or shipment (of several lines) leaves None."""

    kind: str  # "receipt" | "shipment" | "adjustment"
    document: str
    status: str
    reason_code: str | None
    message_id: str
    occurred_at: datetime
    lic: str | None = None
    adjustment_kind: str | None = None
    quantity: Decimal | None = None
    warnings: tuple[DocumentWarning, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    reason_code: str
    reason: str
    offending: str | None = None
    line_no: int | None = None
    lic: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """One problem of one refusal (`problem_no` numbers them within the refusing message).
    `document_kind`: the kind of document (`DocumentStatus.kind`) `document` names, None for
    an item's or a quarantine's refusal, or an adjustment's naming no adjustment id."""

    message_id: str
    problem_no: int
    type: str
    document: str | None
    document_kind: str | None
    lic: str | None
    line_no: int | None
    reason_code: str
    reason: str
    offending: str | None
    occurred_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """A record of the dead-letter topic as the dashboard shows it. `message_id` is its inbox
    key: the dead-lettered source record (consumer, topic, partition, offset) when the headers
    name it, so the same record dead-lettered twice (a relay resending) is shown once."""

    message_id: str
    dlq_partition: int
    dlq_offset: int
    dead_at: datetime
    error: str | None
    source_topic: str | None
    source_partition: str | None
    source_offset: str | None
    consumer: str | None
    answered: str | None
    headers: dict[str, str]
    record_key: str | None
    payload_bytes: int
    preview: str


def safe_text(text: str | None, limit: int = TEXT_CHARS) -> str | None:
    """`text` clipped to `limit` characters (an ellipsis marks the cut), with control,
    format (zero-width, bidi) and unpaired surrogate characters written as escapes."""
    if text is None:
        return None
    clipped = text[:limit]
    out = "".join(_escape(c) for c in clipped)
    return out + "…" if len(text) > limit else out


def _escape(char: str) -> str:
    if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def kept_warnings(
    pairs: Sequence[tuple[str, str]], limit: int = MAX_WARNINGS
) -> tuple[DocumentWarning, ...]:
    """An answer's warnings (code, message) as kept: every text made safe, the first `limit`,
    the last of them saying how many more were not kept (as an adjustment's message caps its
    own: it never has more)."""
    kept = [
        DocumentWarning(code=safe_text(c, 100) or "", message=safe_text(m) or "") for c, m in pairs
    ]
    kept = kept[: max(1, limit)]
    more = len(pairs) - len(kept)
    if more > 0:
        note = f" ({more} more warning{'s' if more > 1 else ''} not kept)"
        kept[-1] = DocumentWarning(code=kept[-1].code, message=kept[-1].message + note)
    return tuple(kept)


def preview(payload: bytes, limit: int = PREVIEW_BYTES) -> str:
    """The first `limit` bytes as text: UTF-8 where it is, `\\xNN` for bytes that are not,
    control and invisible characters escaped; `…` when there is more."""
    head = payload[:limit].decode("utf-8", "backslashreplace")
    text = "".join(_escape(c) for c in head)
    return text + "…" if len(payload) > limit else text


# A receipt is received whole once: every version sent after it posted is refused (its lots
# exist, a return was received before), and the document stays posted.
FINAL = "ReceiptPosted"
AFTER_FINAL = "ReceiptRejected"

ADJUSTED = "InventoryAdjusted"
"""An adjustment's answer when it posted (`DocumentStatus.status` of kind `adjustment`)."""

POSTINGS: dict[str, str] = {"receipt": FINAL, "shipment": "ShipmentShipped", "adjustment": ADJUSTED}
"""The answer that posts each kind of document. A refusal of a document that such an answer
posted after it (a corrected resend of the adjustment, a receipt version, the shipment shipped
at last) was superseded: it is history, not an open problem. Other answers supersede nothing:
a shipment allocated may still be refused shipping, and the ledger keeps a document's latest
answer only, which a later refusal would then hide."""


def latest_per_document(statuses: Iterable[DocumentStatus]) -> list[DocumentStatus]:
    """The last answer of each document in batch order (one upsert may touch a row once);
    an answer older than the one before it (occurred_at) does not replace it, nor does a
    refused version replace a posted receipt (`FINAL`)."""
    latest: dict[tuple[str, str], DocumentStatus] = {}
    for status in statuses:
        key = (status.kind, status.document)
        kept = latest.get(key)
        if kept is None or (
            status.occurred_at >= kept.occurred_at
            and not (kept.status == FINAL and status.status == AFTER_FINAL)
        ):
            latest[key] = status
    return list(latest.values())


def document_kind(message_type: str) -> str:
    return "receipt" if message_type.startswith("Receipt") else "shipment"


def refusals(
    *,
    message_id: str,
    type: str,
    document: str | None,
    document_kind: str | None,
    lic: str | None,
    occurred_at: datetime,
    problems: Sequence[Problem],
) -> list[Refusal]:
    """One row per problem, the first MAX_PROBLEMS of them, every text made safe."""
    return [
        Refusal(
            message_id=message_id,
            problem_no=n,
            type=type,
            document=safe_text(document),
            document_kind=document_kind,
            lic=safe_text(p.lic or lic),
            line_no=p.line_no,
            reason_code=safe_text(p.reason_code) or "",
            reason=safe_text(p.reason) or "",
            offending=safe_text(p.offending),
            occurred_at=occurred_at,
        )
        for n, p in enumerate(problems[:MAX_PROBLEMS])
    ]


def dead_letter(
    *,
    partition: int,
    offset: int,
    timestamp: datetime,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]],
) -> DeadLetter:
    """A dead-letter record read safely: headers decoded leniently and clipped, the payload
    only measured and previewed."""
    named: dict[str, str] = {}
    for name, raw in headers[:MAX_HEADERS]:
        text = (raw or b"").decode("utf-8", "replace")
        named.setdefault(safe_text(name, 100) or "", safe_text(text) or "")
    source = [named.get(h) for h in ("consumer", "source_topic", "source_partition")]
    origin = named.get("source_offset")
    outbox = named.get("outbox_id")
    if origin is not None and all(source):
        # The source record's timestamp too: the embedded broker keeps topics in memory, so
        # after a restart another record comes at the same offset (older notices lack it).
        stamp = named.get("source_timestamp")
        parts = ["source", *(s or "" for s in source), origin]
        identity = "|".join(parts if stamp is None else [*parts, stamp])
    elif outbox is not None:
        identity = f"outbox|{named.get('outbox_schema', '')}|{outbox}"
    else:  # a record some other tool wrote: its own place in the topic
        identity = f"dlq|{partition}|{offset}"
    return DeadLetter(
        message_id="dlq:" + hashlib.blake2b(identity.encode(), digest_size=16).hexdigest(),
        dlq_partition=partition,
        dlq_offset=offset,
        dead_at=timestamp,
        error=named.get("error"),
        source_topic=named.get("source_topic"),
        source_partition=named.get("source_partition"),
        source_offset=origin,
        consumer=named.get("consumer"),
        answered=named.get("answered"),
        headers=named,
        record_key=None if key is None else preview(key, 120),
        payload_bytes=len(value or b""),
        preview=preview(value or b""),
    )
