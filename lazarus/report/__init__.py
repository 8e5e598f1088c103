"""``lazarus report``: evidence that restores are tested, from the tests kept in the cluster.

Reads every ``LazarusRestoreTest`` (or those of one namespace) and the Velero Backups, and writes
per backup source how many tests ran, the pass rate, RTO and RPO against the objectives, every
failure with its reason, and each test's timestamps, as Markdown, HTML (with charts) or JSON.
Read-only: a few LIST requests, nothing is written to the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from lazarus.kube.client import ApiError, Rest, new_api_client
from lazarus.kube.resources import BACKUPS, LAZARUS_RESTORE_TESTS
from lazarus.report.html import html
from lazarus.report.model import Report, build_report
from lazarus.report.render import as_json, markdown

__all__ = ["FORMATS", "build_report", "parse_since", "run_report"]

FORMATS = {"markdown": markdown, "html": html, "json": as_json}
EXIT_OK, EXIT_ERROR = 0, 2
PAGE = 500
_SINCE = re.compile(r"([0-9]+)([dhm])")
_UNIT = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


def parse_since(text: str) -> timedelta:
    """``90d``, ``12h`` or ``30m`` as a timedelta; raise ``ValueError`` otherwise."""
    match = _SINCE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"--since {text!r}: expected a number of days, hours or minutes, e.g. 90d, 12h")
    return int(match.group(1)) * _UNIT[match.group(2)]


def list_all(rest: Rest, path: str) -> Iterator[dict[str, Any]]:
    """Every object of a collection, in pages of ``PAGE``."""
    token: str | None = None
    while True:
        page = rest.request("GET", path, query={"limit": PAGE, "continue": token})
        yield from page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def load_report(rest: Rest, *, since: timedelta, namespace: str | None, velero_namespace: str, cluster: str) -> Report:
    """Read the tests and Backups and build the report for the last ``since``."""
    tests = list(list_all(rest, LAZARUS_RESTORE_TESTS.collection_path(namespace)))
    backups = list(list_all(rest, BACKUPS.collection_path(velero_namespace)))
    now = datetime.now(UTC)
    return build_report(tests, backups, since=now - since, now=now, cluster=cluster)


def run_report(
    *,
    since: timedelta,
    output_format: str,
    namespace: str | None,
    velero_namespace: str,
    cluster: str,
    kubeconfig: str | None,
    out: TextIO,
    err: TextIO,
) -> int:
    """The command: write the report to ``out``; return the exit status (2 on an API error)."""
    api = new_api_client(kubeconfig, pool_size=2)
    try:
        report = load_report(
            Rest(api), since=since, namespace=namespace, velero_namespace=velero_namespace, cluster=cluster
        )
    except ApiError as exc:
        print(f"lazarus report: could not read the tests: {exc}", file=err)
        return EXIT_ERROR
    finally:
        api.close()
    out.write(FORMATS[output_format](report))
    return EXIT_OK
