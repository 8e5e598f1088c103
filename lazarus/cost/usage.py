"""What a sandbox consumed: resource requests integrated over the time they were held (pure).

The method, chosen to be simple and checkable by hand rather than precise to the cent:

- **Pods** (restored workloads' pods and the custom-check Job's pod) reserve their *requests*
  from their creation until they end: the latest ``finishedAt`` of a pod that Succeeded or
  Failed, the ``deletionTimestamp`` of a pod being deleted, else the end of the window. A pod
  never bound to a node (no ``spec.nodeName``) reserved nothing and costs nothing. A pod's
  request is what the scheduler reserves: the sum over its containers (and sidecar init
  containers), at least the largest ordinary init container, plus ``spec.overhead``. Containers
  without requests count as zero (the sandbox's LimitRange, with a quota, gives them defaults).
- **Volumes**: a bound PersistentVolumeClaim holds its capacity (else its storage request) from
  its creation until its deletion or the end of the window; an unbound claim holds no disk.
- **Planned** (``planned_requests``, for the maxCost guard only): what the restored workloads
  will hold once their pods run, from their specs alone — replicas times the pod template's
  requests, plus a StatefulSet's claim templates — so that an oversize sandbox is stopped as its
  workloads are restored, before their pods start.
- Everything is clipped to the window (the test's start to its completion, or now). Pods that
  were deleted and are gone when measured (e.g. replaced during a rollout) are not seen: the
  figure can be low for a sandbox whose pods churn, never high.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lazarus.cost.quantity import GIB, parse_quantity
from lazarus.lifecycle.durations import parse_time

Obj = Mapping[str, Any]
HOUR = 3600.0


@dataclass(frozen=True)
class Resources:
    """CPU cores, memory GiB and storage GiB — held at once (a rate) or times seconds (usage)."""

    cpu: float = 0.0
    memory_gib: float = 0.0
    storage_gib: float = 0.0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu + other.cpu, self.memory_gib + other.memory_gib, self.storage_gib + other.storage_gib)

    def times(self, seconds: float) -> Resources:
        return Resources(self.cpu * seconds, self.memory_gib * seconds, self.storage_gib * seconds)

    def covering(self, other: Resources) -> Resources:
        """The larger of the two in each resource: the rate that holds both, for one set of pods
        seen two ways (held now, planned by their workloads)."""
        return Resources(
            max(self.cpu, other.cpu), max(self.memory_gib, other.memory_gib), max(self.storage_gib, other.storage_gib)
        )


@dataclass(frozen=True)
class Prices:
    """Unit prices (``Settings``): per CPU core-hour, memory GiB-hour and storage GiB-hour."""

    cpu_hour: float
    memory_gib_hour: float
    storage_gib_hour: float
    currency: str

    def of(self, usage: Resources) -> float:
        """The price of ``usage`` (core-seconds, GiB-seconds)."""
        per_hour = usage.cpu * self.cpu_hour + usage.memory_gib * self.memory_gib_hour
        return (per_hour + usage.storage_gib * self.storage_gib_hour) / HOUR


def _requests(containers: Iterable[Obj]) -> Resources:
    total = Resources()
    for container in containers:
        requests = (container.get("resources") or {}).get("requests") or {}
        total += Resources(
            parse_quantity(requests.get("cpu", 0)), parse_quantity(requests.get("memory", 0)) / GIB
        )
    return total


def pod_requests(pod: Obj) -> Resources:
    """What the scheduler reserves for ``pod`` (see the module docstring)."""
    spec = pod.get("spec") or {}
    inits = spec.get("initContainers") or []
    sidecars = [c for c in inits if c.get("restartPolicy") == "Always"]
    running = _requests([*(spec.get("containers") or []), *sidecars])
    largest_init = [_requests([c]) for c in inits if c.get("restartPolicy") != "Always"]
    overhead = spec.get("overhead") or {}
    return Resources(
        max([running.cpu, *(i.cpu for i in largest_init)]) + parse_quantity(overhead.get("cpu", 0)),
        max([running.memory_gib, *(i.memory_gib for i in largest_init)])
        + parse_quantity(overhead.get("memory", 0)) / GIB,
    )


def _claim_templates_storage(statefulset: Obj) -> float:
    """GiB the claims of one replica of ``statefulset`` request."""
    templates = (statefulset.get("spec") or {}).get("volumeClaimTemplates") or []
    requested = (((t.get("spec") or {}).get("resources") or {}).get("requests") or {} for t in templates)
    return sum(parse_quantity(r.get("storage", 0)) for r in requested) / GIB


def planned_requests(workloads: Iterable[Obj]) -> Resources:
    """What ``workloads`` (Deployments, StatefulSets, DaemonSets) will hold once all their pods
    run: replicas (``spec.replicas``, default 1; a DaemonSet's ``status.desiredNumberScheduled``,
    0 until its controller counted the nodes) times the template's requests, plus claim
    templates. A lower bound: containers without requests, bare pods and claims restored on
    their own count only once measured."""
    rate = Resources()
    for workload in workloads:
        spec = workload.get("spec") or {}
        if workload.get("kind") == "DaemonSet":
            replicas = int((workload.get("status") or {}).get("desiredNumberScheduled") or 0)
        else:
            replicas = int(spec.get("replicas", 1) or 0)
        per_pod = pod_requests(spec.get("template") or {})
        if workload.get("kind") == "StatefulSet":
            per_pod += Resources(storage_gib=_claim_templates_storage(workload))
        rate += per_pod.times(replicas)
    return rate


def _pod_end(pod: Obj, end: datetime) -> datetime:
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        finished = [
            parse_time(s["state"]["terminated"]["finishedAt"])
            for s in status.get("containerStatuses") or []
            if ((s.get("state") or {}).get("terminated") or {}).get("finishedAt")
        ]
        return max(finished, default=end)
    deleted = pod["metadata"].get("deletionTimestamp")
    return parse_time(deleted) if deleted else end


def _held(obj: Obj, start: datetime, end: datetime, until: datetime) -> float:
    """Seconds ``obj`` existed within [start, end], from its creation to ``until``."""
    created = obj["metadata"].get("creationTimestamp")
    begin = max(parse_time(created), start) if created else start
    return max((min(until, end) - begin).total_seconds(), 0.0)


def claim_storage(claim: Obj) -> Resources:
    """What a PersistentVolumeClaim holds (see the module docstring)."""
    status = claim.get("status") or {}
    if status.get("phase") != "Bound":
        return Resources()
    size = (status.get("capacity") or {}).get("storage") or (
        ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
    ).get("storage", 0)
    return Resources(storage_gib=parse_quantity(size) / GIB)


def _deletion(obj: Obj, end: datetime) -> datetime:
    deleted = obj["metadata"].get("deletionTimestamp")
    return parse_time(deleted) if deleted else end


def integrate(pods: Iterable[Obj], claims: Iterable[Obj], start: datetime, end: datetime) -> Resources:
    """Core-seconds, memory GiB-seconds and storage GiB-seconds held within [start, end]."""
    usage = Resources()
    for pod in pods:
        if (pod.get("spec") or {}).get("nodeName"):
            usage += pod_requests(pod).times(_held(pod, start, end, _pod_end(pod, end)))
    for claim in claims:
        usage += claim_storage(claim).times(_held(claim, start, end, _deletion(claim, end)))
    return usage


def held_now(pods: Iterable[Obj], claims: Iterable[Obj], now: datetime) -> Resources:
    """What the pods and claims still hold at ``now`` (a rate: cores, GiB)."""
    rate = Resources()
    for pod in pods:
        if (pod.get("spec") or {}).get("nodeName") and _pod_end(pod, now) >= now:
            rate += pod_requests(pod)
    for claim in claims:
        if _deletion(claim, now) >= now:
            rate += claim_storage(claim)
    return rate
