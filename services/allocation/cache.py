"""Committed LIC states kept in memory between batches.

While this process owns a LIC's partition it is the LIC's only writer (a zombie's writes are
fenced), so the state it committed last is exactly what the database holds: a hot LIC is then
decided without loading its rows again. Three rules keep that true:
  - a state enters the cache only after its transaction committed (`UnitOfWork.after_commit`);
  - a state taken to decide a batch leaves the cache until then (`take`): when the consumer
    cannot tell whether the transaction committed (the COMMIT's answer lost with the
    connection), its retry finds the batch in the inbox and decides nothing, so no callback
    stores the states after it, and the next batch must load them rather than decide on the
    states from before it;
  - every partition assignment empties the cache, because another process may have written
    the LICs meanwhile.
The cache is bounded by the rows it holds, least recently used first out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping

from services.allocation.domain.model import LicState


def rows_in(state: LicState) -> int:
    """What a state weighs: its rows (a serialized LIC's units dominate)."""
    return (
        1
        + len(state.lots)
        + len(state.mfr_lots)
        + len(state.units)
        + len(state.allocations)
        + len(state.shipments)
    )


class StateCache:
    def __init__(self, max_rows: int) -> None:
        self._max_rows = max_rows
        self._states: OrderedDict[str, tuple[LicState, int]] = OrderedDict()
        self._rows = 0
        self.hits = 0
        self.misses = 0

    @property
    def rows(self) -> int:
        return self._rows

    def __len__(self) -> int:
        return len(self._states)

    def take(self, lics: Iterable[str]) -> tuple[dict[str, LicState], list[str]]:
        """The cached states among `lics`, taken out (`store` puts them back once their
        transaction committed), and the LICs that must be loaded."""
        found: dict[str, LicState] = {}
        missing: list[str] = []
        for lic in lics:
            entry = self._states.pop(lic, None)
            if entry is None:
                missing.append(lic)
            else:
                self._rows -= entry[1]
                found[lic] = entry[0]
        self.hits += len(found)
        self.misses += len(missing)
        return found, missing

    def store(self, states: Mapping[str, LicState]) -> None:
        """Remember committed states; call only after their transaction committed."""
        for lic, state in states.items():
            old = self._states.pop(lic, None)
            if old is not None:
                self._rows -= old[1]
            weight = rows_in(state)
            if weight > self._max_rows:
                continue  # a giant LIC (say 1,000,000 serials) is loaded each time instead
            self._states[lic] = (state, weight)
            self._rows += weight
        while self._rows > self._max_rows and self._states:
            _, (_, weight) = self._states.popitem(last=False)
            self._rows -= weight

    def clear(self) -> None:
        self._states.clear()
        self._rows = 0
