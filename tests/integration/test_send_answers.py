"""`lotline send` against a real broker: it reads the answer topics from their ends as of the
moment before it sends, so that no earlier answer is taken for a new one."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.kafka import make_producer
from shared.send import DRAIN_SECONDS, _Answers, check
from tests.fixtures.infra import LotlineEnv

ITEM = '{"type": "UpsertItem", "message_id": "busy-1", "lic": "BOLT", "est_unit_cost": "0.10"}'


async def test_reading_the_answer_topics_to_their_end_stops_on_a_busy_stack(
    lotline_env: Any,
) -> None:
    """On a running deployment the answer topics never fall quiet for a poll: reading on to
    their true end stops after DRAIN_SECONDS (review: it never stopped, and `lotline send` and
    `lotline demo` hung before sending anything)."""
    env: LotlineEnv = lotline_env()
    settings = env.settings
    producer = make_producer(settings)
    await producer.start()
    stop = asyncio.Event()

    async def traffic() -> None:  # other documents' answers, every 50 ms
        n = 0
        while not stop.is_set():
            n += 1
            await producer.send_and_wait(
                settings.topics.events, b'{"type": "ItemUpserted"}', key=str(n).encode()
            )
            await asyncio.sleep(0.05)

    busy = asyncio.create_task(traffic())
    reader = _Answers(settings, [check("f:1", ITEM)])
    try:
        await asyncio.sleep(1.0)
        await asyncio.wait_for(reader.start(), timeout=DRAIN_SECONDS + 10)
    finally:
        stop.set()
        await busy
        await reader.stop()
        await producer.stop()
