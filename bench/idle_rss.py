"""idle-rss: resident memory of an idle ``lazarus run`` process with empty caches.

Starts ``python -m lazarus run`` as it runs in production (leader election on, its Lease in a
throw-away namespace, probes on a free local port), waits for ``/readyz`` to answer 200, then
reads ``VmRSS`` from ``/proc/<pid>/status`` every ``SAMPLE_INTERVAL_S`` for ``SAMPLE_SECONDS``
(leader election renews meanwhile) and reports the largest sample. SIGTERM ends the process.

Target: ≤ 90 MiB (the issue; the architecture aims at 80 MiB).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from bench.cluster import bench_namespace, connect
from bench.measure import Benchmark, Figure, progress, rss_mib

RSS_TARGET_MIB = 90.0
READY_TIMEOUT_S = 60.0
SAMPLE_SECONDS = 5.0
SAMPLE_INTERVAL_S = 0.5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _is_leader(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        metrics = response.read().decode()
    return any(line.startswith("lazarus_leader_is_leader{") and line.endswith(" 1.0") for line in metrics.splitlines())


def _controllers(log_lines: list[bytes]) -> list[str]:
    """The controllers the process says it started with (its "operator started" log line)."""
    for line in log_lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == "operator started":
            return list(entry.get("controllers") or [])
    return []


def _measure(process: subprocess.Popen[bytes], port: int) -> tuple[float, list[float]]:
    """Seconds until ready, then the RSS samples."""
    started = time.monotonic()
    while not _ready(port):
        if process.poll() is not None:
            raise RuntimeError(f"lazarus run exited {process.returncode} before it was ready")
        if time.monotonic() - started > READY_TIMEOUT_S:
            raise TimeoutError(f"lazarus run not ready after {READY_TIMEOUT_S:.0f} s")
        time.sleep(0.05)
    ready_s = time.monotonic() - started
    samples = []
    for _ in range(round(SAMPLE_SECONDS / SAMPLE_INTERVAL_S)):
        time.sleep(SAMPLE_INTERVAL_S)
        samples.append(rss_mib(process.pid))
    if not _is_leader(port):
        progress("WARNING: lazarus run was not the leader while sampled")
    return ready_s, samples


def run(kubeconfig: str | None) -> list[Figure]:
    """Start ``lazarus run``, sample its RSS once ready, stop it."""
    assert kubeconfig is not None
    port = _free_port()
    command = [
        sys.executable, "-m", "lazarus", "run", "--kubeconfig", kubeconfig, "--metrics-address", "127.0.0.1",
        "--metrics-port", str(port), "--log-format", "json", "--leader-elect",
    ]  # fmt: skip
    with (
        connect(kubeconfig) as rest,
        bench_namespace(rest, "idle-rss") as namespace,
        tempfile.TemporaryFile() as log,
    ):
        process = subprocess.Popen([*command, "--namespace", namespace], stdout=log, stderr=subprocess.STDOUT)
        try:
            ready_s, samples = _measure(process, port)
            os.kill(process.pid, signal.SIGTERM)
            status = process.wait(30)
        except BaseException:
            process.kill()
            process.wait()
            log.seek(0)
            progress("lazarus run log:\n" + log.read().decode(errors="replace")[-3000:])
            raise
        if status != 0:
            progress(f"WARNING: lazarus run exited {status} after SIGTERM (expected 0)")
        log.seek(0)
        progress(f"lazarus run controllers: {', '.join(_controllers(log.readlines())) or 'none'}")
    return [
        Figure("time from spawn to /readyz 200", ready_s, "s"),
        Figure(f"RSS of idle lazarus run, max of {len(samples)} samples over {SAMPLE_SECONDS:.0f} s",
               max(samples), "MiB", RSS_TARGET_MIB),
    ]


BENCHMARK = Benchmark("idle-rss", "RSS of an idle `lazarus run` with empty caches", True, run)
