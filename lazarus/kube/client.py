"""Build the one ``ApiClient`` a Lazarus process uses, and make plain-dict REST calls with it.

Why not the generated API classes: the ``kubernetes`` 37 client turns every response into
pydantic models, measured ~6x slower and ~3x the memory of plain dicts. Lazarus calls REST paths
directly, reads the body as JSON, and always passes an explicit timeout, so no call can hang on
a half-open connection.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, config
from prometheus_client import Counter

# Connect and read timeouts (seconds) for ordinary requests. A request that takes longer than
# this is retried by its caller (workqueue backoff), never waited on forever.
DEFAULT_TIMEOUT = (5.0, 30.0)

# What a request raises when the connection fails, times out or breaks mid-stream: socket errors
# (``TimeoutError`` included), urllib3's errors (connect/read timeouts, refused connections after
# retries, a response that ended prematurely). A TLS failure arrives as a status-0 ``ApiError``.
CONNECTION_ERRORS: tuple[type[Exception], ...] = (OSError, urllib3.exceptions.HTTPError)

Timeout = float | tuple[float, float]
"""A request's timeout: total seconds, or seconds to connect and seconds per read."""


API_REQUESTS = Counter(
    "lazarus_api_requests_total",
    "Requests Lazarus sent to the Kubernetes API server, by verb, resource and HTTP status code.",
    ["verb", "resource", "code"],
)


def resource_of(path: str) -> str:
    """The resource a REST path addresses (``configmaps``, ``lazarusrestoretests/status``).

    Bounded label values for metrics: never a name or a namespace.
    """
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    parts = parts[2:] if parts[:1] == ["api"] else parts[3:]  # drop api/v1 or apis/<group>/<version>
    if parts[:1] == ["namespaces"] and len(parts) > 2:
        parts = parts[2:]
    if not parts:
        return ""
    return "/".join([parts[0], *parts[2:3]])


class ApiError(Exception):
    """The API server answered with an error ``Status`` (an HTTP error, or a watch ``ERROR``).

    ``status`` is the HTTP code (``Status.code``; 0 when there was no answer at all), ``reason``
    the Status reason (e.g. ``NotFound``, ``Expired``), ``message`` its human-readable message.
    """

    def __init__(self, status: int, reason: str, message: str = "") -> None:
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.message = message

    @classmethod
    def from_status(cls, status: dict[str, Any], http_status: int = 0) -> ApiError:
        """Build from a ``Status`` object; ``http_status`` stands in if it carries no code."""
        code = int(status.get("code") or http_status)
        return cls(code, str(status.get("reason", "")), str(status.get("message", "")))

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        """409: an optimistic-concurrency conflict, or the object already exists."""
        return self.status == 409

    @property
    def expired(self) -> bool:
        """Whether a resourceVersion or continue token is too old: the client must relist.

        410 Gone is the code for it; older servers sent "too old resource version" with 500.
        """
        return self.status == 410 or self.reason in ("Expired", "Gone") or "too old resource version" in self.message

    @property
    def transient(self) -> bool:
        """Whether retrying the same request later may succeed (no answer, throttled, server error)."""
        return self.status in (0, 429) or self.status >= 500


Query = Mapping[str, Any] | Sequence[tuple[str, str]]


def new_api_client(kubeconfig: str | None = None, context: str | None = None, pool_size: int = 16) -> client.ApiClient:
    """An ApiClient for ``kubeconfig`` (or in-cluster when None and running in a Pod).

    ``pool_size`` should cover every worker thread plus every long-lived watch, or requests queue
    for a connection behind watches.
    """
    configuration = client.Configuration()
    if kubeconfig is None:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(context=context, client_configuration=configuration)
    else:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)


@dataclass(frozen=True)
class Rest:
    """Plain-dict REST calls on one ApiClient."""

    api: client.ApiClient

    def request(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        """Send one request (``options`` as for ``open``) and return the decoded JSON body; raise
        ``ApiError`` unless 2xx."""
        response = self.open(method, path, **options)
        try:
            data = response.read()
        finally:
            response.release_conn()
        decoded: dict[str, Any] = json.loads(data) if data else {}
        return decoded

    def open(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
        timeout: Timeout = DEFAULT_TIMEOUT,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request and return the raw urllib3 response, unread (for streaming).

        ``timeout`` is ``(connect, read)`` seconds, or one number that bounds the whole request
        (for a caller with a deadline).

        Raises ``ApiError`` (with the decoded Status body) unless the answer is 2xx; the caller
        must ``release_conn()`` the returned response.
        """
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        pairs = query.items() if isinstance(query, Mapping) else (query or ())
        params = [(k, _query_value(v)) for k, v in pairs if v is not None]
        method, url, headers, serialized, post = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=params,
            header_params=headers,
            body=body,
            # The client's name for bearer-token auth (kubeconfig / in-cluster, refreshed by the
            # configuration's hook): naming it makes param_serialize add the header.
            auth_settings=["BearerToken"],
        )
        verb = "WATCH" if any(k == "watch" for k, _ in params) else method
        try:
            response: urllib3.BaseHTTPResponse = self.api.call_api(
                method, url, headers, serialized, post, _request_timeout=timeout
            ).response
        except client.ApiException as exc:  # raised for TLS errors (status 0)
            API_REQUESTS.labels(verb, resource_of(path), "0").inc()
            raise ApiError(exc.status or 0, str(exc.reason)) from exc
        API_REQUESTS.labels(verb, resource_of(path), str(response.status)).inc()
        if 200 <= response.status < 300:
            return response
        try:
            raw = response.data
        finally:
            response.release_conn()
        try:
            status = json.loads(raw) if raw else {}
        except ValueError:
            status = {"message": raw.decode("utf-8", "replace")[:500]}
        raise ApiError.from_status(status if isinstance(status, dict) else {}, response.status)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
