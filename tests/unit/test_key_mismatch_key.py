"""`consumer.key_mismatch` logs the record key as text beside `expected_key`, so a log query
can compare the two; a key that is no text keeps a form that cannot be taken for one."""

from __future__ import annotations

import pytest

from shared.consumer import LOG_KEY_BYTES, _key_text


@pytest.mark.parametrize(
    ("key", "logged"),
    [
        (None, None),
        (b"PO-1", "PO-1"),
        (b"", ""),
        (b" BOLT ", " BOLT "),
        ("ÉCROU-№5".encode(), "ÉCROU-№5"),
        (b"\xffBOLT", repr(b"\xffBOLT")),  # not UTF-8: its bytes
        (b"BO\x1b[31mLT\n", repr("BO\x1b[31mLT\n")),  # text, but a terminal's escapes: repr'd
        (bytearray(b"SO-5"), "SO-5"),
    ],
)
def test_a_key_is_logged_as_the_text_it_is(key: bytes | None, logged: str | None) -> None:
    assert _key_text(key) == logged


def test_a_long_key_is_clipped_naming_its_size() -> None:
    key = ("É" * (LOG_KEY_BYTES + 1)).encode()

    assert _key_text(key) == "É" * LOG_KEY_BYTES + f"… ({len(key)} bytes)"
    hostile = _key_text(b"\xff" * 1000)
    assert hostile is not None and hostile.endswith("(1000 bytes)") and len(hostile) < 1000
