"""The probe and metrics endpoint answers with the right status codes."""

from __future__ import annotations

import requests
from prometheus_client import CollectorRegistry, Counter

from lazarus.httpserver import HealthServer


def test_probes_and_metrics() -> None:
    registry = CollectorRegistry()
    Counter("lazarus_test_things", "things", registry=registry).inc()
    state = {"ready": False}
    server = HealthServer(
        "127.0.0.1",
        0,
        liveness=lambda: (True, "ok"),
        readiness=lambda: (state["ready"], "caches synced" if state["ready"] else "waiting for caches: backups"),
        registry=registry,
    )
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
        not_ready = requests.get(f"{base}/readyz", timeout=5)
        assert not_ready.status_code == 503
        assert "backups" in not_ready.text
        state["ready"] = True
        assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
        metrics = requests.get(f"{base}/metrics", timeout=5)
        assert "lazarus_test_things_total 1.0" in metrics.text
        assert requests.get(f"{base}/nope", timeout=5).status_code == 404
    finally:
        server.stop()
