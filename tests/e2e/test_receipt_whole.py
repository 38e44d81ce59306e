"""A receipt is received whole or not at all, through the real message path with the four
services running as OS processes.

A document of several lines whose one line allocation refuses (a serial already in stock)
posts nothing: its other line is held, then cancelled, and `ReceiptRejected` names no posted
line. A later good document of several lines is held line by line, confirmed, and posted; the
ledger then shows exactly that document's stock, never the refused one's.
"""

from __future__ import annotations

import json
import signal
import uuid
from decimal import Decimal
from typing import Any

from shared import stack
from shared.ids import derived_id, namespaced
from tests.e2e.conftest import FAST_JOIN
from tests.e2e.test_allocation_crash import _wait_exit
from tests.e2e.test_golden_path import _get, _status
from tests.fixtures.infra import LotlineEnv, json_values, kafka_publish, kafka_read_until


def _json(message_type: str, /, **fields: Any) -> bytes:
    body = {"type": message_type, "occurred_at": "2026-11-01T10:00:00Z", **fields}
    return json.dumps(body).encode()


def _receipt(document: str, *lines: dict[str, Any]) -> bytes:
    return _json(
        "ShipmentReceived",
        message_id=f"rcv-{document}",
        shipment_id=document,
        office="AI",
        source="purchase",
        reference=document,
        received_on="2026-11-01",
        lines=[{"line_no": n, **line} for n, line in enumerate(lines, start=1)],
    )


async def test_a_receipt_with_a_refused_line_posts_nothing_and_a_good_one_posts_whole(
    running: LotlineEnv,
) -> None:
    env = running
    topics = env.settings.topics
    run = uuid.uuid4().hex[:8]
    plain, cam = f"PLAIN-{run}", f"CAM-{run}"
    first, refused, good = f"PO-A-{run}", f"PO-B-{run}", f"PO-C-{run}"

    for lic, flags in ((plain, {}), (cam, {"serialized": True})):
        item = _json("UpsertItem", message_id=f"item-{lic}", lic=lic, est_unit_cost="4", **flags)
        await kafka_publish(env.bootstrap, topics.items, lic, item)
        await _get(env, f"/items/{lic}")

    # S1 is in stock: a single-line receipt, one atomic command.
    line = {"lic": cam, "quantity": 1, "serials": ["S1"], "unit_cost": "4"}
    await kafka_publish(env.bootstrap, topics.receipts, first, _receipt(first, line))
    (posted,) = await _status(env, "ReceiptPosted", first)
    assert posted["type"] == "ReceiptPosted"

    # Ten PLAIN and S1 again: allocation refuses S1; the PLAIN line must not post.
    body = _receipt(refused, {"lic": plain, "quantity": 10, "unit_cost": "4"}, line)
    await kafka_publish(env.bootstrap, topics.receipts, refused, body)
    (rejected,) = await _status(env, "ReceiptRejected", refused)
    assert [(p["line_no"], p["reason_code"]) for p in rejected["problems"]] == [
        (2, "DUPLICATE_SERIAL")
    ]
    assert rejected["posted_lines"] == []

    # Four PLAIN and S2: every line held, confirmed, posted.
    body = _receipt(
        good,
        {"lic": plain, "quantity": 4, "unit_cost": "4"},
        {"lic": cam, "quantity": 1, "serials": ["S2"], "unit_cost": "4"},
    )
    await kafka_publish(env.bootstrap, topics.receipts, good, body)
    (posted,) = await _status(env, "ReceiptPosted", good)
    assert [(x["line_no"], x["lot_id"]) for x in posted["lines"]] == [
        (1, f"{good}/1"),
        (2, f"{good}/2"),
    ]

    # The ledger reads PLAIN's events in order: once the good receipt's four are there, a
    # leaked ten of the refused receipt would be there too.
    view = await _get(
        env, f"/items/{plain}", until=lambda b: any(Decimal(s["on_hand"]) for s in b["stock"])
    )
    stock = {s["office"]: s for s in view["stock"]}
    assert Decimal(stock["AI"]["on_hand"]) == 4
    assert Decimal(stock["AI"]["available"]) == 4
    cams = await _get(
        env, f"/items/{cam}", until=lambda b: any(Decimal(s["on_hand"]) >= 2 for s in b["stock"])
    )
    assert Decimal({s["office"]: s for s in cams["stock"]}["AI"]["on_hand"]) == 2


async def test_allocation_killed_between_holding_and_confirming_loses_nothing(
    lotline_env: Any,
) -> None:
    """SIGKILL right after allocation committed a document's held lines (their LineHeld not yet
    published): once restarted, it publishes them, receiving confirms, and the restarted process
    confirms from the tables (its cache is empty). The document posts whole, once."""
    env: LotlineEnv = lotline_env(**FAST_JOIN)
    topics = env.settings.topics
    run = uuid.uuid4().hex[:8]
    plain, cam, document = f"PLAIN-{run}", f"CAM-{run}", f"PO-K-{run}"
    others = stack.start_services(env.env, ["receiving", "shipping", "ledger"])
    first_line = derived_id(namespaced("receipt", f"rcv-{document}"), "1")
    crashing = stack.start_services(
        {**env.env, "LOTLINE_FAULT_KILL_AFTER_COMMIT": first_line}, ["allocation"]
    )
    restarted: list[Any] = []
    try:
        for lic, flags in ((plain, {}), (cam, {"serialized": True})):
            item = _json(
                "UpsertItem", message_id=f"item-{lic}", lic=lic, est_unit_cost="4", **flags
            )
            await kafka_publish(env.bootstrap, topics.items, lic, item)
            await _get(env, f"/items/{lic}")
        body = _receipt(
            document,
            {"lic": plain, "quantity": 3, "unit_cost": "4"},
            {"lic": cam, "quantity": 1, "serials": ["K1"], "unit_cost": "4"},
        )
        await kafka_publish(env.bootstrap, topics.receipts, document, body)
        assert await _wait_exit(crashing[0], 90) == -signal.SIGKILL

        restarted = stack.start_services(env.env, ["allocation"])
        (posted,) = await _status(env, "ReceiptPosted", document)
        assert [line["line_no"] for line in posted["lines"]] == [1, 2]
        view = await _get(
            env, f"/items/{plain}", until=lambda b: any(Decimal(s["on_hand"]) for s in b["stock"])
        )
        assert Decimal({s["office"]: s for s in view["stock"]}["AI"]["on_hand"]) == 3
        events = await kafka_read_until(
            env.bootstrap,
            topics.events,
            lambda rs: sum(v.get("type") == "StockReceived" for v in json_values(rs)) >= 2,
        )
        received = [v for v in json_values(events) if v["type"] == "StockReceived"]
        assert sorted(v["lic"] for v in received) == sorted([plain, cam])
    finally:
        stack.stop_services([*crashing, *restarted, *others])
