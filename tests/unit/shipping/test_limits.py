"""Shipping's core under hostile sizes (DESIGN §6, R5): a short document must not expand into
unbounded work. A request's lines share one serial budget, as a receipt's do."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.shipping import domain
from services.shipping.model import (
    Allocate,
    Cancel,
    Entry,
    Item,
    Limits,
    Release,
    Request,
    RequestLine,
)
from shared.reasons import ReasonCode

ITEMS = {"CAM": Item(lic="CAM", serialized=True)}


def _spans(lines: int, per_line: int) -> Request:
    """Lines of `per_line` units, each typed as one short span: a few bytes each on the wire."""
    return Request(
        message_id="m-spans",
        shipment_id="S-SPANS",
        office="AI",
        kind="sale",
        ship_on=date(2026, 11, 2),
        lines=tuple(
            RequestLine(
                line_no=n,
                lic="CAM",
                quantity=Decimal(per_line),
                entry=Entry(serials=f"L{n}-{1:06d}...L{n}-{per_line:06d}"),
            )
            for n in range(1, lines + 1)
        ),
    )


def test_a_requests_serial_spans_share_one_document_budget() -> None:
    """R5, §6: 1,000,000 serials per document at most, as for a receipt. Eleven lines of
    100,000 (each within the per-line limit, the message under 1 kB) cross it: the line that
    crosses is refused INVALID_QUANTITY, carrying no serials, and the rest go as typed."""
    decision = domain.handle(None, _spans(11, 100_000), ITEMS)
    sent = [c for c in decision.commands if isinstance(c, Allocate)]
    assert [c.line_no for c in sent] == list(range(1, 12))
    assert all(c.refusal is None and len(c.picks.serials) == 100_000 for c in sent[:10])
    last = sent[10]
    assert last.refusal is not None
    assert last.refusal.reason_code is ReasonCode.INVALID_QUANTITY
    assert "1000000" in last.refusal.reason.replace(",", "")
    assert last.picks.serials == ()


def test_every_line_past_the_budget_is_refused_without_expanding_its_span() -> None:
    """A budget of 5 serials: line 1 takes 3, line 2 (3 more) crosses it, and line 3 is
    refused too although alone it would fit; nothing past the budget is sent."""
    limits = Limits(max_serials_per_document=5)
    decision = domain.handle(None, _spans(3, 3), ITEMS, limits)
    sent = [c for c in decision.commands if isinstance(c, Allocate)]
    assert sent[0].refusal is None and len(sent[0].picks.serials) == 3
    for refused in sent[1:]:
        assert refused.refusal is not None
        assert refused.refusal.reason_code is ReasonCode.INVALID_QUANTITY
        assert refused.picks.serials == ()


def test_scanned_serials_count_against_the_budget_too() -> None:
    """R5: scanned serials are serials named like typed ones."""
    limits = Limits(max_serials_per_document=2)
    lines = tuple(
        RequestLine(
            line_no=n,
            lic="CAM",
            quantity=Decimal(2),
            entry=Entry(scans=(f"(21)SN{n}A", f"(21)SN{n}B")),
        )
        for n in (1, 2)
    )
    request = Request(
        message_id="m-scans",
        shipment_id="S-SCANS",
        office="AI",
        kind="sale",
        ship_on=date(2026, 11, 2),
        lines=lines,
    )
    sent = [c for c in domain.handle(None, request, ITEMS, limits).commands]
    assert isinstance(sent[0], Allocate) and sent[0].picks.serials == ("SN1A", "SN1B")
    assert isinstance(sent[1], Allocate) and sent[1].refusal is not None
    assert sent[1].refusal.reason_code is ReasonCode.INVALID_QUANTITY


def _plain(lines: int, message_id: str, office: str = "AI") -> Request:
    return Request(
        message_id=message_id,
        shipment_id="S-BIG",
        office=office,
        kind="sale",
        ship_on=date(2026, 11, 2),
        lines=tuple(
            RequestLine(line_no=n, lic="PLAIN", quantity=Decimal(1)) for n in range(1, lines + 1)
        ),
    )


def test_cancelling_or_moving_the_largest_shipment_releases_every_line() -> None:
    """§6: a cancel, or a resend on new terms, of a 10,000-line shipment (the contract's most)
    still being allocated releases every line's allocation in flight (`_Draft.allocating`
    looks each line up: scanning every command in flight per line was quadratic)."""
    items = {"PLAIN": Item(lic="PLAIN")}
    requested = domain.handle(None, _plain(10_000, "m-big"), items)
    shipment = requested.shipment
    assert shipment is not None and len(shipment.pending) == 10_000
    cancel = Cancel(message_id="m-big-cancel", shipment_id="S-BIG")
    cancelled = domain.handle(shipment, cancel, items)
    assert len(cancelled.commands) == 10_000
    assert all(isinstance(c, Release) for c in cancelled.commands)
    assert {c.line_no for c in cancelled.commands} == set(range(1, 10_001))
    moved = domain.handle(shipment, _plain(10_000, "m-big-2", "AJ"), items)
    assert len(moved.commands) == 20_000
    assert sum(isinstance(c, Release) for c in moved.commands) == 10_000
