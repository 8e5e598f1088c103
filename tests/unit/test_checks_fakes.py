"""Fakes shared by the health-check tests: an in-memory ``Rest`` and a test object.

Kept in a ``test_checks_*`` module (the tests' naming rule); its own tests check the fakes.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from lazarus.checks.context import CheckContext
from lazarus.kube.client import ApiError

TEST_UID = "0b5c2a8e-1111-4222-8333-444455556666"
SOURCE, SANDBOX = "shop", "lazarus-sbx-shop-abc123"
TEST_NAMESPACE = "team-a"


def make_test(health_checks: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """A LazarusRestoreTest as the controller sees it."""
    return {
        "apiVersion": "lazarus.io/v1alpha1",
        "kind": "LazarusRestoreTest",
        "metadata": {"name": "nightly", "namespace": TEST_NAMESPACE, "uid": TEST_UID, "resourceVersion": "7"},
        "spec": {"backupName": "shop-daily", **spec, "healthChecks": health_checks or {}},
    }


class FakeResponse:
    """Enough of a urllib3 response for streaming reads."""

    def __init__(self, chunks: list[bytes], delay: float = 0.0) -> None:
        self._chunks = chunks
        self._delay = delay
        self.closed = False

    def stream(self, _size: int) -> Iterator[bytes]:
        for chunk in self._chunks:
            if self._delay:
                time.sleep(self._delay)
            yield chunk

    def read(self, size: int = -1) -> bytes:
        data = b"".join(self._chunks)
        return data if size < 0 else data[:size]

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        pass


class FakeRest:
    """In-memory API objects by path; records every request as ``(method, path)``.

    ``streams[path]`` holds queued responses (or ``ApiError``\\ s) for ``open`` (watches, logs).
    """

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.streams: dict[str, list[FakeResponse | ApiError]] = {}
        self.requests: list[tuple[str, str]] = []
        self.posted: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._version = 100

    def add(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[path] = obj
        return obj

    def add_secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        self.add(f"/api/v1/namespaces/{namespace}/secrets/{name}", {"kind": "Secret", "data": encoded})

    def add_service(
        self, namespace: str, name: str, ports: list[int] | None = None, external_name: str | None = None
    ) -> None:
        spec: dict[str, Any] = {"ports": [{"port": p} for p in ports or []]}
        if external_name:
            spec = {"type": "ExternalName", "externalName": external_name}
        self.add(f"/api/v1/namespaces/{namespace}/services/{name}", {"kind": "Service", "spec": spec})

    def request(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        with self._lock:
            self.requests.append((method, path))
            if method == "POST":
                body = json.loads(json.dumps(options["body"]))
                target = f"{path}/{body['metadata']['name']}"
                if target in self.objects:
                    raise ApiError(409, "AlreadyExists", f"{body['metadata']['name']} already exists")
                self._version += 1
                body["metadata"]["resourceVersion"] = str(self._version)
                self.posted.append(body)
                return self.add(target, body)
            if path in self.objects:
                return json.loads(json.dumps(self.objects[path]))
            if method == "GET" and path.endswith("/pods"):
                return {"items": []}
        raise ApiError(404, "NotFound", f"{path} not found")

    def open(self, method: str, path: str, **options: Any) -> FakeResponse:
        with self._lock:
            self.requests.append((method, path))
            queued = self.streams.get(path) or []
            item = queued.pop(0) if queued else FakeResponse([])
        if isinstance(item, ApiError):
            raise item
        return item


def watch_line(event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": event_type, "object": obj}).encode() + b"\n"


def make_context(
    rest: FakeRest,
    mapping: dict[str, str] | None = None,
    *,
    seconds: float = 30.0,
    retries: int = 0,
    sleeps: list[float] | None = None,
    real_sleep: bool = False,
) -> CheckContext:
    """A context over ``rest`` whose sleeps are recorded in ``sleeps`` instead of slept (and also
    slept when ``real_sleep``)."""
    recorded = sleeps if sleeps is not None else []

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        if real_sleep:
            time.sleep(seconds)

    return CheckContext(
        rest,  # type: ignore[arg-type]
        make_test(),
        mapping if mapping is not None else {SOURCE: SANDBOX},
        deadline=time.monotonic() + seconds,
        reference_time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        retries=retries,
        sleep=sleep,
    )


def test_fake_rest_serves_and_records() -> None:
    rest = FakeRest()
    rest.add_secret("ns", "s", {"k": "v"})
    assert rest.request("GET", "/api/v1/namespaces/ns/secrets/s")["data"]["k"] == base64.b64encode(b"v").decode()
    assert rest.requests == [("GET", "/api/v1/namespaces/ns/secrets/s")]


def test_fake_rest_post_conflicts_on_existing_object() -> None:
    rest = FakeRest()
    body = {"metadata": {"name": "j"}}
    rest.request("POST", "/c", body=body)
    try:
        rest.request("POST", "/c", body=body)
    except ApiError as exc:
        assert exc.conflict
    else:
        raise AssertionError("expected a conflict")
