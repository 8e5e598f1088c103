"""idle-rss: resident memory of an idle ``lazarus run`` process with empty caches.

Starts ``python -m lazarus run`` as it runs in production (leader election on, its Lease in a
throw-away namespace, probes on a free local port), waits for ``/readyz`` to answer 200, then
reads ``VmRSS`` from ``/proc/<pid>/status`` every ``SAMPLE_INTERVAL_S`` for ``SAMPLE_SECONDS``
(leader election renews meanwhile) and reports the largest sample. SIGTERM ends the process.

Target: ≤ 90 MiB (the issue; the architecture aims at 80 MiB).
"""

from __future__ import annotations

import time

from bench.cluster import LazarusProcess, bench_namespace, connect, lazarus_run
from bench.measure import Benchmark, Figure, progress, rss_mib

RSS_TARGET_MIB = 90.0
SAMPLE_SECONDS = 5.0
SAMPLE_INTERVAL_S = 0.5


def _controllers(operator: LazarusProcess) -> list[str]:
    """The controllers the process says it started with (its "operator started" log line)."""
    for entry in operator.log_entries():
        if entry.get("event") == "operator started":
            return list(entry.get("controllers") or [])
    return []


def _measure(operator: LazarusProcess) -> tuple[float, list[float]]:
    """Seconds until ready, then the RSS samples."""
    ready_s = operator.wait_ready()
    samples = []
    for _ in range(round(SAMPLE_SECONDS / SAMPLE_INTERVAL_S)):
        time.sleep(SAMPLE_INTERVAL_S)
        samples.append(rss_mib(operator.process.pid))
    if not operator.is_leader():
        progress("WARNING: lazarus run was not the leader while sampled")
    return ready_s, samples


def run(kubeconfig: str | None) -> list[Figure]:
    """Start ``lazarus run``, sample its RSS once ready, stop it."""
    assert kubeconfig is not None
    with connect(kubeconfig) as rest, bench_namespace(rest, "idle-rss") as namespace:
        with lazarus_run(kubeconfig, "--leader-elect", "--namespace", namespace) as operator:
            ready_s, samples = _measure(operator)
            operator.stop()
            progress(f"lazarus run controllers: {', '.join(_controllers(operator)) or 'none'}")
    return [
        Figure("time from spawn to /readyz 200", ready_s, "s"),
        Figure(f"RSS of idle lazarus run, max of {len(samples)} samples over {SAMPLE_SECONDS:.0f} s",
               max(samples), "MiB", RSS_TARGET_MIB),
    ]


BENCHMARK = Benchmark("idle-rss", "RSS of an idle `lazarus run` with empty caches", True, run)
