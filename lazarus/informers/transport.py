"""The list/watch transport: raw LIST pages and WATCH event streams as plain dicts.

Contract (``ListerWatcher``, which the reflector depends on and tests fake):

- ``list(query, limit=..., continue_token=...)`` returns one ``ListPage``: the items as parsed
  JSON dicts (read-only for callers), the list's ``resourceVersion`` and the ``continue`` token
  of the next page (``None`` on the last page).
- ``watch(query, resource_version=..., timeout_seconds=...)`` returns a ``WatchStream``:
  iterating it yields ``WatchEvent``\\ s as they arrive (``ERROR`` events included, as the
  server sent them) until the server ends the watch; ``close()`` may be called from another
  thread and makes a blocked iteration end promptly (with an exception or a normal end).
- A response with an HTTP error status raises ``ApiError`` carrying the server's ``Status``;
  connection problems and timeouts raise one of ``CONNECTION_ERRORS`` (what the HTTP stack
  raises), which the reflector treats as transient.

``RestTransport`` implements it on one explicit ``kubernetes.client.ApiClient`` through
``lazarus.kube.client.Rest`` (so the client's authentication, TLS, proxy and connection pool all
apply), reading urllib3's response itself. Bodies are parsed with ``json`` into dicts: the
client's pydantic models are several times slower and larger, and its ``watch.Watch`` retries a
410 with the same stale resourceVersion and has no read timeout. Every request carries a
``(connect, read)`` timeout, so a half-open connection cannot hang a thread forever.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3
from kubernetes import client

from lazarus.informers.resource import Query
from lazarus.kube.client import CONNECTION_ERRORS, ApiError, Rest
from lazarus.kube.watch import WatchEvent, decode_watch_stream

__all__ = [
    "CONNECTION_ERRORS",
    "LIST_REQUEST_TIMEOUT",
    "WATCH_CONNECT_TIMEOUT",
    "WATCH_READ_MARGIN",
    "ApiError",
    "ListPage",
    "ListerWatcher",
    "Obj",
    "RestTransport",
    "WatchEvent",
    "WatchStream",
    "decode_watch_stream",
]

Obj = dict[str, Any]
"""A Kubernetes object as parsed JSON."""

# LIST: 5 s to connect (the API server is on the same network: a connect that takes longer is
# going nowhere), 60 s to read (a page of 500 objects takes well under a second, and the API
# server gives up on a request after its own --request-timeout of 60 s anyway).
LIST_REQUEST_TIMEOUT = (5.0, 60.0)
# WATCH: the same connect timeout. The read timeout is the watch's server-side timeoutSeconds plus
# this margin: the server ends a healthy watch itself at timeoutSeconds, so a connection that has
# been silent for longer than that is half-open (e.g. the API server's host vanished) and must be
# abandoned rather than read forever.
WATCH_CONNECT_TIMEOUT = 5.0
WATCH_READ_MARGIN = 30.0
# Bytes asked of the socket per read of a watch stream. Reads return as soon as one HTTP chunk
# (the API server flushes one per event) is in, so this bounds memory per read, not latency.
WATCH_READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class ListPage:
    """One page of a paginated LIST."""

    items: list[Obj]
    resource_version: str
    """The list's ``metadata.resourceVersion``: where a watch that follows it starts."""
    continue_token: str | None
    """``metadata.continue``: pass it to fetch the next page; ``None`` on the last page."""


class WatchStream(Protocol):
    """A live watch: iterate it for events; ``close`` it (from any thread) to end it."""

    def __iter__(self) -> Iterator[WatchEvent]:
        """Yield events until the server ends the watch or the stream is closed."""
        ...

    def close(self) -> None:
        """End the watch and release its connection; safe to call more than once."""
        ...


class ListerWatcher(Protocol):
    """Lists and watches the collection a ``Query`` names."""

    def list(self, query: Query, *, limit: int, continue_token: str | None) -> ListPage:
        """Return one page of at most ``limit`` items (the first page when no token)."""
        ...

    def watch(self, query: Query, *, resource_version: str, timeout_seconds: int) -> WatchStream:
        """Start a watch (with bookmarks) from ``resource_version``, ended by the server after
        ``timeout_seconds``."""
        ...


class _HttpWatchStream:
    """A ``WatchStream`` over one streaming urllib3 response."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response

    def __iter__(self) -> Iterator[WatchEvent]:
        try:
            yield from decode_watch_stream(self._response.stream(WATCH_READ_SIZE))
        finally:
            self._response.release_conn()

    def close(self) -> None:
        # Shutting the socket down is what wakes a thread blocked reading it (closing the file
        # descriptor alone does not); the reader then sees the stream end or fail.
        try:
            self._response.shutdown()
        except (ValueError, RuntimeError, OSError):
            pass  # no socket to shut down: the response is already finished or closed
        self._response.close()


class RestTransport:
    """``ListerWatcher`` over one ``kubernetes.client.ApiClient`` (see the module docstring).

    Size the client's connection pool (``Configuration.connection_pool_maxsize``) for every
    informer's watch plus the workers' requests: a watch holds its connection for minutes.
    """

    def __init__(self, api_client: client.ApiClient) -> None:
        """Send every request through ``api_client``."""
        self._rest = Rest(api_client)

    def watch(self, query: Query, *, resource_version: str, timeout_seconds: int) -> WatchStream:
        """GET the collection with ``watch=true`` and return the unread streaming response."""
        params = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", str(timeout_seconds)),
            *query.selector_params(),
        ]
        timeout = (WATCH_CONNECT_TIMEOUT, timeout_seconds + WATCH_READ_MARGIN)
        return _HttpWatchStream(self._rest.open("GET", query.path, query=params, timeout=timeout))

    # Last: in the class body, the name ``list`` means this method from here on.
    def list(self, query: Query, *, limit: int, continue_token: str | None) -> ListPage:
        """GET one page of the collection and parse it."""
        params = [("limit", str(limit)), *query.selector_params()]
        if continue_token:
            params.append(("continue", continue_token))
        response = self._rest.open("GET", query.path, query=params, timeout=LIST_REQUEST_TIMEOUT)
        try:
            body = json.loads(response.data)
        finally:
            response.release_conn()
        metadata = body.get("metadata") or {}
        return ListPage(
            body.get("items") or [], str(metadata.get("resourceVersion", "")), metadata.get("continue") or None
        )
