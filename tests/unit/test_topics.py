"""Topic layout: the per-LIC topics get LOTLINE_LIC_PARTITIONS partitions, the others four."""

from __future__ import annotations

from shared.config import Settings
from shared.contracts import topics as t


def test_per_lic_topics_take_the_configured_partition_count() -> None:
    settings = Settings(LOTLINE_LIC_PARTITIONS=3, LOTLINE_TOPIC_PREFIX="x.")
    wanted = settings.topics.partitions(settings.lic_partitions)
    assert wanted["x.inventory.commands"] == wanted["x.inventory.events"] == 3
    assert {n for n, p in wanted.items() if p != 3} == {
        f"x.{name}" for name in t.ALL if name not in t.LIC_TOPICS
    }
    assert all(p == t.DEFAULT_PARTITIONS for n, p in wanted.items() if p != 3)


def test_the_default_is_eight() -> None:
    assert Settings().lic_partitions == 8
