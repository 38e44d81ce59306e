"""Accrued inventory of lots no purchase order made (R7, R11)."""

from __future__ import annotations

import pytest

from services.ledger.domain.model import Known, LotKind
from services.ledger.domain.recording import record
from services.ledger.domain.valuation import Figure, LotFigures, value
from tests.unit.ledger.builders import D, receipt


@pytest.mark.parametrize("kind", ["adjustment", "production"])
def test_a_lot_bought_from_no_one_accrues_nothing(kind: LotKind) -> None:
    """R7: accrued is received and not yet purchased (billed). A beginning balance's or a
    production order's lot of 4 at 5.00 is never billed: accrued 0, received 4 (20.00)."""
    (lot,) = record(Known(), [receipt("L-1", 4, "5.00", po="REF-1", kind=kind)]).lots

    v = value(LotFigures.of(lot))

    assert v.accrued == Figure(D(0), D(0))
    assert (v.received, v.current) == (Figure(D(4), D("20.00")), Figure(D(4), D("20.00")))


def test_a_purchase_lot_not_yet_billed_accrues_all_it_received() -> None:
    """R7: a purchase lot with nothing purchased yet accrues its whole receipt."""
    (lot,) = record(Known(), [receipt("L-1", 4, "5.00")]).lots

    assert value(LotFigures.of(lot)).accrued == Figure(D(4), D("20.00"))
