"""How big each scenario is: `--quick` (under two minutes) and the default (under ten)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    ceiling_messages: int  # raw produce, consume and the one-hop pipeline
    copy_rows: int  # PostgreSQL COPY, in 1,000-row transactions
    rates: tuple[int, ...]  # offered lines/s of scenario 3 (and of the broker latency ceiling)
    rate_seconds: float  # how long each offered rate runs
    lics: int  # items of scenarios 2 and 3
    allocation_commands: int  # per-LIC commands pre-loaded in scenario 2
    fast_documents: int  # ShipmentRequested documents published as fast as possible
    receipt_serials: int  # serials in each receipt of scenario 4
    receipt_patience: float  # seconds scenario 4 waits for ReceiptPosted (the target is 5 s)
    usage_rows: int  # ledger usage rows of scenario 5
    trace_queries: int  # GET /trace calls of each kind
    trace_lics_per_kind: int  # lot and serialized LICs in scenario 5's template block (× 10 groups)
    micro_decisions: int  # allocation core commands decided in memory
    micro_serials: int  # serials parsed by the entry parser
    scenario_timeout: float  # seconds any one scenario may take before it is abandoned
    drain_seconds: float  # scenario 3: how long after publishing a run waits for the path
    latency_seconds: float  # scenario 1: how long each broker latency ceiling runs
    fresh_path_per_run: bool  # scenario 3: a fresh deployment for every run, or one for all


QUICK = Sizes(
    ceiling_messages=10_000,
    copy_rows=20_000,
    rates=(100, 200, 400),
    rate_seconds=5,
    lics=300,
    allocation_commands=3_000,
    fast_documents=300,
    receipt_serials=10_000,
    receipt_patience=30,
    usage_rows=100_000,
    trace_queries=30,
    trace_lics_per_kind=10,
    micro_decisions=3_000,
    micro_serials=100_000,
    scenario_timeout=120,
    drain_seconds=10,
    latency_seconds=3,
    fresh_path_per_run=False,
)

DEFAULT = Sizes(
    ceiling_messages=50_000,
    copy_rows=200_000,
    rates=(100, 500, 1000, 2000),  # 100: the path nearly idle, its fixed per-hop cost
    rate_seconds=30,
    lics=1000,
    allocation_commands=30_000,
    fast_documents=5_000,
    receipt_serials=100_000,
    receipt_patience=60,
    usage_rows=10_000_000,
    trace_queries=100,
    trace_lics_per_kind=50,
    micro_decisions=30_000,
    micro_serials=1_000_000,
    scenario_timeout=600,
    drain_seconds=15,
    latency_seconds=6,
    fresh_path_per_run=True,
)
