"""Acting on the test bed itself (restart or freeze a component), from tests that need it.

The bed is found through ``LAZARUS_TESTBED_STATE`` and ``LAZARUS_TESTBED_PORT_BASE``, as
``testbed.sh`` finds it; a test refuses to act on it unless it is the cluster ``KUBECONFIG``
points at, so no test restarts a bed other tests talk to by mistake.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
from kubernetes import client

ROOT = Path(__file__).resolve().parents[2]
TESTBED_SCRIPT = ROOT / "e2e" / "testbed" / "testbed.sh"
DEFAULT_PORT_BASE = 26000  # testbed.sh's default, when LAZARUS_TESTBED_PORT_BASE is unset
ETCD_PORT_OFFSET, APISERVER_PORT_OFFSET = 379, 443


def checked_testbed_env(api_client: client.ApiClient) -> dict[str, str]:
    """The environment naming the test bed, checked to be the one the tests talk to."""
    if not TESTBED_SCRIPT.exists():
        pytest.skip(f"{TESTBED_SCRIPT} not found: cannot act on the test bed")
    env = dict(os.environ)
    named = subprocess.run(
        [str(TESTBED_SCRIPT), "kubeconfig"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    port_base = int(env.get("LAZARUS_TESTBED_PORT_BASE", DEFAULT_PORT_BASE))
    api_port = urlparse(api_client.configuration.host).port
    if (
        Path(named).resolve() != Path(os.environ["KUBECONFIG"]).resolve()
        or api_port != port_base + APISERVER_PORT_OFFSET
    ):
        pytest.fail(
            f"KUBECONFIG ({os.environ['KUBECONFIG']}, API port {api_port}) is not the test bed named by "
            f"LAZARUS_TESTBED_STATE/LAZARUS_TESTBED_PORT_BASE ({named}, port base {port_base}): set them to match"
        )
    return env


def run_testbed(env: dict[str, str], *args: str, timeout: float = 240) -> None:
    """Run ``testbed.sh ARGS`` on the checked bed (``checked_testbed_env``)."""
    subprocess.run([str(TESTBED_SCRIPT), *args], env=env, check=True, timeout=timeout)
