"""Structured logging: JSON lines by default (LOG_FORMAT=console for people at a terminal)."""

from __future__ import annotations

import logging
import sys

import structlog


def configure(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(message)s")
    # FastStream logs every batch at INFO; keep its warnings and errors (handler failures) only.
    for noisy in ("aiokafka", "faststream.access.kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
