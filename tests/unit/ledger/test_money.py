"""Money is exact (F5): the contract allows quantities below 1e9 and unit costs below 1e12, both
with 6 places, whose product needs up to 33 significant digits; the default decimal context
keeps 28. Every amount the ledger computes keeps all of them."""

from __future__ import annotations

from decimal import Context, Decimal, localcontext

from services.ledger.domain.costing import apply_updates
from services.ledger.domain.model import Known
from services.ledger.domain.recording import record
from services.ledger.domain.valuation import LotFigures, value
from tests.unit.ledger.builders import LIC, D, act, booked, move, po_update, receipt

QTY = "123456789.123457"
EST = "98765432.123457"
ACT = "987654321098.765432"


def _exact(a: str | Decimal, b: str | Decimal) -> Decimal:
    with localcontext(Context(prec=100)):
        return D(a) * D(b)


def test_usage_cogs_and_transaction_costs_keep_every_digit() -> None:
    entries = record(
        Known(),
        [
            receipt("L1", QTY, EST, moves=(move("L1", QTY, EST),)),
            act("shipment", move("L1", QTY, EST), counterparty="ACME"),
        ],
    )

    (usage,) = entries.usage
    (cogs,) = entries.cogs
    assert usage.total_cost == cogs.amount == _exact(QTY, EST)
    assert [t.cost for t in entries.transactions] == [_exact(QTY, EST)] * 2
    assert len(usage.total_cost.as_tuple().digits) > 28  # the case the default context rounds


def test_a_reconciliation_brings_a_big_usage_exactly_to_the_actual_cost() -> None:
    entries = record(
        Known(),
        [
            receipt("L1", QTY, EST, moves=(move("L1", QTY, EST),)),
            act("shipment", move("L1", QTY, EST), counterparty="ACME"),
        ],
    )

    closing = apply_updates(
        {}, {("PO-1", LIC): booked(entries.usage)}, [po_update("PO-1", actual=ACT, closed=True)]
    )

    (entry,) = closing.cogs
    with localcontext(Context(prec=100)):
        assert entry.amount == _exact(QTY, ACT) - _exact(QTY, EST)
        assert entry.unit_cost == D(ACT) - D(EST)


def test_a_big_lot_is_valued_exactly() -> None:
    v = value(LotFigures(received_qty=D(QTY), est_unit_cost=D(EST), act_unit_cost=D(ACT)))

    assert v.received.value == v.current.value == _exact(QTY, ACT)
