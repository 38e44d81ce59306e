"""Shipping's pure core: the outgoing shipment lifecycle as an immutable state machine.

```
            request                  every line answered
  (none) ───────────► allocating ─────────────────────────► allocated | allocation_failed
                         ▲  picks update, request again               │
                         └────────────────────────────────────────────┤
                                           ship request, R8 complete │ (else ShipmentShipRefused)
                                                                      ▼
      shipped ◄── every LineShipped ── shipping ── a line refused ──► allocated (+ refusal)
      cancelled ◄── every release answered ── cancelling ◄── cancel (any open phase; partly
                                                            shipped: the lines not shipped)
```

- A shipment is answered line by line by allocation (the one writer per LIC); a phase ends when
  no command of the shipment is still waiting for its answer (`Shipment.pending`).
- R8: a ship request is refused with `SHIPMENT_INCOMPLETE` unless every line is allocated and
  complete (lot-tracked lines name manufacturer lots covering the line, serialized units have
  serials); the refusal lists each line and what it lacks.
- R14: a vendor return names the lots (lot-tracked) or serials (serialized) going back, checked
  here (and again by allocation).
- Picks typed or scanned go through the same parsers as receipts (R5). A scan binds its serial
  to its lot: a scanned lot must be one the line types (else `INVALID_BARCODE`), and scanned
  lots go beside the serials, for allocation to check the serials are in them (R9, R15).
- A line whose picks shipping refuses itself (R5, R14) is still sent: its AllocateLine carries
  the problem instead of picks, and allocation answers `CommandRejected` with exactly that
  problem, deciding nothing. The line waits for that answer like any other, and, still a sales
  order naming the item, locks the item's tracking flags (R2) as a line allocation refuses does.
- While the shipment is being shipped or cancelled, how a document is answered may depend on
  how that ends (a refused ship leaves the shipment open), so documents read meanwhile wait
  (`Shipment.queued`, in the order read). Once it settles and is answered, they are decided
  in that order, each exactly as if read just then: a document gets the same answers in
  whichever batch it is read, answers come in the order read (one status may answer several,
  as when they do not wait: a request a cancel overrides is answered by the cancel), and a
  request that a later cancel or request overrides is still applied first, so the items it
  names hear of it (R2: a saved sales order refers to them), as when read a batch later.
- Only a ship request while the shipment is shipping, or a cancel while it is cancelling, read
  while nothing waits, does not wait its turn: it asks for what is under way and is answered
  when that settles, with the same status as the one that started it (`ShipmentShipped` or
  `ShipmentShipRefused`; `ShipmentCancelled`), under its own id (`Shipment.waiting`), as a
  ship request after shipping and a cancel after cancelling are answered again.
- A waiting request keeps its picks as read when it arrived (its own lines and terms); a
  waiting picks update is read when decided, against the line it then updates.
- A scan is checked against its item (R5: its GTIN, whether the item has lots or serials), so a
  request or picks update with scans on a line whose item shipping does not know yet (a sale
  read before the item's first `ItemUpserted`) waits for it, first in `Shipment.queued`
  (`Shipment.awaited`: the LICs; a new shipment is saved `allocating`, without lines, to hold
  it), publishing nothing, and the documents read after it wait behind it. It is decided, as
  if read just then, once those items are known (`resume`), or, its wait over
  (`Shipment.overdue`; `may_wait` False: no wait at all), with each such line refused
  `UNKNOWN_ITEM` as allocation refuses a line of an item it does not know. Each document's
  wait is its own, from when it was read: one behind it may then wait for its items in turn,
  until its own wait is over, and is never decided before the documents read before it.
  Lines without scans never wait: allocation decides them.
- What waits is capped (`Limits.max_waiting_documents`, `max_waiting_characters`: the queue
  is one stored value, rewritten whole as each joins): a document read past the cap is refused
  at once, `INVALID_QUANTITY`, as its kind is refused, changing nothing (the first always
  waits). Those already waiting are decided as before.
- Every status lists in `answers` the documents it answers, each document in exactly one: a
  document decided at once (a refusal, a status repeated) its own; a waiting one
  (`Shipment.waiting`) its own, under its own status id; any other is applied and kept in
  `Shipment.unanswered` until the phase it starts or joins settles, whose status answers
  every document applied since the shipment's last status (a request and the picks or cancel
  that followed it before it was answered, say).
- A ship request while the shipment is being allocated (any command unanswered, a resend's
  release of a line it dropped included) is refused `SHIPMENT_INCOMPLETE`, each such line
  "still being allocated", in whatever order the answers are read: the allocation under way
  is answered first, and only a settled shipment ships (R8).
- Shipped is final: a shipped shipment cannot be cancelled, re-requested or re-picked; such
  requests, and requests for an unknown shipment, are answered with `UNKNOWN_SHIPMENT` ("no
  open shipment"), as allocation answers a line with no open allocation.
- Partly shipped: allocation decides each ShipLine by its LIC, so it may refuse one line (its
  lot quarantined after allocation) while others ship. The phase settles back `allocated`,
  the shipped lines `shipped` for good, and the refusal says what shipped first ("line 2
  shipped; 1 line was not shipped: …") and lists every line (`ShipRefusedStatus.lines`, each
  with `shipped`), as does any later ship refusal of the shipment (R8), so an order system
  posts the goods issue of what left. What is left may be picked again and shipped by a new
  ship request (only lines not shipped get a ShipLine), or cancelled: a cancel releases the
  lines not shipped, leaves the shipped ones as they are, and settles `cancelled` listing
  what it released. A cancelled shipment with a shipped line is final like a shipped one (no
  request reopens it, nothing more ships); a resend of a partly shipped one is refused.
- A refused re-allocation changes nothing, in allocation ("the old one stands") and here: a
  line whose new picks allocation refuses, or that shipping's own checks refuse, stays
  `allocated` with the picks and movements of the allocation that stands, the refusal its
  `problem`; the phase settles `allocation_failed` listing the problem, with the line among
  `allocated_lines`, and the line can ship. A line is failed only when nothing stands. A
  resend that changes the terms an allocation ships on (office, kind, ship date,
  counterparty, a vendor return's reference) releases the lines' allocations first, so none
  stands on the old terms; one that changes a line's minimum shelf life (R9) releases that
  line's first, alike.
- A line keeps its minimum shelf life (the request line's, else the request's; 0 on a vendor
  return, which ships what it names): every AllocateLine of the line carries it, a picks
  update's too.
- Answers are matched by the command id they carry. An answer to a command that was superseded
  (picks updated, or the line's LIC changed by a resend, before allocation answered) still
  records what allocation holds for the line: its LIC joins or leaves the line's `held_lics`,
  and, under the line's own LIC, its movements are the line's. The line waits for the newest
  command's answer. Answers of different LICs come from different partitions, in no order
  between them: one of an old LIC never touches the movements of the line's own LIC, and a
  cancel or a LIC change releases every LIC in `held_lics`.

The types live in `model.py`, picks parsing in `picks.py`. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date
from decimal import Decimal

from services.shipping.model import (
    OPEN_PHASES,
    ZERO,
    Action,
    Allocate,
    Allocated,
    AllocatedStatus,
    AllocationFailedStatus,
    Answer,
    Cancel,
    CancelledStatus,
    Command,
    Decision,
    Entry,
    Item,
    Limits,
    Line,
    LineStatus,
    LineView,
    Pending,
    Phase,
    Picks,
    PicksUpdate,
    Problem,
    Queued,
    Ready,
    ReadyLine,
    Rejected,
    Release,
    Released,
    Request,
    RequestLine,
    Ship,
    Shipment,
    Shipped,
    ShippedStatus,
    ShipRefusedStatus,
    ShipRequest,
    Status,
    Upstream,
)
from services.shipping.picks import parse_picks
from shared.ids import derived_id, namespaced
from shared.movements import Moved
from shared.reasons import ReasonCode, number

# --- entry points -----------------------------------------------------------------------------


def handle(
    shipment: Shipment | None,
    message: Upstream,
    items: Mapping[str, Item],
    limits: Limits | None = None,
    *,
    may_wait: bool = True,
) -> Decision:
    """The decision on one upstream message about `shipment` (None: not known yet).
    `may_wait`: a document with scans of an item not in `items` waits for it; False (no wait
    configured): such a line is refused `UNKNOWN_ITEM` at once."""
    limits = limits or Limits()
    document: Queued = message
    # A request's picks are read as it arrives, against its own lines, even if it waits for a
    # cancel or ship; only one waiting for an item is kept unread, to be read against it.
    if isinstance(message, Request) and not (may_wait and _unknown_scanned(message, items)):
        document = _ready(message, items, limits)
    decision = _take(shipment, document, items, limits, may_wait)
    if shipment is not None and _overfull(shipment, decision.shipment, limits):
        return Decision(shipment=shipment, statuses=(_too_many(shipment, message, limits),))
    return decision


def answer(
    shipment: Shipment,
    *replies: Answer,
    items: Mapping[str, Item],
    limits: Limits | None = None,
    may_wait: bool = True,
) -> Decision:
    """Apply allocation's answers to the shipment's commands, in order; settle the phase once
    nothing is pending. One draft for all of them: a big shipment's answers cost O(lines).
    `items`: those of the shipment's lines and waiting requests, for the documents that
    waited for the phase settled here (a picks update is read, a ship request checked, R8);
    `may_wait` as for `handle`."""
    draft = _Draft(shipment)
    applied = False
    for reply in replies:
        if isinstance(reply, Released) and reply.reallocated:
            continue  # the old picks of a re-allocation: its LineAllocated follows
        sent = draft.answered(reply.command_id)
        if sent is None:
            continue  # not ours, or already answered
        applied = True
        line = draft.lines.get(sent.line_no)
        if line is not None:
            draft.lines[line.line_no] = draft.idle(_answered(line, sent, reply))
        if not draft.pending:
            draft.settle(derived_id(reply.command_id, "status"))
    if not applied:
        return Decision(shipment=shipment)
    decision = draft.decision()
    after = decision.shipment
    if after is None or not _drains(after):
        return decision
    return _drain(after, decision, items, limits or Limits(), may_wait)


def resume(
    shipment: Shipment,
    items: Mapping[str, Item],
    limits: Limits | None = None,
    *,
    may_wait: bool = True,
) -> Decision:
    """Decide the documents waiting for items (`Shipment.awaited`) now that some arrived, or
    now that the first one's wait is over (`Shipment.overdue`; `may_wait` False: every one's):
    a line of such a document whose item is still unknown is then refused `UNKNOWN_ITEM`, and
    a document behind it may wait for its own items until its own wait is over. Unchanged when
    nothing waits for an item."""
    if not shipment.awaited or not _drains(shipment):
        return Decision(shipment=shipment)
    return _drain(shipment, Decision(shipment=shipment), items, limits or Limits(), may_wait)


def _drains(shipment: Shipment) -> bool:
    """Whether documents wait that may be decided now: not behind a cancel or ship."""
    return bool(shipment.queued) and shipment.phase not in _QUEUEING


def _drain(
    shipment: Shipment,
    before: Decision,
    items: Mapping[str, Item],
    limits: Limits,
    may_wait: bool,
) -> Decision:
    """What waited (for the cancel or ship now answered, or for an item), decided in the
    order read, each as if read just now: one may start another phase, or wait for an item
    again (unless its wait is over), and the rest wait behind it again."""
    now = replace(shipment, queued=(), awaited=())
    commands, statuses = list(before.commands), list(before.statuses)
    for document in shipment.queued:
        waits = may_wait and document.message_id not in shipment.overdue
        then = _take(now, document, items, limits, waits)
        now = then.shipment if then.shipment is not None else now
        commands.extend(then.commands)
        statuses.extend(then.statuses)
    return Decision(shipment=now, changed=True, commands=tuple(commands), statuses=tuple(statuses))


def missing(shipment: Shipment, items: Mapping[str, Item]) -> tuple[Problem, ...]:
    """R8: what stops the shipment from being marked shipped, line by line (empty: nothing).
    While it is being allocated, every line with a command unanswered (a line a resend dropped
    too, until its release is answered) is still being allocated, whatever its last answer."""
    busy: dict[int, str] = {}
    for sent in shipment.pending:
        busy.setdefault(sent.line_no, sent.lic)
    lines = {line.line_no: line for line in shipment.lines}
    problems: list[Problem] = []
    for line_no in sorted(busy.keys() | lines.keys()):
        line = lines.get(line_no)
        if line is None or line_no in busy:
            lic = line.lic if line is not None else busy[line_no]
            problems.append(_still_allocating(shipment.shipment_id, line_no, lic))
        else:
            problems.extend(_line_gaps(shipment.shipment_id, line, items.get(line.lic)))
    return tuple(problems)


# --- upstream messages ------------------------------------------------------------------------


def _take(
    shipment: Shipment | None,
    document: Queued,
    items: Mapping[str, Item],
    limits: Limits,
    may_wait: bool = True,
) -> Decision:
    """Decide the document now, or have it wait for the cancel or ship under way, for the
    documents before it, or for the items its scans name."""
    if shipment is not None and _waits(shipment, document):
        queued = (*shipment.queued, document)
        return Decision(shipment=replace(shipment, queued=queued), changed=True)
    awaited = _awaited(shipment, document, items) if may_wait else ()
    if awaited:
        return _hold(shipment, document, awaited)
    match document:
        case Request():
            return _decide(shipment, _ready(document, items, limits))
        case Ready():
            return _decide(shipment, document)
        case PicksUpdate():
            return _update_picks(shipment, document, items, limits)
        case ShipRequest():
            return _request_ship(shipment, document, items)
        case Cancel():
            return _cancel(shipment, document)


# The phases documents wait for: how one is answered may depend on how the phase ends.
_QUEUEING: frozenset[Phase] = frozenset({"cancelling", "shipping"})


def _waits(shipment: Shipment, document: Queued) -> bool:
    """Whether the document waits: behind documents read before it that still wait (it is
    decided after those, in order), or for the cancel or ship under way: all do, but a ship
    request while shipping or a cancel while cancelling, which ask for it (answered with its
    status)."""
    if shipment.queued:
        return True
    if shipment.phase not in _QUEUEING:
        return False
    asks_for_it = ShipRequest if shipment.phase == "shipping" else Cancel
    return not isinstance(document, asks_for_it)


def _awaited(
    shipment: Shipment | None, document: Queued, items: Mapping[str, Item]
) -> tuple[str, ...]:
    """The LICs of the document's lines with scans whose item shipping does not know yet (R5:
    a scan is checked against its item). None for a document refused whatever its scans say
    (its shipment shipped, closed, or without that line)."""
    if isinstance(document, Request):
        reopenable = shipment is None or _reopenable(shipment)
        return _unknown_scanned(document, items) if reopenable else ()
    if isinstance(document, PicksUpdate) and document.entry.scans and shipment is not None:
        line = shipment.line(document.line_no)
        if (
            shipment.phase in OPEN_PHASES
            and line is not None
            and line.status != "shipped"
            and line.lic not in items
        ):
            return (line.lic,)
    return ()


def _unknown_scanned(request: Request, items: Mapping[str, Item]) -> tuple[str, ...]:
    return tuple(sorted({x.lic for x in request.lines if x.entry.scans and x.lic not in items}))


def _overfull(before: Shipment, after: Shipment | None, limits: Limits) -> bool:
    """Whether the document just read joined the waiting documents past their cap (DESIGN §6:
    sizes have limits). Only a document read from upstream is weighed: those re-queued when
    what they waited for settles were admitted already. The first always fits."""
    if after is None:
        return False
    joined = len(after.queued) > len(before.queued) or len(after.waiting) > len(before.waiting)
    if not joined:
        return False
    if len(after.queued) + len(after.waiting) > limits.max_waiting_documents:
        return True
    # Weighed only as one joins, in O(lines): less than the save that rewrites the queue.
    return len(after.queued) > 1 and _weight(after.queued) > limits.max_waiting_characters


# Each entry counted at its longest (contract: a serial 64 characters, an identifier 128, a
# scan 512, a typed serial entry 256): an upper bound of what the stored queue holds.
_SERIAL, _LOT, _SCAN, _TYPED = 64, 128, 512, 256


def _weight(queued: Iterable[Queued]) -> int:
    """The characters of picks the waiting documents name, at most."""
    total = 0
    for document in queued:
        match document:
            case Ready():
                for ready in document.lines:
                    picks = ready.picks
                    total += _SERIAL * len(picks.serials) + _LOT * len(picks.lots)
                    total += (_SERIAL + _LOT) * len(picks.serial_lots)
            case Request():
                total += sum(_entry_weight(line.entry) for line in document.lines)
            case PicksUpdate():
                total += _entry_weight(document.entry)
    return total


def _entry_weight(entry: Entry) -> int:
    typed = entry.serials
    text = len(typed) if isinstance(typed, str) else _TYPED * len(typed or ())
    return text + _SCAN * len(entry.scans) + _LOT * len(entry.lots)


def _too_many(shipment: Shipment, message: Upstream, limits: Limits) -> Status:
    """The refusal of a document that would take the waiting ones past their cap, as its kind
    is refused: it changes nothing, and may be sent again once they are answered."""
    status_id = derived_id(message.message_id, "status")
    waiting = len(shipment.queued) + len(shipment.waiting)
    phase = shipment.phase
    waits_for = f"while it is {_PHASE_WORDS[phase]}" if phase in _QUEUEING else "for its items"
    problem = Problem(
        line_no=message.line_no if isinstance(message, PicksUpdate) else None,
        lic=None,
        reason_code=ReasonCode.INVALID_QUANTITY,
        reason=(
            f"shipment {shipment.shipment_id} has {waiting} documents waiting ({waits_for}), "
            f"the most one shipment may hold ({limits.max_waiting_documents} documents, picks of "
            f"{limits.max_waiting_characters} characters): send this one again once they "
            "are answered"
        ),
        offending=shipment.shipment_id,
    )
    sid = shipment.shipment_id
    answers = (message.message_id,)
    match message:
        case ShipRequest():
            return ShipRefusedStatus(
                message_id=status_id,
                shipment_id=sid,
                reason_code=problem.reason_code,
                reason=problem.reason,
                problems=(problem,),
                answers=answers,
            )
        case Cancel():
            return CancelledStatus(
                message_id=status_id, shipment_id=sid, refused=problem, answers=answers
            )
    return AllocationFailedStatus(
        message_id=status_id,
        shipment_id=sid,
        problems=(problem,),
        allocated_lines=_views(shipment.lines, ("allocated", "shipped")),
        answers=answers,
    )


def _hold(shipment: Shipment | None, document: Queued, awaited: tuple[str, ...]) -> Decision:
    """Have the document wait, unanswered, for the items it awaits (nothing waits before it).
    A new shipment is saved with the request's terms, `allocating` and without lines."""
    if shipment is None:
        assert isinstance(document, Request)  # `_awaited`: only a request names no shipment
        shipment = _header(document)
    held = replace(shipment, queued=(*shipment.queued, document), awaited=awaited)
    return Decision(shipment=held, changed=True)


def _decide(shipment: Shipment | None, ready: Ready) -> Decision:
    """A request read (now, or once what it waited for settled): a new shipment, or a saved one
    replaced while still open or cancelled, every line (re)allocated; refused, changing
    nothing, once anything of the shipment shipped."""
    if shipment is not None and not _reopenable(shipment):
        problem = _closed(shipment, "it cannot be requested again")
        refusal = AllocationFailedStatus(
            message_id=derived_id(ready.message_id, "status"),
            shipment_id=shipment.shipment_id,
            problems=(problem,),
            allocated_lines=_views(shipment.lines, ("allocated", "shipped")),
            answers=(ready.message_id,),
        )
        return Decision(shipment=shipment, statuses=(refusal,))
    return _reopen(shipment, ready)


def _ready(msg: Request, items: Mapping[str, Item], limits: Limits) -> Ready:
    """The request with each line's picks read (R5, R14) against its own terms. Its lines
    share one serial budget (`Limits.max_serials_per_document`): a line that would cross it
    is refused, so a short request of many spans never expands past it."""
    header = _header(msg)
    budget = limits.max_serials_per_document
    lines: list[ReadyLine] = []
    for line in msg.lines:
        ready = _read_picks(
            header, line.line_no, line.lic, line.quantity, line.entry, items, limits, budget
        )
        budget -= len(ready.picks.serials)
        days = _shelf_life(msg, line)
        lines.append(replace(ready, min_shelf_life_days=days) if days else ready)
    return Ready(
        message_id=msg.message_id,
        shipment_id=msg.shipment_id,
        office=msg.office,
        kind=msg.kind,
        ship_on=msg.ship_on,
        counterparty=msg.counterparty,
        reference=msg.reference,
        lines=tuple(lines),
    )


def _read_picks(
    header: Shipment,
    line_no: int,
    lic: str,
    quantity: Decimal,
    entry: Entry,
    items: Mapping[str, Item],
    limits: Limits,
    budget: int | None = None,
) -> ReadyLine:
    line = Line(line_no=line_no, lic=lic, quantity=quantity)
    parsed = parse_picks(header, line, entry, items.get(lic), limits, budget)
    if isinstance(parsed, Problem):
        return ReadyLine(line_no=line_no, lic=lic, quantity=quantity, refusal=parsed)
    return ReadyLine(line_no=line_no, lic=lic, quantity=quantity, picks=parsed)


def _header(terms: Request | Ready) -> Shipment:
    return Shipment(
        shipment_id=terms.shipment_id,
        office=terms.office,
        kind=terms.kind,
        ship_on=terms.ship_on,
        counterparty=terms.counterparty,
        reference=terms.reference,
    )


def _same_line(saved: Line, new: ReadyLine) -> bool:
    """Whether the line's allocation may stand until its replacement is decided: the same item
    and the same minimum shelf life (R9), which the allocation was chosen for."""
    return saved.lic == new.lic and saved.min_shelf_life_days == new.min_shelf_life_days


def _shelf_life(msg: Request, line: RequestLine) -> int:
    """R9: the line's minimum remaining shelf life, else the request's; none on a vendor
    return, which sends back what it names (allocation ignores it there too)."""
    if msg.kind != "sale":
        return 0
    return msg.min_shelf_life_days if line.min_shelf_life_days is None else line.min_shelf_life_days


def _reopen(shipment: Shipment | None, ready: Ready) -> Decision:
    """Apply a request to a new, open or cancelled shipment: every line is (re)allocated."""
    header = _header(ready)
    if shipment is not None:
        header = replace(
            header,
            lines=shipment.lines,
            pending=shipment.pending,
            waiting=shipment.waiting,
            waiting_documents=shipment.waiting_documents,
            unanswered=shipment.unanswered,
        )
    draft = _Draft(header)
    draft.applied(ready.message_id)
    wanted = {line.line_no: line for line in ready.lines}
    # An allocation is made for the shipment's terms, and ships on them: under new terms none
    # may stand if its replacement is refused, so each is released before allocating again.
    moved = shipment is not None and _terms(shipment) != _terms(header)
    for saved in list(draft.lines.values()):
        new = wanted.get(saved.line_no)
        if new is None or moved or not _same_line(saved, new):
            draft.release_held(saved, ready.message_id, keep_line=new is not None)
    for line in ready.lines:
        old = draft.lines.get(line.line_no)
        if old is not None and not moved and _same_line(old, line):  # it stands until replaced
            complete = old.complete and _covers(old.movements, line.quantity)
            base = replace(old, quantity=line.quantity, complete=complete)
        else:  # an old LIC's release, if any, is on its way
            held = old.held_lics if old is not None else ()
            base = Line(
                line_no=line.line_no,
                lic=line.lic,
                quantity=line.quantity,
                held_lics=held,
                min_shelf_life_days=line.min_shelf_life_days,
            )
        draft.allocate(base, line, ready.message_id)
    draft.phase = "allocating"
    draft.settle(derived_id(ready.message_id, "status"))
    return draft.decision()


def _update_picks(
    shipment: Shipment | None, msg: PicksUpdate, items: Mapping[str, Item], limits: Limits
) -> Decision:
    """Re-allocate one line with the picks now named (replacing the line's picks)."""
    status_id = derived_id(msg.message_id, "status")
    line = shipment.line(msg.line_no) if shipment is not None else None
    problem: Problem | None = None
    if shipment is None:
        problem = _unknown(msg.shipment_id)
    elif shipment.phase not in OPEN_PHASES:
        problem = _closed(shipment, "its picks can no longer change")
    elif line is None:
        problem = _no_line(msg)
    elif line.status == "shipped":
        problem = _closed(shipment, f"line {line.line_no} was shipped", line)
    if problem is not None or shipment is None or line is None:
        assert problem is not None
        refusal = AllocationFailedStatus(
            message_id=status_id,
            shipment_id=msg.shipment_id,
            problems=(problem,),
            allocated_lines=_views(shipment.lines, ("allocated", "shipped")) if shipment else (),
            answers=(msg.message_id,),
        )
        return Decision(shipment=shipment, statuses=(refusal,))
    draft = _Draft(shipment)
    draft.applied(msg.message_id)
    ready = _read_picks(shipment, line.line_no, line.lic, line.quantity, msg.entry, items, limits)
    draft.allocate(line, ready, msg.message_id)
    draft.phase = "allocating"
    draft.settle(status_id)
    return draft.decision()


def _no_line(msg: PicksUpdate) -> Problem:
    return Problem(
        line_no=msg.line_no,
        lic=None,
        reason_code=ReasonCode.UNKNOWN_SHIPMENT,
        reason=f"shipment {msg.shipment_id} has no line {msg.line_no}",
        offending=f"{msg.shipment_id}/{msg.line_no}",
    )


def _request_ship(
    shipment: Shipment | None, msg: ShipRequest, items: Mapping[str, Item]
) -> Decision:
    """R8: ship every line, or refuse listing exactly what is missing. While the shipment is
    being allocated nothing ships: what the allocation under way settles on is answered first.
    While it is being shipped (nothing waiting before it), it asks for the ship under way."""
    status_id = derived_id(msg.message_id, "status")
    if shipment is None or shipment.phase in ("cancelling", "cancelled"):
        problem = _unknown(msg.shipment_id) if shipment is None else _closed(shipment, "")
        refusal = ShipRefusedStatus(
            message_id=status_id,
            shipment_id=msg.shipment_id,
            reason_code=problem.reason_code,
            reason=problem.reason,
            problems=(problem,),
            answers=(msg.message_id,),
        )
        return Decision(shipment=shipment, statuses=(refusal,))
    if shipment.phase == "shipped":
        again = ShippedStatus(
            message_id=status_id,
            shipment_id=shipment.shipment_id,
            lines=_views(shipment.lines, ("shipped",)),
            answers=(msg.message_id,),
        )
        return Decision(shipment=shipment, statuses=(again,))
    if shipment.phase == "shipping":
        return _wait(shipment, status_id, msg.message_id)
    gaps = missing(shipment, items)
    if gaps:
        refusal = replace(_incomplete(status_id, shipment, gaps), answers=(msg.message_id,))
        return Decision(shipment=shipment, statuses=(refusal,))
    draft = _Draft(shipment)
    draft.applied(msg.message_id)
    for line in draft.lines.values():
        if line.status != "shipped":
            draft.ship(line, msg.message_id)
    draft.phase = "shipping"
    return draft.decision()


def _cancel(shipment: Shipment | None, msg: Cancel) -> Decision:
    """Release every allocation of the shipment; a shipped shipment cannot be cancelled. A
    partly shipped one can: its lines not shipped are released, the shipped ones stay shipped,
    and, cancelled with lines shipped, it is final (nothing more ships or is requested)."""
    status_id = derived_id(msg.message_id, "status")
    if shipment is None:
        refusal = CancelledStatus(
            message_id=status_id,
            shipment_id=msg.shipment_id,
            refused=_unknown(msg.shipment_id),
            answers=(msg.message_id,),
        )
        return Decision(shipment=None, statuses=(refusal,))
    # (While shipping, a cancel waits for the ship: it may yet be refused.)
    if shipment.phase in ("shipping", "shipped"):
        why = "a shipped shipment cannot be cancelled"
        refusal = CancelledStatus(
            message_id=status_id,
            shipment_id=shipment.shipment_id,
            refused=_closed(shipment, why),
            answers=(msg.message_id,),
        )
        return Decision(shipment=shipment, statuses=(refusal,))
    if shipment.phase == "cancelled":
        again = CancelledStatus(
            message_id=status_id, shipment_id=shipment.shipment_id, answers=(msg.message_id,)
        )
        return Decision(shipment=shipment, statuses=(again,))
    if shipment.phase == "cancelling":  # nothing waits before it (`_waits`)
        return _wait(shipment, status_id, msg.message_id)
    draft = _Draft(shipment)
    draft.applied(msg.message_id)
    for line in list(draft.lines.values()):
        if line.status != "shipped":  # its units left: nothing is held for it
            draft.release_held(line, msg.message_id, keep_line=True)
    draft.phase = "cancelling"
    draft.settle(status_id)
    return draft.decision()


def _wait(shipment: Shipment, status_id: str, message_id: str) -> Decision:
    """Answer the document with the phase under way, once it settles."""
    waiting = replace(
        shipment,
        waiting=(*shipment.waiting, status_id),
        waiting_documents=(*shipment.waiting_documents, (status_id, message_id)),
    )
    return Decision(shipment=waiting, changed=True)


# --- applying answers -------------------------------------------------------------------------


def _answered(line: Line, sent: Pending, reply: Answer) -> Line:
    """The line after one answer. Allocation decides each LIC in the order its commands were
    sent, so the answers of one LIC arrive in order and `held_lics` follows what it holds; the
    newest command is always for the line's own LIC, so an answer under that LIC, superseded
    or not, is the newest word on what the line's own allocation took."""
    current = line.awaiting == sent.command_id
    match reply:
        case Allocated():
            line = replace(line, held_lics=_with(line.held_lics, reply.lic))
            if reply.lic == line.lic:
                line = replace(
                    line,
                    picks=line.picks if sent.picks is None else sent.picks,
                    movements=reply.movements,
                    complete=reply.complete and _covers(reply.movements, line.quantity),
                )
            return replace(line, status="allocated", awaiting=None) if current else line
        case Released():
            line = replace(line, held_lics=_without(line.held_lics, reply.lic))
            if not current:
                return line
            return replace(line, status="released", awaiting=None, movements=reply.movements)
        case Shipped():
            held = _without(line.held_lics, reply.lic)
            return replace(
                line, status="shipped", awaiting=None, held_lics=held, movements=reply.movements
            )
        case Rejected():
            return _refused(line, sent, reply, current)


def _standing(line: Line) -> Line:
    """A line with no answer to wait for is allocated exactly while allocation holds stock for
    it under its own LIC (a refused re-allocation leaves the old allocation standing, with its
    picks and movements); otherwise it is failed and names nothing."""
    if line.lic in line.held_lics:
        return replace(line, status="allocated")
    return replace(line, status="failed", picks=Picks(), movements=(), complete=False)


def _covers(movements: Iterable[Moved], quantity: Decimal) -> bool:
    return sum((m.quantity for m in movements), ZERO) == quantity


def _with(lics: tuple[str, ...], lic: str) -> tuple[str, ...]:
    return lics if lic in lics else tuple(sorted((*lics, lic)))


def _without(lics: tuple[str, ...], lic: str) -> tuple[str, ...]:
    return tuple(x for x in lics if x != lic) if lic in lics else lics


def _refused(line: Line, sent: Pending, reply: Rejected, current: bool) -> Line:
    problem = Problem(
        line_no=line.line_no,
        lic=reply.lic,
        reason_code=reply.reason_code,
        reason=reply.reason,
        offending=reply.offending,
    )
    if sent.action == "release":
        # Nothing was held (e.g. the allocation it would release had been refused).
        line = replace(line, held_lics=_without(line.held_lics, reply.lic))
        return replace(line, status="released", awaiting=None, movements=()) if current else line
    if not current:
        return line
    if sent.action == "ship":
        return replace(line, awaiting=None, problem=problem)  # still allocated, not shipped
    # Allocation keeps the line's old allocation, if any: `_standing` then keeps it allocated.
    return replace(line, status="failed", awaiting=None, problem=problem)


# --- the draft: a mutable view of one shipment during one decision ----------------------------


class _Draft:
    def __init__(self, shipment: Shipment) -> None:
        self.base = shipment
        self.phase: Phase = shipment.phase
        self.lines: dict[int, Line] = {line.line_no: line for line in shipment.lines}
        self.pending: dict[str, Pending] = {p.command_id: p for p in shipment.pending}
        # Commands in flight per line and LIC: what decides the line's allocation is known
        # once none of its own LIC is left.
        self.in_flight = Counter((p.line_no, p.lic) for p in shipment.pending)
        # The LICs of each line's allocations in flight, by command id in `pending`'s order:
        # a cancel or resend of every line looks each one up instead of scanning `pending`.
        self.allocating: dict[int, dict[str, str]] = {}
        for p in shipment.pending:
            if p.action == "allocate":
                self.allocating.setdefault(p.line_no, {})[p.command_id] = p.lic
        self.waiting: tuple[str, ...] = shipment.waiting
        self.waiting_documents = dict(shipment.waiting_documents)
        self.unanswered: list[str] = list(shipment.unanswered)
        self.commands: list[Command] = []
        self.statuses: list[Status] = []

    def applied(self, message_id: str) -> None:
        """The document is applied without being answered yet: the shipment's next status
        answers it (with every other document applied since the last one)."""
        self.unanswered.append(message_id)

    def send(self, command: Command, action: Action) -> None:
        self.pending[command.command_id] = Pending(
            command_id=command.command_id,
            action=action,
            line_no=command.line_no,
            lic=command.lic,
            picks=command.picks if isinstance(command, Allocate) and action == "allocate" else None,
        )
        self.in_flight[command.line_no, command.lic] += 1
        if action == "allocate":
            self.allocating.setdefault(command.line_no, {})[command.command_id] = command.lic
        self.commands.append(command)

    def answered(self, command_id: str) -> Pending | None:
        sent = self.pending.pop(command_id, None)
        if sent is not None:
            self.in_flight[sent.line_no, sent.lic] -= 1
            self.allocating.get(sent.line_no, {}).pop(command_id, None)
        return sent

    def idle(self, line: Line) -> Line:
        """A line whose newest command was answered: pending while an earlier command of its
        LIC is still in flight (it decides what stands), then what stands."""
        if line.awaiting is not None or line.status in ("shipped", "released"):
            return line
        if self.in_flight[line.line_no, line.lic] > 0:
            return replace(line, status="pending")
        return _standing(line)

    def allocate(self, line: Line, ready: ReadyLine, message_id: str) -> None:
        """Send the line's AllocateLine: its picks, or the problem shipping found with them,
        which allocation answers as it is (whatever it holds for the line stands) while the
        line, a sales order naming the item, locks the item's tracking flags (R2)."""
        refusal = ready.refusal
        command = Allocate(
            command_id=derived_id(namespaced("shipment", message_id), f"allocate/{line.line_no}"),
            shipment_id=self.base.shipment_id,
            line_no=line.line_no,
            lic=line.lic,
            office=self.base.office,
            kind=self.base.kind,
            counterparty=self.base.counterparty,
            ship_on=self.base.ship_on,
            quantity=line.quantity,
            picks=ready.picks,
            refusal=refusal,
            min_shelf_life_days=line.min_shelf_life_days,
            reference=_return_reference(self.base),
        )
        self.send(command, "allocate" if refusal is None else "refuse")
        self.lines[line.line_no] = replace(
            line, status="pending", awaiting=command.command_id, problem=None
        )

    def release_held(self, line: Line, message_id: str, *, keep_line: bool) -> None:
        """Release what allocation holds, or is about to hold, for the line: one ReleaseLine
        per LIC that holds it or has an allocation of it on the way (sent after that one, so
        allocation, deciding each LIC in order, releases it after allocating it). The line's
        own LIC first: the line waits for that release, whose movements are the line's."""
        if not keep_line:
            del self.lines[line.line_no]
        first: str | None = None
        for n, lic in enumerate(self._holders(line)):
            suffix = f"release/{line.line_no}" + (f"/{n}" if n else "")
            command = Release(
                command_id=derived_id(namespaced("shipment", message_id), suffix),
                shipment_id=self.base.shipment_id,
                line_no=line.line_no,
                lic=lic,
            )
            self.send(command, "release")
            first = first or command.command_id
        if keep_line:
            status: LineStatus = "released" if first is None else "pending"
            self.lines[line.line_no] = replace(line, status=status, awaiting=first)

    def _holders(self, line: Line) -> list[str]:
        lics = list(line.held_lics)
        for lic in self.allocating.get(line.line_no, {}).values():
            if lic not in lics:
                lics.append(lic)
        return sorted(lics, key=lambda lic: lic != line.lic)

    def ship(self, line: Line, message_id: str) -> None:
        command = Ship(
            command_id=derived_id(namespaced("shipment", message_id), f"ship/{line.line_no}"),
            shipment_id=self.base.shipment_id,
            line_no=line.line_no,
            lic=line.lic,
        )
        self.send(command, "ship")
        self.lines[line.line_no] = replace(line, awaiting=command.command_id, problem=None)

    def settle(self, status_id: str) -> None:
        """End the phase once nothing waits for an answer, publishing the shipment's status."""
        if self.pending:
            return
        lines = tuple(sorted(self.lines.values(), key=lambda x: x.line_no))
        sid = self.base.shipment_id
        answers, self.unanswered = tuple(self.unanswered), []
        if self.phase == "allocating":
            failed = [line for line in lines if _refused_or_failed(line)]
            self.phase = "allocation_failed" if failed else "allocated"
            if failed:
                self.statuses.append(
                    AllocationFailedStatus(
                        message_id=status_id,
                        shipment_id=sid,
                        problems=tuple(_failure(sid, line) for line in failed),
                        allocated_lines=_views(lines, ("allocated", "shipped")),
                        answers=answers,
                    )
                )
            else:
                self.statuses.append(
                    AllocatedStatus(
                        message_id=status_id, shipment_id=sid, lines=_views(lines), answers=answers
                    )
                )
        elif self.phase == "shipping":
            self._settle_shipping(status_id, lines, answers)
            self._answer_waiting()
        elif self.phase == "cancelling":
            self.phase = "cancelled"
            released = tuple(line for line in lines if line.status == "released")
            self.statuses.append(
                CancelledStatus(
                    message_id=status_id,
                    shipment_id=sid,
                    released_lines=_views(tuple(x for x in released if x.movements)),
                    answers=answers,
                )
            )
            self._answer_waiting()

    def _answer_waiting(self) -> None:
        """The documents that asked for the phase while it was under way get its status too,
        each under its own id, answering just that document."""
        outcome = self.statuses[-1]
        for wid in self.waiting:
            document = self.waiting_documents.get(wid)
            answers = () if document is None else (document,)  # (None: an older row's)
            self.statuses.append(replace(outcome, message_id=wid, answers=answers))
        self.waiting = ()
        self.waiting_documents = {}

    def _settle_shipping(
        self, status_id: str, lines: tuple[Line, ...], answers: tuple[str, ...]
    ) -> None:
        sid = self.base.shipment_id
        unshipped = [line for line in lines if line.status != "shipped"]
        if not unshipped:
            self.phase = "shipped"
            self.statuses.append(
                ShippedStatus(
                    message_id=status_id, shipment_id=sid, lines=_views(lines), answers=answers
                )
            )
            return
        self.phase = "allocated"
        problems = tuple(_failure(sid, line) for line in unshipped)
        for line in unshipped:  # still allocated: the refusal is answered here, and only here
            if line.status == "allocated":
                self.lines[line.line_no] = replace(line, problem=None)
        first = problems[0]
        count = "1 line was" if len(problems) == 1 else f"{len(problems)} lines were"
        shipped = _shipped_words(lines)
        self.statuses.append(
            ShipRefusedStatus(
                message_id=status_id,
                shipment_id=sid,
                reason_code=first.reason_code,
                reason=f"shipment {sid}: {shipped}{count} not shipped: {first.reason}",
                problems=problems,
                lines=_partly_shipped(lines),
                answers=answers,
            )
        )

    def decision(self) -> Decision:
        shipment = replace(
            self.base,
            phase=self.phase,
            lines=tuple(sorted(self.lines.values(), key=lambda x: x.line_no)),
            pending=tuple(self.pending.values()),
            waiting=self.waiting,
            waiting_documents=tuple(
                (wid, self.waiting_documents[wid])
                for wid in self.waiting
                if wid in self.waiting_documents
            ),
            unanswered=tuple(self.unanswered),
        )
        return Decision(
            shipment=shipment,
            changed=True,
            commands=tuple(self.commands),
            statuses=tuple(self.statuses),
        )


# --- R8 and refusals --------------------------------------------------------------------------


def _line_gaps(shipment_id: str, line: Line, item: Item | None) -> list[Problem]:
    where = f"{shipment_id}/{line.line_no}"

    def gap(code: ReasonCode, what: str) -> Problem:
        reason = f"line {line.line_no} ({line.lic}) {what}"
        return Problem(
            line_no=line.line_no, lic=line.lic, reason_code=code, reason=reason, offending=where
        )

    if line.status == "shipped":
        return []
    if line.status == "pending":
        return [_still_allocating(shipment_id, line.line_no, line.lic)]
    if line.status == "failed":
        return [_failure(shipment_id, line)]
    if line.status == "released":
        return [gap(ReasonCode.SHIPMENT_INCOMPLETE, "is not allocated")]
    q = line.quantity
    covered = sum((m.quantity for m in line.movements), ZERO)
    by_lot = sum((m.quantity for m in line.movements if m.mfr_lot), ZERO)
    with_serial = sum(1 for m in line.movements if m.serial)
    gaps = []
    if item is not None and item.track_mfr_lot and by_lot < q:
        named = f"names manufacturer lots for {number(by_lot)} of {number(q)}"
        gaps.append(gap(ReasonCode.LOT_REQUIRED, named))
    if item is not None and item.serialized and with_serial < q:
        named = f"has serials for {with_serial} of {number(q)} units"
        gaps.append(gap(ReasonCode.SERIAL_REQUIRED, named))
    if not gaps and (not line.complete or covered != q):
        gaps.append(
            gap(
                ReasonCode.SHIPMENT_INCOMPLETE,
                f"is allocated {number(covered)} of {number(q)} without every manufacturer lot "
                "and serial named",
            )
        )
    return gaps


def _still_allocating(shipment_id: str, line_no: int, lic: str) -> Problem:
    return Problem(
        line_no=line_no,
        lic=lic,
        reason_code=ReasonCode.SHIPMENT_INCOMPLETE,
        reason=f"line {line_no} ({lic}) is still being allocated",
        offending=f"{shipment_id}/{line_no}",
    )


def _refused_or_failed(line: Line) -> bool:
    """Not allocated, or allocated with its newest picks refused (the old allocation stands)."""
    return line.status not in ("allocated", "shipped") or (
        line.status == "allocated" and line.problem is not None
    )


def _failure(shipment_id: str, line: Line) -> Problem:
    if line.problem is not None:
        return line.problem
    return Problem(
        line_no=line.line_no,
        lic=line.lic,
        reason_code=ReasonCode.SHIPMENT_INCOMPLETE,
        reason=f"line {line.line_no} ({line.lic}) {_LINE_STATUS_WORDS[line.status]}",
        offending=f"{shipment_id}/{line.line_no}",
    )


# Statuses and phases as a reason says them (shared/reasons.py): never "allocation_failed".
_LINE_STATUS_WORDS: dict[LineStatus, str] = {
    "pending": "is still being allocated",
    "allocated": "is allocated but not shipped",
    "failed": "could not be allocated",
    "released": "is not allocated",
    "shipped": "was shipped",
}
_PHASE_WORDS: dict[Phase, str] = {
    "allocating": "being allocated",
    "allocated": "allocated",
    "allocation_failed": "not fully allocated",
    "shipping": "being shipped",
    "shipped": "shipped",
    "cancelling": "being cancelled",
    "cancelled": "cancelled",
}


def _incomplete(status_id: str, shipment: Shipment, gaps: tuple[Problem, ...]) -> ShipRefusedStatus:
    shown = "; ".join(p.reason for p in gaps[:5]) + ("; …" if len(gaps) > 5 else "")
    sid = shipment.shipment_id
    shipped = _shipped_words(shipment.lines)
    what = f": {shipped}the rest" if shipped else ""
    return ShipRefusedStatus(
        message_id=status_id,
        shipment_id=sid,
        reason_code=ReasonCode.SHIPMENT_INCOMPLETE,
        reason=f"shipment {sid}{what} cannot be marked shipped: {shown}",
        problems=gaps,
        lines=_partly_shipped(shipment.lines),
    )


def _shipped_words(lines: Iterable[Line]) -> str:
    """`line 2 shipped; `, `lines 2, 3 shipped; `: what of a partly shipped shipment left,
    first in its refusals, so none reads as nothing shipped (empty: no line shipped)."""
    numbers = [str(line.line_no) for line in lines if line.status == "shipped"]
    if not numbers:
        return ""
    if len(numbers) == 1:
        return f"line {numbers[0]} shipped; "
    shown = ", ".join(numbers[:5]) + (f" and {len(numbers) - 5} more" if len(numbers) > 5 else "")
    return f"lines {shown} shipped; "


def _partly_shipped(lines: tuple[Line, ...]) -> tuple[LineView, ...]:
    """Every line of a shipment some of whose lines shipped, each saying whether it did (an
    order system posts the goods issue of those): none when nothing shipped."""
    return _views(lines) if any(line.status == "shipped" for line in lines) else ()


def _unknown(shipment_id: str) -> Problem:
    return Problem(
        line_no=None,
        lic=None,
        reason_code=ReasonCode.UNKNOWN_SHIPMENT,
        reason=f"shipment {shipment_id} is not known",
        offending=shipment_id,
    )


def _closed(shipment: Shipment, why: str, line: Line | None = None) -> Problem:
    phase = _PHASE_WORDS[shipment.phase]
    reason = f"shipment {shipment.shipment_id} is {phase}" + (f": {why}" if why else "")
    return Problem(
        line_no=line.line_no if line else None,
        lic=line.lic if line else None,
        reason_code=ReasonCode.UNKNOWN_SHIPMENT,
        reason=reason,
        offending=shipment.shipment_id,
    )


def _terms(shipment: Shipment) -> tuple[str, str, date, str | None, str | None]:
    """What an AllocateLine carries from the shipment, and allocation ships the line on."""
    return (
        shipment.office,
        shipment.kind,
        shipment.ship_on,
        shipment.counterparty,
        _return_reference(shipment),
    )


def _return_reference(shipment: Shipment) -> str | None:
    """The reference a line's AllocateLine carries: a vendor return's (its PO, whose lots
    alone a line without picks takes, R14). None on a sale, whose reference is the
    customer's order: no stock is told apart by it."""
    return shipment.reference if shipment.kind == "vendor_return" else None


def _reopenable(shipment: Shipment) -> bool:
    return (shipment.phase in OPEN_PHASES or shipment.phase == "cancelled") and not _any_shipped(
        shipment
    )


def _any_shipped(shipment: Shipment) -> bool:
    return any(line.status == "shipped" for line in shipment.lines)


def _views(
    lines: Iterable[Line], statuses: tuple[LineStatus, ...] | None = None
) -> tuple[LineView, ...]:
    return tuple(
        LineView(
            line_no=line.line_no,
            lic=line.lic,
            quantity=line.quantity,
            movements=line.movements,
            complete=line.complete,
            shipped=line.status == "shipped",
        )
        for line in lines
        if statuses is None or line.status in statuses
    )
