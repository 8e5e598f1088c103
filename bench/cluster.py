"""Cluster access for the benchmarks: a REST client, throw-away namespaces, bulk ConfigMap creation.

Everything goes through ``lazarus.kube.client.Rest`` (plain-dict REST). A benchmark namespace is
labelled ``app.kubernetes.io/part-of=lazarus-bench`` and deleted on the way out, on failure and
on SIGTERM too (``__main__`` turns SIGTERM into ``SystemExit``), and its deletion is waited for,
so the namespace controller's clean-up does not eat into the next benchmark's CPU.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from bench.measure import progress
from lazarus.kube.client import ApiError, Rest, new_api_client

__all__ = ["BENCH_LABEL", "bench_namespace", "config_map", "connect", "create_config_maps", "parallel"]

BENCH_LABEL = ("app.kubernetes.io/part-of", "lazarus-bench")
# Client threads for bulk writes. On the 2-core test machine the API server and etcd are the
# limit: 2 to 32 threads all created ~500 ConfigMaps/s; 8 keeps a margin for faster machines.
WRITE_THREADS = 8
# A namespace holding 10,000 objects takes the namespace controller a while to empty.
NAMESPACE_DELETE_TIMEOUT = 300.0


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
