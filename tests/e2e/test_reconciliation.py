"""Reconciliation: after a randomized workload through the real stack, the services agree.

The four services run as OS processes against a real broker and PostgreSQL (`running`). An
upstream system (`shared.send`) publishes a seeded, randomized workload in rounds: items of
each kind (plain, perishable lot-tracked, serialized with and without a Next Serial, R6),
purchase and production receipts of one to three lines (several manufacturer lots, some
expiring during the run; serials as lists, typed text and spans, or generated), beginning
balances (a serial that left stock may come back), sales with and without picks (FEFO/FIFO,
R9) that are shipped, cancelled, re-picked, requested again (quantities changed, a line
dropped, a new ship date, a cancelled sale reopened) or refused (asking too much, naming a
serial that is not free), returns to vendor (R14), counts and losses both ways (R11, R12),
customer returns of one or two lines naming shipped lots and serials (R13), and documents
that must be refused: more returned than shipped, a serial never shipped, a receipt naming a
serial in stock, a count putting back more than was used, a ship request before every line is
allocated and covered (R8), a cancel, picks update or request for a shipped sale. Within a
round no two documents touch the same LIC, so no outcome depends on how partitions
interleave; each round waits for every document's answer before the next is built.

A plain-Python model (`Model`) applies the rules to the same documents: it predicts each
answer (type, reason codes, the lots and serials each line takes or puts back) and what every
lot, manufacturer lot, serial, allocation and office should hold afterwards. Then:

- every answer is the one the model predicts, and every document got exactly one answer
  (`inventory.status` per document id and `inventory.events` per command id, read from the
  beginning; nothing dead-lettered; the ledger's dashboard shows each document's last answer);
- allocation agrees with itself: per lot received − used = on hand, mfr lots and units add up
  to their lot, open allocations add up to what is allocated, nothing is left held, no serial
  is in stock twice;
- the ledger's tables equal allocation's, lot by lot (received, used, current = on hand,
  allocated), mfr lot by mfr lot, serial by serial, office by office (unallocated stock), and
  its usage records add up to each lot's used quantity;
- both equal the model, usage records and customer shipments included;
- the read API shows the same: `/lots?lic=`, `/lots/{id}` (quantities, value, mfr lots,
  serials, COGS), `/items/{lic}` (stock by office), `/usage?lic=` (each record costed at its
  lot's cost), `/serials/{lic}/{serial}` (status, lot, a history that nets to it) and
  `/trace?lic=&mfr_lot=` (stock changes netting to what is left, the customers shipped).

`LOTLINE_RECON_SEED` and `LOTLINE_RECON_ROUNDS` replay another workload. A failure names the
seed, round and document (`seed S round R doc D`) and prints every document with its answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.send import check, send
from tests.fixtures.infra import LotlineEnv

SEED = int(os.environ.get("LOTLINE_RECON_SEED", "20261101"))
ROUNDS = int(os.environ.get("LOTLINE_RECON_ROUNDS", "40"))
ANSWER_WAIT = 60.0
OFFICES = ("MAIN", "EAST")
CUSTOMERS = ("ACME Hospital", "Corner Shop", "Northside Clinic")
VENDOR = "Acme Supply"
START = dt.date(2026, 3, 2)

ZERO = Decimal(0)
ONE = Decimal(1)
IN_STOCK = ("available", "allocated")

Key = tuple[str, str | None, str | None]
"""(lot_id, mfr_lot, serial): where a movement took or put units."""
Pick = tuple[str, str | None, str | None, Decimal]
"""(lot_id, mfr_lot, serial, quantity)."""
Moves = dict[Key, Decimal]
"""Units moved, per (lot_id, mfr_lot, serial)."""


def dec(value: Any) -> Decimal:
    return Decimal(str(value))


def picked_lines(specs: Sequence[SaleLineSpec]) -> list[dict[str, Any]]:
    """Document lines numbered from 1, with their lots and serials when named."""
    lines = []
    for line_no, spec in enumerate(specs, start=1):
        line: dict[str, Any] = {"line_no": line_no, "lic": spec.lic, "quantity": num(spec.quantity)}
        if spec.lots:
            line["lots"] = [{"mfr_lot": n, "quantity": num(q)} for n, q in spec.lots]
        if spec.serials:
            line["serials"] = list(spec.serials)
        lines.append(line)
    return lines


def num(value: Decimal) -> int | str:
    """A quantity as the JSON an upstream system would write."""
    return int(value) if value == value.to_integral_value() else format(value, "f")


class Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# ---------------------------------------------------------------------------------------------
# The model: the rules of DESIGN §5 applied to the workload's documents, in plain Python.
# ---------------------------------------------------------------------------------------------


@dataclass
class MfrRow:
    lot_id: str
    name: str
    expires_on: dt.date | None
    initial: Decimal
    on_hand: Decimal
    allocated: Decimal = ZERO
    used: Decimal = ZERO

    @property
    def free(self) -> Decimal:
        return self.on_hand - self.allocated


@dataclass
class Unit:
    serial: str
    lot_id: str
    position: int
    status: str = "available"
    customer: str | None = None


@dataclass
class Lot:
    lot_id: str
    lic: str
    office: str
    kind: str
    received_on: dt.date
    seq: int
    unit_cost: Decimal
    received: Decimal
    on_hand: Decimal
    allocated: Decimal = ZERO
    used: Decimal = ZERO
    mfr: dict[str, MfrRow] = field(default_factory=dict)

    @property
    def arrival(self) -> tuple[dt.date, int]:
        return (self.received_on, self.seq)

    @property
    def free(self) -> Decimal:
        return self.on_hand - self.allocated


@dataclass
class Item:
    lic: str
    kind: str  # plain | lot | serial
    est_cost: Decimal
    next_serial: str | None = None
    lots: dict[str, Lot] = field(default_factory=dict)
    units: dict[tuple[str, str], Unit] = field(default_factory=dict)  # (serial, lot_id)
    unallocated: dict[str, Decimal] = field(default_factory=dict)
    seq: int = 0

    @property
    def perishable(self) -> bool:
        return self.kind == "lot"

    def lot_of(self, unit: Unit) -> Lot:
        return self.lots[unit.lot_id]

    def with_serial(self, serial: str) -> list[Unit]:
        return [u for (s, _), u in self.units.items() if s == serial]

    def in_stock(self, serial: str) -> Unit | None:
        return next((u for u in self.with_serial(serial) if u.status in IN_STOCK), None)

    def latest(self, serial: str) -> Unit | None:
        units = self.with_serial(serial)
        return max(units, key=lambda u: self.lot_of(u).seq) if units else None


@dataclass
class ShipLine:
    line_no: int
    lic: str
    quantity: Decimal
    picks: list[Pick] = field(default_factory=list)  # the allocation that stands (or stood)
    status: str = "failed"  # shipping's view: allocated | failed | shipped | released
    problem: str | None = None  # its newest picks' refusal (the old allocation may stand)
    complete: bool = False  # R8: the picks cover the line
    row: str | None = None  # allocation's row of the line: allocated | released | shipped
    row_complete: bool = False

    @property
    def unsettled(self) -> bool:
        """Listed among a status's problems: not allocated, or its newest picks refused."""
        return self.status not in ("allocated", "shipped") or self.problem is not None


@dataclass
class Shipment:
    sid: str
    office: str
    kind: str
    counterparty: str
    ship_on: dt.date
    lines: dict[int, ShipLine]
    status: str = "open"  # open | shipped | cancelled
    dropped: list[ShipLine] = field(default_factory=list)  # lines a resend left out

    @property
    def shippable(self) -> bool:
        """R8: every line allocated and complete."""
        return all(line.status == "allocated" and line.complete for line in self.lines.values())

    @property
    def lics(self) -> set[str]:
        return {line.lic for line in self.lines.values()}


@dataclass
class Expect:
    """The answer the model predicts for one document."""

    answer: str
    reason: str | None = None
    problems: dict[int, str] = field(default_factory=dict)  # line_no -> reason code
    moves: dict[int, Moves] = field(default_factory=dict)  # line_no -> movements
    lot_ids: dict[int, str | None] = field(default_factory=dict)
    generated: dict[int, list[str]] = field(default_factory=dict)
    adjusted: Moves | None = None  # InventoryAdjusted movements, signed
    refused: str | None = None  # a refused cancel's reason code
    adjustment_lot: str | None = None


def moves_of(picks: Iterable[Pick], sign: int = 1) -> Moves:
    out: defaultdict[Key, Decimal] = defaultdict(Decimal)
    for lot_id, mfr, serial, quantity in picks:
        out[(lot_id, mfr, serial)] += sign * quantity
    return nonzero(out)


def nonzero(tally: dict[Any, Decimal]) -> dict[Any, Decimal]:
    return {k: v for k, v in tally.items() if v}


@dataclass
class ReceiptLineSpec:
    lic: str
    quantity: Decimal
    unit_cost: Decimal | None = None
    lots: list[tuple[str, dt.date | None, Decimal]] = field(default_factory=list)
    serials: list[str] | None = None  # None: generated from the Next Serial (R6)
    serial_style: str = "list"  # list | typed | span


@dataclass
class SaleLineSpec:
    lic: str
    quantity: Decimal
    lots: list[tuple[str, Decimal]] = field(default_factory=list)
    serials: list[str] = field(default_factory=list)


class Model:
    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self.shipments: dict[str, Shipment] = {}
        # (lic, lot_id, mfr_lot or "", customer) -> [shipped, returned]
        self.sold: dict[tuple[str, str, str, str], list[Decimal]] = {}
        # (lic, document, source, lot_id, mfr_lot, serial) -> signed usage quantity
        self.usage: defaultdict[
            tuple[str, str, str, str | None, str | None, str | None], Decimal
        ] = defaultdict(Decimal)

    # -- stock queries ------------------------------------------------------------------------

    def lots_at(self, item: Item, office: str, *, stocked: bool = False) -> list[Lot]:
        lots = [
            lot
            for lot in item.lots.values()
            if lot.office == office and (not stocked or lot.on_hand > 0)
        ]
        return sorted(lots, key=lambda lot: lot.arrival)

    def row_order(self, item: Item, row: MfrRow) -> tuple[dt.date, tuple[dt.date, int], str]:
        expiry = row.expires_on if item.perishable and row.expires_on else dt.date.max
        return (expiry, item.lots[row.lot_id].arrival, row.name)

    def fresh_rows(self, item: Item, office: str, ship_on: dt.date, fresh: bool) -> list[MfrRow]:
        rows = [r for lot in self.lots_at(item, office, stocked=True) for r in lot.mfr.values()]
        if fresh:
            rows = [r for r in rows if not expired(r, ship_on)]
        return sorted(rows, key=lambda r: self.row_order(item, r))

    def free_units(self, item: Item, office: str) -> list[Unit]:
        units = [
            u
            for u in item.units.values()
            if u.status == "available"
            and item.lot_of(u).office == office
            and item.lot_of(u).on_hand > 0
        ]
        return sorted(units, key=lambda u: (item.lot_of(u).arrival, u.position))

    def free_at(self, item: Item, office: str, ship_on: dt.date, fresh: bool = True) -> Decimal:
        if item.kind == "serial":
            return Decimal(len(self.free_units(item, office)))
        if item.kind == "lot":
            return sum((r.free for r in self.fresh_rows(item, office, ship_on, fresh)), ZERO)
        return sum((lot.free for lot in self.lots_at(item, office, stocked=True)), ZERO)

    # -- deciding (allocation's rules, R9) -------------------------------------------------------

    @staticmethod
    def fill(quantity: Decimal, sources: Iterable[tuple[str, str | None, Decimal]]) -> list[Pick]:
        picks: list[Pick] = []
        left = quantity
        for lot_id, mfr, free in sources:
            if free <= 0 or left <= 0:
                continue
            take = min(free, left)
            picks.append((lot_id, mfr, None, take))
            left -= take
        if left > 0:
            raise Refused("INSUFFICIENT_STOCK")
        return picks

    def automatic(
        self, item: Item, office: str, quantity: Decimal, ship_on: dt.date, fresh: bool
    ) -> list[Pick]:
        if item.kind == "serial":
            units = self.free_units(item, office)
            if len(units) < quantity:
                raise Refused("INSUFFICIENT_STOCK")
            return [(u.lot_id, None, u.serial, ONE) for u in units[: int(quantity)]]
        if item.kind == "lot":
            rows = self.fresh_rows(item, office, ship_on, fresh)
            return self.fill(quantity, ((r.lot_id, r.name, r.free) for r in rows))
        lots = self.lots_at(item, office, stocked=True)
        return self.fill(quantity, ((lot.lot_id, None, lot.free) for lot in lots))

    def named_lots(
        self,
        item: Item,
        office: str,
        entries: list[tuple[str, Decimal]],
        ship_on: dt.date,
        fresh: bool,
    ) -> list[Pick]:
        taken: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
        merged: dict[tuple[str, str | None], Decimal] = {}
        for name, quantity in entries:
            stocked = self.lots_at(item, office, stocked=True)
            every = [lot.mfr[name] for lot in stocked if name in lot.mfr]
            if not every:
                every = [lot.mfr[name] for lot in self.lots_at(item, office) if name in lot.mfr]
            if not every:
                raise Refused("LOT_NOT_FOUND")
            rows = [r for r in every if not (fresh and expired(r, ship_on))]
            if not rows:
                raise Refused("LOT_EXPIRED")
            rows.sort(key=lambda r: self.row_order(item, r))
            got = self.fill(
                quantity, ((r.lot_id, r.name, r.free - taken[(r.lot_id, r.name)]) for r in rows)
            )
            for lot_id, mfr, _, q in got:
                taken[(lot_id, name)] += q
                merged[(lot_id, mfr)] = merged.get((lot_id, mfr), ZERO) + q
        return [(lot_id, mfr, None, q) for (lot_id, mfr), q in merged.items()]

    def named_serials(self, item: Item, office: str, serials: list[str]) -> list[Pick]:
        picks: list[Pick] = []
        for serial in serials:
            unit = item.in_stock(serial)
            if unit is None or unit.status != "available" or item.lot_of(unit).office != office:
                raise Refused("SERIAL_NOT_AVAILABLE")
            picks.append((unit.lot_id, None, serial, ONE))
        return picks

    # -- applying ---------------------------------------------------------------------------

    def move(self, item: Item, picks: Iterable[Pick], **deltas: int) -> None:
        for lot_id, mfr, _, quantity in picks:
            lot = item.lots[lot_id]
            targets: list[Lot | MfrRow] = [lot] if mfr is None else [lot, lot.mfr[mfr]]
            for target in targets:
                for name, sign in deltas.items():
                    setattr(target, name, getattr(target, name) + sign * quantity)

    def set_units(
        self, item: Item, picks: Iterable[Pick], status: str, customer: str | None
    ) -> None:
        for lot_id, _, serial, _ in picks:
            if serial is not None:
                unit = item.units[(serial, lot_id)]
                unit.status = status
                unit.customer = customer

    def use(self, lic: str, document: str, source: str, picks: Iterable[Pick], sign: int) -> None:
        for lot_id, mfr, serial, quantity in picks:
            self.usage[(lic, document, source, lot_id, mfr, serial)] += sign * quantity

    # -- documents ----------------------------------------------------------------------------

    def upsert_item(
        self, lic: str, kind: str, est_cost: Decimal, next_serial: str | None
    ) -> Expect:
        self.items[lic] = Item(lic=lic, kind=kind, est_cost=est_cost, next_serial=next_serial)
        return Expect("ItemUpserted")

    def _new_lot(
        self,
        item: Item,
        lot_id: str,
        office: str,
        kind: str,
        received_on: dt.date,
        spec: ReceiptLineSpec,
    ) -> tuple[Lot, Moves, list[str]]:
        """Validate and build one new lot (receipt line or beginning balance); nothing is
        stored: the caller adds it once the whole document is accepted."""
        generated: list[str] = []
        serials = spec.serials
        if item.kind == "serial" and serials is None:
            assert item.next_serial is not None
            serials = generated = serial_run(item.next_serial, int(spec.quantity))
        for serial in serials or ():
            if item.in_stock(serial) is not None:
                raise Refused("DUPLICATE_SERIAL")
        item.seq += 1
        lot = Lot(
            lot_id=lot_id,
            lic=item.lic,
            office=office,
            kind=kind,
            received_on=received_on,
            seq=item.seq,
            unit_cost=spec.unit_cost if spec.unit_cost is not None else item.est_cost,
            received=spec.quantity,
            on_hand=spec.quantity,
        )
        moved: defaultdict[Key, Decimal] = defaultdict(Decimal)
        for name, expires_on, quantity in spec.lots:
            lot.mfr[name] = MfrRow(lot_id, name, expires_on, quantity, quantity)
            moved[(lot_id, name, None)] += quantity
        for serial in serials or ():
            moved[(lot_id, None, serial)] += ONE
        if not moved:
            moved[(lot_id, None, None)] = spec.quantity
        return lot, moved, generated

    def _store_lot(self, item: Item, lot: Lot, serials: list[str]) -> None:
        item.lots[lot.lot_id] = lot
        for position, serial in enumerate(serials):
            item.units[(serial, lot.lot_id)] = Unit(serial, lot.lot_id, position)

    def receipt(
        self,
        sid: str,
        office: str,
        source: str,
        received_on: dt.date,
        lines: list[ReceiptLineSpec],
    ) -> Expect:
        """R3–R7: every line a new lot, or (a line refused) nothing at all. Each line is
        decided by its own LIC's writer, so serials a line took from the Next Serial stay
        taken when another line is refused (holding.py: a gap, never a serial issued twice)."""
        built = []
        refusals = []
        saved = {spec.lic: self.items[spec.lic].seq for spec in lines}
        for line_no, spec in enumerate(lines, start=1):
            item = self.items[spec.lic]
            try:
                lot, moved, generated = self._new_lot(
                    item, f"{sid}/{line_no}", office, source, received_on, spec
                )
            except Refused as refused:
                refusals.append(refused.code)
                continue
            if generated:
                item.next_serial = next_after(generated[-1])
            built.append((item, lot, moved, generated or spec.serials or []))
        if refusals:
            for lic, seq in saved.items():
                self.items[lic].seq = seq
            return Expect("ReceiptRejected", reason=refusals[0])
        expect = Expect("ReceiptPosted")
        for line_no, (item, lot, moved, serials) in enumerate(built, start=1):
            self._store_lot(item, lot, serials)
            expect.moves[line_no] = moved
            expect.lot_ids[line_no] = lot.lot_id
            if item.kind == "serial" and lines[line_no - 1].serials is None:
                expect.generated[line_no] = list(serials)
        return expect

    def beginning_balance(
        self, adjustment_id: str, lic: str, office: str, on: dt.date, spec: ReceiptLineSpec
    ) -> Expect:
        """R11: a beginning balance always creates a new adjustment lot."""
        item = self.items[lic]
        seq = item.seq
        try:
            lot, moved, _ = self._new_lot(
                item, f"{adjustment_id}/{lic}/BB", office, "adjustment", on, spec
            )
        except Refused as refused:
            item.seq = seq
            return Expect("CommandRejected", reason=refused.code)
        self._store_lot(item, lot, spec.serials or [])
        return Expect("InventoryAdjusted", adjusted=moved, adjustment_lot=lot.lot_id)

    def sale(
        self,
        sid: str,
        office: str,
        kind: str,
        counterparty: str,
        ship_on: dt.date,
        lines: list[SaleLineSpec],
    ) -> Expect:
        """R9: each line allocated (named picks, else FEFO/FIFO) or refused on its own."""
        shipment = Shipment(sid, office, kind, counterparty, ship_on, {})
        self.shipments[sid] = shipment
        for line_no, spec in enumerate(lines, start=1):
            line = ShipLine(line_no, spec.lic, spec.quantity)
            shipment.lines[line_no] = line
            self._allocate(shipment, line, spec)
        return self._allocation_answer(shipment)

    def picks_update(self, sid: str, line_no: int, spec: SaleLineSpec) -> Expect:
        """R9: a line re-allocated to its new picks; refused, the old allocation stands."""
        shipment = self.shipments[sid]
        if shipment.status != "open":  # cancelled or shipped: its picks can no longer change
            return self._closed_answer(shipment)
        self._reallocate(shipment, shipment.lines[line_no], spec)
        return self._allocation_answer(shipment)

    def _reallocate(self, shipment: Shipment, line: ShipLine, spec: SaleLineSpec) -> None:
        """Allocation releases the line's allocation and allocates anew in one decision; the
        new one refused, the old one stands (for a quantity it may no longer cover, R8)."""
        item = self.items[line.lic]
        old = line.picks if line.status == "allocated" else []
        was_complete = line.complete
        self.move(item, old, allocated=-1)
        self.set_units(item, old, "available", None)
        line.quantity = spec.quantity
        if self._allocate(shipment, line, spec):
            return
        if old:
            self.move(item, old, allocated=1)
            self.set_units(item, old, "allocated", None)
            line.complete = was_complete and sum((p[3] for p in old), ZERO) == line.quantity
        else:
            line.status = "failed"  # nothing stands

    def _release(self, line: ShipLine) -> None:
        if line.status == "allocated":
            item = self.items[line.lic]
            self.move(item, line.picks, allocated=-1)
            self.set_units(item, line.picks, "available", None)
            line.row = "released"
        line.status = "released"

    def resend(self, sid: str, ship_on: dt.date, lines: dict[int, SaleLineSpec]) -> Expect:
        """A request again for a saved shipment (open or cancelled): lines left out are
        released and dropped, each line asked for is (re)allocated. New terms (here: the ship
        date) release every allocation first, so none stands on the old ones."""
        shipment = self.shipments[sid]
        if shipment.status == "shipped":
            return self._closed_answer(shipment)
        moved = ship_on != shipment.ship_on
        for line_no, line in list(shipment.lines.items()):
            if line_no not in lines or moved:
                self._release(line)
            if line_no not in lines:
                shipment.dropped.append(shipment.lines.pop(line_no))
        shipment.ship_on, shipment.status = ship_on, "open"
        for line_no, spec in sorted(lines.items()):
            if line_no not in shipment.lines:
                shipment.lines[line_no] = ShipLine(line_no, spec.lic, spec.quantity)
            self._reallocate(shipment, shipment.lines[line_no], spec)
        return self._allocation_answer(shipment)

    @staticmethod
    def _closed_answer(shipment: Shipment) -> Expect:
        """Shipped is final (a request or picks update is refused UNKNOWN_SHIPMENT), and a
        cancelled shipment's picks no longer change (requested again, it reopens)."""
        moves = {
            n: moves_of(line.picks)
            for n, line in shipment.lines.items()
            if line.status in ("allocated", "shipped")
        }
        return Expect(
            "ShipmentAllocationFailed",
            reason="UNKNOWN_SHIPMENT",
            problems={None: "UNKNOWN_SHIPMENT"},  # type: ignore[dict-item]
            moves=moves,
        )

    def _allocate(self, shipment: Shipment, line: ShipLine, spec: SaleLineSpec) -> bool:
        item = self.items[line.lic]
        fresh = item.perishable and shipment.kind == "sale"
        office, ship_on = shipment.office, shipment.ship_on
        try:
            if spec.serials:
                picks = self.named_serials(item, office, spec.serials)
            elif spec.lots:
                picks = self.named_lots(item, office, spec.lots, ship_on, fresh)
            else:
                picks = self.automatic(item, office, line.quantity, ship_on, fresh)
        except Refused as refused:
            line.problem = refused.code
            return False
        self.move(item, picks, allocated=1)
        self.set_units(item, picks, "allocated", None)
        line.picks, line.status, line.problem = picks, "allocated", None
        line.complete = sum((p[3] for p in picks), ZERO) == line.quantity
        line.row, line.row_complete = "allocated", line.complete
        return True

    @staticmethod
    def _allocation_answer(shipment: Shipment) -> Expect:
        lines = shipment.lines.values()
        problems = {
            line.line_no: line.problem or "SHIPMENT_INCOMPLETE" for line in lines if line.unsettled
        }
        moves = {line.line_no: moves_of(line.picks) for line in lines if line.status == "allocated"}
        if not problems:
            return Expect("ShipmentAllocated", moves=moves)
        reason = problems[min(problems)]
        return Expect("ShipmentAllocationFailed", reason=reason, problems=problems, moves=moves)

    def ship(self, sid: str) -> Expect:
        """R8, R10, R14: every line allocated, else refused SHIPMENT_INCOMPLETE."""
        shipment = self.shipments[sid]
        if not shipment.shippable:
            return Expect("ShipmentShipRefused", reason="SHIPMENT_INCOMPLETE")
        sale = shipment.kind == "sale"
        source = "shipment" if sale else "vendor_return"
        expect = Expect("ShipmentShipped")
        for line in shipment.lines.values():
            item = self.items[line.lic]
            self.move(item, line.picks, allocated=-1, on_hand=-1, used=1)
            customer = shipment.counterparty if sale else None
            self.set_units(item, line.picks, "shipped" if sale else "returned_to_vendor", customer)
            self.use(line.lic, sid, source, line.picks, 1)
            if sale:
                for lot_id, mfr, _, quantity in line.picks:
                    row = self.sold.setdefault(
                        (line.lic, lot_id, mfr or "", shipment.counterparty), [ZERO, ZERO]
                    )
                    row[0] += quantity
            line.status, line.problem, line.row = "shipped", None, "shipped"
            expect.moves[line.line_no] = moves_of(line.picks)
        shipment.status = "shipped"
        return expect

    def cancel(self, sid: str) -> Expect:
        shipment = self.shipments[sid]
        if shipment.status == "shipped":  # a shipped shipment cannot be cancelled
            return Expect("ShipmentCancelled", refused="UNKNOWN_SHIPMENT")
        expect = Expect("ShipmentCancelled")
        for line in shipment.lines.values():
            if line.status == "allocated":
                expect.moves[line.line_no] = moves_of(line.picks)
            self._release(line)
        shipment.status = "cancelled"
        return expect

    def adjust(
        self,
        adjustment_id: str,
        lic: str,
        office: str,
        kind: str,
        quantity: Decimal,
        on: dt.date,
        lots: list[tuple[str, Decimal]],
        serials: list[str],
    ) -> Expect:
        """R11, R12: a count or loss removes named (plain: unallocated, then FIFO) stock, or
        puts back usage (plain: newest lots first, the rest unallocated)."""
        item = self.items[lic]
        try:
            if quantity < 0:
                moved, unallocated = self._remove(item, office, -quantity, on, lots, serials)
                self.move(item, moved, on_hand=-1, used=1)
                self.set_units(item, moved, "removed", None)
                self.use(lic, adjustment_id, kind, moved, 1)
                sign = -1
            else:
                moved, unallocated = self._put_back(item, office, quantity, lots, serials)
                self.move(item, moved, on_hand=1, used=-1)
                self.set_units(item, moved, "available", None)
                self.use(lic, adjustment_id, kind, moved, -1)
                sign = 1
        except Refused as refused:
            return Expect("CommandRejected", reason=refused.code)
        adjusted = moves_of(moved, sign)
        if unallocated:
            item.unallocated[office] = item.unallocated.get(office, ZERO) + sign * unallocated
            self.usage[(lic, adjustment_id, kind, None, None, None)] -= sign * unallocated
            beyond: Key = (None, None, None)  # type: ignore[assignment]  # no lot (R12)
            adjusted[beyond] = adjusted.get(beyond, ZERO) + sign * unallocated
        return Expect("InventoryAdjusted", adjusted=adjusted)

    def _remove(
        self,
        item: Item,
        office: str,
        quantity: Decimal,
        on: dt.date,
        lots: list[tuple[str, Decimal]],
        serials: list[str],
    ) -> tuple[list[Pick], Decimal]:
        if item.kind == "serial":
            return self.named_serials(item, office, serials), ZERO
        if item.kind == "lot":
            return self.named_lots(item, office, lots, on, fresh=False), ZERO
        take = min(item.unallocated.get(office, ZERO), quantity)
        rest = quantity - take
        return (self.automatic(item, office, rest, on, fresh=False) if rest else []), take

    def _put_back(
        self,
        item: Item,
        office: str,
        quantity: Decimal,
        lots: list[tuple[str, Decimal]],
        serials: list[str],
    ) -> tuple[list[Pick], Decimal]:
        if item.kind == "serial":
            picks: list[Pick] = []
            for serial in serials:
                if item.in_stock(serial) is not None:
                    raise Refused("DUPLICATE_SERIAL")
                unit = item.latest(serial)
                if unit is None or unit.status != "removed" or item.lot_of(unit).office != office:
                    raise Refused("SERIAL_NOT_AVAILABLE")
                picks.append((unit.lot_id, None, serial, ONE))
            return picks, ZERO
        newest_first = self.lots_at(item, office)[::-1]
        if item.kind == "lot":
            picks = []
            for name, wanted in lots:
                rows = [lot.mfr[name] for lot in newest_first if name in lot.mfr]
                if not rows:
                    raise Refused("LOT_NOT_FOUND")
                if wanted > sum((r.used for r in rows), ZERO):
                    raise Refused("LOT_QTY_EXCEEDS_USED")
                picks += spread(wanted, [(r.lot_id, name, r.used) for r in rows])
            return picks, ZERO
        picks = spread(quantity, [(lot.lot_id, None, lot.used) for lot in newest_first])
        return picks, quantity - sum((p[3] for p in picks), ZERO)

    def customer_return(
        self, sid: str, office: str, customer: str, lines: list[SaleLineSpec]
    ) -> Expect:
        """R13: shipped units come back into the lots they left, usage reversed; a line
        refused, the whole document is (held lines cancelled: nothing happened)."""
        decided = []
        problems: dict[int, str] = {}
        for line_no, spec in enumerate(lines, start=1):
            item = self.items[spec.lic]
            try:
                if item.kind == "serial":
                    found = [self._returned_unit(item, office, customer, s) for s in spec.serials]
                elif item.kind == "lot":
                    found = []
                    for name, wanted in spec.lots:
                        found += self._returnable(item, office, customer, name, wanted, found)
                else:
                    found = self._returnable(item, office, customer, None, spec.quantity, [])
            except Refused as refused:
                problems[line_no] = refused.code
                continue
            decided.append((line_no, item, found))
        if problems:
            return Expect("ReceiptRejected", reason=problems[min(problems)], problems=problems)
        expect = Expect("ReceiptPosted")
        for line_no, item, found in decided:
            picks = [pick for pick, _ in found]
            self.move(item, picks, on_hand=1, used=-1)
            self.set_units(item, picks, "available", None)
            for (_, _, _, q), row in found:
                self.sold[row][1] += q
            self.use(item.lic, sid, "customer_return", picks, -1)
            expect.moves[line_no] = moves_of(picks)
            expect.lot_ids[line_no] = None
        return expect

    def _returned_unit(
        self, item: Item, office: str, customer: str, serial: str
    ) -> tuple[Pick, tuple[str, str, str, str]]:
        shipped = [
            u
            for u in item.with_serial(serial)
            if u.status == "shipped" and u.customer == customer and item.lot_of(u).office == office
        ]
        if not shipped:
            raise Refused("SERIAL_NOT_SHIPPED")
        if item.in_stock(serial) is not None:
            raise Refused("DUPLICATE_SERIAL")
        unit = max(shipped, key=lambda u: item.lot_of(u).seq)
        return (unit.lot_id, None, serial, ONE), (item.lic, unit.lot_id, "", customer)

    def _returnable(
        self,
        item: Item,
        office: str,
        customer: str,
        mfr: str | None,
        wanted: Decimal,
        earlier: list[tuple[Pick, tuple[str, str, str, str]]],
    ) -> list[tuple[Pick, tuple[str, str, str, str]]]:
        rows = [
            key
            for key in self.sold
            if key[0] == item.lic
            and key[2] == (mfr or "")
            and key[3] == customer
            and item.lots[key[1]].office == office
        ]
        rows.sort(key=lambda key: item.lots[key[1]].arrival, reverse=True)
        taken: defaultdict[tuple[str, str | None], Decimal] = defaultdict(Decimal)
        from_row: defaultdict[tuple[str, str, str, str], Decimal] = defaultdict(Decimal)
        for (lot_id, name, _, q), key in earlier:
            taken[(lot_id, name)] += q
            from_row[key] += q
        found: list[tuple[Pick, tuple[str, str, str, str]]] = []
        left = wanted
        for key in rows:
            lot = item.lots[key[1]]
            used = lot.used if mfr is None else lot.mfr[mfr].used
            shipped, returned = self.sold[key]
            room = min(shipped - returned - from_row[key], used - taken[(lot.lot_id, mfr)])
            take = min(room, left)
            if take > 0:
                found.append(((lot.lot_id, mfr, None, take), key))
                left -= take
        if left > 0:
            raise Refused("RETURN_EXCEEDS_SHIPPED")
        return found

    # -- what the workload generator asks --------------------------------------------------------

    def returnable(self, lic: str) -> list[tuple[str, str, str, Decimal]]:
        """(office, customer, mfr lot or "", quantity) still returnable, per row."""
        item = self.items[lic]
        out = []
        for (row_lic, lot_id, mfr, customer), (shipped, returned) in sorted(self.sold.items()):
            if row_lic == lic and shipped > returned:
                out.append((item.lots[lot_id].office, customer, mfr, shipped - returned))
        return out


def expired(row: MfrRow, ship_on: dt.date) -> bool:
    return row.expires_on is not None and row.expires_on < ship_on


def spread(quantity: Decimal, room: list[tuple[str, str | None, Decimal]]) -> list[Pick]:
    picks: list[Pick] = []
    left = quantity
    for lot_id, mfr, space in room:
        take = min(space, left)
        if take > 0:
            picks.append((lot_id, mfr, None, take))
            left -= take
    return picks


def serial_run(next_serial: str, count: int) -> list[str]:
    """R6: a prefix keeps the numeric tail's width; a purely numeric Next Serial shorter than
    5 digits is zero padded to 5."""
    head = next_serial.rstrip("0123456789")
    tail = next_serial[len(head) :]
    width = len(tail) if head else max(len(tail), 5)
    return [f"{head}{int(tail) + i:0{width}d}" for i in range(count)]


def next_after(serial: str) -> str:
    return serial_run(serial, 2)[1]


# ---------------------------------------------------------------------------------------------
# The workload: documents chosen at random from the model's state, in rounds.
# ---------------------------------------------------------------------------------------------


@dataclass
class Planned:
    where: str
    doc: dict[str, Any]
    expect: Expect


class Workload:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.model = Model()
        self.counter = 0
        self.serial_no: Counter[str] = Counter()
        self.mfr_no: Counter[str] = Counter()
        self.round = 0
        self.today = START
        self.planned: list[Planned] = []
        self.plain = ["P1", "P2", "P3", "P4"]
        self.lotted = ["L1", "L2", "L3", "L4"]
        self.serialized = ["S1", "S2", "S3", "S4"]
        self.open_shipments: list[str] = []
        self.closed_shipments: list[str] = []

    # -- ids and helpers ----------------------------------------------------------------------

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter:04d}"

    def doc(self, message_type: str, **fields: Any) -> dict[str, Any]:
        return {
            "type": message_type,
            "message_id": self.next_id("m"),
            "occurred_at": f"{self.today.isoformat()}T10:00:00Z",
            **fields,
        }

    def new_serials(self, lic: str, count: int) -> list[str]:
        start = self.serial_no[lic] + 1
        self.serial_no[lic] += count
        return [f"{lic}-{n:05d}" for n in range(start, start + count)]

    def mfr_lots(
        self, lic: str, quantity: int, received_on: dt.date
    ) -> list[tuple[str, dt.date | None, Decimal]]:
        """1–3 manufacturer lots; sometimes one of the item's earlier numbers again."""
        rng = self.rng
        parts = rng.randint(1, min(3, quantity))
        cuts = sorted(rng.sample(range(1, quantity), parts - 1)) if parts > 1 else []
        sizes = [b - a for a, b in zip([0, *cuts], [*cuts, quantity], strict=True)]
        known = {
            row.name: row.expires_on
            for lot in self.model.items[lic].lots.values()
            for row in lot.mfr.values()
        }
        out: list[tuple[str, dt.date | None, Decimal]] = []
        for size in sizes:
            reuse = [n for n in known if n not in {o[0] for o in out}]
            if reuse and rng.random() < 0.25:
                name = rng.choice(sorted(reuse))
                expires_on = known[name]
                assert expires_on is not None
            else:
                self.mfr_no[lic] += 1
                name = f"{lic}-M{self.mfr_no[lic]:02d}"
                days = rng.randint(0, 7) if rng.random() < 0.25 else rng.randint(15, 90)
                expires_on = self.today + dt.timedelta(days=days)
            out.append((name, expires_on, Decimal(size)))
        return out

    def receipt_line(self, lic: str, received_on: dt.date) -> ReceiptLineSpec:
        rng = self.rng
        item = self.model.items[lic]
        cost = rng.choice([None, Decimal("1.10"), Decimal("2.35"), Decimal("4.00")])
        if item.kind == "serial":
            quantity = rng.randint(2, 6)
            if item.next_serial is not None and rng.random() < 0.5:
                return ReceiptLineSpec(lic, Decimal(quantity), cost, serials=None)
            style = rng.choice(["list", "typed", "span"])
            return ReceiptLineSpec(
                lic,
                Decimal(quantity),
                cost,
                serials=self.new_serials(lic, quantity),
                serial_style=style,
            )
        quantity = rng.randint(4, 30)
        if item.kind == "lot":
            lots = self.mfr_lots(lic, quantity, received_on)
            return ReceiptLineSpec(lic, Decimal(quantity), cost, lots=lots)
        return ReceiptLineSpec(lic, Decimal(quantity), cost)

    # -- rounds -------------------------------------------------------------------------------

    def items_round(self) -> list[Planned]:
        out = []
        for lic, cost in zip(self.plain, ("2.00", "3.50", "1.25", "0.333"), strict=True):
            out.append(self._item(lic, "plain", cost))
        for lic, cost in zip(self.lotted, ("0.80", "5.25", "12.00", "7.10"), strict=True):
            out.append(self._item(lic, "lot", cost))
        next_serials = {"S3": "S3N-00100", "S4": "7"}  # R6: "7" continues as 00007, 00008, …
        for lic, cost in zip(self.serialized, ("150.00", "75.50", "980.00", "12.50"), strict=True):
            out.append(self._item(lic, "serial", cost, next_serials.get(lic)))
        return out

    def _item(self, lic: str, kind: str, cost: str, next_serial: str | None = None) -> Planned:
        doc = self.doc(
            "UpsertItem",
            lic=lic,
            description=f"reconciliation item {lic}",
            uom="EA",
            track_mfr_lot=kind == "lot",
            serialized=kind == "serial",
            est_unit_cost=cost,
        )
        if kind == "lot":
            doc["perishable"] = True
        if next_serial:
            doc["next_serial"] = next_serial
        expect = self.model.upsert_item(lic, kind, Decimal(cost), next_serial)
        return Planned("", doc, expect)

    def next_round(self) -> list[Planned]:
        self.round += 1
        self.today = START + dt.timedelta(days=2 * self.round)
        rng = self.rng
        lics = [*self.plain, *self.lotted, *self.serialized]
        rng.shuffle(lics)
        busy: set[str] = set()
        out: list[Planned] = []
        # Open shipments first: ship, cancel, re-pick a line, request again, or a ship request
        # that must be refused (R8: a line not allocated, or picks not covering it). Now and
        # then a document for a closed one: a cancelled sale requested again, or a cancel,
        # picks update or request for a shipped one (refused: shipped is final).
        late = [sid for sid in self.closed_shipments if self.model.shipments[sid].kind == "sale"]
        late = rng.sample(late, min(len(late), 1 if rng.random() < 0.5 else 0))
        for sid in [*self.open_shipments, *late]:
            shipment = self.model.shipments[sid]
            is_open = sid in self.open_shipments
            if shipment.lics & busy or (is_open and rng.random() > 0.6):
                continue
            busy |= shipment.lics
            roll = rng.random()
            if shipment.kind == "sale" and (roll < 0.2 or (not is_open and roll < 0.4)):
                out.append(self._picks_update(shipment))
            elif shipment.kind == "sale" and (roll < 0.35 or (not is_open and roll < 0.8)):
                out.append(self._resend(shipment))
            elif is_open and (roll < 0.85 if shipment.shippable else roll < 0.5):
                doc = self.doc("ShipmentShipRequested", shipment_id=sid)
                out.append(Planned("", doc, self.model.ship(sid)))
            else:
                doc = self.doc("ShipmentCancelled", shipment_id=sid)
                out.append(Planned("", doc, self.model.cancel(sid)))
            for ids in (self.open_shipments, self.closed_shipments):
                if sid in ids:
                    ids.remove(sid)
            (self.open_shipments if shipment.status == "open" else self.closed_shipments).append(
                sid
            )
        receipts: dict[str, list[ReceiptLineSpec]] = defaultdict(list)
        sales: dict[tuple[str, str], list[SaleLineSpec]] = defaultdict(list)
        singles: list[Callable[[], Planned]] = []
        returns: dict[tuple[str, str], list[SaleLineSpec]] = defaultdict(list)
        for lic in lics:
            if lic in busy or rng.random() > 0.85:
                continue
            busy.add(lic)
            self._choose(lic, receipts, sales, singles, returns)
        for office, lines in receipts.items():
            rng.shuffle(lines)
            while lines:
                size = rng.randint(1, 3)
                out.append(self._receipt(office, lines[:size]))
                lines = lines[size:]
        for (office, customer), sale_lines in sales.items():
            while sale_lines:
                size = rng.randint(1, 2)
                out.append(self._sale(office, "sale", customer, sale_lines[:size]))
                sale_lines = sale_lines[size:]
        for (office, customer), return_lines in returns.items():
            while return_lines:
                size = rng.randint(1, 2)
                out.append(self._return(office, customer, return_lines[:size]))
                return_lines = return_lines[size:]
        out += [make() for make in singles]
        return out

    def _picks_update(self, shipment: Shipment) -> Planned:
        """New picks for one line: what is free plus what the line holds (released first);
        sometimes covering only part of the line (allocated, not shippable: R8), sometimes
        naming what is not there (refused: the old allocation stands)."""
        rng, model = self.rng, self.model
        line = rng.choice(sorted(shipment.lines.values(), key=lambda x: x.line_no))
        item = model.items[line.lic]
        own = line.picks if line.status == "allocated" else []
        fields: dict[str, Any] = {"shipment_id": shipment.sid, "line_no": line.line_no}
        spec = SaleLineSpec(line.lic, line.quantity)
        want = int(line.quantity)
        if item.kind == "serial":
            choices = sorted(
                {u.serial for u in model.free_units(item, shipment.office)}
                | {p[2] for p in own if p[2]}
            )
            count = min(want, len(choices))
            if count > 1 and rng.random() < 0.3:
                count -= 1  # part of the line only
            spec.serials = rng.sample(choices, count) if count else []
            gone = sorted(u.serial for u in item.units.values() if u.status == "shipped")
            if gone and (not spec.serials or rng.random() < 0.2):
                spec.serials = [*spec.serials[: want - 1], rng.choice(gone)]
            fields["serials"] = list(spec.serials)
        elif item.kind == "lot":
            room: defaultdict[str, Decimal] = defaultdict(Decimal)
            for row in model.fresh_rows(item, shipment.office, shipment.ship_on, True):
                room[row.name] += row.free
            for _, name, _, q in own:
                room[name] += q  # type: ignore[index]
            names = [n for n in sorted(room) if room[n] > 0]
            rng.shuffle(names)
            left, lots = want, []
            for name in names:
                take = min(int(room[name]), left, rng.randint(1, want))
                if take > 0:
                    lots.append((name, Decimal(take)))
                    left -= take
            if lots and left and rng.random() < 0.5:  # ask for more than the lot has
                name, q = lots[0]
                lots[0] = (name, q + left)
            elif not lots:
                lots = [(rng.choice(sorted(room) or [f"{item.lic}-M99"]), line.quantity)]
            spec.lots = lots
            fields["lots"] = [{"mfr_lot": n, "quantity": num(q)} for n, q in lots]
        doc = self.doc("ShipmentPicksUpdated", **fields)
        return Planned("", doc, model.picks_update(shipment.sid, line.line_no, spec))

    def _resend(self, shipment: Shipment) -> Planned:
        """The sale requested again (no picks): a line left out now and then, quantities
        changed, sometimes a new ship date (new terms: every allocation released first)."""
        rng = self.rng
        lines: dict[int, SaleLineSpec] = {}
        saved = sorted(shipment.lines.values(), key=lambda x: x.line_no)
        drop = rng.choice(saved).line_no if len(saved) > 1 and rng.random() < 0.4 else None
        for line in saved:
            if line.line_no != drop:
                quantity = Decimal(rng.randint(1, int(line.quantity) + 3))
                lines[line.line_no] = SaleLineSpec(line.lic, quantity)
        ship_on = shipment.ship_on if rng.random() < 0.6 else self.today
        doc = self.doc(
            "ShipmentRequested",
            shipment_id=shipment.sid,
            office=shipment.office,
            kind=shipment.kind,
            customer=shipment.counterparty,
            reference=shipment.sid,
            ship_on=ship_on.isoformat(),
            lines=[
                {"line_no": n, "lic": spec.lic, "quantity": num(spec.quantity)}
                for n, spec in sorted(lines.items())
            ],
        )
        return Planned("", doc, self.model.resend(shipment.sid, ship_on, lines))

    def _plan(self, doc: dict[str, Any], decide: Callable[[], Expect]) -> Planned:
        return Planned("", doc, decide())

    def _receipt(self, office: str, lines: list[ReceiptLineSpec]) -> Planned:
        sid = self.next_id("PO-")
        received_on = self.today - dt.timedelta(days=self.rng.randint(0, 6))
        source = self.rng.choice(["purchase", "purchase", "production"])
        doc_lines = []
        for line_no, spec in enumerate(lines, start=1):
            line: dict[str, Any] = {
                "line_no": line_no,
                "lic": spec.lic,
                "quantity": num(spec.quantity),
            }
            if spec.unit_cost is not None:
                line["unit_cost"] = format(spec.unit_cost, "f")
            if spec.lots:
                line["lots"] = [
                    {"mfr_lot": n, "expires_on": e.isoformat() if e else None, "quantity": num(q)}
                    for n, e, q in spec.lots
                ]
            if spec.serials is not None:
                line["serials"] = typed_serials(spec.serials, spec.serial_style, self.rng)
            doc_lines.append(line)
        fields: dict[str, Any] = {
            "shipment_id": sid,
            "office": office,
            "source": source,
            "reference": sid,
            "received_on": received_on.isoformat(),
            "lines": doc_lines,
        }
        if source == "purchase":
            fields["vendor"] = VENDOR
        doc = self.doc("ShipmentReceived", **fields)
        return self._plan(doc, lambda: self.model.receipt(sid, office, source, received_on, lines))

    def _sale(
        self, office: str, kind: str, counterparty: str, lines: list[SaleLineSpec]
    ) -> Planned:
        sid = self.next_id("SO-" if kind == "sale" else "RV-")
        doc_lines = picked_lines(lines)
        party = {"customer": counterparty} if kind == "sale" else {"vendor": counterparty}
        doc = self.doc(
            "ShipmentRequested",
            shipment_id=sid,
            office=office,
            kind=kind,
            reference=sid,
            ship_on=self.today.isoformat(),
            lines=doc_lines,
            **party,
        )
        planned = self._plan(
            doc, lambda: self.model.sale(sid, office, kind, counterparty, self.today, lines)
        )
        self.open_shipments.append(sid)
        return planned

    def _adjust(
        self,
        lic: str,
        office: str,
        kind: str,
        quantity: Decimal,
        lots: Sequence[tuple[str, Decimal]] = (),
        serials: Sequence[str] = (),
    ) -> Planned:
        adjustment_id = self.next_id("ADJ-")
        fields: dict[str, Any] = {
            "adjustment_id": adjustment_id,
            "lic": lic,
            "office": office,
            "kind": kind,
            "quantity": num(quantity),
            "adjusted_on": self.today.isoformat(),
            "reason": f"reconciliation {kind}",
        }
        if lots:
            fields["lots"] = [{"mfr_lot": n, "quantity": num(q)} for n, q in lots]
        if serials:
            fields["serials"] = list(serials)
        doc = self.doc("AdjustInventory", **fields)
        today = self.today
        return self._plan(
            doc,
            lambda: self.model.adjust(
                adjustment_id, lic, office, kind, quantity, today, list(lots), list(serials)
            ),
        )

    def _beginning_balance(self, lic: str, office: str) -> Planned:
        adjustment_id = self.next_id("BB-")
        on = self.today - dt.timedelta(days=self.rng.randint(0, 6))
        item = self.model.items[lic]
        spec = self.receipt_line(lic, on)
        spec.unit_cost = spec.unit_cost or Decimal("1.75")
        if item.kind == "serial":
            serials = self.new_serials(lic, int(spec.quantity))
            # R11: a serial seen before and no longer in stock may come back this way.
            gone = sorted(
                s
                for (s, _), u in item.units.items()
                if u.status in ("removed", "returned_to_vendor") and item.in_stock(s) is None
            )
            if gone and self.rng.random() < 0.6:
                serials[0] = self.rng.choice(gone)
            spec.serials = serials
        fields: dict[str, Any] = {
            "adjustment_id": adjustment_id,
            "lic": lic,
            "office": office,
            "kind": "beginning_balance",
            "quantity": num(spec.quantity),
            "unit_cost": format(spec.unit_cost, "f"),
            "adjusted_on": on.isoformat(),
            "reason": "opening stock",
        }
        if spec.lots:
            fields["lots"] = [
                {"mfr_lot": n, "expires_on": e.isoformat() if e else None, "quantity": num(q)}
                for n, e, q in spec.lots
            ]
        if spec.serials:
            fields["serials"] = list(spec.serials)
        doc = self.doc("AdjustInventory", **fields)
        return self._plan(
            doc, lambda: self.model.beginning_balance(adjustment_id, lic, office, on, spec)
        )

    def _return(self, office: str, customer: str, lines: list[SaleLineSpec]) -> Planned:
        sid = self.next_id("RMA-")
        doc_lines = picked_lines(lines)
        doc = self.doc(
            "ShipmentReceived",
            shipment_id=sid,
            office=office,
            source="customer_return",
            customer=customer,
            reference=f"RMA for {customer}",
            received_on=self.today.isoformat(),
            lines=doc_lines,
        )
        return Planned("", doc, self.model.customer_return(sid, office, customer, lines))

    def _choose(
        self,
        lic: str,
        receipts: dict[str, list[ReceiptLineSpec]],
        sales: dict[tuple[str, str], list[SaleLineSpec]],
        singles: list[Callable[[], Planned]],
        returns: dict[tuple[str, str], list[SaleLineSpec]],
    ) -> None:
        """One document line for `lic` this round, picked at random among those that fit."""
        rng, model = self.rng, self.model
        item = model.items[lic]
        office = rng.choice(OFFICES)
        free = model.free_at(item, office, self.today)
        stocked = [o for o in OFFICES if model.free_at(item, o, self.today) > 0]
        if free == 0 and stocked and rng.random() < 0.7:
            office = rng.choice(stocked)
            free = model.free_at(item, office, self.today)
        choices: list[tuple[str, float]] = [("receive", 3.0 if free < 10 else 1.0), ("bb", 0.6)]
        if free > 0:
            choices += [("sale", 4.0), ("too_much", 0.8), ("remove", 1.0)]
            if item.kind != "plain":
                choices += [("sale_picks", 2.5), ("vendor_return", 0.5)]
            if item.kind == "serial":
                choices.append(("receipt_in_stock", 0.6))
        if item.kind == "serial" and any(u.status == "shipped" for u in item.units.values()):
            choices.append(("sale_not_free", 0.8))
        if model.returnable(lic):
            choices += [("return", 5.0), ("return_too_much", 0.8)]
        if any(lot.used > 0 for lot in model.lots_at(item, office)):
            choices += [("put_back", 1.0)]
            if item.kind == "lot":
                choices.append(("put_back_too_much", 0.8))
        if item.kind == "serial" and any(
            u.status == "removed" and item.in_stock(u.serial) is None for u in item.units.values()
        ):
            choices.append(("restore_serial", 1.2))
        names, weights = zip(*choices, strict=True)
        op = rng.choices(names, weights)[0]
        customer = rng.choice(CUSTOMERS)
        today = self.today

        if op == "receive":
            receipts[office].append(self.receipt_line(lic, today))
        elif op == "receipt_in_stock":
            spec = self.receipt_line(lic, today)
            in_stock = sorted(u.serial for u in item.units.values() if u.status in IN_STOCK)
            spec.serials = [*self.new_serials(lic, int(spec.quantity) - 1), rng.choice(in_stock)]
            spec.serial_style = "list"
            receipts[office].append(spec)
        elif op == "bb":
            singles.append(lambda: self._beginning_balance(lic, office))
        elif op in ("sale", "too_much"):
            want = (
                Decimal(rng.randint(1, int(min(free, Decimal(8)))))
                if op == "sale"
                else free + rng.randint(1, 5)
            )
            sales[(office, customer)].append(SaleLineSpec(lic, want))
        elif op == "sale_picks":
            sales[(office, customer)].append(self._picks(item, office, free))
        elif op == "sale_not_free":
            shipped = sorted(
                u.serial
                for u in item.units.values()
                if u.status == "shipped" and item.in_stock(u.serial) is None
            )
            if shipped:
                sales[(office, customer)].append(
                    SaleLineSpec(lic, ONE, serials=[rng.choice(shipped)])
                )
        elif op == "vendor_return":
            line = self._picks(item, office, free, fresh=False)
            singles.append(lambda: self._sale(office, "vendor_return", VENDOR, [line]))
        elif op == "remove":
            line = self._picks(item, office, min(free, Decimal(4)), fresh=False)
            kind = rng.choice(["loss", "count"])
            if item.kind == "plain":
                have = free + item.unallocated.get(office, ZERO)
                quantity = Decimal(rng.randint(1, int(min(have, Decimal(6)))))
                singles.append(lambda: self._adjust(lic, office, kind, -quantity))
            else:
                singles.append(
                    lambda: self._adjust(lic, office, kind, -line.quantity, line.lots, line.serials)
                )
        elif op in ("put_back", "put_back_too_much"):
            used_lots = [lot for lot in model.lots_at(item, office) if lot.used > 0]
            kind = rng.choice(["count", "loss"])
            if item.kind == "plain":
                used = sum((lot.used for lot in used_lots), ZERO)
                quantity = Decimal(rng.randint(1, int(used) + 3))  # beyond usage: unallocated (R12)
                singles.append(lambda: self._adjust(lic, office, kind, quantity))
            elif item.kind == "lot":
                used_by_name: defaultdict[str, Decimal] = defaultdict(Decimal)
                for lot in model.lots_at(item, office):
                    for row in lot.mfr.values():
                        used_by_name[row.name] += row.used
                name = rng.choice(sorted(n for n, u in used_by_name.items() if u > 0))
                cap = int(used_by_name[name])
                quantity = Decimal(
                    rng.randint(1, cap) if op == "put_back" else cap + rng.randint(1, 3)
                )
                singles.append(
                    lambda: self._adjust(lic, office, kind, quantity, [(name, quantity)])
                )
            else:
                removed = sorted(
                    u.serial
                    for u in item.units.values()
                    if u.status == "removed" and item.in_stock(u.serial) is None
                )
                if removed:
                    serial = rng.choice(removed)
                    singles.append(
                        lambda: self._adjust(lic, office, "count", ONE, serials=[serial])
                    )
        elif op == "restore_serial":
            removed = sorted(
                u.serial
                for u in item.units.values()
                if u.status == "removed"
                and item.in_stock(u.serial) is None
                and item.latest(u.serial) is u
            )
            if removed:
                serial = rng.choice(removed)
                where = item.lot_of(item.latest(serial)).office  # type: ignore[arg-type]
                singles.append(lambda: self._adjust(lic, where, "count", ONE, serials=[serial]))
        elif op in ("return", "return_too_much"):
            rows = model.returnable(lic)
            joining = [r for r in rows if (r[0], r[1]) in returns]
            office, customer, mfr, _ = rng.choice(
                joining if joining and rng.random() < 0.8 else rows
            )
            if item.kind == "serial":
                shipped = sorted(
                    u.serial
                    for u in item.units.values()
                    if u.status == "shipped"
                    and u.customer == customer
                    and item.lot_of(u).office == office
                )
                if op == "return_too_much":
                    never = sorted(u.serial for u in item.units.values() if u.status in IN_STOCK)
                    serials = [rng.choice(never)] if never else []
                elif shipped:
                    serials = rng.sample(shipped, rng.randint(1, min(2, len(shipped))))
                else:
                    serials = []
                if serials:
                    returns[(office, customer)].append(
                        SaleLineSpec(lic, Decimal(len(serials)), serials=serials)
                    )
            else:
                total = sum(
                    (
                        q
                        for o, c, m, q in model.returnable(lic)
                        if o == office and c == customer and m == mfr
                    ),
                    ZERO,
                )
                quantity = (
                    Decimal(rng.randint(1, int(total)))
                    if op == "return"
                    else total + rng.randint(1, 3)
                )
                lots = [(mfr, quantity)] if item.kind == "lot" else []
                returns[(office, customer)].append(SaleLineSpec(lic, quantity, lots=lots))

    def _picks(self, item: Item, office: str, free: Decimal, *, fresh: bool = True) -> SaleLineSpec:
        """A line naming its own lots or serials, taken from what is free at `office`."""
        rng, model = self.rng, self.model
        if item.kind == "serial":
            units = model.free_units(item, office)
            chosen = rng.sample(units, rng.randint(1, min(len(units), 4)))
            return SaleLineSpec(item.lic, Decimal(len(chosen)), serials=[u.serial for u in chosen])
        if item.kind == "plain":
            return SaleLineSpec(item.lic, Decimal(rng.randint(1, int(min(free, Decimal(4))))))
        free_by_name: defaultdict[str, Decimal] = defaultdict(Decimal)
        for row in model.fresh_rows(item, office, self.today, fresh):
            free_by_name[row.name] += row.free
        names = [n for n, q in sorted(free_by_name.items()) if q > 0]
        if not names:  # only expired stock left: the vendor return / loss takes it
            free_by_name = defaultdict(Decimal)
            for row in model.fresh_rows(item, office, self.today, False):
                free_by_name[row.name] += row.free
            names = [n for n, q in sorted(free_by_name.items()) if q > 0]
        picked = rng.sample(names, rng.randint(1, min(2, len(names))))
        lots = [(n, Decimal(rng.randint(1, int(min(free_by_name[n], Decimal(6)))))) for n in picked]
        return SaleLineSpec(item.lic, sum((q for _, q in lots), ZERO), lots=lots)


def typed_serials(serials: list[str], style: str, rng: random.Random) -> str | list[str]:
    """R5: a list, one typed string with mixed separators, or a span of consecutive serials."""
    if style == "span":
        return f"{serials[0]}...{serials[-1]}"
    if style == "typed":
        seps = [", ", "; ", "\n", ","]
        return serials[0] + "".join(rng.choice(seps) + s for s in serials[1:])
    return list(serials)


# ---------------------------------------------------------------------------------------------
# Reading what the services recorded
# ---------------------------------------------------------------------------------------------


def answer_moves(line: dict[str, Any]) -> Moves:
    out: defaultdict[Key, Decimal] = defaultdict(Decimal)
    for m in line.get("movements") or []:
        out[(m.get("lot_id"), m.get("mfr_lot"), m.get("serial"))] += dec(m["quantity"])
    return nonzero(out)


def compare_answer(where: str, planned: Planned, answer: dict[str, Any] | None) -> list[str]:
    """What differs between the answer and the model's prediction (empty: nothing)."""
    expect = planned.expect
    doc = planned.doc
    head = (
        f"{where} {doc['type']} {doc.get('shipment_id') or doc.get('adjustment_id') or doc['lic']}"
    )
    if answer is None:
        return [f"{head}: no answer (expected {expect.answer} {expect.reason or ''})"]
    problems = []
    got = answer.get("type")
    if got != expect.answer:
        return [
            f"{head}: answered {got} {answer.get('reason_code') or ''} "
            f"({answer.get('reason')}), model expects {expect.answer} {expect.reason or ''}"
        ]
    if expect.reason is not None and answer.get("reason_code") != expect.reason:
        problems.append(
            f"{head}: reason {answer.get('reason_code')} ({answer.get('reason')}), "
            f"model expects {expect.reason}"
        )
    refused = (answer.get("refused") or {}).get("reason_code")
    if refused != expect.refused:
        problems.append(f"{head}: refused {refused}, model expects {expect.refused}")
    if expect.problems:
        codes = {p.get("line_no"): p.get("reason_code") for p in answer.get("problems") or []}
        if codes != expect.problems:
            problems.append(f"{head}: problems {codes}, model expects {expect.problems}")
    lines = (
        answer.get("lines") or answer.get("allocated_lines") or answer.get("released_lines") or []
    )
    if expect.moves or lines:
        by_line = {line["line_no"]: line for line in lines}
        got_moves = {n: answer_moves(line) for n, line in by_line.items()}
        if got_moves != expect.moves:
            problems.append(
                f"{head}: lines moved {fmt_moves(got_moves)}, "
                f"model expects {fmt_moves(expect.moves)}"
            )
        for n, lot_id in expect.lot_ids.items():
            if by_line.get(n, {}).get("lot_id") != lot_id:
                problems.append(
                    f"{head}: line {n} lot {by_line.get(n, {}).get('lot_id')}, "
                    f"model expects {lot_id}"
                )
        for n, serials in expect.generated.items():
            if by_line.get(n, {}).get("generated_serials") != serials:
                problems.append(
                    f"{head}: line {n} generated {by_line.get(n, {}).get('generated_serials')}, "
                    f"model expects {serials}"
                )
    if expect.adjusted is not None:
        got_adjusted: defaultdict[Key, Decimal] = defaultdict(Decimal)
        for m in answer.get("movements") or []:
            got_adjusted[(m.get("lot_id"), m.get("mfr_lot"), m.get("serial"))] += dec(m["quantity"])
        if nonzero(got_adjusted) != expect.adjusted:
            problems.append(
                f"{head}: moved {dict(got_adjusted)}, model expects {dict(expect.adjusted)}"
            )
        if expect.adjustment_lot is not None and answer.get("lot_id") != expect.adjustment_lot:
            problems.append(
                f"{head}: lot {answer.get('lot_id')}, model expects {expect.adjustment_lot}"
            )
    return problems


def fmt_moves(moves: dict[int, Moves]) -> str:
    return repr(
        {n: {k: str(v) for k, v in sorted(c.items(), key=str)} for n, c in sorted(moves.items())}
    )


async def read_topic(env: LotlineEnv, topic: str, at_least: int, timeout: float = 30) -> list[Any]:
    """Every JSON value on `topic` from the beginning: up to the end offsets (taken once the
    workload is over), at least `at_least` of them, and on until a poll comes back empty (the
    embedded broker's end offset may trail the true end by a batch), so an answer published
    twice is seen twice."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=env.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    values: list[Any] = []
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        while not parts:
            await consumer.topics()
            parts = consumer.partitions_for_topic(topic) or set()
            await asyncio.sleep(0.1)
        assigned = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    try:
                        values.append(json.loads(record.value or b""))
                    except ValueError:
                        continue
            if batch or len(values) < at_least:
                continue
            positions = [await consumer.position(tp) for tp in assigned]
            if all(pos >= ends[tp] for pos, tp in zip(positions, assigned, strict=True)):
                break
    finally:
        await consumer.stop()
    return values


class Api:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def get(self, path: str) -> Any:
        response = await self.client.get(path)
        assert response.status_code == 200, (
            f"GET {path}: {response.status_code} {response.text[:300]}"
        )
        return response.json()


# -- the services' own tables ----------------------------------------------------------------


async def allocation_state(conn: asyncpg.Connection) -> dict[str, Any]:
    return {
        "lots": {
            r["lot_id"]: dict(r)
            for r in await conn.fetch("SELECT * FROM allocation.inventory_lots")
        },
        "mfr": {
            (r["lot_id"], r["mfr_lot"]): dict(r)
            for r in await conn.fetch("SELECT * FROM allocation.mfr_lots")
        },
        "units": {
            (r["lic"], r["serial"], r["lot_id"]): dict(r)
            for r in await conn.fetch("SELECT * FROM allocation.units")
        },
        "allocations": [dict(r) for r in await conn.fetch("SELECT * FROM allocation.allocations")],
        "sold": {
            (r["lic"], r["lot_id"], r["mfr_lot"], r["customer"]): (r["shipped"], r["returned"])
            for r in await conn.fetch("SELECT * FROM allocation.customer_shipments")
        },
        "unallocated": {
            (r["lic"], r["office"]): r["quantity"]
            for r in await conn.fetch("SELECT * FROM allocation.unallocated")
        },
        "held_lines": await conn.fetchval("SELECT count(*) FROM allocation.held_lines"),
    }


async def ledger_state(conn: asyncpg.Connection) -> dict[str, Any]:
    return {
        "lots": {r["lot_id"]: dict(r) for r in await conn.fetch("SELECT * FROM ledger.lots")},
        "mfr": {
            (r["lot_id"], r["mfr_lot"]): dict(r)
            for r in await conn.fetch("SELECT * FROM ledger.mfr_lots")
        },
        "serials": {
            (r["lic"], r["serial"], r["lot_id"]): dict(r)
            for r in await conn.fetch("SELECT * FROM ledger.serials")
        },
        "unallocated": {
            (r["lic"], r["office"]): r["quantity"]
            for r in await conn.fetch("SELECT * FROM ledger.unallocated")
        },
        "usage": [dict(r) for r in await conn.fetch("SELECT * FROM ledger.usage")],
        "ops_documents": {
            r["document"]: r["status"]
            for r in await conn.fetch("SELECT * FROM ledger.ops_documents")
        },
    }


def allocation_consistency(a: dict[str, Any]) -> list[str]:
    """Allocation agrees with itself."""
    out = []
    mfr_by_lot: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (lot_id, _), row in a["mfr"].items():
        mfr_by_lot[lot_id].append(row)
    units_by_lot: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (_, _, lot_id), unit in a["units"].items():
        units_by_lot[lot_id].append(unit)
    for lot_id, lot in a["lots"].items():
        if lot["received_qty"] - lot["used"] != lot["on_hand"]:
            out.append(
                f"allocation lot {lot_id}: received {lot['received_qty']} − used {lot['used']} "
                f"≠ on hand {lot['on_hand']}"
            )
        if lot["held"] != 0:
            out.append(f"allocation lot {lot_id}: {lot['held']} still held")
        if lot["status"] != ("open" if lot["on_hand"] > 0 else "closed"):
            out.append(
                f"allocation lot {lot_id}: status {lot['status']} with {lot['on_hand']} on hand"
            )
        rows = mfr_by_lot.get(lot_id, [])
        if rows:
            for name in ("on_hand", "allocated", "used"):
                total = sum((r[name] for r in rows), ZERO)
                if total != lot[name]:
                    out.append(
                        f"allocation lot {lot_id}: mfr lots' {name} {total} ≠ lot's {lot[name]}"
                    )
            for r in rows:
                if r["initial_qty"] - r["used"] != r["on_hand"]:
                    out.append(
                        f"allocation mfr lot {lot_id}/{r['mfr_lot']}: initial − used ≠ on hand"
                    )
        units = units_by_lot.get(lot_id, [])
        if units:
            stocked = sum(1 for u in units if u["status"] in IN_STOCK)
            allocated = sum(1 for u in units if u["status"] == "allocated")
            if stocked != lot["on_hand"] or allocated != lot["allocated"]:
                out.append(
                    f"allocation lot {lot_id}: units in stock {stocked} / allocated {allocated}, "
                    f"lot on hand {lot['on_hand']} / allocated {lot['allocated']}"
                )
    in_stock = Counter(
        (lic, serial)
        for (lic, serial, _), u in a["units"].items()
        if u["status"] in (*IN_STOCK, "held")
    )
    out += [f"allocation: serial {k} in stock {n} times" for k, n in in_stock.items() if n > 1]
    out += [
        f"allocation: unit {k} still held" for k, u in a["units"].items() if u["status"] == "held"
    ]
    if a["held_lines"]:
        out.append(f"allocation: {a['held_lines']} held receipt lines left")
    # Open allocations add up to what lots, mfr lots and units hold for shipments.
    by_lot: defaultdict[str, Decimal] = defaultdict(Decimal)
    by_mfr: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
    by_unit: dict[tuple[str, str, str], tuple[str, int]] = {}
    for alloc in a["allocations"]:
        if alloc["status"] != "allocated":
            continue
        picks = alloc["picks"] if isinstance(alloc["picks"], list) else json.loads(alloc["picks"])
        for p in picks:
            by_lot[p["lot_id"]] += dec(p["quantity"])
            if p["mfr_lot"]:
                by_mfr[(p["lot_id"], p["mfr_lot"])] += dec(p["quantity"])
            if p["serial"]:
                by_unit[(alloc["lic"], p["serial"], p["lot_id"])] = (
                    alloc["shipment_id"],
                    alloc["line_no"],
                )
    for lot_id, lot in a["lots"].items():
        if by_lot.get(lot_id, ZERO) != lot["allocated"]:
            out.append(
                f"allocation lot {lot_id}: open allocations pick {by_lot.get(lot_id, ZERO)}, "
                f"lot allocated {lot['allocated']}"
            )
    for key, row in a["mfr"].items():
        if by_mfr.get(key, ZERO) != row["allocated"]:
            out.append(
                f"allocation mfr lot {key}: open allocations pick {by_mfr.get(key, ZERO)}, "
                f"allocated {row['allocated']}"
            )
    allocated_units = {k for k, u in a["units"].items() if u["status"] == "allocated"}
    if allocated_units != set(by_unit):
        out.append(
            f"allocation: allocated units {sorted(allocated_units ^ set(by_unit))} "
            "disagree with open allocations"
        )
    return out


def ledger_vs_allocation(a: dict[str, Any], led: dict[str, Any]) -> list[str]:
    """The ledger recorded what allocation decided: lot by lot, mfr lot by mfr lot, serial by
    serial, and the unallocated stock of each office."""
    out = []
    if set(a["lots"]) != set(led["lots"]):
        out.append(
            f"lots only in allocation {sorted(set(a['lots']) - set(led['lots']))}, "
            f"only in the ledger {sorted(set(led['lots']) - set(a['lots']))}"
        )
    for lot_id in sorted(set(a["lots"]) & set(led["lots"])):
        x, y = a["lots"][lot_id], led["lots"][lot_id]
        pairs = {
            "lic": (x["lic"], y["lic"]),
            "office": (x["office"], y["office"]),
            "kind": (x["kind"], y["kind"]),
            "received_on": (x["received_on"], y["received_on"]),
            "unit_cost": (x["unit_cost"], y["est_unit_cost"]),
            "received": (x["received_qty"], y["received_qty"]),
            "used": (x["used"], y["used_qty"]),
            "current/on hand": (x["on_hand"], y["current_qty"]),
            "allocated": (x["allocated"], y["allocated_qty"]),
            "status": (x["status"], y["status"]),
        }
        for name, (left, right) in pairs.items():
            if left != right:
                out.append(f"lot {lot_id} {name}: allocation {left}, ledger {right}")
    if set(a["mfr"]) != set(led["mfr"]):
        out.append(f"mfr lots differ: {sorted(set(a['mfr']) ^ set(led['mfr']))}")
    for key in sorted(set(a["mfr"]) & set(led["mfr"])):
        x, y = a["mfr"][key], led["mfr"][key]
        pairs = {
            "expires_on": (x["expires_on"], y["expires_on"]),
            "received": (x["initial_qty"], y["received_qty"]),
            "used": (x["used"], y["used_qty"]),
            "current/on hand": (x["on_hand"], y["received_qty"] - y["used_qty"]),
            "allocated": (x["allocated"], y["allocated_qty"]),
        }
        for name, (left, right) in pairs.items():
            if left != right:
                out.append(f"mfr lot {key} {name}: allocation {left}, ledger {right}")
    if set(a["units"]) != set(led["serials"]):
        out.append(f"serial records differ: {sorted(set(a['units']) ^ set(led['serials']))}")
    for key in sorted(set(a["units"]) & set(led["serials"])):
        if a["units"][key]["status"] != led["serials"][key]["status"]:
            out.append(
                f"serial {key}: allocation {a['units'][key]['status']}, "
                f"ledger {led['serials'][key]['status']}"
            )
    in_stock = Counter(
        (lic, s) for (lic, s, _), r in led["serials"].items() if r["status"] in IN_STOCK
    )
    out += [f"ledger: serial {k} in stock {n} times" for k, n in in_stock.items() if n > 1]
    a_un = {k: v for k, v in a["unallocated"].items() if v}
    l_un = {k: v for k, v in led["unallocated"].items() if v}
    if a_un != l_un:
        out.append(f"unallocated stock: allocation {a_un}, ledger {l_un}")
    # Usage records add up to each lot's used quantity (R10, R13, R11).
    used: defaultdict[str, Decimal] = defaultdict(Decimal)
    for u in led["usage"]:
        if u["lot_id"] is not None:
            used[u["lot_id"]] += u["quantity"]
    for lot_id, lot in led["lots"].items():
        if used.get(lot_id, ZERO) != lot["used_qty"]:
            out.append(
                f"ledger lot {lot_id}: usage records sum {used.get(lot_id, ZERO)}, "
                f"used {lot['used_qty']}"
            )
    return out


def model_vs_services(model: Model, a: dict[str, Any], led: dict[str, Any]) -> list[str]:
    """What the model says each lot, mfr lot, serial and office holds, against both services."""
    out = []
    lots = {lot.lot_id: (item, lot) for item in model.items.values() for lot in item.lots.values()}
    if set(lots) != set(a["lots"]):
        out.append(
            f"lots the model expects but allocation lacks {sorted(set(lots) - set(a['lots']))}; "
            f"allocation has unexpected {sorted(set(a['lots']) - set(lots))}"
        )
    for lot_id, (_, lot) in sorted(lots.items()):
        x = a["lots"].get(lot_id)
        if x is None:
            continue
        got = (
            x["office"],
            x["received_qty"],
            x["on_hand"],
            x["allocated"],
            x["used"],
            x["unit_cost"],
        )
        want = (lot.office, lot.received, lot.on_hand, lot.allocated, lot.used, lot.unit_cost)
        if got != want:
            out.append(
                f"lot {lot_id} (office, received, on hand, allocated, used, cost): "
                f"allocation {got}, model {want}"
            )
        y = led["lots"].get(lot_id)
        if y is not None:
            in_ledger = (y["received_qty"], y["current_qty"], y["allocated_qty"], y["used_qty"])
            modelled = (lot.received, lot.on_hand, lot.allocated, lot.used)
            if in_ledger != modelled:
                out.append(
                    f"lot {lot_id} (received, current, allocated, used): ledger {in_ledger}, "
                    f"model {modelled}"
                )
        for name, row in lot.mfr.items():
            z = a["mfr"].get((lot_id, name))
            got_row = (
                None
                if z is None
                else (z["initial_qty"], z["on_hand"], z["allocated"], z["used"], z["expires_on"])
            )
            want_row = (row.initial, row.on_hand, row.allocated, row.used, row.expires_on)
            if got_row != want_row:
                out.append(
                    f"mfr lot {lot_id}/{name} (initial, on hand, allocated, used, expiry): "
                    f"allocation {got_row}, model {want_row}"
                )
    units = {
        (item.lic, u.serial, u.lot_id): u
        for item in model.items.values()
        for u in item.units.values()
    }
    if set(units) != set(a["units"]):
        out.append(
            f"serial records: model and allocation differ on {sorted(set(units) ^ set(a['units']))}"
        )
    for key, unit in sorted(units.items()):
        got_status = a["units"].get(key, {}).get("status")
        led_status = led["serials"].get(key, {}).get("status")
        if got_status != unit.status or led_status != unit.status:
            out.append(
                f"serial {key}: model {unit.status}, allocation {got_status}, ledger {led_status}"
            )
        if unit.status == "shipped" and a["units"].get(key, {}).get("customer") != unit.customer:
            out.append(
                f"serial {key}: shipped to {unit.customer} (model), "
                f"allocation says {a['units'][key].get('customer')}"
            )
    want_un = {
        (item.lic, office): q
        for item in model.items.values()
        for office, q in item.unallocated.items()
        if q
    }
    got_un = {k: v for k, v in a["unallocated"].items() if v}
    if want_un != got_un:
        out.append(f"unallocated stock: model {want_un}, allocation {got_un}")
    want_sold = {
        (lic, lot_id, mfr, customer): (s, r)
        for (lic, lot_id, mfr, customer), (s, r) in model.sold.items()
    }
    if want_sold != a["sold"]:
        out.append(f"customer shipments: model {want_sold}, allocation {a['sold']}")
    want_rows = {
        (line.lic, sid, line.line_no): (line.row, moves_of(line.picks), line.row_complete)
        for sid, shipment in model.shipments.items()
        for line in [*shipment.lines.values(), *shipment.dropped]
        if line.row is not None
    }
    got_rows = {
        (r["lic"], r["shipment_id"], r["line_no"]): (
            r["status"],
            moves_of(
                (p["lot_id"], p["mfr_lot"], p["serial"], dec(p["quantity"]))
                for p in (r["picks"] if isinstance(r["picks"], list) else json.loads(r["picks"]))
            ),
            r["complete"],
        )
        for r in a["allocations"]
    }
    for row_key in sorted(set(want_rows) | set(got_rows)):
        if want_rows.get(row_key) != got_rows.get(row_key):
            out.append(
                f"allocation of {row_key} (status, picks, complete): "
                f"allocation {got_rows.get(row_key)}, model {want_rows.get(row_key)}"
            )
    recorded: defaultdict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for u in led["usage"]:
        recorded[
            (u["lic"], u["document"], u["source"], u["lot_id"], u["mfr_lot"], u["serial"])
        ] += u["quantity"]
    want_usage = nonzero(model.usage)
    got_usage = nonzero(recorded)
    if want_usage != got_usage:
        missing = {k: str(v) for k, v in want_usage.items() if got_usage.get(k) != v}
        extra = {k: str(v) for k, v in got_usage.items() if want_usage.get(k) != v}
        out.append(f"usage records: model expects {missing}, the ledger has {extra}")
    return out


async def read_api_checks(api: Api, model: Model, led: dict[str, Any]) -> list[str]:
    """The read API shows what the model expects."""
    out = []
    for lic, item in sorted(model.items.items()):
        usage = await api.get(f"/usage?lic={quote(lic)}&limit=1000")
        used_by_lot: defaultdict[str, Decimal] = defaultdict(Decimal)
        cogs_by_lot: defaultdict[str, Decimal] = defaultdict(Decimal)
        for u in usage:
            q, cost, total = dec(u["quantity"]), dec(u["unit_cost"]), dec(u["total_cost"])
            if q * cost != total:
                out.append(f"/usage {lic} {u['usage_id']}: {q} × {cost} ≠ {total}")
            if u["lot_id"] is not None:
                used_by_lot[u["lot_id"]] += q
                lot = item.lots.get(u["lot_id"])
                if lot is not None and cost != lot.unit_cost:
                    out.append(
                        f"/usage {lic} {u['usage_id']}: unit cost {cost}, "
                        f"lot {lot.lot_id} costs {lot.unit_cost}"
                    )
                if u["source"] != "vendor_return":
                    cogs_by_lot[u["lot_id"]] += total
        summaries = {s["lot_id"]: s for s in await api.get(f"/lots?lic={quote(lic)}&limit=1000")}
        if set(summaries) != set(item.lots):
            out.append(f"/lots?lic={lic}: lots {sorted(summaries)}, model {sorted(item.lots)}")
        for lot_id, lot in sorted(item.lots.items()):
            s = summaries.get(lot_id)
            if s is not None:
                got = tuple(
                    dec(s[k]) for k in ("received_qty", "used_qty", "allocated_qty", "current_qty")
                )
                want = (lot.received, lot.used, lot.allocated, lot.on_hand)
                if got != want or s["status"] != ("open" if lot.on_hand > 0 else "closed"):
                    out.append(
                        f"/lots?lic={lic} {lot_id} (received, used, allocated, current) "
                        f"{got} {s['status']}, model {want}"
                    )
            if used_by_lot.get(lot_id, ZERO) != lot.used:
                out.append(
                    f"/usage?lic={lic}: lot {lot_id} usage sums to "
                    f"{used_by_lot.get(lot_id, ZERO)}, model used {lot.used}"
                )
            detail = await api.get(f"/lots/{quote(lot_id, safe='')}")
            v = detail["valuation"]
            figures = tuple(
                dec(v[k]["quantity"])
                for k in ("received", "used", "current", "allocated", "available")
            )
            expected = (lot.received, lot.used, lot.on_hand, lot.allocated, lot.free)
            if figures != expected:
                out.append(
                    f"/lots/{lot_id} (received, used, current, allocated, available) {figures}, "
                    f"model {expected}"
                )
            received, used, current = figures[0], figures[1], figures[2]
            if received - used != current:
                out.append(f"/lots/{lot_id}: received {received} − used {used} ≠ current {current}")
            if dec(v["current"]["value"]) != lot.on_hand * lot.unit_cost:
                out.append(
                    f"/lots/{lot_id} current value {v['current']['value']}, "
                    f"model {lot.on_hand} × {lot.unit_cost}"
                )
            if dec(detail["cogs_total"]) != cogs_by_lot.get(lot_id, ZERO):
                out.append(
                    f"/lots/{lot_id} COGS total {detail['cogs_total']}, "
                    f"its sold usage costs {cogs_by_lot.get(lot_id, ZERO)}"
                )
            got_mfr = {
                m["mfr_lot"]: (dec(m["received_qty"]), dec(m["used_qty"]), dec(m["current_qty"]))
                for m in detail["mfr_lots"]
            }
            want_mfr = {n: (r.initial, r.used, r.on_hand) for n, r in lot.mfr.items()}
            if got_mfr != want_mfr:
                out.append(f"/lots/{lot_id} mfr lots {got_mfr}, model {want_mfr}")
            got_serials = {s["serial"]: s["status"] for s in detail["serials"]}
            want_serials = {u.serial: u.status for u in item.units.values() if u.lot_id == lot_id}
            if got_serials != want_serials:
                out.append(f"/lots/{lot_id} serials {got_serials}, model {want_serials}")
        # /items/{lic}: stock by office.
        view = await api.get(f"/items/{quote(lic)}")
        got_stock = {
            s["office"]: tuple(
                dec(s[k]) for k in ("on_hand", "allocated", "available", "unallocated")
            )
            for s in view["stock"]
        }
        want_stock = {}
        for office in OFFICES:
            open_lots = [
                lot for lot in item.lots.values() if lot.office == office and lot.on_hand > 0
            ]
            unallocated = item.unallocated.get(office, ZERO)
            on_hand = sum((lot.on_hand for lot in open_lots), ZERO) + unallocated
            allocated = sum((lot.allocated for lot in open_lots), ZERO)
            available = sum((lot.on_hand - lot.allocated for lot in open_lots), ZERO)
            if on_hand or allocated or unallocated:
                want_stock[office] = (on_hand, allocated, available, unallocated)
        got_stock = {k: v for k, v in got_stock.items() if any(v)}
        if got_stock != want_stock:
            out.append(
                f"/items/{lic} stock (on hand, allocated, available, unallocated) {got_stock}, "
                f"model {want_stock}"
            )
        # Every serial: its current status and a history whose stock changes net to it.
        for serial in sorted({u.serial for u in item.units.values()}):
            found = await api.get(f"/serials/{quote(lic)}/{quote(serial, safe='')}")
            latest = item.latest(serial)
            assert latest is not None
            if found["status"] != latest.status or found["current"]["lot_id"] != latest.lot_id:
                out.append(
                    f"/serials/{lic}/{serial}: {found['status']} in {found['current']['lot_id']}, "
                    f"model {latest.status} in {latest.lot_id}"
                )
            net = sum((dec(e["stock_change"]) for e in found["history"]), ZERO)
            if net != (ONE if item.in_stock(serial) else ZERO):
                out.append(
                    f"/serials/{lic}/{serial}: history nets {net} into stock, "
                    f"status {latest.status}"
                )
        # Every manufacturer lot: the recall trace nets to what is left, and names its customers.
        names = sorted({n for lot in item.lots.values() for n in lot.mfr})
        for name in names:
            trace = await api.get(f"/trace?lic={quote(lic)}&mfr_lot={quote(name)}")
            net = sum((dec(e["stock_change"]) for e in trace["events"]), ZERO)
            left = sum(
                (lot.mfr[name].on_hand for lot in item.lots.values() if name in lot.mfr), ZERO
            )
            if net != left:
                out.append(f"/trace {lic} {name}: stock changes net {net}, model has {left} left")
            customers = sorted(
                {
                    c
                    for (l2, lot_id, mfr, c), (s, _) in model.sold.items()
                    if l2 == lic and mfr == name and s > 0
                }
            )
            if trace["customers"] != customers:
                out.append(
                    f"/trace {lic} {name}: customers {trace['customers']}, model {customers}"
                )
    return out


# ---------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------


async def test_services_agree_after_a_randomized_workload(running: LotlineEnv) -> None:
    env = running
    started = time.monotonic()
    work = Workload(SEED)
    problems: list[str] = []
    rounds: list[list[Planned]] = [work.items_round()]
    sent: list[tuple[Planned, Any]] = []
    label = f"seed {SEED}"

    number = 0
    while True:
        planned = rounds[-1]
        for i, p in enumerate(planned, start=1):
            p.where = f"{label} round {number} doc {i}"
        documents = [check(p.where, json.dumps(p.doc)) for p in planned]
        outcomes = await send(env.settings, documents, wait=ANSWER_WAIT)
        for p, outcome in zip(planned, outcomes, strict=True):
            sent.append((p, outcome))
            if outcome.dead_letter is not None:
                problems.append(f"{p.where}: dead-lettered: {outcome.dead_letter}")
            else:
                problems += compare_answer(p.where, p, outcome.answer)
        if problems or number >= ROUNDS:
            break
        number += 1
        rounds.append(work.next_round())
    workload_seconds = time.monotonic() - started

    conn = await asyncpg.connect(env.dsn)
    try:
        async with httpx.AsyncClient(base_url=env.api, timeout=10) as client:
            api = Api(client)
            # The ledger is eventually consistent: wait (a while) until it holds what allocation
            # decided, then check everything once.
            deadline = time.monotonic() + 30
            while True:
                a, led = await allocation_state(conn), await ledger_state(conn)
                behind = ledger_vs_allocation(a, led) + dashboard_behind(sent, led)
                if not problems:  # the model is in step with the services only if so
                    behind += model_vs_services(work.model, a, led)
                if not behind or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            state_problems = allocation_consistency(a) + behind
            api_problems = [] if problems else await read_api_checks(api, work.model, led)
        answer_problems = await exactly_once(env, sent)
    finally:
        await conn.close()

    everything = problems + state_problems + api_problems + answer_problems
    if everything:
        print(f"\nreconciliation workload, {label}, {len(sent)} documents:")
        for p, outcome in sent:
            print(f"{p.where}: {json.dumps(p.doc)}")
            answer = json.dumps(outcome.answer)[:600] if outcome.answer else outcome.dead_letter
            print(f"    → {answer}")
    print(f"\n{coverage(sent)}")
    print(
        f"{label}: {len(sent)} documents in {len(rounds)} rounds, {workload_seconds:.1f} s of "
        f"workload, {time.monotonic() - started:.1f} s with the checks"
    )
    assert not everything, f"{label}: {len(everything)} disagreements:\n" + "\n".join(
        everything[:60]
    )


def coverage(sent: list[tuple[Planned, Any]]) -> str:
    """What the workload exercised: each document kind with its answers and reason codes."""
    seen: Counter[str] = Counter()
    requested: set[str] = set()
    for p, outcome in sent:
        doc, answer = p.doc, outcome.answer or {}
        what = doc["type"]
        if what == "ShipmentRequested" and doc["shipment_id"] in requested:
            what += " again"
        requested.add(doc.get("shipment_id", ""))
        if doc["type"] == "ShipmentReceived":
            what += f"[{doc['source']}, {len(doc['lines'])} line(s)]"
        elif doc["type"] == "AdjustInventory":
            what += f"[{doc['kind']}{'+' if dec(doc['quantity']) > 0 else '-'}]"
        elif doc["type"] == "ShipmentRequested":
            picked = any(line.get("lots") or line.get("serials") for line in doc["lines"])
            what += f"[{doc['kind']}, {len(doc['lines'])} line(s){', picks' if picked else ''}]"
        seen[f"{what} → {answer.get('type')} {answer.get('reason_code') or ''}".strip()] += 1
    return "\n".join(f"  {n:3d} × {what}" for what, n in sorted(seen.items()))


async def exactly_once(env: LotlineEnv, sent: list[tuple[Planned, Any]]) -> list[str]:
    """Every document answered exactly once: per shipment or receipt id, the statuses on
    `inventory.status` are the answers its documents got, in order; per item or adjustment, one
    answer on `inventory.events`. The dashboard's latest answer per document agrees."""
    out = []
    topics = env.settings.topics
    want_status: dict[str, list[str]] = defaultdict(list)
    want_events: Counter[str] = Counter()
    for _, outcome in sent:
        if outcome.document.answered_on_status:
            want_status[outcome.document.key].append((outcome.answer or {}).get("type", "?"))
        elif outcome.document.command_id is not None:
            want_events[outcome.document.command_id] += 1
    statuses = await read_topic(env, topics.status, sum(len(v) for v in want_status.values()))
    got_status: dict[str, list[str]] = defaultdict(list)
    for value in statuses:
        if isinstance(value, dict) and value.get("shipment_id"):
            got_status[value["shipment_id"]].append(str(value.get("type")))
    for document in sorted(set(want_status) | set(got_status)):
        if want_status.get(document) != got_status.get(document):
            out.append(
                f"inventory.status for {document}: {got_status.get(document)}, "
                f"its documents were answered {want_status.get(document)}"
            )
    events = await read_topic(env, topics.events, sum(want_events.values()))
    answered: Counter[str] = Counter(
        str(v.get("command_id"))
        for v in events
        if isinstance(v, dict)
        and v.get("type") in ("ItemUpserted", "InventoryAdjusted", "CommandRejected")
        and str(v.get("command_id")) in want_events
    )
    for command_id, count in sorted(want_events.items()):
        if answered.get(command_id, 0) != count:
            out.append(
                f"inventory.events: {command_id} answered {answered.get(command_id, 0)} times"
            )
    return out


def dashboard_behind(sent: list[tuple[Planned, Any]], led: dict[str, Any]) -> list[str]:
    """The ledger's dashboard shows each receipt's and shipment's last answer but those that
    left the shipment as it was: a refused cancel, a refusal naming no open shipment
    (services/ledger/translate.py)."""
    last: dict[str, str] = {}
    for _, outcome in sent:
        answer = outcome.answer or {}
        changed_nothing = answer.get("refused") or answer.get("reason_code") == "UNKNOWN_SHIPMENT"
        if outcome.document.answered_on_status and not changed_nothing:
            last[outcome.document.key] = answer.get("type", "?")
    return [
        f"ledger ops_documents {document}: {led['ops_documents'].get(document)}, "
        f"last answer {answer}"
        for document, answer in sorted(last.items())
        if led["ops_documents"].get(document) != answer
    ]
