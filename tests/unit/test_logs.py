"""Structured logs (shared.logs): with LOG_FORMAT=json every line a service writes is one JSON
object, whoever logs it: structlog, a standard-library logger (uvicorn, FastStream, asyncpg),
an exception's traceback, or the broker `make_broker` builds."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest
import structlog
import uvicorn

from shared import logs
from shared.config import Settings
from shared.service import make_broker


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_stdlib_records_and_tracebacks_are_one_json_object_per_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("receiving", level="INFO", fmt="json")
    logging.getLogger("asyncpg.pool").warning("connection lost: %s\nretrying", "reset by peer")
    try:
        raise RuntimeError("handler failed")
    except RuntimeError:
        logging.getLogger("faststream").exception("batch failed")
    structlog.get_logger("test").info("service.started", schema="receiving")

    entries = json_lines(capsys.readouterr().err)
    assert len(entries) == 3
    warning, error, own = entries
    assert warning["event"] == "connection lost: reset by peer\nretrying"
    assert (warning["level"], warning["logger"], warning["service"]) == (
        "warning",
        "asyncpg.pool",
        "receiving",
    )
    assert "timestamp" in warning
    assert (error["event"], error["level"], error["logger"]) == (
        "batch failed",
        "error",
        "faststream",
    )
    assert error["exception"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: handler failed" in error["exception"]
    assert own["event"] == "service.started" and own["level"] == "info"


def test_uvicorn_lines_go_through_the_json_handler(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("ledger", level="INFO", fmt="json")
    # As the ledger builds its server: uvicorn leaves logging as configured.
    uvicorn.Config(lambda: None, log_config=None, access_log=False)
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on %s", "http://127.0.0.1:8080", extra={"color_message": "\x1b[1m..."}
    )
    [entry] = json_lines(capsys.readouterr().err)
    assert entry["event"] == "Uvicorn running on http://127.0.0.1:8080"
    assert entry["logger"] == "uvicorn.error" and entry["level"] == "info"
    assert "color_message" not in entry


def test_an_uncaught_exception_is_logged_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("shipping", level="INFO", fmt="json")
    try:
        raise ConnectionError("broker unreachable")
    except ConnectionError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    [entry] = json_lines(capsys.readouterr().err)
    assert entry["level"] == "critical" and entry["event"] == "uncaught_exception"
    assert "ConnectionError: broker unreachable" in entry["exception"]


def test_the_broker_logs_through_our_handler_and_is_quiet_at_info(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("allocation", level="INFO", fmt="json")
    broker = make_broker(Settings(KAFKA_BOOTSTRAP_SERVERS="localhost:9092"))
    broker._setup_logger()  # what connecting does, before the subscribers start

    state = broker.config.logger
    logger = state.logger.logger
    assert isinstance(logger, logging.Logger)
    # FastStream's default would be its own logger with a coloured stdout handler, its level
    # forced to INFO and propagation off.
    assert logger.handlers == [] and logger.level == logging.NOTSET and logger.propagate
    assert state.log_level == logging.DEBUG

    extra = {"topic": "inventory.receipts", "group_id": "receiving", "message_id": "m-1"}
    state.log("Received", extra=extra)  # the per-batch access lines: DEBUG, not shown at INFO
    state.log("Processed", extra=extra)
    try:
        raise ValueError("bad batch")
    except ValueError as exc:
        state.log("ValueError: bad batch", log_level=logging.ERROR, extra=extra, exc_info=exc)
    out = capsys.readouterr()
    assert out.out == ""  # nothing on stdout
    [entry] = json_lines(out.err)
    assert entry["event"] == "ValueError: bad batch" and entry["level"] == "error"
    assert entry["topic"] == "inventory.receipts" and entry["group_id"] == "receiving"
    assert "ValueError: bad batch" in entry["exception"]


def test_the_broker_access_lines_show_at_debug(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("allocation", level="DEBUG", fmt="json")
    broker = make_broker(Settings(KAFKA_BOOTSTRAP_SERVERS="localhost:9092"))
    broker._setup_logger()
    broker.config.logger.log("Received", extra={"topic": "inventory.commands"})
    [entry] = json_lines(capsys.readouterr().err)
    assert entry["event"] == "Received" and entry["level"] == "debug"
    assert entry["topic"] == "inventory.commands"


def test_console_format_renders_stdlib_records_for_people(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("lotline", level="INFO", fmt="console")
    logging.getLogger("uvicorn.error").warning("slow start")
    err = capsys.readouterr().err
    assert "slow start" in err and "[uvicorn.error]" in err and "warning" in err
