"""Structured logging setup: JSON lines in production, readable key=value output on a terminal.

Call ``configure`` once at process start. Everything logs through ``structlog.get_logger``;
standard-library loggers (the kubernetes client, urllib3) are routed through the same renderer.
Never log a Secret's content: log references (namespace/name/key), not values.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO, cast

import structlog


class CurrentStderr:
    """A stream that writes to whatever ``sys.stderr`` is when it writes, not the stream it was
    when logging was configured: a caller that swaps stderr for a while (a test capturing output,
    a tool embedding ``lazarus``) and closes its stream must not leave logging writing to a closed
    file."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


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
        # PrintLogger only calls write and flush.
        logger_factory=structlog.PrintLoggerFactory(cast(TextIO, CurrentStderr())),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(CurrentStderr())
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processor=renderer, foreign_pre_chain=shared))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Library chatter stays at WARNING unless debugging.
    root.setLevel(logging.DEBUG if level.lower() == "debug" else logging.WARNING)
