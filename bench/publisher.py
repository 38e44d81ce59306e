"""The upstream system: a separate OS process with its own aiokafka client.

It publishes what it is told through a job queue and reports back through a result queue:

- `raw`: timestamped ~`size`-byte keyed messages at `rate` per second for `seconds`
  (the broker's own produce→consume latency ceiling);
- `docs`: ShipmentRequested documents, at `rate` lines/s for `seconds`, or `count` documents as
  fast as possible; `occurred_at` is the publish instant, and the result lists every document's
  (shipment_id, lines, published_at);
- `ship`: ShipmentShipRequested for the given shipments, at once (the main process asks as it
  sees each ShipmentAllocated, as an upstream system would); `ship_flush` returns their times.

Everything published is awaited before its result is reported. The process exits on `stop`, or
by itself when its parent disappears.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

import orjson

from bench import workload

Job = dict[str, Any]


def _main(jobs: Any, results: Any) -> None:
    """Entry point of the child process."""
    asyncio.run(_serve(jobs, results))


async def _serve(jobs: Any, results: Any) -> None:
    from bench.kafka_io import plain_producer
    from shared.config import Settings
    from shared.kafka import kafka_client_options

    inbox: asyncio.Queue[Job] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    parent = os.getppid()

    def read_jobs() -> None:
        while True:
            try:
                job = jobs.get(timeout=1.0)
            except queue.Empty:
                if os.getppid() != parent:
                    job = {"op": "stop"}
                else:
                    continue
            loop.call_soon_threadsafe(inbox.put_nowait, job)
            if job["op"] == "stop":
                return

    first: Job = jobs.get()
    producer = plain_producer(first["bootstrap"], kafka_client_options(Settings()))
    await producer.start()
    results.put({"op": "ready"})
    threading.Thread(target=read_jobs, name="publisher-jobs", daemon=True).start()
    ship_times: dict[str, float] = {}
    pending: list[asyncio.Future[Any]] = []
    tasks: set[asyncio.Task[None]] = set()
    try:
        while True:
            job = await inbox.get()
            op = job["op"]
            if op == "stop":
                break
            if op == "ship":
                for shipment_id in job["ids"]:
                    at = time.time()
                    body = workload.ship_request(shipment_id, at)
                    pending.append(
                        await producer.send(job["topic"], body, key=shipment_id.encode())
                    )
                    ship_times[shipment_id] = at
            elif op == "ship_flush":
                await asyncio.gather(*pending)
                pending.clear()
                results.put({"op": "ship", "times": ship_times})
                ship_times = {}
            else:
                runner = _raw if op == "raw" else _docs
                task = asyncio.create_task(runner(producer, job, results))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
    finally:
        for task in list(tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await producer.stop()


async def _paced(rate: float, seconds: float, count: int) -> Any:
    """Yield how many units are due now: all at once when `rate` is 0, else `rate`/s."""
    started = time.monotonic()
    if rate <= 0:
        yield count
        return
    done = 0.0
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= seconds:
            return
        due = rate * elapsed - done
        if due >= 1:
            yield int(due)
            done += int(due)
        await asyncio.sleep(0.002)


async def _raw(producer: Any, job: Job, results: Any) -> None:
    pad = "x" * max(0, job["size"] - 60)
    futures = []
    sent = 0
    first = time.time()
    async for due in _paced(job["rate"], job["seconds"], job.get("count", 0)):
        for _ in range(due):
            body = orjson.dumps({"n": sent, "t": time.time(), "pad": pad})
            futures.append(await producer.send(job["topic"], body, key=b"k%d" % (sent % 1000)))
            sent += 1
    await asyncio.gather(*futures)
    results.put({"op": "raw", "sent": sent, "first": first, "last": time.time()})


async def _docs(producer: Any, job: Job, results: Any) -> None:
    items = [workload.Lic(code, kind) for code, kind in job["lics"]]
    documents = workload.shipment_documents(job["run"], items, job["seed"])
    sent: list[tuple[str, int, float]] = []
    futures = []
    rate = job.get("rate", 0)
    backlog = 0
    async for due in _paced(rate, job.get("seconds", 0), job.get("count", 0)):
        backlog += due
        while backlog > 0:  # `due` counts lines at a fixed rate, documents when as fast as possible
            document = next(documents)
            at = time.time()
            body = orjson.dumps({**document.body, "occurred_at": workload.now_rfc3339(at)})
            key = document.shipment_id.encode()
            futures.append(await producer.send(job["topic"], body, key=key))
            sent.append((document.shipment_id, document.lines, at))
            backlog -= document.lines if rate > 0 else 1
    await asyncio.gather(*futures)
    results.put({"op": "docs", "run": job["run"], "sent": sent, "done_at": time.time()})


class Publisher:
    """The main process's handle on the publisher process."""

    def __init__(self, bootstrap: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._jobs: Any = context.Queue()
        self._results: Any = context.Queue()
        self._process: BaseProcess = context.Process(
            target=_main, args=(self._jobs, self._results), name="bench-publisher", daemon=True
        )
        self._bootstrap = bootstrap

    async def start(self, timeout: float = 60) -> None:
        self._process.start()
        self._jobs.put({"op": "start", "bootstrap": self._bootstrap})
        await self.result("ready", timeout)

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    async def result(self, op: str, timeout: float) -> Job:
        """The next result (which must be `op`), or RuntimeError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                found: Job = await asyncio.to_thread(self._results.get, True, 0.5)
            except queue.Empty:
                if not self._process.is_alive():
                    raise RuntimeError(
                        f"the publisher process exited ({self._process.exitcode})"
                    ) from None
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the publisher did not report {op!r} in {timeout:.0f}s"
                    ) from None
                continue
            if found["op"] != op:
                raise RuntimeError(f"the publisher reported {found['op']!r}, expected {op!r}")
            return found

    async def close(self) -> None:
        if self._process.is_alive():
            self._jobs.put({"op": "stop"})
            await asyncio.to_thread(self._process.join, 10)
        if self._process.is_alive():
            self._process.kill()
            await asyncio.to_thread(self._process.join, 5)
        self._jobs.close()
        self._results.close()
