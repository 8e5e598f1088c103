"""Structured logging setup: JSON lines in production, readable key=value output on a terminal.

Call ``configure`` once at process start. Everything logs through ``structlog.get_logger``;
standard-library loggers (the kubernetes client, urllib3) are routed through the same renderer.
Never log a Secret's content: log references (namespace/name/key), not values.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure(level: str = "info", json_output: bool | None = None) -> None:
    """Configure structlog and stdlib logging; ``json_output=None`` picks JSON unless on a TTY."""
    if json_output is None:
        json_output = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processor=renderer, foreign_pre_chain=shared))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Library chatter stays at WARNING unless debugging.
    root.setLevel(logging.DEBUG if level.lower() == "debug" else logging.WARNING)
