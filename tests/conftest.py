"""Shared test configuration: the real-infrastructure fixtures live in tests/fixtures/infra.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.infra import infra, lotline_env
from tests.fixtures.logging_state import restore_logging

__all__ = ["infra", "lotline_env", "restore_logging"]

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by folder: `-m "not integration and not e2e"` runs the fast ones only."""
    for item in items:
        parts = Path(str(item.path)).relative_to(_HERE).parts if _HERE in item.path.parents else ()
        if parts and parts[0] == "integration":
            item.add_marker(pytest.mark.integration)
        elif parts and parts[0] == "e2e":
            item.add_marker(pytest.mark.e2e)
