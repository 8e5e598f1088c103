"""Names of the tests Lazarus creates by itself: deterministic and at most 63 characters.

Deterministic, so a restart, a resync or a new leader computes the same name and its create
fails with 409 instead of making a second test. At most 63 characters and a DNS label, because
the restore-test controller labels everything it creates with the test's name (label values are
at most 63 characters) and finds its objects by that label.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

MAX_NAME = 63
_HASH_LEN = 8
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def bounded_name(text: str) -> str:
    """``text`` if it is a DNS label of at most 63 characters, else a readable prefix of it plus
    a hash of all of it (so two different texts never share a name)."""
    if len(text) <= MAX_NAME and _DNS_LABEL.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:_HASH_LEN]
    prefix = re.sub(r"[^a-z0-9-]", "-", text.lower())[: MAX_NAME - _HASH_LEN - 1].strip("-")
    return f"{prefix}-{digest}" if prefix else digest


def backup_test_name(backup_name: str) -> str:
    """The one test a Schedule or Backup opt-in creates for a backup: named after the backup."""
    return bounded_name(backup_name)


def policy_run_name(policy_name: str, run: datetime) -> str:
    """The test of one cron run of a policy: ``<policy>-<YYYYMMDDhhmm>`` (the run time in UTC)."""
    return bounded_name(f"{policy_name}-{run.astimezone(UTC):%Y%m%d%H%M}")
