"""Message ids lotline derives from the ids upstream systems chose.

Upstream systems pick `message_id`s independently: an item feed and an adjustment feed may both
send "1001". Every command lotline writes to `inventory.commands` therefore carries an id
namespaced by the topic it came from, so allocation's inbox can never mistake one for another.
"""

from __future__ import annotations

import hashlib

MAX_DERIVED_ID = 100  # leaves room for the `#n` suffix of event ids within 128 characters


def namespaced(origin: str, message_id: str) -> str:
    """`origin:message_id`, e.g. `item:1001` for an `UpsertItem` from `inventory.items`."""
    return derived_id(f"{origin}:{message_id}")


def derived_id(base: str, suffix: str | None = None) -> str:
    """`base/suffix` (or `base`), or a digest of `base` when that would be too long to carry."""
    candidate = base if suffix is None else f"{base}/{suffix}"
    if len(candidate) <= MAX_DERIVED_ID:
        return candidate
    digest = hashlib.sha256(base.encode()).hexdigest()[:40]
    return digest if suffix is None else f"{digest}/{suffix}"[:MAX_DERIVED_ID]
