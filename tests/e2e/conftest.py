"""End-to-end fixtures: the four services started as a user starts them, as OS processes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared import stack
from tests.fixtures.infra import LotlineEnv

# The embedded broker completes a consumer group's first join after half the session timeout.
FAST_JOIN = {"KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500"}


@pytest.fixture
def running(lotline_env: Any) -> Iterator[LotlineEnv]:
    """A fresh database and topic prefix with receiving, shipping, allocation and ledger up."""
    env: LotlineEnv = lotline_env(**FAST_JOIN)
    procs = stack.start_services(env.env)
    try:
        yield env
    finally:
        stack.stop_services(procs)
