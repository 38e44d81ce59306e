"""Receiving's pure core: check a whole receipt before anything is posted, then settle it.

A receipt (`ShipmentReceived`) is all-or-nothing at the door: every line is checked against the
item's flags and every problem of every line is reported at once, so the upstream system can
fix the document in one go. Only a document without problems becomes per-line commands.

Rules (DESIGN.md §5):
- R3: a lot-tracked line names manufacturer lots summing to the line quantity, each with an
  expiry date when the item is perishable. The same lot listed twice (one entry per scan) is
  merged when the expiry dates agree and refused when they differ.
- R4: a serialized line names exactly `quantity` serials, none twice in the document (for the
  same LIC: a serial identifies one unit of one LIC), and its quantities are whole.
- R5: serials are typed (lists, spans) or scanned (GS1: lot, expiry, serial; the GTIN must be the
  item's GTIN when the item has one). Lots from scans are used only when the line types none:
  each scan is one unit of its lot, so a scan without a lot (AI 10) is a unit without one,
  refused `LOT_REQUIRED` naming the scan when the scanned lots fall short. When the line
  types lots, a scan naming a lot must name one of them, with the same expiry date, and a
  serial scanned with its lot is filed under that lot (R15: allocation pairs serials with lots
  by position, so receiving orders them). A customer return's serials go back into the lots
  they were shipped from, which only allocation knows: each serial scanned with its lot goes
  paired with it (`LineCommand.serial_lots`), for allocation to refuse a unit that is not of
  the lot its label names. A serialized line short of serials with a scan carrying none (AI 21)
  is refused naming that scan and what it reads; a lot read from a scan whose text holds an AI
  the scan lacks (21 serial, 17 expiry: a scanner dropped the group separator after the lot)
  is said so in the refusal it causes (`separator_hint`).
- R6: a serialized line without serials takes them from the item's Next Serial (allocation, the
  one writer per LIC, hands them out); without a Next Serial it is refused `SERIAL_REQUIRED`.
- R13: a customer return names the serials (serialized: its lots too, if it likes, since each
  unit goes back into the lot it was shipped from) or manufacturer lots (lot-tracked) that
  come back; nothing is ever generated for a return. It is received once (`received_before`).

A purchase or production receipt of a perishable manufacturer lot already expired on the day
it is received (`expires_on` before `received_on`) is posted all the same, the goods being
there (to quarantine, or to send back), and its answer says so (`expiry_warnings`). A customer
return's units go back into the lots they were shipped from, whose expiry only allocation's
answer tells: its posted lines are read for lots expired on the day the return was received
(`posting_warnings`). Units a receipt or return put in stock that a quarantine in force holds
(a lot recalled before it arrived, say) are posted too, held, and the answer tells the dock to
put them in quarantine storage (`quarantined_on_arrival`): only allocation knows quarantines,
so they are read off its answer as well.

A receipt refused only because it names items receiving does not know yet is held for them
instead (`awaited_items`): a new item's `ItemUpserted` usually arrives after its first receipt.

Allocation checks what receiving cannot (a serial already in stock, say), so a line can still be
refused there. A document of several lines is therefore sent with `hold`: allocation holds each
line it accepts (`LineHeld`) and `settle` decides, once every line is answered, to confirm them
all (`Confirm`) or to cancel them and reject the document (`Settled.cancelled`): it is received
whole or not at all.

Pure: standard library plus the shared parsers (`shared.serials`, `shared.barcodes`); no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

from shared.barcodes import BarcodeError, Scan, decode_scan, read_as, separator_hint
from shared.contracts.codec import MAX_EVENT_BYTES
from shared.contracts.types import MAX_ID_LENGTH
from shared.ids import derived_id, namespaced
from shared.movements import MovementValues
from shared.reasons import ReasonCode, listed, listed_expiring, number, shown
from shared.serials import SerialEntryError, find_duplicates, parse_serials

Source = Literal["purchase", "production", "customer_return"]

"""Ids derived from upstream ids stay short enough for allocation to suffix them (`#n`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Sane upper sizes (R5): a span, one line's serials, a whole document's serials (typed,
    scanned or taken from the Next Serial), and what the document's answer may weigh:
    `ReceiptPosted` lists every movement of every line (one per serial) in one message, which
    must stay under what a message may carry (`MAX_EVENT_BYTES`, with room to spare)."""

    max_span: int = 1_000_000
    max_serials_per_line: int = 100_000
    max_serials_per_document: int = 1_000_000
    max_posting_bytes: int = MAX_EVENT_BYTES * 3 // 4
    # A refusal lists every failing line's first problem, at most this many of one line, and
    # this many in all beyond the lines' first: every lot of a line is checked, and one problem
    # per lot of an 8 MiB document made a refusal too large to publish (and to read).
    max_problems_per_line: int = 10
    max_problems: int = 1_000
    # Warnings a posted receipt lists (the last one listed says how many more): 100 of the
    # longest weigh about 200 kB, well within the answer's room to spare.
    max_warnings: int = 100


# What one movement weighs in an answer besides its lot id, manufacturer lot, serial and unit
# cost: its keys, quantity and expiry date, as JSON (about 90 bytes; rounded up).
_MOVEMENT_BYTES = 120
# Unknown to receiving, so counted at their longest: the lots a return goes back into and the
# manufacturer lots of units returned without naming them (identifiers of 128 characters, each
# up to 4 bytes in JSON), and an item's estimated or a returned lot's unit cost.
_UNKNOWN_LOT_ID_BYTES = 4 * MAX_ID_LENGTH
_UNKNOWN_COST_BYTES = 24


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """What receiving knows of an LIC (its read model of allocation's `ItemUpserted`)."""

    lic: str
    track_mfr_lot: bool = False
    serialized: bool = False
    perishable: bool = False
    next_serial: str | None = None
    gtin: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LotEntry:
    mfr_lot: str
    quantity: Decimal
    expires_on: date | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiptLine:
    line_no: int
    lic: str
    quantity: Decimal
    unit_cost: Decimal | None = None
    lots: tuple[LotEntry, ...] = ()
    serials: str | tuple[str, ...] | None = None
    scans: tuple[str, ...] = ()
    bin: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    message_id: str
    shipment_id: str
    office: str
    source: Source
    received_on: date
    lines: tuple[ReceiptLine, ...]
    reference: str | None = None
    customer: str | None = None

    @property
    def is_return(self) -> bool:
        return self.source == "customer_return"


# --- outputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One thing wrong with one line: the reason code, a sentence, the offending value."""

    line_no: int | None
    lic: str | None
    reason_code: ReasonCode
    reason: str
    offending: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LineCommand:
    """One checked line, ready to become `ReceiveStock` (or `ReturnStock` when `is_return`)."""

    command_id: str
    line_no: int
    lic: str
    quantity: Decimal
    unit_cost: Decimal | None
    lots: tuple[LotEntry, ...]
    serials: tuple[str, ...]
    generate_serials: bool
    lot_id: str | None
    is_return: bool
    # One of several lines: held by allocation until every line is accepted (or one refused).
    hold: bool = False
    bin: str | None = None
    # A return's serials scanned with their manufacturer lot, as (serial, mfr lot) (R5, R15).
    serial_lots: tuple[tuple[str, str], ...] = ()


WarningCode = Literal[
    "LOT_EXPIRED_ON_RECEIPT",
    "LOT_EXPIRED_ON_RETURN",
    "LOT_QUARANTINED_ON_RECEIPT",
    "LOT_QUARANTINED_ON_RETURN",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiptWarning:
    """Something a receipt's clerk should hear at once about a line that is posted all the
    same: its code, the manufacturer lot and its expiry, and a sentence saying what to do.
    Only a `LOT_QUARANTINED_*` warning may lack a manufacturer lot (units in none) or an
    expiry (a lot without one); it names the quarantine holding the units."""

    line_no: int
    lic: str
    code: WarningCode
    mfr_lot: str | None
    expires_on: date | None
    message: str
    lot_id: str | None = None  # the inventory lot the units are in (None: stored before it was)
    quarantine_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Checked:
    """The verdict on a whole receipt: commands when there are no problems, else problems.

    `warnings`: an accepted receipt's, said with its `ReceiptPosted` (`expiry_warnings`)."""

    commands: tuple[LineCommand, ...] = ()
    problems: tuple[Problem, ...] = ()
    warnings: tuple[ReceiptWarning, ...] = ()

    @property
    def accepted(self) -> bool:
        return not self.problems


# --- checking ---------------------------------------------------------------------------------


def check_receipt(
    receipt: Receipt, items: Mapping[str, Item], limits: Limits | None = None
) -> Checked:
    """Check every line; any problem refuses the whole document and lists every failing line."""
    checker = _DocumentCheck(receipt, items, limits or Limits())
    commands: list[LineCommand] = []
    problems: list[Problem] = []
    for line in receipt.lines:
        outcome = checker.line(line)
        if isinstance(outcome, LineCommand):
            commands.append(outcome)
        else:
            problems.extend(outcome)
    if problems:
        return Checked(problems=tuple(problems))
    if len(commands) > 1:
        # A single command is atomic in allocation; several are posted only once all are held.
        commands = [replace(cmd, hold=True) for cmd in commands]
    warnings = expiry_warnings(receipt, items, commands, checker.limits.max_warnings)
    return Checked(commands=tuple(commands), warnings=warnings)


def expiry_warnings(
    receipt: Receipt,
    items: Mapping[str, Item],
    commands: Iterable[LineCommand],
    limit: int,
) -> tuple[ReceiptWarning, ...]:
    """`LOT_EXPIRED_ON_RECEIPT` for each perishable manufacturer lot a purchase or production
    receipt takes in already expired: its `expires_on` is before the receipt's `received_on`
    (typed, or read from a scan's AI 17). Not refused: the goods are there, and may be received
    to quarantine or to send back; but a clerk in food or medicine must hear it at once.

    A lot expiring on the receipt day itself is not expired: allocation still ships it that
    day (R9: expired means `expires_on < ship_on`), so warning of it would cry wolf over
    stock that can be sold. A customer return's lots go back into the lots they were shipped
    from, whose expiry the document need not carry: warned of when it posts, from allocation's
    answer (`returned_expired`). At most `limit` are listed, the last saying how many more
    there are."""
    if receipt.is_return:
        return ()
    found = [
        _expired_on_receipt(receipt, command, entry, expires_on)
        for command in commands
        if (item := items.get(command.lic)) is not None and item.perishable
        for entry in command.lots
        if (expires_on := entry.expires_on) is not None and expires_on < receipt.received_on
    ]
    return _at_most(found, limit)


def _at_most(found: Sequence[ReceiptWarning], limit: int) -> tuple[ReceiptWarning, ...]:
    """The first `limit` warnings (at least one), the last listed saying how many more."""
    listed = list(found[: max(1, limit)])
    if len(found) > len(listed):
        more = len(found) - len(listed)
        expired = all(w.code.startswith("LOT_EXPIRED") for w in found[len(listed) :])
        what = "expired lot" if expired else "warning"
        note = f" ({more} more {what}{'s' if more > 1 else ''} on this receipt not listed)"
        listed[-1] = replace(listed[-1], message=listed[-1].message + note)
    return tuple(listed)


def _expired_on_receipt(
    receipt: Receipt, command: LineCommand, entry: LotEntry, expires_on: date
) -> ReceiptWarning:
    """The warning for one lot expired on `expires_on` (its entry's): the lot, the dates,
    and what the clerk can do."""
    days = (receipt.received_on - expires_on).days
    units = f"{number(entry.quantity)} unit{'' if entry.quantity == 1 else 's'}"
    if receipt.source == "purchase":
        other = (
            "return it to the vendor (ShipmentRequested of kind vendor_return naming "
            f"lot {entry.mfr_lot})"
        )
    else:  # made here: there is no vendor to send it back to
        other = f"write it off (AdjustInventory of kind loss naming lot {entry.mfr_lot})"
    message = (
        f"manufacturer lot {entry.mfr_lot} of {command.lic} (line {command.line_no}, {units}) "
        f"is expired: its expiry date, {expires_on}, is {days} day{'s' if days > 1 else ''} "
        f"before its receipt date, {receipt.received_on}. It is received into inventory lot "
        f"{command.lot_id} all the same, and no sale shipping after its expiry will take it: "
        f"quarantine it "
        f"(QuarantineStock with lic {command.lic}, mfr_lot {entry.mfr_lot}, lot_id "
        f"{command.lot_id}) or {other}."
    )
    return ReceiptWarning(
        line_no=command.line_no,
        lic=command.lic,
        code="LOT_EXPIRED_ON_RECEIPT",
        mfr_lot=entry.mfr_lot,
        expires_on=expires_on,
        message=message,
        lot_id=command.lot_id,
    )


def awaited_items(checked: Checked) -> tuple[str, ...]:
    """The unknown LICs a checked receipt is held for; empty: accept or refuse it now.

    Upstream publishes a new item's `UpsertItem` just before its first receipt, but the item
    reaches receiving three hops later (allocation intake, allocation, `inventory.events`), so an
    unknown item is most likely on its way: a receipt whose every problem is `UNKNOWN_ITEM` waits
    for those items, then is checked again in full.

    A receipt whose known lines have problems is refused at once, naming its unknown items too:
    those problems cannot go away when another line's item arrives (a line is checked against
    its own item, serials are unique per LIC, and the document's serial budget only shrinks as
    more lines are checked), so waiting would only delay the answer.
    """
    unknown = {
        p.lic for p in checked.problems if p.reason_code is ReasonCode.UNKNOWN_ITEM and p.lic
    }
    if not unknown or any(p.reason_code is not ReasonCode.UNKNOWN_ITEM for p in checked.problems):
        return ()
    return tuple(sorted(unknown))


def superseded(checked: Checked, newer: str) -> Checked:
    """A held version of a document answered because a newer version (message `newer`, the
    same shipment_id) arrived first: refused now with its own problems, each saying so, so
    that its refusal precedes the newer version's answer and never follows its posting."""
    note = f"superseded by message {newer} of the same shipment_id while it waited"
    if not checked.problems:  # its items arrived meanwhile: the newer version stands anyway
        problem = Problem(
            line_no=None,
            lic=None,
            reason_code=ReasonCode.INVALID_QUANTITY,
            reason=note,
            offending=newer,
        )
        return Checked(problems=(problem,))
    return Checked(
        problems=tuple(replace(p, reason=f"{p.reason}; {note}") for p in checked.problems)
    )


def received_before(
    receipt: Receipt, checked: Checked, earlier: str, *, posting: bool = False
) -> Checked:
    """R13: a customer return reverses usage, so a return whose document (`shipment_id`) was
    already received (message `earlier`: posted, or still being posted when this one may wait
    for it no longer) is refused whole: sent again under a new message id, it would put the
    same units back twice. (A purchase or production line sent again is refused by
    allocation: its inventory lot exists already.)"""
    if posting:
        what = (
            f"customer return {receipt.shipment_id} is still being received, as message "
            f"{earlier}: a return is received once (send it again if that one is refused)"
        )
    else:
        what = (
            f"customer return {receipt.shipment_id} was received before, as message "
            f"{earlier}: a return is received once (units that came back since are another "
            "return, under its own shipment_id)"
        )
    problem = Problem(
        line_no=None,
        lic=None,
        reason_code=ReasonCode.INVALID_QUANTITY,
        reason=what,
        offending=receipt.shipment_id,
    )
    return Checked(problems=(problem, *checked.problems))


def _json_bytes(text: str) -> int:
    """What `text` weighs as a JSON string's content: UTF-8, with `"` and `\\` escaped
    (identifiers hold no control characters, the only others JSON escapes)."""
    return len(text.encode()) + text.count('"') + text.count("\\")


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:,.0f}"


def normalize_gtin(value: str | None) -> str | None:
    """GTIN-8/12/13/14 as the 14-digit form decoded scans carry; anything else as given."""
    if value is None:
        return None
    value = value.strip()
    return value.zfill(14) if value.isdigit() and len(value) <= 14 else value


class _DocumentCheck:
    """State that spans lines: the serials already named per LIC and the serial budget."""

    def __init__(self, receipt: Receipt, items: Mapping[str, Item], limits: Limits) -> None:
        self.receipt = receipt
        self.items = items
        self.limits = limits
        self.budget = limits.max_serials_per_document
        self.posting_bytes = 0  # what the lines so far add to the answer (estimated)
        self.room = limits.max_problems  # problems still listed beyond each line's first
        self.seen: dict[str, dict[str, int]] = {}  # lic -> serial -> first line_no

    def line(self, line: ReceiptLine) -> LineCommand | list[Problem]:
        item = self.items.get(line.lic)
        if item is None:
            return [
                _problem(line, ReasonCode.UNKNOWN_ITEM, f"item {line.lic} is not known", line.lic)
            ]
        check = _LineCheck(self.receipt, line, item, self.limits)
        scans = check.scans()
        serials = check.serials(scans, self.budget)
        lots = check.lots(scans)
        if serials and lots and not check.problems:
            serials = check.paired(serials, scans or (), lots)
        if serials is not None:
            self.budget -= len(serials)
            self._cross_line_duplicates(line, serials, check)
        lot_id = (
            None
            if self.receipt.is_return
            else derived_id(self.receipt.shipment_id, str(line.line_no))
        )
        if not check.problems:
            self._weigh(line, check, serials or (), lots, lot_id)
        if check.problems:
            return self._listed(check)
        return LineCommand(
            command_id=derived_id(
                namespaced("receipt", self.receipt.message_id), str(line.line_no)
            ),
            line_no=line.line_no,
            lic=line.lic,
            quantity=line.quantity,
            unit_cost=line.unit_cost,
            lots=lots,
            serials=serials or (),
            generate_serials=check.generate,
            lot_id=lot_id,
            is_return=self.receipt.is_return,
            bin=line.bin,
            serial_lots=_serial_lots(scans or (), item) if self.receipt.is_return else (),
        )

    def _listed(self, check: _LineCheck) -> list[Problem]:
        """The line's problems the refusal lists: always its first, the others while the
        document has room; the last one listed says how many more there are."""
        extra = min(len(check.problems) - 1, max(0, self.room))
        self.room -= extra
        listed = check.problems[: 1 + extra]
        unlisted = check.unlisted + len(check.problems) - len(listed)
        if unlisted:
            last = listed[-1]
            more = f"{unlisted} more problem{'s' if unlisted > 1 else ''}"
            note = f"{more} of line {check.line.line_no} not listed"
            listed[-1] = replace(last, reason=f"{last.reason} ({note})")
        return listed

    def _weigh(
        self,
        line: ReceiptLine,
        check: _LineCheck,
        serials: tuple[str, ...],
        lots: tuple[LotEntry, ...],
        lot_id: str | None,
    ) -> None:
        """Serials taken from the Next Serial count against the document's serial budget like
        typed ones, and every line adds its movements to the answer's weight: a document whose
        answer could not be published is refused here, whole, instead of stalling later."""
        generated = int(line.quantity) if check.generate else 0
        if generated:
            self.budget -= generated
            if self.budget < 0:
                check.add(
                    ReasonCode.INVALID_QUANTITY,
                    f"line {line.line_no} takes {generated} serials from the Next Serial: the "
                    f"document exceeds {self.limits.max_serials_per_document} serials",
                    str(line.quantity),
                )
                return
        lot_bytes = _json_bytes(lot_id) if lot_id is not None else _UNKNOWN_LOT_ID_BYTES
        mfr_bytes = max((_json_bytes(x.mfr_lot) for x in lots), default=0)
        if not lots and self.items[line.lic].track_mfr_lot:
            mfr_bytes = _UNKNOWN_LOT_ID_BYTES  # a return by serials: its units' lots
        # A return is answered at its lots' unit costs, whatever cost its line names.
        cost = None if self.receipt.is_return else line.unit_cost
        cost_bytes = len(str(cost)) if cost is not None else _UNKNOWN_COST_BYTES
        per_movement = _MOVEMENT_BYTES + lot_bytes + mfr_bytes + cost_bytes
        if serials:
            weight = len(serials) * per_movement + sum(map(_json_bytes, serials))
        elif generated:
            # each generated serial is listed twice: in its movement and in `generated_serials`
            longest = _json_bytes(self.items[line.lic].next_serial or "") + 8
            weight = generated * (per_movement + 2 * longest)
        else:
            weight = max(1, len(lots)) * per_movement
        before = self.posting_bytes
        self.posting_bytes += weight
        limit = self.limits.max_posting_bytes
        if self.posting_bytes > limit >= before:  # the line that crosses it says so, once
            check.add(
                ReasonCode.INVALID_QUANTITY,
                f"the receipt is too large to answer in one message: with line {line.line_no} "
                f"its posting would be about {_megabytes(self.posting_bytes)} MB, over "
                f"{_megabytes(limit)} MB; split it into several receipts",
                str(line.quantity),
            )

    def _cross_line_duplicates(
        self, line: ReceiptLine, serials: tuple[str, ...], check: _LineCheck
    ) -> None:
        """R4: a serial is named once per document (per LIC)."""
        seen = self.seen.setdefault(line.lic, {})
        for serial in serials:
            first = seen.setdefault(serial, line.line_no)
            if first != line.line_no:
                check.add(
                    ReasonCode.DUPLICATE_SERIAL,
                    f"serial {serial} of {line.lic} is already received on line {first}",
                    serial,
                )
                return


@dataclass
class _LineCheck:
    """The checks of one line against its item; problems collect instead of raising."""

    receipt: Receipt
    line: ReceiptLine
    item: Item
    limits: Limits
    problems: list[Problem] = field(default_factory=list)
    generate: bool = False
    given_lots: tuple[LotEntry, ...] = ()  # as entered or scanned, before merging
    # Lots taken from scans: each lot's first scan without an expiry date (AI 17), whose text
    # may say why it has none (`separator_hint`).
    undated_scans: dict[str, Scan] = field(default_factory=dict)
    unlisted: int = 0  # problems beyond `Limits.max_problems_per_line`, only counted

    def add(self, code: ReasonCode, reason: str, offending: str | None) -> None:
        if len(self.problems) >= max(1, self.limits.max_problems_per_line):
            self.unlisted += 1
            return
        self.problems.append(_problem(self.line, code, reason, offending))

    # -- scans (R5) ----------------------------------------------------------------------------

    def scans(self) -> list[Scan] | None:
        """Decode every scan; None when one is unreadable or of another item (the problem)."""
        if len(self.line.scans) > self.limits.max_serials_per_line:
            self.add(
                ReasonCode.INVALID_QUANTITY,
                f"line has {len(self.line.scans)} scans, more than the limit "
                f"{self.limits.max_serials_per_line}",
                str(len(self.line.scans)),
            )
            return None
        decoded: list[Scan] = []
        for raw in self.line.scans:
            try:
                scan = decode_scan(raw)
            except BarcodeError as error:
                self.add(ReasonCode.INVALID_BARCODE, error.reason, error.offending)
                return None
            if not self._same_item(scan):
                return None
            decoded.append(scan)
        return decoded

    def _same_item(self, scan: Scan) -> bool:
        """The GTIN identifies the item when the item has one: another product's scan is wrong."""
        expected = normalize_gtin(self.item.gtin)
        if expected is None or scan.gtin is None or scan.gtin == expected:
            return True
        self.add(
            ReasonCode.INVALID_BARCODE,
            f"scan {shown(scan.raw)} carries GTIN {scan.gtin}, but item {self.item.lic} has GTIN "
            f"{expected}",
            scan.raw,
        )
        return False

    # -- serials (R4, R5, R6, R13) -------------------------------------------------------------

    def serials(self, scans: Sequence[Scan] | None, budget: int) -> tuple[str, ...] | None:
        """The line's serials (typed, then scanned); None when they could not be read."""
        line, item = self.line, self.item
        typed = self._typed_serials(budget)
        if typed is None or scans is None:
            return None
        if typed and not item.serialized:
            self.add(
                ReasonCode.SERIAL_COUNT_MISMATCH,
                f"item {item.lic} is not serialized: expected no serials, got {len(typed)}",
                ", ".join(typed[:5]),
            )
            return None
        if not item.serialized:
            return ()
        if not self._whole(line.quantity, "quantity"):
            return None
        serials = typed + [s.serial for s in scans if s.serial is not None]
        if serials and len(serials) > budget:  # typed ones are bounded by it; scanned ones not
            self._over_budget(str(len(serials)))
            return None
        duplicates = find_duplicates(serials)
        if duplicates:
            self.add(
                ReasonCode.DUPLICATE_SERIAL,
                f"serial {duplicates[0]} is entered more than once on the line",
                duplicates[0],
            )
            return None
        return self._counted(tuple(serials), scans)

    def _typed_serials(self, budget: int) -> list[str] | None:
        entry = self.line.serials
        if entry is None or (not isinstance(entry, str) and not entry):
            return []
        try:
            return parse_serials(
                entry,
                max_span=self.limits.max_span,
                max_serials=max(0, min(self.limits.max_serials_per_line, budget)),
            )
        except SerialEntryError as error:
            if (
                error.code == ReasonCode.INVALID_QUANTITY
                and budget < self.limits.max_serials_per_line
            ):
                # Past what the document had left, not the line's own limit: say which limit.
                self._over_budget(error.offending)
            else:
                self.add(ReasonCode(error.code), error.reason, error.offending)
            return None

    def _over_budget(self, named: str) -> None:
        """R5: the line takes its document past the serials one document may name."""
        most = self.limits.max_serials_per_document
        self.add(
            ReasonCode.INVALID_QUANTITY,
            f"with line {self.line.line_no} the document names more than {most} serials, the "
            "most one receipt may name: split it",
            named,
        )

    def _counted(self, serials: tuple[str, ...], scans: Sequence[Scan]) -> tuple[str, ...] | None:
        """R4: exactly `quantity` serials; R6: none at all takes them from the Next Serial."""
        item, quantity = self.item, self.line.quantity
        if not serials:
            if self.receipt.is_return:
                need = (
                    f"a customer return of serialized item {item.lic} must name the "
                    f"{number(quantity)} serials that come back"
                )
                if not self._scanned_without_serial(scans, ReasonCode.SERIAL_REQUIRED, need):
                    self.add(ReasonCode.SERIAL_REQUIRED, need, item.lic)
                return None
            if item.next_serial:
                if self._serial_run_into_lot(scans):
                    return None
                self.generate = True
                return ()
            need = (
                f"item {item.lic} is serialized: the line needs {number(quantity)} serials and "
                "the item has no Next Serial"
            )
            if not self._scanned_without_serial(scans, ReasonCode.SERIAL_REQUIRED, need):
                self.add(ReasonCode.SERIAL_REQUIRED, need, item.lic)
            return None
        if len(serials) != quantity:
            need = f"item {item.lic} needs {number(quantity)} serials, got {len(serials)}"
            short = len(serials) < quantity
            code = ReasonCode.SERIAL_COUNT_MISMATCH
            if not (short and self._scanned_without_serial(scans, code, need)):
                self.add(code, need, f"{len(serials)} != {quantity}")
            return None
        return serials

    def _serial_run_into_lot(self, scans: Sequence[Scan]) -> bool:
        """R5, R6: a scan without AI (21) whose lot holds "21" and more likely ran its serial
        into the lot (its group separator lost): taking serials from the Next Serial would
        receive the unit under another serial than its label's, and its lot under a wrong
        name. Refused `INVALID_BARCODE` naming the scan; True when one was."""
        for scan in scans:
            hint = None if scan.serial is not None else separator_hint(scan, "21")
            if hint is not None:
                said = f"scan {shown(scan.raw)} carries no serial (AI 21): it reads {read_as(scan)}"
                self.add(
                    ReasonCode.INVALID_BARCODE,
                    f"{said}; {hint}, so the item's Next Serial would give the unit another"
                    " serial than its label's. Have the scanner send the group separator and"
                    " scan again, or type the serials",
                    scan.raw,
                )
                return True
        return False

    def _scanned_without_serial(self, scans: Sequence[Scan], code: ReasonCode, need: str) -> bool:
        """R5: a scan without AI (21) is the likeliest cause of a serialized line short of
        serials (a label without one, or a scanner that ran the serial into the lot): the
        first such scan is named, with what it reads, instead of only the count. False when
        every scan has its serial (the count alone is the problem)."""
        scan = next((scan for scan in scans if scan.serial is None), None)
        if scan is None:
            return False
        said = f"scan {shown(scan.raw)} carries no serial (AI 21): it reads {read_as(scan)}"
        hint = separator_hint(scan, "21")
        if hint is None:
            todo = "scan a label with the unit's serial, or type the serials"
        else:
            todo = (
                f"{hint}; have the scanner send the group separator and scan again, or type "
                "the serials"
            )
        self.add(code, f"{said}; {need}. {todo[0].upper()}{todo[1:]}", scan.raw)
        return True

    def _whole(self, quantity: Decimal, what: str) -> bool:
        """R4: serialized quantities are whole and of a sane size."""
        if quantity != quantity.to_integral_value():
            self.add(
                ReasonCode.INVALID_QUANTITY,
                f"{what} of serialized item {self.item.lic} must be whole, got {number(quantity)}",
                str(quantity),
            )
            return False
        if quantity > self.limits.max_serials_per_line:
            self.add(
                ReasonCode.INVALID_QUANTITY,
                f"{what} {number(quantity)} exceeds the limit of "
                f"{self.limits.max_serials_per_line} serials per line",
                str(quantity),
            )
            return False
        return True

    # -- manufacturer lots (R3, R13) -----------------------------------------------------------

    def lots(self, scans: Sequence[Scan] | None) -> tuple[LotEntry, ...]:
        line, item = self.line, self.item
        if line.lots and not item.track_mfr_lot:
            names = [entry.mfr_lot for entry in line.lots]
            self.add(
                ReasonCode.INVALID_QUANTITY,
                f"item {item.lic} is not tracked by manufacturer lot: got lots {listed(names)}",
                names[0],
            )
            return ()
        if not item.track_mfr_lot:
            return ()
        if scans is None and not line.lots:
            return ()  # the unreadable scan is the problem; its lots are unknown
        given = line.lots or _lots_from_scans(scans or ())
        self.given_lots = tuple(given)
        if not line.lots:
            for scan in reversed(scans or ()):
                if scan.mfr_lot is not None and scan.expires_on is None:
                    self.undated_scans[scan.mfr_lot] = scan
        if line.lots and scans:
            self._scans_agree(line.lots, scans)
        # R13: a return's serials name its units, and allocation puts each back into the lot
        # it was shipped from; lots it names beside them must hold them, but it need not.
        by_serials = self.receipt.is_return and item.serialized and not line.lots
        # A scan without a lot is the short count's cause: named instead of the count.
        short = not line.lots and self._scanned_without_lot(scans or (), by_serials)
        if not given and by_serials:
            return ()
        if not given:
            if not short:
                what = "a customer return of " if self.receipt.is_return else ""
                self.add(
                    ReasonCode.LOT_REQUIRED,
                    f"{what}lot-tracked item {item.lic} needs manufacturer lots covering "
                    f"{number(line.quantity)}",
                    item.lic,
                )
            return ()
        merged = self._merged(given)
        if merged is None:
            return ()
        total = sum((entry.quantity for entry in merged), Decimal(0))
        if total < line.quantity and by_serials:
            # Some units scanned with their lot, others typed or scanned without one: the
            # scanned lots name fewer units than the line and are not sent as its lots; each
            # scanned pair still is (`serial_lots`), as on a shipment line (R5).
            return ()
        if total != line.quantity and not short:
            if line.lots:
                what = f"manufacturer lots total {number(total)}"
            else:  # taken from the scans: the clerk typed none
                what = f"the scans name manufacturer lots for {number(total)} units (one each)"
            self.add(
                ReasonCode.INVALID_QUANTITY,
                f"{what} but the line quantity is {number(line.quantity)}",
                f"{total} != {line.quantity}",
            )
        return merged

    def _scanned_without_lot(self, scans: Sequence[Scan], by_serials: bool) -> bool:
        """R3, R5: a line typing no lots takes one unit of its lot from each scan, so a scan
        without AI (10) leaves its unit without a lot: `LOT_REQUIRED` naming the first such
        scan, when the scanned lots do not cover the line (the scan is the unit missing; a
        product barcode scanned beside labels that cover it is harmless). A return by serials
        needs no lots (its units go back into the lots they were shipped from)."""
        lotless = [scan for scan in scans if scan.mfr_lot is None]
        if not lotless or by_serials:
            return False
        if sum(1 for scan in scans if scan.mfr_lot is not None) >= self.line.quantity:
            return False
        self.add(
            ReasonCode.LOT_REQUIRED,
            f"scan {shown(lotless[0].raw)} carries no manufacturer lot (AI 10), and lot-tracked "
            f"item {self.item.lic} takes the line's lots from its scans, one unit each: scan a "
            "label with the lot, or type the line's lots",
            lotless[0].raw,
        )
        return True

    def _scans_agree(self, typed: Sequence[LotEntry], scans: Sequence[Scan]) -> None:
        """R3, R5: a scan's lot and expiry are read off the unit itself, so they must agree with
        the lots typed on its line (the first scan that does not is the problem): a unit of a
        lot the line does not list, or with another expiry date, cannot be filed under a typed
        lot without a recall of one lot naming units of the other. A return's expiry dates are
        not checked (the units go back into the lots they were shipped from)."""
        expiries: dict[str, set[date | None]] = {}
        for entry in typed:
            expiries.setdefault(entry.mfr_lot, set()).add(entry.expires_on)
        for scan in scans:
            if scan.mfr_lot is None:
                continue
            typed_dates = expiries.get(scan.mfr_lot)
            if typed_dates is None:
                hint = separator_hint(scan)
                self.add(
                    ReasonCode.INVALID_BARCODE,
                    f"scan {shown(scan.raw)} is a unit of manufacturer lot {scan.mfr_lot}, which "
                    f"the line does not list (it lists {listed(expiries)})"
                    + ("" if hint is None else f"; {hint}"),
                    scan.raw,
                )
                return
            # A lot typed without an expiry date is contradicted too: received so, the date on
            # the unit's label would be lost (and the same lot received dated is another stock).
            # A perishable one is refused for that on its own (`_entry_ok`): said once.
            dated = typed_dates - {None} if self.item.perishable else typed_dates
            contradicted = scan.expires_on is not None and dated - {scan.expires_on}
            if contradicted and not self.receipt.is_return:
                self.add(
                    ReasonCode.EXPIRY_REQUIRED,
                    f"scan {shown(scan.raw)} says manufacturer lot {scan.mfr_lot} expires on "
                    f"{scan.expires_on}, but the line lists it {listed_expiring(dated)}",
                    scan.raw,
                )
                return

    def paired(
        self, serials: tuple[str, ...], scans: Sequence[Scan], merged: Sequence[LotEntry]
    ) -> tuple[str, ...]:
        """The serials in the order allocation pairs them with the merged lots (R3, R5, R15):
        a serial scanned with its lot is filed under that lot, so a lot cannot take more of
        them than its quantity (the first scan over is the problem)."""
        quantity = {entry.mfr_lot: entry.quantity for entry in merged}
        room = dict(quantity)
        owners: dict[str, str] = {}  # scanned serial → the lot its scan names
        for scan in scans:
            if scan.serial is None or scan.mfr_lot is None:
                continue
            if room.get(scan.mfr_lot, 0) < 1:
                self.add(
                    ReasonCode.SERIAL_COUNT_MISMATCH,
                    f"scan {shown(scan.raw)} is one more serial of manufacturer lot "
                    f"{scan.mfr_lot} than the line's quantity of that lot "
                    f"({number(quantity.get(scan.mfr_lot, Decimal(0)))})",
                    scan.raw,
                )
                return serials
            room[scan.mfr_lot] -= 1
            owners[scan.serial] = scan.mfr_lot
        return lot_ordered(serials, self.given_lots, merged, owners)

    def _merged(self, given: Iterable[LotEntry]) -> tuple[LotEntry, ...] | None:
        merged: dict[str, LotEntry] = {}
        ok = True
        for entry in given:
            ok = self._entry_ok(entry) and ok
            before = merged.get(entry.mfr_lot)
            if before is None:
                merged[entry.mfr_lot] = entry
                continue
            dates = {before.expires_on, entry.expires_on}
            if len(dates) > 1 and not self.receipt.is_return:
                # A perishable lot's undated entry is refused on its own (`_entry_ok`): said
                # once.
                if not (self.item.perishable and None in dates):
                    self.add(
                        ReasonCode.EXPIRY_REQUIRED,
                        f"manufacturer lot {entry.mfr_lot} is listed {listed_expiring(dates)}",
                        entry.mfr_lot,
                    )
                ok = False
            merged[entry.mfr_lot] = LotEntry(
                mfr_lot=entry.mfr_lot,
                quantity=before.quantity + entry.quantity,
                expires_on=before.expires_on or entry.expires_on,
            )
        return tuple(merged.values()) if ok else None

    def _entry_ok(self, entry: LotEntry) -> bool:
        needs_expiry = self.item.perishable and not self.receipt.is_return
        if needs_expiry and entry.expires_on is None:
            self.add(
                ReasonCode.EXPIRY_REQUIRED,
                f"perishable item {self.item.lic}: manufacturer lot {entry.mfr_lot} needs an "
                f"expiry date{self._expiry_run_into_lot(entry.mfr_lot)}",
                entry.mfr_lot,
            )
            return False
        if self.item.serialized:
            return self._whole(entry.quantity, f"quantity of manufacturer lot {entry.mfr_lot}")
        return True

    def _expiry_run_into_lot(self, mfr_lot: str) -> str:
        """R5: why a lot read from a scan may lack its expiry date, when its text says so (a
        dropped group separator ran AI 17 into the lot); else nothing."""
        scan = self.undated_scans.get(mfr_lot)
        hint = None if scan is None else separator_hint(scan, "17")
        if scan is None or hint is None:
            return ""
        return f"; scan {shown(scan.raw)} carries none (AI 17), and {hint}"


def lot_ordered(
    serials: tuple[str, ...],
    given: Sequence[LotEntry],
    merged: Sequence[LotEntry],
    scanned_lots: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """The serials reordered to follow the merged lots (R3, R5, R15).

    Allocation pairs serials with manufacturer lots by position: the first lot's quantity of
    serials belongs to it, and so on. A serial scanned with its lot (`scanned_lots`: serial →
    manufacturer lot) takes a place of that lot, whatever its position among the serials; the
    others (typed, or scanned without a lot) take the places left in order, over the lots as
    entered or scanned (`given`): serials typed against lots A, B, A pair with them in that
    order. Merging a lot named twice then moves its units together, its serials with them.
    Left as is when the counts do not pair up (that is a problem reported elsewhere)."""
    scanned_lots = scanned_lots or {}
    if not scanned_lots and len(given) == len(merged):
        return serials
    owners = [entry.mfr_lot for entry in given for _ in range(int(entry.quantity))]
    if len(owners) != len(serials):
        return serials
    places: dict[str, deque[int]] = {}
    for place, owner in enumerate(owners):
        places.setdefault(owner, deque()).append(place)
    taken: dict[int, str] = {}
    for serial in serials:
        lot = scanned_lots.get(serial)
        if lot is not None:
            free = places.get(lot)
            if not free:
                return serials  # more than the lot holds: refused by the caller
            taken[free.popleft()] = serial
    rest = iter(serial for serial in serials if serial not in scanned_lots)
    by_lot: dict[str, list[str]] = {}
    for place, owner in enumerate(owners):
        serial = taken[place] if place in taken else next(rest)
        by_lot.setdefault(owner, []).append(serial)
    return tuple(serial for entry in merged for serial in by_lot.get(entry.mfr_lot, ()))


def _serial_lots(scans: Sequence[Scan], item: Item) -> tuple[tuple[str, str], ...]:
    """Each serial scanned with its manufacturer lot (AI 21 with AI 10), paired with that lot
    (R5, R13, R15). A return's units go back into the lots they were shipped from, and only
    allocation knows which those are: it checks each pair, unit by unit, where the lots beside
    the serials only tell it how many of them each lot holds (two serials scanned with each
    other's lots pass). None for an item not both serialized and tracked by lot."""
    if not (item.serialized and item.track_mfr_lot):
        return ()
    return tuple(
        (scan.serial, scan.mfr_lot)
        for scan in scans
        if scan.serial is not None and scan.mfr_lot is not None
    )


def _lots_from_scans(scans: Sequence[Scan]) -> tuple[LotEntry, ...]:
    """Each scan carrying a lot is one unit of that lot (R5)."""
    return tuple(
        LotEntry(mfr_lot=scan.mfr_lot, quantity=Decimal(1), expires_on=scan.expires_on)
        for scan in scans
        if scan.mfr_lot is not None
    )


def _problem(line: ReceiptLine, code: ReasonCode, reason: str, offending: str | None) -> Problem:
    return Problem(
        line_no=line.line_no, lic=line.lic, reason_code=code, reason=reason, offending=offending
    )


# --- settling: allocation's answers -----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Posted:
    """A line allocation accepted, and its inventory lot.

    What the line moved (up to 100,000 serials) is not copied into the core: settling never
    looks at it, and the service passes allocation's own answer through to the status.
    """

    line_no: int
    lic: str
    quantity: Decimal
    lot_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LineOutcome:
    """A sent line and what allocation answered: `posted`, refused (`problem`), or `held`
    (accepted, waiting for `ConfirmHeld` / `CancelHeld`); none of them: still waiting."""

    line_no: int
    lic: str
    posted: Posted | None = None
    problem: Problem | None = None
    held: bool = False

    @property
    def pending(self) -> bool:
        return self.posted is None and self.problem is None and not self.held


@dataclass(frozen=True, slots=True, kw_only=True)
class Settled:
    """The document's final status: posted lines, and the refused ones (none: posted).

    `cancelled`: held lines to undo because another line was refused (the document is
    rejected and, being held, nothing of it was posted).
    """

    posted: tuple[Posted, ...]
    problems: tuple[Problem, ...]
    cancelled: tuple[LineOutcome, ...] = ()

    @property
    def fully_posted(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True, kw_only=True)
class Confirm:
    """Every line is held: confirm each; their posted answers settle the document later."""

    held: tuple[LineOutcome, ...]


def settle(outcomes: Sequence[LineOutcome]) -> Settled | Confirm | None:
    """What to do once every line is answered; None while any line waits.

    Held lines are confirmed when no line is refused, else cancelled with the document
    rejected. Without held lines (a single-line document, or the confirmed lines' answers):
    posted when every line posted, else rejected naming the posted lines too.
    """
    if any(outcome.pending for outcome in outcomes):
        return None
    ordered = sorted(outcomes, key=lambda outcome: outcome.line_no)
    held = tuple(o for o in ordered if o.held)
    problems = tuple(o.problem for o in ordered if o.problem is not None)
    if held and not problems:
        return Confirm(held=held)
    return Settled(
        # A held document posts nothing before every line is confirmed: normally empty when
        # lines are cancelled, but a line allocation did post is never hidden.
        posted=tuple(o.posted for o in ordered if o.posted is not None),
        problems=problems,
        cancelled=held,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """Allocation's answer to one line command: the line posted, the problem it refused, or
    (`held`) the line accepted and held."""

    command_id: str
    posted: Posted | None = None
    problem: Problem | None = None
    held: bool = False


# --- posting: what a posted document's status says --------------------------------------------


class PostedLine(Protocol):
    """A posted line and what it moved (`LineResult`, allocation's answer passed through)."""

    @property
    def line_no(self) -> int: ...
    @property
    def lic(self) -> str: ...
    @property
    def movements(self) -> Sequence[MovementValues]: ...


class HeldRule(Protocol):
    """A quarantine in force, as its `QuarantineStock` named it (None: any)."""

    @property
    def quarantine_id(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def mfr_lot(self) -> str | None: ...
    @property
    def lot_id(self) -> str | None: ...
    @property
    def office(self) -> str | None: ...


class HeldUnits(Protocol):
    """Units of one inventory lot and manufacturer lot a posted line put in stock that a
    quarantine holds (allocation's `HeldOnArrival`)."""

    @property
    def lot_id(self) -> str: ...
    @property
    def mfr_lot(self) -> str | None: ...
    @property
    def quantity(self) -> Decimal: ...
    @property
    def quarantine(self) -> HeldRule: ...


@runtime_checkable
class ArrivedLine(PostedLine, Protocol):
    """A posted line with the units a quarantine held as they arrived, as receiving keeps its
    lines (`translate.line_result`); a line without them is read as holding none."""

    @property
    def quarantined(self) -> Sequence[HeldUnits]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Posting:
    """A document whose every line posted: what its status's warnings are read from.

    `stored`: the warnings found when it was checked (`Checked.warnings`)."""

    source: Source
    received_on: date
    lines: Sequence[PostedLine]
    stored: Sequence[ReceiptWarning] = ()

    @property
    def is_return(self) -> bool:
        return self.source == "customer_return"


def posting_warnings(
    posting: Posting, items: Mapping[str, Item], limit: int
) -> tuple[ReceiptWarning, ...]:
    """What a posted document's `ReceiptPosted` warns of: the warnings found when it was
    checked (`expiry_warnings`), then, for a customer return, each perishable manufacturer lot
    it put back already expired (`returned_expired`), then the units a quarantine holds as
    they arrived (`quarantined_on_arrival`); at most `limit` in all, the last listed saying
    how many more there are. (A return has no warnings from its check, so the first two never
    share the room.)"""
    found = list(posting.stored)
    if posting.is_return:
        found += returned_expired(posting, items)
    found += quarantined_on_arrival(posting)
    return _at_most(found, limit) if found else ()


def quarantined_on_arrival(posting: Posting) -> list[ReceiptWarning]:
    """`LOT_QUARANTINED_ON_RECEIPT` (`_ON_RETURN` for a customer return) for the units each
    line put in stock that a quarantine in force holds, as allocation answered: one per line,
    inventory lot, manufacturer lot and quarantine. They are posted (the goods are there) and
    no sale takes them, but unless the dock hears it at once, recalled goods go on the shelf
    beside good ones: the warning says to put them in quarantine storage, and what releases
    them."""
    found = []
    for line in posting.lines:
        if not isinstance(line, ArrivedLine) or not line.quarantined:
            continue
        expiries = {
            (moved.lot_id, moved.mfr_lot): moved.expires_on
            for moved in line.movements
            if moved.expires_on is not None
        }
        for held in line.quarantined:
            others = [
                other.quarantine.quarantine_id
                for other in line.quarantined
                if (other.lot_id, other.mfr_lot) == (held.lot_id, held.mfr_lot)
                and other.quarantine.quarantine_id != held.quarantine.quarantine_id
            ]
            expires_on = expiries.get((held.lot_id, held.mfr_lot))
            found.append(_quarantined(posting, line, held, expires_on, others))
    return found


def _quarantined(
    posting: Posting,
    line: PostedLine,
    held: HeldUnits,
    expires_on: date | None,
    others: Sequence[str],
) -> ReceiptWarning:
    """The warning for units of one lot a quarantine holds on arrival: the units, the lot, the
    quarantine and why, and what the dock does (the release named as the rule was sent)."""
    rule = held.quarantine
    units = f"{number(held.quantity)} unit{'' if held.quantity == 1 else 's'}"
    what = f"manufacturer lot {held.mfr_lot} of {line.lic}" if held.mfr_lot else line.lic
    # The reason in full is the quarantine's; a long one would crowd out what to do.
    reason = rule.reason if len(rule.reason) <= 200 else rule.reason[:200] + "…"
    why = f"quarantine {rule.quarantine_id}" + (f" ({reason})" if reason else "")
    if posting.is_return:
        came = (
            f"came back into inventory lot {held.lot_id}, the lot they were shipped from, "
            f"which {why} holds"
        )
    else:
        came = f"arrived in quarantine: {why} holds them. They are received into inventory lot "
        came += f"{held.lot_id} all the same, on hand but not for sale"
    sent = ", ".join(
        f"{name} {value}" if value else f"no {name}"
        for name, value in (
            ("mfr_lot", rule.mfr_lot),
            ("lot_id", rule.lot_id),
            ("office", rule.office),
        )
    )
    also = ""
    if others:
        also = (
            f"; {'quarantine' if len(others) == 1 else 'quarantines'} {listed(others)} "
            f"hold{'s' if len(others) == 1 else ''} them too: release each"
        )
    message = (
        f"{units} of {what} (line {line.line_no}) {came}: put the units in quarantine "
        f"storage; they cannot ship until QuarantineStock with quarantined=false releases "
        f"{rule.quarantine_id} (with {sent}, as it was sent){also}."
    )
    return ReceiptWarning(
        line_no=line.line_no,
        lic=line.lic,
        code="LOT_QUARANTINED_ON_RETURN" if posting.is_return else "LOT_QUARANTINED_ON_RECEIPT",
        mfr_lot=held.mfr_lot,
        expires_on=expires_on,
        message=message,
        lot_id=held.lot_id,
        quarantine_id=rule.quarantine_id,
    )


def returned_expired(posting: Posting, items: Mapping[str, Item]) -> list[ReceiptWarning]:
    """`LOT_EXPIRED_ON_RETURN` for each perishable manufacturer lot a customer return put back
    already expired: `expires_on` (the lot's, as allocation answered) before the return's
    `received_on`. The units are back on the shelf, and no sale will ever take them (R9), so
    the clerk must hear it at once.

    One warning per line, manufacturer lot and inventory lot it went back into (each is
    quarantined on its own), with its units counted: a serialized return's units count by
    their lot. A lot expiring on the return day itself is not expired (allocation ships it
    that day, R9), as for a receipt (`expiry_warnings`); nor is a lot of an item that is not
    perishable (allocation ignores its expiry)."""
    found = []
    for line in posting.lines:
        item = items.get(line.lic)
        if item is None or not item.perishable:
            continue
        units: dict[tuple[str, str, date], Decimal] = {}
        for moved in line.movements:
            lot_id, mfr_lot, expires_on = moved.lot_id, moved.mfr_lot, moved.expires_on
            if lot_id is None or mfr_lot is None or expires_on is None:
                continue
            if expires_on < posting.received_on:
                key = (lot_id, mfr_lot, expires_on)
                units[key] = units.get(key, Decimal(0)) + moved.quantity
        found += [
            _expired_on_return(posting, line, key, quantity) for key, quantity in units.items()
        ]
    return found


def _expired_on_return(
    posting: Posting, line: PostedLine, lot: tuple[str, str, date], quantity: Decimal
) -> ReceiptWarning:
    """The warning for `quantity` units of one manufacturer lot (inventory lot, manufacturer
    lot, expiry) a return put back expired: the lot, the units, the dates and what to do."""
    lot_id, mfr_lot, expires_on = lot
    days = (posting.received_on - expires_on).days
    units = f"{number(quantity)} unit{'' if quantity == 1 else 's'}"
    message = (
        f"manufacturer lot {mfr_lot} of {line.lic} (line {line.line_no}, {units}) came back "
        f"expired: its expiry date, {expires_on}, is {days} day{'s' if days > 1 else ''} "
        f"before the return's receipt date, {posting.received_on}. It is back in inventory lot "
        f"{lot_id}, the lot it was shipped from, all the same, and no sale shipping after its "
        "expiry will take it: "
        f"quarantine it (QuarantineStock with lic {line.lic}, mfr_lot {mfr_lot}, lot_id "
        f"{lot_id}) or write it off (AdjustInventory of kind loss naming lot {mfr_lot})."
    )
    return ReceiptWarning(
        line_no=line.line_no,
        lic=line.lic,
        code="LOT_EXPIRED_ON_RETURN",
        mfr_lot=mfr_lot,
        expires_on=expires_on,
        message=message,
        lot_id=lot_id,
    )
