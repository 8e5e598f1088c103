"""Logging setup: the stream logs go to is the one ``sys.stderr`` is when they are written."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog

from lazarus.logconfig import configure


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Leave structlog and the root logger as the test found them."""
    config, handlers = structlog.get_config(), logging.getLogger().handlers[:]
    yield None
    structlog.configure(**config)
    logging.getLogger().handlers[:] = handlers


@pytest.mark.usefixtures("restored_logging")
def test_logs_follow_stderr_when_it_is_swapped_and_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    swapped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", swapped)
    configure("info", json_output=True)  # configured while stderr is the swapped stream
    log = structlog.get_logger("lazarus.test")
    log.info("first", n=1)
    assert '"event": "first"' in swapped.getvalue()
    swapped.close()
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)
    log.info("second")  # the stream it was configured with is closed: no "I/O operation on closed file"
    logging.getLogger("urllib3").warning("library warning")
    assert '"event": "second"' in later.getvalue() and "library warning" in later.getvalue()
