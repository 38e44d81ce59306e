"""A release names the quarantine it lifted: `StockQuarantined.released_quarantine_id`, the
rule's `quarantine_id` (its own `quarantine_id` is the release's id), in the domain event and
on the wire (docs/contract.md "Quarantine")."""

from __future__ import annotations

from datetime import date

from services.allocation.domain.model import StockQuarantined
from services.allocation.translate import to_wire
from shared.contracts import events as e
from tests.unit.allocation.builders import Book, item, lot, quarantine, receive


def test_a_release_names_the_quarantine_it_lifted() -> None:
    book = Book(item(track=True), receive("PO-1/1", 5, lots=[lot("X", 5, date(2024, 1, 1))]))
    (held,) = book.ok(quarantine("Q-1", mfr_lot="X"))
    (lifted,) = book.ok(quarantine("REL-1", mfr_lot="X", quarantined=False))
    assert isinstance(held, StockQuarantined) and isinstance(lifted, StockQuarantined)
    assert held.released_quarantine_id is None
    assert (lifted.quarantine_id, lifted.released_quarantine_id) == ("REL-1", "Q-1")

    wire = to_wire(lifted, "m-1", None)
    assert isinstance(wire, e.StockQuarantined)
    assert (wire.quarantine_id, wire.released_quarantine_id) == ("REL-1", "Q-1")
