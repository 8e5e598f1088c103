"""What went wrong in a sandbox, collected into the test's status before the sandbox is removed.

Bounded on purpose: status is an etcd object (1.5 MiB at most, and read by every watcher), so at
most ``MAX_LINES`` lines, ``MAX_LOG_PODS`` pods' log tails of ``LOG_TAIL_LINES`` lines each. Costs
a fixed number of requests per sandbox namespace (pods, events) plus the log tails: never one per
restored object. Failures to collect are reported as lines, never raised.
"""

from __future__ import annotations

from typing import Any

from lazarus.kube.client import ApiError, Rest

MAX_LINES = 50
MAX_LOG_PODS = 3
LOG_TAIL_LINES = 20
MAX_LINE = 500


def _pod_problem(pod: dict[str, Any]) -> str | None:
    status = pod.get("status") or {}
    if status.get("phase") == "Running" and all(c.get("ready") for c in status.get("containerStatuses") or [{}]):
        return None
    if status.get("phase") == "Succeeded":
        return None
    reasons = [
        f"{c.get('type')}={c.get('status')} {c.get('reason') or ''} {c.get('message') or ''}".strip()
        for c in status.get("conditions") or []
        if c.get("status") != "True"
    ]
    waiting = [
        f"container {c.get('name')}: {(c.get('state') or {}).get('waiting', {}).get('reason', '')}"
        for c in status.get("containerStatuses") or []
        if (c.get("state") or {}).get("waiting")
    ]
    return f"Pod {pod['metadata']['name']}: {status.get('phase', 'Unknown')}; " + "; ".join(reasons + waiting)


def collect(rest: Rest, namespaces: list[str]) -> list[str]:
    """Problem pods, their log tails and Warning events in ``namespaces``, as status lines."""
    lines: list[str] = []
    for namespace in namespaces:
        try:
            pods = rest.request("GET", f"/api/v1/namespaces/{namespace}/pods", query={"limit": 200})["items"]
            events = rest.request(
                "GET", f"/api/v1/namespaces/{namespace}/events", query={"fieldSelector": "type=Warning", "limit": 20}
            )["items"]
        except ApiError as exc:
            lines.append(f"{namespace}: diagnostics unavailable: {exc}")
            continue
        problems = [(pod, problem) for pod in pods if (problem := _pod_problem(pod))]
        lines += [f"{namespace}: {problem}" for _, problem in problems]
        for pod, _ in problems[:MAX_LOG_PODS]:
            lines += _log_tail(rest, namespace, pod)
        lines += [
            f"{namespace}: event {e.get('reason')} on {(e.get('involvedObject') or {}).get('name')}: {e.get('message')}"
            for e in events
        ]
    return [line[:MAX_LINE] for line in lines[:MAX_LINES]]


def _log_tail(rest: Rest, namespace: str, pod: dict[str, Any]) -> list[str]:
    name = pod["metadata"]["name"]
    path = f"/api/v1/namespaces/{namespace}/pods/{name}/log"
    try:
        response = rest.open("GET", path, query={"tailLines": LOG_TAIL_LINES, "limitBytes": 4096})
        try:
            text = response.read().decode("utf-8", "replace")
        finally:
            response.release_conn()
    except ApiError as exc:
        return [f"{namespace}: logs of {name} unavailable: {exc.message or exc.reason}"]
    return [f"{namespace}: {name} log: {line}" for line in text.splitlines()[-LOG_TAIL_LINES:]]
