"""Structured logging: JSON lines by default (LOG_FORMAT=console for people at a terminal).

structlog's own loggers and every standard-library logger (uvicorn, FastStream, aiokafka,
asyncpg, asyncio, uncaught exceptions) go through the same renderer: with LOG_FORMAT=json each
line on stderr is one JSON object with `event`, `level`, `timestamp`, `service` and, for
standard-library records, `logger`, their `extra` fields and `exception` (the traceback).
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import TextIO

import faststream  # noqa: F401  (creates FastStream's "faststream" logger, re-routed below)
import structlog

# Loggers that libraries give handlers of their own (FastStream: a coloured one on import;
# uvicorn: when given a log_config), routed through ours instead.
_ROUTED = (
    "faststream",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "uvicorn.asgi",
)
_HANDLER = "lotline"


def _drop_color_message(
    logger: object, method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    event_dict.pop("color_message", None)  # uvicorn's ANSI copy of the message, as `extra`
    return event_dict


def _renderer(fmt: str) -> structlog.types.Processor:
    if fmt == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=False)


def stdlib_handler(fmt: str = "json", stream: TextIO | None = None) -> logging.Handler:
    """A handler rendering standard-library records as structlog renders its events."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.ExtraAdder(),
                _drop_color_message,
                structlog.processors.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _renderer(fmt),
            ],
        )
    )
    return handler


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    logging.getLogger("lotline").critical("uncaught_exception", exc_info=(kind, error, traceback))


def configure(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _renderer(fmt),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    root = logging.getLogger()
    root.setLevel(level.upper())
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:
        root.removeHandler(old)
    root.addHandler(stdlib_handler(fmt))
    for name in _ROUTED:
        routed = logging.getLogger(name)
        for own in list(routed.handlers):
            routed.removeHandler(own)
        routed.setLevel(logging.NOTSET)
        routed.propagate = True
    sys.excepthook = _log_uncaught
    # aiokafka logs every rebalance and reconnect at INFO; keep its warnings and errors only.
    # (FastStream's per-batch "Received"/"Processed" lines are DEBUG: shared.service.make_broker.)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
