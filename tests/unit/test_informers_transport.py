"""Unit tests of RestTransport against a local HTTP server that speaks just enough of the API.

The server records each request, answers LISTs with JSON pages, streams watches as chunked
newline-delimited JSON (and can hold a watch open without sending anything, like a quiet or
half-open connection), and answers one path with a 410 ``Status``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from kubernetes import client

from lazarus.informers import CONFIG_MAPS, ApiError, Query, Resource, RestTransport
from lazarus.informers.transport import WatchEvent
from tests.waiting import JOIN_TIMEOUT, wait_until

WIDGETS = Resource("example.com", "v1", "widgets", True, "Widget")
# A label selector value that makes the server send one event, then hold the watch open silently
# (like a quiet or half-open connection) until the test ends.
QUIET_WATCH = "quiet"


class FakeApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, dict[str, list[str]], str]] = []  # path, query, Accept
        self.release = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    server: FakeApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlparse(self.path)
        query = parse_qs(url.query)
        self.server.requests.append((url.path, query, self.headers.get("Accept", "")))
        if url.path.endswith("/gone"):
            self._json(410, {"kind": "Status", "code": 410, "reason": "Expired", "message": "continue expired"})
        elif query.get("watch") == ["true"]:
            self._watch(query)
        else:
            page = {"metadata": {"resourceVersion": "42", "continue": "next" if "continue" not in query else ""}}
            self._json(200, {**page, "items": [{"metadata": {"name": "a", "namespace": "ns"}}]})

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _watch(self, query: dict[str, list[str]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json;stream=watch")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        line = b'{"type":"ADDED","object":{"metadata":{"name":"b","resourceVersion":"43"}}}\n'
        if query.get("labelSelector") == [QUIET_WATCH]:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
            self.server.release.wait()
            return
        bookmark = b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"44"}}}\n'
        for chunk in (line[:20], line[20:] + bookmark):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def transport(server: FakeApiServer) -> Iterator[RestTransport]:
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    with client.ApiClient(configuration) as api_client:
        yield RestTransport(api_client)


def test_list_pages_with_selectors(server: FakeApiServer, transport: RestTransport) -> None:
    query = Query(CONFIG_MAPS, "ns", label_selector="app=shop,tier!=db", field_selector="metadata.name=a")
    first = transport.list(query, limit=500, continue_token=None)
    assert (first.resource_version, first.continue_token) == ("42", "next")
    assert first.items == [{"metadata": {"name": "a", "namespace": "ns"}}]
    last = transport.list(query, limit=500, continue_token="next")
    assert last.continue_token is None
    (path, params, accept), (_, params2, _) = server.requests
    assert path == "/api/v1/namespaces/ns/configmaps" and accept == "application/json"
    assert params == {"limit": ["500"], "labelSelector": ["app=shop,tier!=db"], "fieldSelector": ["metadata.name=a"]}
    assert params2["continue"] == ["next"]


def test_watch_streams_events_across_chunks(server: FakeApiServer, transport: RestTransport) -> None:
    stream = transport.watch(Query(WIDGETS), resource_version="42", timeout_seconds=300)
    events = [(e.type, e.object["metadata"]["resourceVersion"]) for e in stream]
    assert events == [("ADDED", "43"), ("BOOKMARK", "44")]
    path, params, _accept = server.requests[0]
    assert path == "/apis/example.com/v1/widgets"
    assert params == {
        "watch": ["true"],
        "allowWatchBookmarks": ["true"],
        "resourceVersion": ["42"],
        "timeoutSeconds": ["300"],
    }
    stream.close()  # closing a finished stream is harmless


def test_close_ends_a_blocked_watch_read_promptly(server: FakeApiServer, transport: RestTransport) -> None:
    """The server holds the watch open until the test ends, so only ``close`` can end the reader's
    iteration (the read timeout is 330 s away). ``close`` runs on a thread of its own: a close
    that only waited for the read to time out would block, and the joins would find it alive."""
    stream = transport.watch(Query(CONFIG_MAPS, label_selector=QUIET_WATCH), resource_version="1", timeout_seconds=300)
    received: list[WatchEvent] = []
    outcome: list[object] = []

    def read() -> None:
        try:
            received.extend(stream)
            outcome.append("ended")
        except Exception as error:  # a reset or protocol error is as good as an end here
            outcome.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_until(lambda: received)  # the stream is live; the reader waits for the next chunk
    assert not outcome
    closer = threading.Thread(target=stream.close, daemon=True)
    closer.start()
    closer.join(JOIN_TIMEOUT)
    reader.join(JOIN_TIMEOUT)
    assert not closer.is_alive() and not reader.is_alive() and outcome
    assert not server.release.is_set()  # the server still held the watch: close() ended it
    stream.close()


def test_http_errors_raise_api_error_with_the_status(transport: RestTransport) -> None:
    gone = Resource("", "v1", "gone", False, "Gone")
    with pytest.raises(ApiError) as raised:
        transport.list(Query(gone), limit=500, continue_token="old")
    assert (raised.value.status, raised.value.reason, raised.value.expired) == (410, "Expired", True)
