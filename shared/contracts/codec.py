"""Bytes ↔ messages. The one place that decides whether bytes are a message at all.

Strict JSON: no NaN/Infinity literals, no duplicate keys, numbers parsed as Decimal (so 1e400
stays a number the validators can refuse instead of becoming a float infinity), a size limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from shared.contracts.invalid import dead_letter_reason
from shared.reasons import sent

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
# What lotline itself may publish: a decision about 100,000 serials lists every one of them
# (about 11 MB). Topics are created to accept it; consumers fetch it.
MAX_EVENT_BYTES = 64 * 1024 * 1024

T = TypeVar("T")


class InvalidMessage(Exception):
    """The bytes are not a valid message of the topic: they belong in the dead-letter topic.

    When the bytes were a JSON object that failed the topic's schema, `document` holds that
    object and `error` pydantic's account of what failed: enough for a service to answer an
    identifiable document with its refusal. Both are None when the bytes are not a message at
    all (not UTF-8, not JSON, not an object) or came from one of lotline's own topics.
    """

    def __init__(
        self,
        reason: str,
        *,
        document: dict[str, Any] | None = None,
        error: ValidationError | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.document = document
        self.error = error


def _no_constants(name: str) -> Any:
    raise InvalidMessage(f"JSON constant {name} is not allowed")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidMessage(f"duplicate JSON key {sent(key)}")
        result[key] = value
    return result


def loads(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Any:
    if len(data) > max_bytes:
        raise InvalidMessage(f"message of {len(data)} bytes exceeds {max_bytes} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Python's own words quote the codec's name ("'utf-8' codec can't decode …").
        byte = f"byte 0x{data[exc.start]:02x} at offset {exc.start}"
        raise InvalidMessage(f"not UTF-8: {byte} ({exc.reason})") from None
    try:
        try:
            return _parse(text, None)
        except json.JSONDecodeError:
            raise
        except ValueError:
            # An integer literal longer than Python turns into an int (4,300 digits, see
            # sys.get_int_max_str_digits): read the integers as Decimal this once, so such a
            # number is refused by its field's validator (and answered) like 1e400 is.
            return _parse(text, _long_int)
    except json.JSONDecodeError as exc:
        raise InvalidMessage(f"not JSON: {exc}") from None
    except RecursionError:
        raise InvalidMessage("JSON nested too deeply") from None
    except ValueError as exc:  # anything else the parser cannot turn into values
        raise InvalidMessage(f"not JSON: {str(exc)[:200]}") from None


def _parse(text: str, parse_int: Callable[[str], Any] | None) -> Any:
    return json.loads(
        text,
        parse_float=Decimal,
        parse_int=parse_int,
        parse_constant=_no_constants,
        object_pairs_hook=_no_duplicate_keys,
    )


def _long_int(text: str) -> int | Decimal:
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


def decode(
    adapter: TypeAdapter[T], data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES, own: bool = False
) -> T:
    """Parse and validate one message, or raise InvalidMessage with a readable reason.

    Upstream messages (`own=False`) are held to MAX_MESSAGE_BYTES and the strict JSON rules.
    Messages lotline wrote itself (`own=True`: commands, events, status) may carry decisions up
    to `max_bytes` and go through pydantic's native JSON parser, which is many times faster on
    an event that lists 100,000 serials; the models still validate every field.
    """
    if own:
        if len(data) > max_bytes:
            raise InvalidMessage(f"message of {len(data)} bytes exceeds {max_bytes} bytes")
        try:
            return adapter.validate_json(data)
        except ValidationError as exc:
            raise InvalidMessage(_summarize(exc, _type_of(data))) from None
    document = loads(data, max_bytes=max_bytes)
    if not isinstance(document, dict):
        raise InvalidMessage("a message must be a JSON object")
    try:
        return adapter.validate_python(document)
    except ValidationError as exc:
        raise InvalidMessage(_summarize(exc, document), document=document, error=exc) from None


def _summarize(exc: ValidationError, document: dict[str, Any]) -> str:
    """The dead letter's reason: worded and pathed as the document's refusal (invalid.py)."""
    return dead_letter_reason(document, exc.errors(include_url=False))


def _type_of(data: bytes) -> dict[str, Any]:
    """Only the `type` of one of lotline's own messages (its paths are written without it):
    read again, on this failure path alone."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return {}
    return {"type": document.get("type")} if isinstance(document, dict) else {}


def encode(message: BaseModel) -> bytes:
    return message.model_dump_json(exclude_none=False).encode()
