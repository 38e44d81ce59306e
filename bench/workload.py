"""The messages the benchmark sends: items, receipts, shipment documents and per-LIC commands.

LICs cycle over three kinds (DESIGN.md §1): `plain`, `lot` (manufacturer-lot tracked and
perishable, received as three lots with different expiry dates) and `serial` (serialized).
Dates are fixed so every run decides the same way (FEFO uses the message's `ship_on`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

KINDS = ("plain", "lot", "serial")
OFFICE = "AI"
RECEIVED_ON = "2026-01-05"
SHIP_ON = "2026-02-01"
EXPIRIES = ("2027-03-01", "2027-01-01", "2027-02-01")  # FEFO takes the second lot first


@dataclass(frozen=True)
class Lic:
    code: str
    kind: str


def lics(count: int) -> list[Lic]:
    return [Lic(f"{KINDS[i % 3]}-{i:04d}", KINDS[i % 3]) for i in range(count)]


def now_rfc3339(at: float | None = None) -> str:
    return datetime.fromtimestamp(
        at if at is not None else datetime.now(UTC).timestamp(), UTC
    ).isoformat()


def encode(message_type: str, **fields: Any) -> bytes:
    body = {"type": message_type, "occurred_at": fields.pop("occurred_at", None) or now_rfc3339()}
    body.update(fields)
    return orjson.dumps(body)


def upsert_item(lic: Lic, message_id: str) -> bytes:
    return encode(
        "UpsertItem",
        message_id=message_id,
        lic=lic.code,
        description=f"Benchmark {lic.kind} item",
        track_mfr_lot=lic.kind == "lot",
        serialized=lic.kind == "serial",
        perishable=lic.kind == "lot",
        est_unit_cost="4.00",
    )


def lot_split(units: int) -> list[dict[str, Any]]:
    """Three manufacturer lots holding `units` between them, with different expiry dates."""
    third = units // 3
    sizes = (units - 2 * third, third, third)
    return [
        {"mfr_lot": f"M{n}", "expires_on": EXPIRIES[n], "quantity": size}
        for n, size in enumerate(sizes)
        if size > 0
    ]


def serial_span(lic: Lic, units: int) -> str:
    return f"{lic.code}-S{1:06d}...{lic.code}-S{units:06d}"


# -- scenario 2: per-LIC commands (lotline's own topic) ---------------------------------------


def allocation_commands(count: int, items: list[Lic]) -> list[tuple[str, bytes]]:
    """`count` commands: UpsertItem and ReceiveStock per LIC, then AllocateLine + ShipLine pairs
    round-robin over the LICs, each line taking one unit (stock always covers it)."""
    setup = 2 * len(items)
    lines = max(1, (count - setup + 2 * len(items) - 1) // (2 * len(items)))
    units = lines + 2
    commands: list[tuple[str, bytes]] = []
    for lic in items:
        commands.append((lic.code, upsert_item(lic, f"{lic.code}/item")))
    for lic in items:
        receipt: dict[str, Any] = {
            "message_id": f"{lic.code}/receive",
            "lic": lic.code,
            "shipment_id": f"PO-{lic.code}",
            "line_no": 1,
            "lot_id": f"PO-{lic.code}/1",
            "office": OFFICE,
            "received_on": RECEIVED_ON,
            "quantity": units,
            "unit_cost": "4.00",
        }
        if lic.kind == "lot":
            receipt["lots"] = lot_split(units)
        if lic.kind == "serial":
            receipt["serials"] = [f"{lic.code}-S{n:06d}" for n in range(1, units + 1)]
        commands.append((lic.code, encode("ReceiveStock", **receipt)))
    line = 0
    while len(commands) < count:
        line += 1
        for lic in items:
            fields = {"lic": lic.code, "shipment_id": f"SO-{lic.code}", "line_no": line}
            commands.append(
                (
                    lic.code,
                    encode(
                        "AllocateLine",
                        message_id=f"{lic.code}/alloc/{line}",
                        office=OFFICE,
                        ship_on=SHIP_ON,
                        quantity=1,
                        counterparty="Benchmark customer",
                        **fields,
                    ),
                )
            )
            commands.append(
                (lic.code, encode("ShipLine", message_id=f"{lic.code}/ship/{line}", **fields))
            )
    return commands[:count]


# -- scenario 3: upstream documents ----------------------------------------------------------


def item_messages(items: list[Lic], token: str) -> list[tuple[str, bytes]]:
    return [(lic.code, upsert_item(lic, f"item-{token}-{lic.code}")) for lic in items]


def receipt_documents(
    items: list[Lic], units: int, token: str, lines_per_document: int = 50
) -> list[tuple[str, bytes]]:
    """ShipmentReceived documents stocking every LIC with `units` units (spans for serials)."""
    documents = []
    for start in range(0, len(items), lines_per_document):
        shipment_id = f"PO-{token}-{start // lines_per_document}"
        lines = []
        for line_no, lic in enumerate(items[start : start + lines_per_document], 1):
            line: dict[str, Any] = {"line_no": line_no, "lic": lic.code, "quantity": units}
            if lic.kind == "lot":
                line["lots"] = lot_split(units)
            if lic.kind == "serial":
                line["serials"] = serial_span(lic, units)
            lines.append(line)
        body = encode(
            "ShipmentReceived",
            message_id=f"rcv-{shipment_id}",
            shipment_id=shipment_id,
            office=OFFICE,
            source="purchase",
            reference=shipment_id,
            received_on=RECEIVED_ON,
            lines=[{**line, "unit_cost": "4.00"} for line in lines],
        )
        documents.append((shipment_id, body))
    return documents


@dataclass(frozen=True)
class Document:
    shipment_id: str
    lines: int
    body: dict[str, Any]


def shipment_documents(run: str, items: list[Lic], seed: int) -> Iterator[Document]:
    """An endless stream of ShipmentRequested documents of 1–3 lines on distinct LICs; serialized
    lines take one unit, others one or two (mean 1.33 units a line)."""
    rng = random.Random(seed)
    n = 0
    while True:
        n += 1
        chosen = rng.sample(items, rng.randint(1, 3))
        lines = [
            {
                "line_no": line_no,
                "lic": lic.code,
                "quantity": 1 if lic.kind == "serial" else rng.choice((1, 1, 2)),
            }
            for line_no, lic in enumerate(chosen, 1)
        ]
        shipment_id = f"SO-{run}-{n}"
        body = {
            "type": "ShipmentRequested",
            "message_id": f"req-{shipment_id}",
            "shipment_id": shipment_id,
            "office": OFFICE,
            "kind": "sale",
            "customer": f"Customer {n % 97}",
            "ship_on": SHIP_ON,
            "lines": lines,
        }
        yield Document(shipment_id, len(lines), body)


def ship_request(shipment_id: str, at: float) -> bytes:
    return encode(
        "ShipmentShipRequested",
        message_id=f"ship-{shipment_id}",
        shipment_id=shipment_id,
        occurred_at=now_rfc3339(at),
    )
