"""The wire: every message lotline reads or writes, the topics and the reason codes."""

from shared.contracts import commands, events, status, topics, upstream
from shared.contracts.codec import InvalidMessage, decode, encode
from shared.contracts.reasons import ReasonCode

__all__ = [
    "InvalidMessage",
    "ReasonCode",
    "commands",
    "decode",
    "encode",
    "events",
    "status",
    "topics",
    "upstream",
]
