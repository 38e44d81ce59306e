"""Shipping's domain model: the shipment, its lines, the messages it answers and what it sends.

Frozen, keyword-only dataclasses, pure standard library: the lifecycle in `domain.py` decides
over these, the repository stores them, `translate.py` maps them to and from the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

from shared.movements import Moved
from shared.reasons import ReasonCode

Phase = Literal[
    "allocating", "allocated", "allocation_failed", "shipping", "shipped", "cancelling", "cancelled"
]
LineStatus = Literal["pending", "allocated", "failed", "shipped", "released"]
# "refuse": an AllocateLine carrying the problem shipping found with the line (answered with
# it; nothing is ever held for it).
Action = Literal["allocate", "refuse", "release", "ship"]
Kind = Literal["sale", "vendor_return"]

OPEN_PHASES: frozenset[Phase] = frozenset({"allocating", "allocated", "allocation_failed"})
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Sane upper sizes (R5, DESIGN §6): a span, one line's serials, and a whole request's
    (typed and scanned), as for a receipt: a span is a few bytes on the wire, so without a
    budget per document a short request of many lines expands into billions of serials."""

    max_span: int = 1_000_000
    max_serials_per_line: int = 100_000
    max_serials_per_document: int = 1_000_000
    # Documents a shipment holds waiting (for its cancel or ship, or for an item), those that
    # asked for the phase under way included. The queue is one jsonb value, rewritten whole
    # as each joins: without a cap a flood of them grows it quadratically until PostgreSQL's
    # 255 MB jsonb limit fails every document of the shipment (dead-lettered, unanswered).
    max_waiting_documents: int = 1_000
    # Characters of picks the waiting documents may name in all, counted at each entry's
    # longest (a serial 64, a lot 128, a scan 512, a typed entry 256): two documents' worth
    # of the longest serials, about half the jsonb limit. The first to wait always fits.
    max_waiting_characters: int = 128_000_000


# --- state ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """Shipping's read model of an LIC's tracking flags (from allocation's `ItemUpserted`)."""

    lic: str
    track_mfr_lot: bool = False
    serialized: bool = False
    perishable: bool = False
    gtin: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LotPick:
    mfr_lot: str
    quantity: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Picks:
    """What a line names to ship; nothing named means automatic allocation (R9).
    `serial_lots`: each serial scanned with its manufacturer lot, as (serial, mfr lot), for
    allocation to check that unit is in that lot (R5, R15)."""

    lots: tuple[LotPick, ...] = ()
    serials: tuple[str, ...] = ()
    serial_lots: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    line_no: int | None
    lic: str | None
    reason_code: ReasonCode
    reason: str
    offending: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    """One shipment line.

    `status` is the answer to the newest command sent for it; `awaiting` that command's id
    while unanswered; `held_lics` every LIC under which allocation holds stock for it, sorted
    (more than one while a resend that changed the line's LIC has its old LIC's release in
    flight; empty: nothing held); `picks`, `movements` and `complete` those of the allocation
    under the line's own LIC (or what the shipment took). A line whose newest picks were
    refused while that allocation stands stays `allocated`, with the refusal in `problem`.
    `min_shelf_life_days`: the customer's minimum remaining shelf life for the line (R9; 0 on
    a vendor return), which every AllocateLine of the line carries, a picks update's too.
    """

    line_no: int
    lic: str
    quantity: Decimal
    picks: Picks = Picks()
    status: LineStatus = "pending"
    awaiting: str | None = None
    held_lics: tuple[str, ...] = ()
    complete: bool = False
    movements: tuple[Moved, ...] = ()
    problem: Problem | None = None
    min_shelf_life_days: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Pending:
    """A command sent to allocation and not answered yet (`picks`: an allocation's, which the
    line takes once allocation holds them)."""

    command_id: str
    action: Action
    line_no: int
    lic: str
    picks: Picks | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadyLine:
    """A requested line with its picks read (R5, R14): what its AllocateLine carries, the
    picks, or the problem shipping found with them; its minimum shelf life (the line's, else
    the document's; 0 on a vendor return)."""

    line_no: int
    lic: str
    quantity: Decimal
    picks: Picks = Picks()
    refusal: Problem | None = None
    min_shelf_life_days: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    """A `ShipmentRequested` with its lines' picks read as it arrived: decided at once, or,
    when it came while the shipment was being cancelled or shipped, once that settles."""

    message_id: str
    shipment_id: str
    office: str
    kind: Kind
    ship_on: date
    counterparty: str | None = None
    reference: str | None = None
    lines: tuple[ReadyLine, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Shipment:
    shipment_id: str
    office: str
    kind: Kind
    ship_on: date
    counterparty: str | None = None
    reference: str | None = None
    phase: Phase = "allocating"
    lines: tuple[Line, ...] = ()
    pending: tuple[Pending, ...] = ()
    # Status ids owed to documents that came while the phase they ask for was under way (a
    # ship request while shipping, a cancel while cancelling): answered when it settles.
    waiting: tuple[str, ...] = ()
    # (status id, message id) for each of `waiting`: the document that status answers.
    waiting_documents: tuple[tuple[str, str], ...] = ()
    # The message ids of the upstream documents applied since the shipment's last status and
    # not answered yet (a request, the picks update or cancel that overrode it before it was
    # answered, ...): the status the phase under way settles on answers them all.
    unanswered: tuple[str, ...] = ()
    # The other documents that came while the shipment was being cancelled or shipped, in the
    # order read: decided once that settles, each as if read just after it (domain.py).
    queued: tuple[Queued, ...] = ()
    # The items the first of `queued` waits for: LICs of its lines with scans that shipping
    # does not know yet (empty: none waits for an item). Decided once they are all known, or
    # once its own wait is over (`overdue`).
    awaited: tuple[str, ...] = ()
    # The message ids of the documents of `queued` whose wait is over: each may wait for items
    # until LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS after it was read (the repository keeps each
    # one's deadline and tells, as it loads the shipment, which have passed: the domain reads
    # no clock). Such a document, decided, refuses `UNKNOWN_ITEM` the lines whose item is
    # still unknown; the others may still wait, each for its own. A reading of the clock, not
    # state: shipments are equal whatever it says.
    overdue: frozenset[str] = field(default=frozenset(), compare=False)

    def line(self, line_no: int) -> Line | None:
        return next((line for line in self.lines if line.line_no == line_no), None)


# --- upstream messages (already validated by the contract) --------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """Picks as people entered them: lots, serials typed (R5), raw scans."""

    lots: tuple[LotPick, ...] = ()
    serials: str | tuple[str, ...] | None = None
    scans: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestLine:
    line_no: int
    lic: str
    quantity: Decimal
    entry: Entry = Entry()
    min_shelf_life_days: int | None = None  # None: the document's


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    message_id: str
    shipment_id: str
    office: str
    kind: Kind
    ship_on: date
    lines: tuple[RequestLine, ...]
    counterparty: str | None = None
    reference: str | None = None
    min_shelf_life_days: int = 0  # the customer's, for lines that name none


@dataclass(frozen=True, slots=True, kw_only=True)
class PicksUpdate:
    message_id: str
    shipment_id: str
    line_no: int
    entry: Entry = Entry()


@dataclass(frozen=True, slots=True, kw_only=True)
class ShipRequest:
    message_id: str
    shipment_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel:
    message_id: str
    shipment_id: str


Upstream = Request | PicksUpdate | ShipRequest | Cancel
# A document waiting in `Shipment.queued`: a request with its picks read as it arrived (its
# own lines and terms), anything else as it came (new picks are read against the line they
# update once it is known: the shipment's, or a request's read before them). A request is kept
# unread (`Request`) when it waits for an item its scans must be checked against.
Queued = Ready | Request | PicksUpdate | ShipRequest | Cancel


# --- allocation's answers -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocated:
    command_id: str
    lic: str
    complete: bool
    movements: tuple[Moved, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Released:
    command_id: str
    lic: str
    reallocated: bool = False
    movements: tuple[Moved, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Shipped:
    command_id: str
    lic: str
    movements: tuple[Moved, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    command_id: str
    lic: str
    reason_code: ReasonCode
    reason: str
    offending: str | None = None


Answer = Allocated | Released | Shipped | Rejected


# --- what a decision sends --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocate:
    """Allocate a line with its picks; or, with `refusal`, have allocation record the problem
    shipping found with them (answered `Rejected` with it, the item locked: R2). `reference`:
    a vendor return's (its PO), whose lots alone a line without picks takes (R14); None on a
    sale."""

    command_id: str
    shipment_id: str
    line_no: int
    lic: str
    office: str
    kind: Kind
    counterparty: str | None
    ship_on: date
    quantity: Decimal
    picks: Picks
    refusal: Problem | None = None
    min_shelf_life_days: int = 0
    reference: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    command_id: str
    shipment_id: str
    line_no: int
    lic: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Ship:
    command_id: str
    shipment_id: str
    line_no: int
    lic: str


Command = Allocate | Release | Ship


@dataclass(frozen=True, slots=True, kw_only=True)
class LineView:
    line_no: int
    lic: str
    quantity: Decimal
    movements: tuple[Moved, ...] = ()
    complete: bool = True
    shipped: bool = False  # a refusal lists a shipped line with what stands: it holds nothing


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocatedStatus:
    message_id: str
    shipment_id: str
    lines: tuple[LineView, ...]
    answers: tuple[str, ...] = ()  # the message ids of the documents it answers


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationFailedStatus:
    message_id: str
    shipment_id: str
    problems: tuple[Problem, ...]
    allocated_lines: tuple[LineView, ...] = ()
    answers: tuple[str, ...] = ()  # the message ids of the documents it answers


@dataclass(frozen=True, slots=True, kw_only=True)
class ShippedStatus:
    message_id: str
    shipment_id: str
    lines: tuple[LineView, ...]
    answers: tuple[str, ...] = ()  # the message ids of the documents it answers


@dataclass(frozen=True, slots=True, kw_only=True)
class ShipRefusedStatus:
    message_id: str
    shipment_id: str
    reason_code: ReasonCode
    reason: str
    problems: tuple[Problem, ...] = ()
    # Every line, each saying whether it shipped, once some did (empty: none shipped).
    lines: tuple[LineView, ...] = ()
    answers: tuple[str, ...] = ()  # the message ids of the documents it answers


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelledStatus:
    message_id: str
    shipment_id: str
    released_lines: tuple[LineView, ...] = ()
    refused: Problem | None = None
    answers: tuple[str, ...] = ()  # the message ids of the documents it answers


Status = (
    AllocatedStatus | AllocationFailedStatus | ShippedStatus | ShipRefusedStatus | CancelledStatus
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The shipment after one message (None: still unknown), what to send, what to publish."""

    shipment: Shipment | None
    changed: bool = False
    commands: tuple[Command, ...] = ()
    statuses: tuple[Status, ...] = ()
