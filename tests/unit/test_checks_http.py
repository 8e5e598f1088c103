"""HTTP check helpers: URL mapping into the sandbox, JSON paths, error reasons, body judgement.

Requests against real servers are in tests/integration/test_checks_http.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import urllib3

from lazarus.checks.context import CheckError
from lazarus.checks.http import _Answer, _json_at, _judge_body, _reason, _sandbox_url
from tests.unit.test_checks_fakes import SANDBOX, FakeRest, make_context


def test_service_urls_resolve_into_the_sandbox() -> None:
    rest = FakeRest()
    rest.add_service(SANDBOX, "api-service", ports=[8080, 80])
    ctx = make_context(rest)
    assert (
        _sandbox_url(ctx, "http://api-service:8080/health?x=1") == f"http://api-service.{SANDBOX}.svc:8080/health?x=1"
    )
    assert _sandbox_url(ctx, "http://api-service.shop/") == f"http://api-service.{SANDBOX}.svc/"
    assert _sandbox_url(ctx, "https://u:pw99@10.1.2.3:8443/x") == "https://u:pw99@10.1.2.3:8443/x"
    assert ctx.scrub("https://u:pw99@10.1.2.3") == "https://u:***@10.1.2.3"
    with pytest.raises(CheckError, match="has no port 9090"):
        _sandbox_url(ctx, "http://api-service:9090/")
    with pytest.raises(CheckError, match="'prod', which this test did not restore"):
        _sandbox_url(ctx, "http://api.prod.svc.cluster.local/")


def test_the_placeholder_in_a_url_needs_a_single_namespace() -> None:
    ctx = make_context(FakeRest(), {"shop": "sbx-shop", "billing": "sbx-billing"})
    with pytest.raises(CheckError, match="is ambiguous: this test restores several namespaces \\(billing, shop\\)"):
        _sandbox_url(ctx, "http://api.{{ .SandboxNamespace }}.svc/")


def test_json_paths() -> None:
    document = {"status": "up", "items": [{"name": "a"}, {"name": "b"}], "n": 3, "ok": True}
    assert _json_at(document, "items.1.name") == "b"
    assert _json_at(document, "items.-1.name") == "b"
    with pytest.raises(KeyError):
        _json_at(document, "items.5.name")
    with pytest.raises(KeyError):
        _json_at(document, "status.x")


def answer(body: str, truncated: bool = False) -> _Answer:
    return _Answer(200, body, truncated, 0.01)


def test_body_expectations() -> None:
    body = '{"database": {"status": "connected"}, "n": 3, "ok": true, "items": [1, 2]}'
    ok, texts = _judge_body(
        {
            "contains": "connected",
            "regex": r'"n":\s*\d+',
            "json": [
                {"path": "database.status", "equals": "connected"},
                {"path": "n", "equals": "3"},
                {"path": "ok", "equals": "true"},
                {"path": "items", "equals": "[1,2]"},
            ],
        },
        answer(body),
    )
    assert ok, texts
    ok, texts = _judge_body({"contains": "nope", "json": [{"path": "missing.x", "equals": "1"}]}, answer(body))
    assert not ok
    assert texts == ["body does not contain 'nope'", "missing.x: not found (no 'missing')"]
    assert _judge_body({"json": [{"path": "a", "equals": "1"}]}, answer("<html>")) == (False, ["body is not JSON"])
    with pytest.raises(CheckError, match="not a valid regular expression"):
        _judge_body({"regex": "("}, answer(body))


def test_reasons_drop_object_reprs() -> None:
    connection: Any = object()
    inner = urllib3.exceptions.NewConnectionError(
        connection, "Failed to establish a new connection: [Errno 111] Connection refused"
    )
    error = requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/x", inner))  # type: ignore[arg-type]
    assert _reason(error) == "Failed to establish a new connection: [Errno 111] Connection refused"
