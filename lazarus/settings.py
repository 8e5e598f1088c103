"""Operator settings: one frozen dataclass, filled from command-line flags and environment.

Every field has a default that suits a cluster-wide install from ``manifests/``; the docstring under
each field says what it does. Environment variables (``LAZARUS_<FIELD>``) override defaults, and
flags override both, so a Deployment can set them either way.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field, fields

from lazarus.informers import DEFAULT_RESYNC_PERIOD
from lazarus.leaderelection import DEFAULT_LEASE_DURATION, DEFAULT_RENEW_DEADLINE, DEFAULT_RETRY_PERIOD


def _default_identity() -> str:
    # Pod name (the hostname in a Pod) plus a random suffix: a restarted Pod must not be mistaken
    # for its previous incarnation, which may still appear as the lease holder.
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Settings:
    """Everything ``lazarus run`` can be configured with."""

    kubeconfig: str | None = None
    """Path of a kubeconfig; unset: in-cluster config, else the default kubeconfig."""
    namespace: str = "lazarus-system"
    """The operator's own namespace (leader-election Lease, default place of tests)."""
    velero_namespace: str = "velero"
    """Namespace where Velero runs and keeps its Backups, Restores and Schedules."""
    leader_elect: bool = True
    """Run leader election; only the leader reconciles. Turn off only for a single replica."""
    lease_name: str = "lazarus-leader"
    """Name of the coordination.k8s.io Lease shared by all replicas."""
    identity: str = field(default_factory=_default_identity)
    """This replica's identity in the Lease."""
    lease_duration: float = DEFAULT_LEASE_DURATION
    """Seconds a follower waits before taking over an unrenewed lease."""
    renew_deadline: float = DEFAULT_RENEW_DEADLINE
    """Seconds the leader keeps trying to renew before it gives up (and exits)."""
    retry_period: float = DEFAULT_RETRY_PERIOD
    """Seconds between leader-election attempts."""
    metrics_address: str = "0.0.0.0"
    """Address of the /metrics, /healthz and /readyz server."""
    metrics_port: int = 8080
    """Port of the /metrics, /healthz and /readyz server."""
    workers: int = 2
    """Worker threads per controller."""
    resync_period: float = DEFAULT_RESYNC_PERIOD
    """Seconds between re-deliveries of every cached object to the controllers (no API call)."""
    watch_stall_timeout: float = 900.0
    """/healthz fails when an informer has had no successful list/watch for this long. Longer
    than the longest watch (10 min) so an idle but healthy watch never trips it."""
    cache_sync_timeout: float = 120.0
    """Seconds to wait for the caches to fill before reconciling; a longer wait is an error."""
    max_concurrent_tests: int = 2
    """Restore tests running at once; more wait in Pending (reason WaitingForSlot)."""
    test_timeout: float = 7200.0
    """Seconds a test may take from start to result; then it fails with reason Timeout."""
    failure_retention: float = 900.0
    """Seconds a failed test's sandbox is kept for debugging when its spec sets no ttl."""
    cluster_name: str = ""
    """Name of this cluster in notifications, reports and PagerDuty dedup keys (set it when
    several clusters notify the same Slack channel or PagerDuty service)."""
    notifications_secret: str = "lazarus-notifications"
    """Secret in the operator's namespace with default notification credentials, each key
    optional: slackWebhookURL, pagerdutyRoutingKey, webhookURL, smtpUsername, smtpPassword."""
    smtp_host: str = ""
    """SMTP server for e-mail notifications; empty: e-mail notifications fail saying so."""
    smtp_port: int = 587
    """Port of the SMTP server."""
    smtp_security: str = "starttls"
    """starttls, tls (implicit TLS, usually port 465) or none (only for a relay on a trusted network)."""
    smtp_from: str = "lazarus@localhost"
    """Default sender address of e-mail notifications."""
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    """PagerDuty Events API v2 endpoint (e.g. the EU service region's)."""
    notification_attempts: int = 3
    """Attempts per notification: a failed delivery (timeout, 429, 5xx) is retried with backoff."""
    notification_timeout: float = 10.0
    """Seconds one notification request may take."""
    price_cpu_hour: float = 0.04
    """Price of one CPU core requested for an hour, for test cost estimates (status.cost). The
    defaults are round figures near large clouds' on-demand list prices; set your own."""
    price_memory_gib_hour: float = 0.005
    """Price of one GiB of memory requested for an hour."""
    price_storage_gib_hour: float = 0.00014
    """Price of one GiB of persistent volume for an hour (about 0.10 per GiB-month)."""
    currency: str = "USD"
    """Label of the prices' currency, shown with every cost (status.cost.currency, metrics, report)."""
    log_level: str = "info"
    """debug, info, warning or error."""
    log_format: str = "auto"
    """json, console, or auto (JSON unless stderr is a terminal)."""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, overridden by ``LAZARUS_<FIELD>`` variables, overridden by ``overrides``."""
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"LAZARUS_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _parse(f.name, str(f.type), raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise ``ValueError`` naming the setting that is out of range."""
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.max_concurrent_tests < 1:
            raise ValueError("max_concurrent_tests must be at least 1")
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")
        if self.log_format not in ("auto", "json", "console"):
            raise ValueError("log_format must be auto, json or console")
        if not 0 <= self.metrics_port < 65536:
            raise ValueError("metrics_port must be a port number")
        if self.smtp_security not in ("starttls", "tls", "none"):
            raise ValueError("smtp_security must be starttls, tls or none")
        if self.notification_attempts < 1:
            raise ValueError("notification_attempts must be at least 1")
        if min(self.price_cpu_hour, self.price_memory_gib_hour, self.price_storage_gib_hour) < 0:
            raise ValueError("prices must not be negative")


def _parse(name: str, type_name: str, raw: str) -> object:
    try:
        if type_name.startswith("bool"):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1", "yes")
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
    except ValueError:
        raise ValueError(f"LAZARUS_{name.upper()}={raw!r} is not a valid {type_name.split(' ')[0]}") from None
    return raw
