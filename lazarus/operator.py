"""The ``lazarus run`` process: informers, leader election, controllers and the HTTP endpoint.

Start-up: the HTTP server (/metrics, /healthz, /readyz) and the informers start on every replica,
so followers keep warm caches and can take over quickly. Then the namespace guard is proven on the
replica's own credentials (``lazarus.namespaceguard``); until it is, the replica is unready and
does not join leader election. Only the leader starts the controllers, and only once their caches
have synced.

Leader election runs on its own thread and starts the controllers on another (``LeaderElector``),
so renewal never waits for the caches.

Shutdown: the first SIGTERM/SIGINT stops gracefully, in this order, so that no follower can lead
while this replica's workers still act:

1. every controller stops handing out keys; each worker finishes the key it holds;
2. the workers are waited for, ``DRAIN_TIMEOUT`` in all (the lease is still renewed meanwhile);
3. the lease is released, so a follower takes over at its next attempt — or, if some worker is
   still running, kept unreleased (renewal stops) so that followers wait for it to expire;
4. informers and the server stop, and the process exits 0.

A second signal exits at once (status 1). Losing the lease, also while draining, exits at once
with status 2: in-flight reconciles must not go on once another replica may be leading, and a
restarted process rejoins as a clean follower.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType

import structlog
from kubernetes import client

from lazarus.clock import Clock, RealClock
from lazarus.controllers.context import Context, ControllerFactory
from lazarus.httpserver import HealthServer
from lazarus.informers import SharedInformer, SharedInformerFactory
from lazarus.kube.client import CONNECTION_ERRORS, ApiError, Rest, new_api_client
from lazarus.leaderelection import KubeLeaseLock, LeaderElectionConfig, LeaderElector, LeaseLock
from lazarus.namespaceguard import GuardCheck
from lazarus.namespaceguard import check as check_namespace_guard
from lazarus.settings import Settings

log = structlog.get_logger(__name__)

EXIT_LOST_LEADERSHIP = 2
EXIT_SECOND_SIGNAL = 1
EXIT_CACHE_SYNC_FAILED = 3

# The workers' share of the Deployment's terminationGracePeriodSeconds (60 s) before the kubelet's
# SIGKILL. What comes after it must fit in the rest: stopping the elector (an attempt in flight,
# then the release: each within the renew deadline, 10 s) and the informers (a few seconds). A
# reconcile still running after 25 s is stuck on a slow request; it dies with the process.
DRAIN_TIMEOUT = 25.0
# Seconds between attempts to prove the namespace guard (an install may apply it after the pods).
GUARD_RETRY = 30.0
# Answers that prove nothing either way about the guard: no answer, or an error Status.
GUARD_UNPROVEN: tuple[type[Exception], ...] = (ApiError, *CONNECTION_ERRORS)


class Operator:
    """One operator process; ``run`` blocks until shutdown and returns the exit status."""

    def __init__(
        self,
        settings: Settings,
        controllers: Sequence[ControllerFactory],
        *,
        api_client: client.ApiClient | None = None,
        clock: Clock | None = None,
        lease_lock: LeaseLock | None = None,
        namespace_guard: Callable[[Rest], GuardCheck] = check_namespace_guard,
    ) -> None:
        """``lease_lock`` stores the leader-election record; default: the Lease
        ``settings.lease_name`` in ``settings.namespace``, through ``api_client``. ``namespace_guard``
        proves the admission policy on namespaces covers this replica (tests replace it)."""
        self.settings = settings
        # Connections: every controller worker, every watch, plus leader election and slack.
        self._api = api_client or new_api_client(settings.kubeconfig, pool_size=8 + 4 * settings.workers)
        self._clock = clock or RealClock()
        self.context = Context(
            settings,
            Rest(self._api),
            SharedInformerFactory.for_api_client(self._api, resync_period=settings.resync_period),
            self._leading,
        )
        self._controllers = [factory(self.context) for factory in controllers]
        self._stop = threading.Event()
        self._started_at = self._clock.now()
        self._server = HealthServer(
            settings.metrics_address, settings.metrics_port, liveness=self.liveness, readiness=self.readiness
        )
        self._lease_lock = lease_lock or KubeLeaseLock(self.context.rest, settings.namespace, settings.lease_name)
        self._elector: LeaderElector | None = None
        # Set to stop leading, after the drain (never by the signal itself: see the module docstring).
        self._stop_leading = threading.Event()
        self._elector_thread: threading.Thread | None = None
        self._exit_status = 0
        self._namespace_guard = namespace_guard
        self._guard_problem: str | None = "namespace guard not verified yet"

    def _leading(self) -> bool:
        """Whether this replica may act: always when it is the only one (no leader election);
        else only on a lease it holds and renewed in time, and not before the elector exists."""
        if not self.settings.leader_elect:
            return True
        return self._elector is not None and self._elector.holds_lease()

    def _informers(self) -> list[SharedInformer]:
        return self.context.informers.informers()

    def readiness(self) -> tuple[bool, str]:
        """Ready once the namespace guard is proven and every informer has synced (followers too:
        they are ready to take over)."""
        if self._guard_problem is not None:
            return False, self._guard_problem
        pending = [str(i.query) for i in self._informers() if not i.has_synced]
        return (not pending, "waiting for caches: " + ", ".join(pending) if pending else "ok")

    def liveness(self) -> tuple[bool, str]:
        """Alive unless an informer has gone ``watch_stall_timeout`` without a successful list/watch."""
        now = self._clock.now()
        stalled = [
            str(i.query)
            for i in self._informers()
            if now - (i.last_success if i.last_success is not None else self._started_at)
            > self.settings.watch_stall_timeout
        ]
        return (not stalled, "watch stalled: " + ", ".join(stalled) if stalled else "ok")

    def install_signal_handlers(self) -> None:
        """First SIGTERM/SIGINT: graceful stop. Second: exit at once."""

        def handle(signum: int, _frame: FrameType | None) -> None:
            if self._stop.is_set():
                log.warning("second signal: exiting at once", signal=signum)
                os._exit(EXIT_SECOND_SIGNAL)
            log.info("signal received: shutting down", signal=signum)
            self._stop.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def run(self) -> int:
        """Run until stopped; return the process exit status."""
        self._server.start()
        self.context.informers.start()
        log.info(
            "operator started",
            identity=self.settings.identity,
            controllers=[c.name for c in self._controllers],
            leader_election=self.settings.leader_elect,
            port=self._server.port,
        )
        try:
            if not self._prove_namespace_guard():
                return self._exit_status
            if self.settings.leader_elect:
                self._elector = LeaderElector(
                    LeaderElectionConfig(
                        lease_namespace=self.settings.namespace,
                        lease_name=self.settings.lease_name,
                        identity=self.settings.identity,
                        lease_duration=self.settings.lease_duration,
                        renew_deadline=self.settings.renew_deadline,
                        retry_period=self.settings.retry_period,
                    ),
                    self._lease_lock,
                    on_started_leading=self._start_controllers,
                    on_stopped_leading=self._on_stopped_leading,
                    clock=self._clock,
                )
                self._elector_thread = threading.Thread(
                    target=self._elector.run, args=(self._stop_leading,), name="leader-election", daemon=True
                )
                self._elector_thread.start()
            else:
                self._start_controllers()
            self._stop.wait()
        finally:
            self._shutdown()
        return self._exit_status

    def _prove_namespace_guard(self) -> bool:
        """Retry the guard's proof until it holds (True) or a shutdown is asked for (False)."""
        while not self._stop.is_set():
            try:
                result = self._namespace_guard(self.context.rest)
            except GUARD_UNPROVEN as error:
                self._guard_problem = f"namespace guard not verified yet: {error}"
                log.warning("could not verify the namespace guard; retrying", error=str(error), retry_in=GUARD_RETRY)
            else:
                if result.in_effect:
                    self._guard_problem = None
                    (log.info if result.applies else log.warning)("namespace guard", detail=result.detail)
                    return True
                self._guard_problem = result.detail
                log.error("namespace guard not in effect: not reconciling", detail=result.detail, retry_in=GUARD_RETRY)
            self._stop.wait(GUARD_RETRY)
        return False

    def _start_controllers(self) -> None:
        if not self.context.informers.wait_for_cache_sync(self.settings.cache_sync_timeout):
            log.error(
                "caches did not sync in time; exiting",
                detail=self.readiness()[1],
                timeout=self.settings.cache_sync_timeout,
            )
            self._exit_status = EXIT_CACHE_SYNC_FAILED
            self._stop.set()
            return
        for controller in self._controllers:
            controller.start()  # a no-op for a controller that a shutdown has stopped meanwhile

    def _on_stopped_leading(self) -> None:
        if self._stop_leading.is_set():
            return  # graceful shutdown, after the drain
        log.error("leadership lost: exiting at once so no reconcile runs without the lease")
        os._exit(EXIT_LOST_LEADERSHIP)

    def _shutdown(self) -> None:
        """Stop work, drain, then stop leading, then the rest (see the module docstring)."""
        self._stop.set()
        for controller in self._controllers:
            controller.stop()
        drained = self._drain()
        if self._elector is not None and self._elector_thread is not None:
            if not drained:
                log.error("workers still running after the drain: keeping the lease: followers wait for it to expire",
                          drain_timeout=DRAIN_TIMEOUT)  # fmt: skip
                self._elector.keep_lease_on_stop()
            self._stop_leading.set()
            # An attempt in flight, then the release: each bounded by the renew deadline.
            self._elector_thread.join(2 * self.settings.renew_deadline)
        self.context.informers.stop()
        self._server.stop()
        self._api.close()
        log.info("operator stopped")

    def _drain(self) -> bool:
        """Wait for every controller's workers, ``DRAIN_TIMEOUT`` in all; return whether all exited."""
        deadline = self._clock.now() + DRAIN_TIMEOUT
        drained = True
        for controller in self._controllers:
            drained = controller.join(max(0.0, deadline - self._clock.now())) and drained
        return drained
