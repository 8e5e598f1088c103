"""Cluster access for the benchmarks: a REST client, throw-away namespaces, bulk ConfigMap creation,
and a ``lazarus run`` process.

Everything goes through ``lazarus.kube.client.Rest`` (plain-dict REST). A benchmark namespace is
labelled ``app.kubernetes.io/part-of=lazarus-bench`` and deleted on the way out, on failure and
on SIGTERM too (``__main__`` turns SIGTERM into ``SystemExit``), and its deletion is waited for,
so the namespace controller's clean-up does not eat into the next benchmark's CPU.

``lazarus_run(kubeconfig, *flags)`` starts ``python -m lazarus run`` with its probes and
``/metrics`` on a free local port and its log in a temporary file; on the way out it is stopped
with SIGTERM (killed, and its log's tail shown, when the benchmark failed).

``install_prerequisites(kubeconfig)``, called once before the cluster benchmarks, server-side
applies the repository's CRDs (and waits until they are Established) and creates the operator's
namespace if it is missing, so a bare test bed is enough; both stay installed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml
from kubernetes import client

from bench.measure import progress
from lazarus.informers import SharedInformerFactory
from lazarus.kube.client import ApiError, Rest, new_api_client

__all__ = [
    "BENCH_LABEL",
    "LazarusProcess",
    "bench_namespace",
    "config_map",
    "connect",
    "create_config_maps",
    "install_prerequisites",
    "lazarus_run",
    "parallel",
]

BENCH_LABEL = ("app.kubernetes.io/part-of", "lazarus-bench")
# The test bed's kwok node is tainted (real workloads run on its real node): the benchmarks' pods,
# whose images exist nowhere, are placed there.
ON_KWOK: dict[str, Any] = {
    "nodeSelector": {"type": "kwok"},
    "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
}
# Client threads for bulk writes. On the 2-core test machine the API server and etcd are the
# limit: 2 to 32 threads all created ~500 ConfigMaps/s; 8 keeps a margin for faster machines.
WRITE_THREADS = 8
# A namespace holding 10,000 objects takes the namespace controller a while to empty.
NAMESPACE_DELETE_TIMEOUT = 300.0
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
CRDS = Path(__file__).resolve().parent.parent / "crds"
OPERATOR_NAMESPACE = "lazarus-system"  # lazarus run's default: its Lease and sandbox key live there
CRD_ESTABLISHED_TIMEOUT_S = 30.0


@contextmanager
def connect(kubeconfig: str, threads: int = WRITE_THREADS) -> Iterator[Rest]:
    """A ``Rest`` client with a connection per thread; closed on exit."""
    api = new_api_client(kubeconfig, pool_size=threads)
    try:
        yield Rest(api)
    finally:
        api.close()


@contextmanager
def bench_namespace(rest: Rest, prefix: str) -> Iterator[str]:
    """Create a uniquely named namespace; delete it and wait until it is gone on exit."""
    name = f"bench-{prefix}-{uuid.uuid4().hex[:6]}"
    labels = dict([BENCH_LABEL])
    rest.request("POST", "/api/v1/namespaces", body={"metadata": {"name": name, "labels": labels}})
    progress(f"created namespace {name}")
    try:
        yield name
    finally:
        _delete_namespace(rest, name)


def _delete_namespace(rest: Rest, name: str) -> None:
    started = time.monotonic()
    try:
        rest.request("DELETE", f"/api/v1/namespaces/{name}")
        while time.monotonic() - started < NAMESPACE_DELETE_TIMEOUT:
            rest.request("GET", f"/api/v1/namespaces/{name}")
            time.sleep(0.5)
    except ApiError as error:
        if error.not_found:
            progress(f"deleted namespace {name} ({time.monotonic() - started:.1f} s)")
            return
        progress(f"WARNING: could not delete namespace {name}: {error}")
        return
    progress(f"WARNING: namespace {name} still terminating after {NAMESPACE_DELETE_TIMEOUT:.0f} s")


def config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    """A ConfigMap body."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def parallel(calls: int, call: Callable[[int], Any], threads: int = WRITE_THREADS) -> list[Any]:
    """Run ``call(0) .. call(calls - 1)`` on ``threads`` threads; results in order, first error raised.

    On an error (or SIGTERM) the calls not started yet are cancelled rather than waited for.
    """
    pool = ThreadPoolExecutor(threads, thread_name_prefix="bench-write")
    try:
        return list(pool.map(call, range(calls)))
    finally:
        pool.shutdown(cancel_futures=True)


def create_config_maps(
    rest: Rest, namespace: str, count: int, prefix: str = "cm", threads: int = WRITE_THREADS
) -> float:
    """POST ``count`` ConfigMaps ``<prefix>-00000``.. with ~200 bytes of data; return the seconds taken."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"

    def create(index: int) -> None:
        payload = os.urandom(92).hex()  # 184 characters: with the index, ~200 bytes of data
        rest.request("POST", path, body=config_map(f"{prefix}-{index:05d}", {"index": str(index), "payload": payload}))

    started = time.monotonic()
    parallel(count, create, threads)
    elapsed = time.monotonic() - started
    progress(f"created {count} ConfigMaps in {elapsed:.1f} s ({count / elapsed:.0f}/s, {threads} threads)")
    return elapsed


class Watches:
    """The benchmark's own informers (one factory, no resync), stamping events as they arrive;
    subclasses add informers and handlers in ``__init__`` and wait on ``changed``."""

    def __init__(self, api: client.ApiClient) -> None:
        self.factory = SharedInformerFactory.for_api_client(api, resync_period=0)
        self.changed = threading.Condition()

    def start(self) -> None:
        self.factory.start()
        if not self.factory.wait_for_cache_sync(timeout=60):
            raise TimeoutError("the benchmark's watches did not sync within 60 s")

    def stop(self) -> None:
        self.factory.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LazarusProcess:
    """A running ``lazarus run``: its process, probe port and log (stdout and stderr)."""

    process: subprocess.Popen[bytes]
    port: int
    log: IO[bytes]
    started: float
    """``time.monotonic()`` just before the spawn."""

    def get(self, path: str) -> str:
        """GET ``path`` (``/metrics``, ``/readyz``) from its HTTP server; the body as text."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
            return str(response.read().decode())

    def ready(self) -> bool:
        """Whether ``/readyz`` answers 200."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Wait until ``/readyz`` answers 200; return the seconds since the spawn."""
        while not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"lazarus run exited {self.process.returncode} before it was ready")
            if time.monotonic() - self.started > timeout:
                raise TimeoutError(f"lazarus run not ready after {timeout:.0f} s")
            time.sleep(0.05)
        return time.monotonic() - self.started

    def stop(self) -> int:
        """SIGTERM (a graceful stop) and wait; return the exit status (warned about unless 0)."""
        if self.process.returncode is None:  # not stopped yet
            if self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGTERM)
            if self.process.wait(STOP_TIMEOUT_S) != 0:
                progress(f"WARNING: lazarus run exited {self.process.returncode} after SIGTERM (expected 0)")
        return self.process.returncode

    def is_leader(self) -> bool:
        """Whether its ``lazarus_leader_is_leader`` gauge is 1."""
        return any(
            line.startswith("lazarus_leader_is_leader{") and line.endswith(" 1.0")
            for line in self.get("/metrics").splitlines()
        )

    def api_requests(self) -> dict[tuple[str, str, str], int]:
        """Its ``lazarus_api_requests_total`` counters so far, by (verb, resource, code)."""
        from prometheus_client.parser import text_string_to_metric_families

        counts: dict[tuple[str, str, str], int] = {}
        for family in text_string_to_metric_families(self.get("/metrics")):
            for sample in family.samples:
                if sample.name == "lazarus_api_requests_total":
                    labels = sample.labels
                    counts[(labels["verb"], labels["resource"], labels["code"])] = int(sample.value)
        return counts

    def log_entries(self) -> list[dict[str, Any]]:
        """Its JSON log lines so far, decoded (other lines skipped)."""
        self.log.seek(0)
        entries = []
        for line in self.log.readlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries


def install_prerequisites(kubeconfig: str) -> None:
    """Apply the CRDs of ``crds/`` and wait until each is Established; create the operator's namespace."""
    with connect(kubeconfig, threads=1) as rest:
        _apply_crds(rest)
        try:
            rest.request("POST", "/api/v1/namespaces", body={"metadata": {"name": OPERATOR_NAMESPACE}})
        except ApiError as exc:
            if not exc.conflict:
                raise


def _apply_crds(rest: Rest) -> None:
    for path in sorted(CRDS.glob("lazarus.io_*.yaml")):
        crd = yaml.safe_load(path.read_text())
        name = crd["metadata"]["name"]
        rest.request("PATCH", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
                     query={"fieldManager": "lazarus-bench", "force": "true"}, body=crd,
                     content_type="application/apply-patch+yaml")  # fmt: skip
        deadline = time.monotonic() + CRD_ESTABLISHED_TIMEOUT_S
        while not _established(rest.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")):
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established after {CRD_ESTABLISHED_TIMEOUT_S:.0f} s")
            time.sleep(0.2)


def _established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


@contextmanager
def lazarus_run(kubeconfig: str, *flags: str) -> Iterator[LazarusProcess]:
    """Start ``python -m lazarus run --kubeconfig K <probes on a free port> --log-format json *flags``.

    Not waited for: call ``wait_ready``. Stopped on the way out (see the module docstring).
    """
    port = _free_port()
    command = [
        sys.executable, "-m", "lazarus", "run", "--kubeconfig", kubeconfig, "--metrics-address", "127.0.0.1",
        "--metrics-port", str(port), "--log-format", "json", *flags,
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        started = time.monotonic()
        operator = LazarusProcess(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), port, log, started)
        try:
            yield operator
            operator.stop()
        except BaseException:
            operator.process.kill()
            operator.process.wait()
            log.seek(0)
            progress("lazarus run log:\n" + log.read().decode(errors="replace")[-3000:])
            raise
