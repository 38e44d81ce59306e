"""Base classes of every wire message."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.types import Identifier, Timestamp


def _now() -> datetime:
    return datetime.now(UTC)


class Model(BaseModel):
    """Immutable; unknown fields are ignored so producers may add fields freely."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_max_length=8 * 1024 * 1024)


class Message(Model):
    """Every message: `type`, a sender-chosen `message_id` (the dedup key), `occurred_at`."""

    type: str
    message_id: Identifier
    occurred_at: datetime = Field(
        default_factory=_now,
        description="RFC 3339. Left out of an upstream message: the Kafka record's timestamp "
        "(set by the consumer, so a replay decides the same way).",
    )


class UpstreamMessage(Message):
    """A message an upstream system writes: its `occurred_at`, when given, is RFC 3339 with an
    offset (a time without one means a different instant on every reader's clock)."""

    occurred_at: Timestamp = Field(
        default_factory=_now,
        description="RFC 3339, with its offset. Left out: the Kafka record's timestamp (set by "
        "the consumer, so a replay decides the same way).",
    )
