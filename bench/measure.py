"""What benchmarks report with: figures, percentiles, process memory and fresh child processes.

Kept free of heavy imports: the cold-sync child imports it and must measure only the informer.

Child processes: ``run_child("bench.x", **kwargs)`` runs ``python -m bench.x '<kwargs as JSON>'``
in a fresh interpreter; that module ends with ``child_main(its_function)``, which calls the
function with the kwargs and prints its JSON-able result as the last line of stdout. Logs go to
stderr, which is shown if the child fails.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Benchmark", "Figure", "child_main", "percentile", "progress", "rss_mib", "run_child"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class Figure:
    """One measured value; ``target`` is an upper bound, ``None`` for information only.

    A ``detail`` figure (e.g. one line of a breakdown) is printed with ``--json`` only, not in the table.
    """

    metric: str
    value: float
    unit: str
    target: float | None = None
    detail: bool = False

    @property
    def verdict(self) -> str:
        """``ok`` or ``MISSED`` against the target; empty for information."""
        if self.target is None:
            return ""
        return "ok" if self.value <= self.target else "MISSED"


@dataclass(frozen=True)
class Benchmark:
    """A named benchmark: ``run(kubeconfig)`` measures and returns its figures."""

    name: str
    summary: str
    needs_cluster: bool
    run: Callable[[str | None], list[Figure]]


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile: the ``ceil(p/100 * n)``-th smallest value."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 < p <= 100:
        raise ValueError("p must be in (0, 100]")
    ordered = sorted(values)
    return ordered[math.ceil(p / 100 * len(ordered)) - 1]


def rss_mib(pid: int | str = "self", field: str = "VmRSS") -> float:
    """A memory field of ``/proc/<pid>/status`` in MiB (``VmRSS`` now, ``VmHWM`` its peak)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / MIB
    raise LookupError(f"no {field} in /proc/{pid}/status")


def progress(message: str) -> None:
    """Tell the person waiting what is going on (stderr, so ``--json`` stdout stays clean)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run_child(module: str, timeout: float, **kwargs: Any) -> Any:
    """Run ``module``'s ``child_main`` in a fresh interpreter and return its JSON result."""
    done = subprocess.run(
        [sys.executable, "-m", module, json.dumps(kwargs)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} child exited {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_main(function: Callable[..., Any]) -> None:
    """The child side of ``run_child``: call ``function`` with the JSON kwargs, print the result."""
    from lazarus.logconfig import configure

    configure("warning", json_output=True)  # structlog's default would print to stdout
    result = function(**json.loads(sys.argv[1]))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)  # informer threads are daemons mid-request: do not wait for them
