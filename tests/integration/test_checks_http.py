"""HTTP checks against local HTTP and HTTPS servers under the test's control.

The servers listen on 127.0.0.1; checks reach them by IP, or by a Service name that resolves in
the sandbox namespace on the test bed (an ``ExternalName`` Service pointing at ``localhost``).
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from lazarus.checks.results import ERROR, FAILED, PASSED
from tests.integration.test_checks_fixtures import Sandbox

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.test_checks_fixtures"]

TOKEN = "tok-9f8e7d6c5b4a"
HEALTH = {"status": "up", "database": {"status": "connected"}, "items": [{"name": "a"}, {"name": "b"}], "ok": True}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    hits: Counter[str]


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        key = f"{url.path}?{url.query}"
        self.server.hits[key] += 1
        if url.path == "/health":
            self._send(200, json.dumps(HEALTH).encode())
        elif url.path == "/text":
            self._send(200, "hello wörld".encode(), "text/plain; charset=utf-8")
        elif url.path == "/fail":
            self._send(503, b"unavailable", "text/plain")
        elif url.path == "/flaky":
            ok = self.server.hits[key] > int(query.get("failures", ["2"])[0])
            self._send(200 if ok else 503, b"ready" if ok else b"warming up", "text/plain")
        elif url.path == "/sleep":
            time.sleep(float(query.get("s", ["3"])[0]))
            self._send(200, b"late", "text/plain")
        elif url.path == "/auth":
            ok = self.headers.get("Authorization") == f"Bearer {TOKEN}"
            self._send(200 if ok else 401, b"hello" if ok else b"who are you", "text/plain")
        elif url.path == "/redirect":
            self._send(302, b"", "text/plain", Location="http://elsewhere.example/")
        elif url.path == "/big":
            self._send(200, b"x" * (2 * 1024 * 1024) + b"needle", "text/plain")
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._send(201, body, "application/json")


def serve(server: Server) -> Iterator[Server]:
    server.hits = Counter()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def http_server() -> Iterator[Server]:
    yield from serve(Server(("127.0.0.1", 0), Handler))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it."""
    directory = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    (directory / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    commands = [
        ["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=it-ca"],
        ["openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
        ["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.crt", "-days", "2", "-extfile", "ext"],
    ]  # fmt: skip
    for command in commands:
        subprocess.run(command, cwd=directory, check=True, capture_output=True)
    return {name: directory / name for name in ("ca.crt", "server.crt", "server.key")}


@pytest.fixture(scope="module")
def https_server(tls: dict[str, Path]) -> Iterator[Server]:
    server = Server(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls["server.crt"], tls["server.key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from serve(server)


@pytest.fixture(scope="module")
def web(sandbox: Sandbox) -> Sandbox:
    sandbox.external_service("web")
    sandbox.secret("api-token", {"token": f"Bearer {TOKEN}"})
    return sandbox


def url(server: Server, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
    return f"{scheme}://{host}:{server.server_address[1]}{path}"


def run(sandbox: Sandbox, *endpoints: dict[str, Any], **checks: Any) -> list[dict[str, Any]]:
    report = sandbox.run({"http": {"endpoints": list(endpoints)}, **checks})
    results: list[dict[str, Any]] = report.status["http"]["checks"]
    return results


def test_status_and_every_body_expectation_pass_through_a_sandbox_service(web: Sandbox, http_server: Server) -> None:
    endpoint = {
        "name": "health",
        "url": url(http_server, "/health", host="web"),
        "expectedBody": {
            "contains": '"status": "up"',
            "regex": r'"items":\s*\[',
            "json": [
                {"path": "database.status", "equals": "connected"},
                {"path": "items.1.name", "equals": "b"},
                {"path": "ok", "equals": "true"},
            ],
        },
    }
    [result] = run(web, endpoint)
    assert (result["status"], result["statusCode"]) == (PASSED, 200), result
    assert result["result"].startswith("HTTP 200 in ")
    assert "database.status = 'connected'" in result["result"]


def test_body_mismatches_fail_without_retrying(web: Sandbox, http_server: Server) -> None:
    endpoints: list[dict[str, Any]] = [
        {"name": "contains", "url": url(http_server, "/text?t=1"), "expectedBody": {"contains": "goodbye"}},
        {"name": "regex", "url": url(http_server, "/text?t=2"), "expectedBody": {"regex": "^bye"}},
        {
            "name": "json",
            "url": url(http_server, "/health?t=3"),
            "expectedBody": {"json": [{"path": "status", "equals": "down"}]},
        },
        {
            "name": "not-json",
            "url": url(http_server, "/text?t=4"),
            "expectedBody": {"json": [{"path": "a", "equals": "1"}]},
        },
        {"name": "utf8", "url": url(http_server, "/text?t=5"), "expectedBody": {"contains": "wörld"}},
    ]
    results = {r["name"]: r for r in run(web, *endpoints)}
    assert {n: r["status"] for n, r in results.items()} == {
        "contains": FAILED, "regex": FAILED, "json": FAILED, "not-json": FAILED, "utf8": PASSED,
    }  # fmt: skip
    assert results["json"]["result"].endswith("status = 'up' (expected 'down')")
    assert results["not-json"]["result"].endswith("body is not JSON")
    assert all(http_server.hits[f"/text?t={i}"] == 1 for i in (1, 2, 4))


def test_unaccepted_status_is_retried_then_fails(web: Sandbox, http_server: Server) -> None:
    [result] = run(web, {"name": "fail", "url": url(http_server, "/fail"), "retries": 1})
    assert (result["status"], result["statusCode"]) == (FAILED, 503)
    assert result["result"] == "HTTP 503 (expected 200) (after 2 attempts)"
    assert http_server.hits["/fail?"] == 2


def test_a_warming_up_application_passes_after_retries(web: Sandbox, http_server: Server) -> None:
    [result] = run(web, {"name": "flaky", "url": url(http_server, "/flaky?failures=2&k=a"), "retries": 3})
    assert result["status"] == PASSED
    assert http_server.hits["/flaky?failures=2&k=a"] == 3


def test_accepted_statuses_and_redirects(web: Sandbox, http_server: Server) -> None:
    endpoints: list[dict[str, Any]] = [
        {"name": "redirect", "url": url(http_server, "/redirect"), "retries": 0},
        {"name": "accepted", "url": url(http_server, "/redirect"), "acceptedStatuses": [301, 302]},
        {"name": "created", "url": url(http_server, "/echo"), "method": "POST", "body": '{"a": 1}',
         "expectedStatus": 201, "expectedBody": {"json": [{"path": "a", "equals": "1"}]}},
    ]  # fmt: skip
    results = {r["name"]: r for r in run(web, *endpoints)}
    assert results["redirect"]["status"] == FAILED
    assert results["redirect"]["result"] == (
        "HTTP 302 (expected 200); redirects are not followed (Location: http://elsewhere.example/)"
    )
    assert results["accepted"]["status"] == PASSED
    assert results["created"]["status"] == PASSED


def test_headers_from_secrets(web: Sandbox, http_server: Server) -> None:
    secret_header = {"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "api-token", "key": "token"}}}
    endpoints: list[dict[str, Any]] = [
        {"name": "authorised", "url": url(http_server, "/auth"), "headers": [secret_header]},
        {"name": "anonymous", "url": url(http_server, "/auth"), "retries": 0},
        {"name": "literal", "url": url(http_server, "/auth"), "retries": 0,
         "headers": [{"name": "Authorization", "value": "Bearer x"}]},
        {"name": "no-secret", "url": url(http_server, "/auth"),
         "headers": [{"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "token"}}}]},
    ]  # fmt: skip
    report = web.run({"http": {"endpoints": endpoints}})
    results = {r["name"]: r for r in report.status["http"]["checks"]}
    assert results["authorised"]["status"] == PASSED
    assert (results["anonymous"]["status"], results["anonymous"]["statusCode"]) == (FAILED, 401)
    assert results["literal"]["status"] == FAILED
    assert results["no-secret"]["status"] == ERROR
    assert results["no-secret"]["result"].startswith(f"Secret {web.namespace}/gone not found")
    assert TOKEN not in str(report)


def test_unreachable_and_slow_servers_are_errors(web: Sandbox, http_server: Server) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    endpoints: list[dict[str, Any]] = [
        {"name": "refused", "url": f"http://127.0.0.1:{closed}/", "retries": 0},
        {"name": "slow", "url": url(http_server, "/sleep?s=3"), "timeout": 1, "retries": 0},
        {"name": "no-service", "url": "http://nowhere:8080/"},
        {"name": "outside", "url": "http://api.production.svc.cluster.local/"},
    ]
    started = time.monotonic()
    results = {r["name"]: r for r in run(web, *endpoints)}
    assert time.monotonic() - started < 2.5
    assert {r["status"] for r in results.values()} == {ERROR}
    assert results["refused"]["result"].startswith("no answer: ") and "refused" in results["refused"]["result"]
    assert "timed out" in results["slow"]["result"].lower()
    assert results["no-service"]["result"].startswith(f"Service {web.namespace}/nowhere not found")
    assert "'production', which this test did not restore" in results["outside"]["result"]


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_is_verified_by_default(web: Sandbox, https_server: Server, tls: dict[str, Path]) -> None:
    web.secret("web-ca", {"ca.crt": tls["ca.crt"].read_text()})
    address = url(https_server, "/health", scheme="https")
    endpoints: list[dict[str, Any]] = [
        {"name": "verified", "url": address, "retries": 0},
        {"name": "insecure", "url": address, "tls": {"insecureSkipVerify": True}},
        {"name": "ca-bundle", "url": address, "tls": {"caBundleSecretRef": {"name": "web-ca", "key": "ca.crt"}}},
    ]
    results = {r["name"]: r for r in run(web, *endpoints)}
    assert results["verified"]["status"] == ERROR
    assert results["verified"]["result"].startswith("TLS failed: ")
    assert "certificate verify failed" in results["verified"]["result"]
    assert results["insecure"]["status"] == PASSED
    assert "; TLS certificate not verified (insecureSkipVerify)" in results["insecure"]["result"]
    assert results["ca-bundle"]["status"] == PASSED


def test_large_bodies_are_read_only_up_to_the_limit(web: Sandbox, http_server: Server) -> None:
    [result] = run(web, {"name": "big", "url": url(http_server, "/big"), "expectedBody": {"contains": "needle"}})
    assert result["status"] == FAILED
    assert result["result"].endswith("only the first 1 MiB of the body was read")


def test_endpoints_run_in_parallel_under_the_overall_timeout(web: Sandbox, http_server: Server) -> None:
    endpoints = [{"name": f"s{i}", "url": url(http_server, f"/sleep?s=1&i={i}"), "retries": 0} for i in range(4)]
    started = time.monotonic()
    assert {r["status"] for r in run(web, *endpoints)} == {PASSED}
    assert time.monotonic() - started < 2.5
    started = time.monotonic()
    results = run(web, {"name": "late", "url": url(http_server, "/sleep?s=5&late=1")}, timeout=1)
    assert time.monotonic() - started < 2
    assert results[0]["status"] == ERROR
