"""`lotline demo`: a short, real walk through lotline on a running stack.

It plays an upstream system: two items (a perishable lot-tracked one and a serialized one), a
purchase receipt with two manufacturer lots and a span of serials, a sale allocated without
picks (the lot expiring first goes first, R9), the sale shipped, and a second sale that asks for
more than is in stock and is refused with its reason code. Every step waits for lotline's
answer before the next, as an order system would. Then it reads the recall trace of the lot
that shipped from the ledger's read API.

Ids carry a fresh run id (`DEMO-1a2b3c`), so the demo can run any number of times on one stack.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from shared.config import Settings
from shared.send import Document, Outcome, check, send

OFFICE = "MAIN"


@dataclass(frozen=True)
class Step:
    title: str
    documents: tuple[dict[str, Any], ...]
    expected: tuple[str, ...]  # the answers this step should get, in document order


@dataclass(frozen=True)
class Scenario:
    run: str
    perishable: str  # LIC
    serialized: str  # LIC
    first_to_expire: str  # manufacturer lot the sale takes first
    sale: str
    steps: tuple[Step, ...]


def scenario(run: str, today: dt.date) -> Scenario:
    milk, pump = f"MILK-{run}", f"PUMP-{run}"
    lot_a, lot_b = f"LA-{run}", f"LB-{run}"
    receipt, sale, big_sale = f"PO-{run}", f"SO-{run}", f"SO2-{run}"

    def doc(message_type: str, number: int, **fields: Any) -> dict[str, Any]:
        return {"type": message_type, "message_id": f"{run}-{number}", **fields}

    items = Step(
        "Two items: a perishable, lot-tracked one and a serialized one",
        (
            doc(
                "UpsertItem",
                1,
                lic=milk,
                description="Whole milk 1 L",
                uom="EA",
                track_mfr_lot=True,
                est_unit_cost="0.80",
            ),
            doc(
                "UpsertItem",
                2,
                lic=pump,
                description="Infusion pump",
                uom="EA",
                serialized=True,
                est_unit_cost="1200.00",
            ),
        ),
        ("ItemUpserted", "ItemUpserted"),
    )
    receive = Step(
        "A purchase receipt: 100 units in two manufacturer lots, and 3 pumps by a serial span",
        (
            doc(
                "ShipmentReceived",
                3,
                shipment_id=receipt,
                office=OFFICE,
                source="purchase",
                reference=receipt,
                received_on=today.isoformat(),
                lines=[
                    {
                        "line_no": 1,
                        "lic": milk,
                        "quantity": 100,
                        "unit_cost": "0.75",
                        "lots": [
                            {
                                "mfr_lot": lot_a,
                                "expires_on": (today + dt.timedelta(days=60)).isoformat(),
                                "quantity": 60,
                            },
                            {
                                "mfr_lot": lot_b,
                                "expires_on": (today + dt.timedelta(days=20)).isoformat(),
                                "quantity": 40,
                            },
                        ],
                    },
                    {
                        "line_no": 2,
                        "lic": pump,
                        "quantity": 3,
                        "unit_cost": "1150.00",
                        "serials": f"SN{run}-1000...SN{run}-1002",
                    },
                ],
            ),
        ),
        ("ReceiptPosted",),
    )
    allocate = Step(
        "A sale of 50 units and a pump, no picks: the lot expiring first goes first",
        (
            doc(
                "ShipmentRequested",
                4,
                shipment_id=sale,
                office=OFFICE,
                kind="sale",
                customer="ACME Hospital",
                reference=sale,
                ship_on=today.isoformat(),
                lines=[
                    {"line_no": 1, "lic": milk, "quantity": 50},
                    {"line_no": 2, "lic": pump, "quantity": 1},
                ],
            ),
        ),
        ("ShipmentAllocated",),
    )
    ship = Step(
        "The sale shipped: usage records, costed at each lot's unit cost",
        (doc("ShipmentShipRequested", 5, shipment_id=sale),),
        ("ShipmentShipped",),
    )
    refuse = Step(
        "A sale of 500 units, more than is left: refused with its reason code",
        (
            doc(
                "ShipmentRequested",
                6,
                shipment_id=big_sale,
                office=OFFICE,
                kind="sale",
                customer="Corner Shop",
                ship_on=today.isoformat(),
                lines=[{"line_no": 1, "lic": milk, "quantity": 500}],
            ),
        ),
        ("ShipmentAllocationFailed",),
    )
    return Scenario(run, milk, pump, lot_b, sale, (items, receive, allocate, ship, refuse))


def new_run_id() -> str:
    return f"DEMO-{secrets.token_hex(3)}"


async def run_demo(
    settings: Settings,
    api: str,
    out: TextIO,
    *,
    run: str | None = None,
    wait: float = 60.0,
) -> list[str]:
    """Play the scenario on the stack `settings` names; returns the problems (none: it all went
    as expected). Prints each step, each answer, and the recall trace."""
    plan = scenario(run or new_run_id(), dt.date.today())
    problems: list[str] = []
    print(f"lotline demo, run {plan.run}", file=out)
    for number, step in enumerate(plan.steps, start=1):
        print(f"\n{number}. {step.title}", file=out, flush=True)
        documents = [
            check(f"step {number}.{i}", json.dumps(d)) for i, d in enumerate(step.documents, 1)
        ]
        outcomes = await send(settings, documents, wait=wait, out=out)
        problems += _unexpected(documents, outcomes, step.expected)
        if problems:
            return problems
    trace = await asyncio.to_thread(_trace, api, plan, wait)
    if trace is None:
        return [f"the ledger at {api} did not show {plan.sale} in the trace within {wait:.0f} s"]
    _print_trace(out, plan, trace, api)
    return problems


def _unexpected(
    documents: Sequence[Document], outcomes: Sequence[Outcome], expected: Sequence[str]
) -> list[str]:
    problems = []
    for doc, outcome, wanted in zip(documents, outcomes, expected, strict=True):
        got = outcome.answer.get("type") if outcome.answer else None
        if got != wanted:
            seen = outcome.summary().split("→", 1)[-1].strip()
            problems.append(f"{doc.type} {doc.key}: expected {wanted}, got {seen}")
    return problems


def _trace(api: str, plan: Scenario, wait: float) -> dict[str, Any] | None:
    """The forward trace of the lot the sale took first, once the ledger has the shipment."""
    query = urllib.parse.urlencode({"lic": plan.perishable, "mfr_lot": plan.first_to_expire})
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api}/trace?{query}", timeout=5) as response:
                trace: dict[str, Any] = json.loads(response.read())
            if any(
                e["event_type"] == "shipment" and e["document"] == plan.sale
                for e in trace["events"]
            ):
                return trace
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            pass
        time.sleep(0.3)
    return None


def _print_trace(out: TextIO, plan: Scenario, trace: dict[str, Any], api: str) -> None:
    query = urllib.parse.urlencode({"lic": plan.perishable, "mfr_lot": plan.first_to_expire})
    print(f"\nRecall trace of {plan.perishable} lot {plan.first_to_expire}:", file=out)
    for event in trace["events"]:
        who = event.get("counterparty") or ""
        print(
            f"  {event['date']}  {event['event_type']:<12} {event['document']:<16}"
            f" qty {event['quantity']:>6}  cost {event['cost']:>8}  {who}",
            file=out,
        )
    print(f"  customers: {', '.join(trace['customers']) or 'none'}", file=out)
    print(
        f"\nMore: {api}/trace?{query}&format=csv  (recall spreadsheet)\n"
        f"      {api}/serials/{plan.serialized}/SN{plan.run}-1000  (a serial's history)\n"
        f"      {api}/dashboard  (answers, refusals, dead letters)",
        file=out,
    )
