"""The test bed's process helpers (``e2e/testbed/common.sh``), run by bash as the scripts run them."""

from __future__ import annotations

import subprocess
from pathlib import Path

COMMON = Path(__file__).resolve().parents[2] / "e2e" / "testbed" / "common.sh"

# Starts a server whose exec comes late (as under load, or behind runuser): for 0.3 s its command
# line is the wrapper's, without the marker. Then asks at once whether it runs, as wait_for does
# after a fast first readiness probe.
SCRIPT = """
set -u
source "$COMMON"
process_marker() { printf 'sleep 4%s' "$ROUND"; }
for ROUND in 1 2 3; do
  start server bash -c 'sleep 0.3; exec sleep "4$0"' "$ROUND" 2>/dev/null
  if is_running server; then echo running; else echo not running; fi
  stop server KILL 2>/dev/null
done
"""


def test_a_server_just_started_counts_as_running(tmp_path: Path) -> None:
    """Until the exec, /proc shows the starting shell's command line: ``start`` returns only once
    the server's own is there, so ``wait_for`` never takes a starting server for an exited one."""
    env = {"COMMON": str(COMMON), "LAZARUS_TESTBED_STATE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    env["HOME"] = str(tmp_path)
    result = subprocess.run(["bash", "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split("\n")[:3] == ["running"] * 3, result.stdout + result.stderr
