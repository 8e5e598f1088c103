"""Shared pytest configuration: integration tests need a cluster and say so clearly."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip integration tests when no cluster is configured, unless the run requires one.

    ``make test`` sets ``LAZARUS_TESTBED=1``: there a missing cluster is an error, never a skip.
    """
    if os.environ.get("KUBECONFIG"):
        return
    if os.environ.get("LAZARUS_TESTBED") == "1":
        raise pytest.UsageError("LAZARUS_TESTBED=1 but KUBECONFIG is not set: start the test bed first")
    skip = pytest.mark.skip(reason="no KUBECONFIG: run `make cluster-up` or `make test`")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)
