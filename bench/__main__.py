"""``python -m bench [--json] [--kubeconfig PATH] [name ...]``: run benchmarks, print their figures.

Runs the named benchmarks (all by default) one after another and prints one table (metric,
value, target, unit, verdict), or with ``--json`` one JSON document on stdout, which also holds
the ``detail`` figures (breakdowns) the table leaves out; progress goes to stderr. Cluster
benchmarks need ``KUBECONFIG`` (or ``--kubeconfig``). Exit status: 0 when every benchmark ran
(missed targets included: these are figures, not tests), 1 when one failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

from bench import backup_trigger, cold_sync, event_latency, idle_rss, restore_test, workqueue
from bench.cluster import install_prerequisites
from bench.measure import Benchmark, Figure, progress
from lazarus.logconfig import configure

BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        cold_sync.BENCHMARK, idle_rss.BENCHMARK, event_latency.BENCHMARK, workqueue.BENCHMARK, restore_test.BENCHMARK,
        backup_trigger.BENCHMARK,
    )
}  # fmt: skip
NOTE = "target = upper bound; percentiles nearest-rank; MiB = 2^20 bytes"


def _number(value: float) -> str:
    if isinstance(value, int):  # a count
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def table(results: Sequence[tuple[str, Figure]]) -> str:
    """The figures, ``detail`` ones left out, as an aligned text table."""
    rows = [("metric", "value", "target", "unit", "")]
    rows += [
        (f"{name}: {f.metric}", _number(f.value), "" if f.target is None else f"≤ {f.target:g}", f.unit,
         f.verdict)
        for name, f in results
        if not f.detail
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2]), row[3].ljust(widths[3])]
        lines.append("  ".join([*cells, row[4]]).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths[:4]))
    return "\n".join([*lines, f"({NOTE})"])


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run the Lazarus benchmarks; print figures.")
    parser.add_argument("names", nargs="*", metavar="name", help="benchmarks to run (default: all): "
                        + ", ".join(BENCHMARKS))  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), help="default: $KUBECONFIG")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)} (choose from {', '.join(BENCHMARKS)})")
    return args


def _check_kubeconfig(kubeconfig: str | None, selected: Sequence[Benchmark]) -> str | None:
    """An error message when a selected benchmark needs a cluster and there is no usable kubeconfig."""
    needing = [b.name for b in selected if b.needs_cluster]
    if not needing:
        return None
    if not kubeconfig:
        return (f"{', '.join(needing)} need a cluster: set KUBECONFIG (test bed: "
                "KUBECONFIG=$(e2e/testbed/testbed.sh kubeconfig)) or pass --kubeconfig, "
                "or run only: workqueue")  # fmt: skip
    if not os.path.isfile(kubeconfig):
        return f"kubeconfig {kubeconfig} does not exist"
    return None


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the benchmarks' clean-up (namespaces, children)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks; return the exit status."""
    args = _parse(argv)
    if args.list:
        for b in BENCHMARKS.values():
            print(f"{b.name:14} {'(cluster) ' if b.needs_cluster else ''}{b.summary}")
        return 0
    selected = [BENCHMARKS[name] for name in args.names or BENCHMARKS]
    problem = _check_kubeconfig(args.kubeconfig, selected)
    if problem:
        print(f"python -m bench: {problem}", file=sys.stderr)
        return 2
    configure("warning", json_output=True)  # structlog's default would print to stdout
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if any(b.needs_cluster for b in selected):
        assert args.kubeconfig is not None  # _check_kubeconfig
        try:
            install_prerequisites(args.kubeconfig)
        except Exception as error:  # noqa: BLE001 - no benchmark can run: say why
            print(f"python -m bench: cannot install the CRDs and the operator's namespace: {error}", file=sys.stderr)
            return 1
    results: list[tuple[str, Figure]] = []
    failures: dict[str, str] = {}
    for benchmark in selected:
        progress(f"{benchmark.name}: {benchmark.summary} (load average {os.getloadavg()[0]:.2f})")
        started = time.monotonic()
        try:
            results += [(benchmark.name, figure) for figure in benchmark.run(args.kubeconfig)]
        except Exception as error:  # noqa: BLE001 - report it and go on with the next benchmark
            failures[benchmark.name] = f"{type(error).__name__}: {error}"
            progress(f"{benchmark.name} FAILED: {failures[benchmark.name]}")
        progress(f"{benchmark.name}: done in {time.monotonic() - started:.0f} s")
    if args.json:
        document = {
            "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average": os.getloadavg()},
            "note": NOTE,
            "figures": [
                {"benchmark": name, "metric": f.metric, "value": f.value, "target": f.target, "unit": f.unit,
                 "verdict": f.verdict, "detail": f.detail}
                for name, f in results
            ],  # fmt: skip
            "failures": failures,
        }
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(table(results))
        for name, message in failures.items():
            print(f"{name}: FAILED: {message}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
