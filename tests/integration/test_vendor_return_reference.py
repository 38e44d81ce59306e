"""R14, R16: a return to vendor with a `reference` (its PO) that names no stock is taken from
that PO's lots only, through the real broker: allocation, receiving and shipping run as OS
processes against a real PostgreSQL, an upstream system publishes with a plain Kafka client
and reads `inventory.status`.

The controller's case: SUGAR bought first without a PO at 11.00, then on PO-100 at 9.00; a
return of 5 to SweetCo for PO-100 leaves from PO-100's lot at 9.00 (first-in-first-out alone
took the 11.00 lot), the next one, short of PO-100's stock, is refused saying it looked only
there, and one without a reference takes any lot, first-in-first-out, as before."""

from __future__ import annotations

from typing import Any

from tests.fixtures.infra import LotlineEnv
from tests.integration.test_shipping_broker import Upstream, codes, running

__all__ = ["running"]


async def _return(up: Upstream, doc: str, lic: str, quantity: int, **header: Any) -> dict[str, Any]:
    """A return to vendor of one line naming nothing; its status."""
    await up.send(
        up.topics.shipments,
        doc,
        "ShipmentRequested",
        shipment_id=doc,
        office="MAIN",
        kind="vendor_return",
        vendor="SweetCo",
        ship_on="2026-11-05",
        lines=[{"line_no": 1, "lic": lic, "quantity": quantity}],
        **header,
    )
    return await up.status(doc)


def _moved(status: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(m["lot_id"], m["quantity"], m["unit_cost"]) for m in status["lines"][0]["movements"]]


async def test_a_vendor_return_takes_only_its_pos_lots(running: LotlineEnv) -> None:
    up = Upstream(running)
    sugar, po = up.id("SUGAR"), up.id("PO-100")
    await up.items({"lic": sugar, "est_unit_cost": "10.00"})
    other = await up.receive(
        up.id("RC-3"),
        {"lic": sugar, "quantity": 20, "unit_cost": "11.00"},
        office="MAIN",
        received_on="2026-11-01",
    )
    on_po = await up.receive(
        up.id("RCV-7"),
        {"lic": sugar, "quantity": 8, "unit_cost": "9.00"},
        office="MAIN",
        reference=po,
        vendor="SweetCo",
    )
    assert (other["type"], on_po["type"]) == ("ReceiptPosted", "ReceiptPosted"), (other, on_po)
    other_lot, po_lot = other["lines"][0]["lot_id"], on_po["lines"][0]["lot_id"]

    first = up.id("RTV-1")
    allocated = await _return(up, first, sugar, 5, reference=po)
    assert allocated["type"] == "ShipmentAllocated", allocated
    assert _moved(allocated) == [(po_lot, "5", "9.00")]
    shipped = await up.shipment("ShipmentShipRequested", first)
    assert shipped["type"] == "ShipmentShipped", shipped
    assert _moved(shipped) == [(po_lot, "5", "9.00")]

    short = await _return(up, up.id("RTV-2"), sugar, 5, reference=po)
    assert codes(short) == [(1, "INSUFFICIENT_STOCK")]
    assert short["problems"][0]["reason"] == (
        f"item {sugar} at office MAIN: requested 5, available 3 in the lots of {po} (the "
        "return's reference), and 20 more in other lots: leave reference out to return any"
    )

    anywhere = await _return(up, up.id("RTV-3"), sugar, 2)
    assert anywhere["type"] == "ShipmentAllocated", anywhere
    assert _moved(anywhere) == [(other_lot, "2", "11.00")]
