"""Fetch a Velero artefact (resource list, restore results, logs, ...) through a ``DownloadRequest``.

Contract of ``download``:

1. It creates one ``velero.io/v1`` ``DownloadRequest`` in the Velero namespace, named
   ``lazarus-<random>`` and labelled ``lazarus.io/download: "true"`` (so orphans are easy to
   find; Velero itself deletes a request once it has expired, 10 minutes after processing).
2. It waits for Velero to set ``status.phase: Processed`` and ``status.downloadURL`` with a WATCH
   on that one object (``fieldSelector=metadata.name=<name>``, started from the creation's
   resourceVersion so no update can be missed), never by polling, bounded by ``timeout``.
3. It GETs the presigned object-store URL with ``requests`` (connect/read timeouts), streaming,
   and gunzips it: Velero stores every artefact gzip-compressed (``encode.ToJSONGzip``,
   ``putResults`` in ``pkg/controller/restore_controller.go``) except ``BackupContents``, which
   is a ``.tar.gz`` and is returned as is, like ``velero`` CLI's ``downloadrequest.Stream`` does.
4. A request Velero never processed is deleted (best effort): nothing else would remove it. A
   processed one is left to Velero, which deletes it when its URL expires (10 minutes): deleting
   it ourselves would cost a request per download.

Every failure raises ``DownloadError`` naming the target and why: Velero did not process the
request in time (and whether it looked at it at all), the request disappeared, the object store
answered with an HTTP error (404: the file does not exist, e.g. the restore never uploaded
results), the transfer failed, the artefact is larger than ``max_bytes`` or not valid gzip.

The presigned URL grants read access to backup data for its lifetime: it is a secret, and never
appears in an error message or a log line.

API requests per download: two (create, watch) plus one GET to the object store.
"""

from __future__ import annotations

import enum
import gzip
import json
import math
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests
import structlog

from lazarus.kube.client import CONNECTION_ERRORS, ApiError, Rest
from lazarus.kube.resources import DOWNLOAD_REQUESTS
from lazarus.kube.watch import decode_watch_stream

__all__ = [
    "DEFAULT_HTTP_TIMEOUT",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_PROCESS_TIMEOUT",
    "DOWNLOAD_LABEL",
    "ArtefactFormatError",
    "DownloadError",
    "TargetKind",
    "download",
    "download_json",
    "download_request_body",
]

log = structlog.get_logger(__name__)

DOWNLOAD_LABEL = "lazarus.io/download"
"""Label on every DownloadRequest Lazarus creates (value ``"true"``): finds orphans after a crash."""

# How long Velero may take to turn a request into a URL. Its controller answers a new request in
# well under a second when healthy; 30 s covers a busy or just-restarted server without letting a
# reconcile hang on a Velero that is down.
DEFAULT_PROCESS_TIMEOUT = 30.0
# (connect, read) timeouts for the object-store GET: the read timeout is per socket read, not the
# whole transfer, so large artefacts are fine while a stalled store is abandoned.
DEFAULT_HTTP_TIMEOUT = (5.0, 60.0)
# Upper bound on the decompressed artefact held in memory (the operator's RSS budget is small).
# A resource list of 10,000 objects is well under 1 MiB; results and logs are bounded by this.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

_WATCH_READ_MARGIN = 5.0  # seconds beyond the server-side watch timeout before a read gives up
_RECONNECT_DELAY = 0.2  # first pause before re-opening a watch that broke (doubles, bounded by the deadline)
_CHUNK = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_PROCESSED = "Processed"


class TargetKind(enum.StrEnum):
    """``DownloadRequest.spec.target.kind`` (``DownloadTargetKind`` in Velero's
    ``pkg/apis/velero/v1/download_request_types.go``, v1.17)."""

    BACKUP_LOG = "BackupLog"
    BACKUP_CONTENTS = "BackupContents"
    BACKUP_VOLUME_SNAPSHOTS = "BackupVolumeSnapshots"
    BACKUP_ITEM_OPERATIONS = "BackupItemOperations"
    BACKUP_RESOURCE_LIST = "BackupResourceList"
    BACKUP_RESULTS = "BackupResults"
    RESTORE_LOG = "RestoreLog"
    RESTORE_RESULTS = "RestoreResults"
    RESTORE_RESOURCE_LIST = "RestoreResourceList"
    RESTORE_ITEM_OPERATIONS = "RestoreItemOperations"
    CSI_BACKUP_VOLUME_SNAPSHOTS = "CSIBackupVolumeSnapshots"
    CSI_BACKUP_VOLUME_SNAPSHOT_CONTENTS = "CSIBackupVolumeSnapshotContents"
    BACKUP_VOLUME_INFOS = "BackupVolumeInfos"
    RESTORE_VOLUME_INFO = "RestoreVolumeInfo"


class DownloadError(Exception):
    """A Velero artefact could not be fetched (or used); the message says which one and why.

    ``kind``/``name`` identify the target (e.g. ``BackupResourceList`` of backup ``nightly-1``);
    ``reason`` is the human-readable cause; ``http_status`` is the object store's answer when it
    gave one (404: the file does not exist). ``transient`` says whether trying again later may
    succeed (Velero slow or restarting, a connection or server error) — a controller requeues
    those — or not (the file does not exist, access denied, malformed or oversized content).
    """

    def __init__(
        self, kind: str, name: str, reason: str, http_status: int | None = None, *, transient: bool = False
    ) -> None:
        super().__init__(f"cannot download {kind} of {name!r}: {reason}")
        self.kind = kind
        self.name = name
        self.reason = reason
        self.http_status = http_status
        self.transient = transient

    @property
    def not_found(self) -> bool:
        """Whether the object store said the file does not exist."""
        return self.http_status == 404


class ArtefactFormatError(DownloadError):
    """The artefact was downloaded but is not in the format Velero writes (corrupt or unexpected).

    A ``DownloadError`` so that callers handle "cannot read the backup's contents" in one place.
    """


@dataclass(frozen=True)
class _Wait:
    """What one watch learnt: the URL, or the last status and resourceVersion seen."""

    url: str | None
    status: dict[str, Any]
    resource_version: str


def download_request_body(name: str, namespace: str, kind: str, target_name: str) -> dict[str, Any]:
    """The ``DownloadRequest`` object for ``kind`` of ``target_name`` (a backup or restore name)."""
    return {
        "apiVersion": DOWNLOAD_REQUESTS.api_version,
        "kind": DOWNLOAD_REQUESTS.kind,
        "metadata": {"name": name, "namespace": namespace, "labels": {DOWNLOAD_LABEL: "true"}},
        "spec": {"target": {"kind": str(kind), "name": target_name}},
    }


def download(
    rest: Rest,
    kind: TargetKind | str,
    name: str,
    velero_namespace: str,
    *,
    timeout: float = DEFAULT_PROCESS_TIMEOUT,
    http_timeout: tuple[float, float] = DEFAULT_HTTP_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    http: requests.Session | None = None,
    verify: bool | str = True,
    clock: Callable[[], float] = time.monotonic,
) -> bytes:
    """Return artefact ``kind`` of backup/restore ``name`` (see the module docstring).

    The bytes are decompressed (JSON or log text), except for ``BackupContents`` (the backup's
    ``.tar.gz`` as stored). ``timeout`` bounds the wait for Velero to process the request;
    ``http_timeout`` the object-store transfer; ``max_bytes`` the (decompressed) size.
    ``verify`` is passed to ``requests`` (a CA bundle path for an object store with a private CA).
    Raises ``DownloadError``; API errors creating the request raise ``DownloadError`` too.
    """
    kind = str(kind)
    request_name = f"lazarus-{uuid.uuid4().hex[:16]}"
    collection = DOWNLOAD_REQUESTS.collection_path(velero_namespace)
    body = download_request_body(request_name, velero_namespace, kind, name)
    try:
        created = rest.request("POST", collection, body=body)
    except ApiError as exc:
        raise DownloadError(kind, name, f"cannot create DownloadRequest: {exc}", transient=exc.transient) from exc
    except CONNECTION_ERRORS as exc:
        raise DownloadError(kind, name, f"cannot create DownloadRequest: {exc!r}", transient=True) from exc
    try:
        url = _wait_for_url(rest, collection, created, kind, name, timeout, clock)
    except BaseException:
        # Not processed: Velero never set its expiration, so nothing would remove it but us.
        _delete_quietly(rest, f"{collection}/{request_name}")
        raise
    # Processed: Velero deletes the request itself once its URL expires (persistence.DownloadURLTTL,
    # 10 minutes), so deleting it here would only cost a request.
    return _fetch(url, kind, name, http_timeout, max_bytes, http, verify)


def download_json(rest: Rest, kind: TargetKind | str, name: str, velero_namespace: str, **options: Any) -> Any:
    """``download`` and parse the (decompressed) bytes as JSON; ``ArtefactFormatError`` if not JSON."""
    data = download(rest, kind, name, velero_namespace, **options)
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ArtefactFormatError(str(kind), name, f"not valid JSON: {exc}") from exc


# ----------------------------------------------------------------------------- waiting for Velero


def _wait_for_url(
    rest: Rest,
    collection: str,
    created: dict[str, Any],
    kind: str,
    name: str,
    timeout: float,
    clock: Callable[[], float],
) -> str:
    """Watch the created request until Velero has processed it; return its download URL."""
    request_name = created["metadata"]["name"]
    last_status: dict[str, Any] = created.get("status") or {}
    url = _processed_url(last_status)
    if url:
        return url
    resource_version = str(created["metadata"].get("resourceVersion", ""))
    deadline = clock() + timeout
    delay = _RECONNECT_DELAY
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            raise DownloadError(kind, name, _timeout_reason(request_name, timeout, last_status), transient=True)
        try:
            wait = _watch_once(rest, collection, request_name, resource_version, remaining, kind, name)
        except _Expired:
            # The resourceVersion fell out of the watch cache: read the object and go on from it.
            current = _get(rest, f"{collection}/{request_name}", kind, name)
            last_status = current.get("status") or {}
            url = _processed_url(last_status)
            if url:
                return url
            resource_version = str(current["metadata"].get("resourceVersion", ""))
            continue
        except CONNECTION_ERRORS as exc:
            # A broken or timed-out watch: re-open it from the last resourceVersion while time is left.
            log.debug("download request watch broke", request=request_name, error=repr(exc))
            time.sleep(min(delay, max(deadline - clock(), 0.0)))
            delay *= 2
            continue
        if wait.url:
            return wait.url
        last_status = wait.status or last_status
        resource_version = wait.resource_version or resource_version


class _Expired(Exception):
    """The watch's resourceVersion is too old (410): re-read the object."""


def _watch_once(
    rest: Rest, collection: str, request_name: str, resource_version: str, remaining: float, kind: str, name: str
) -> _Wait:
    """One WATCH of the request until it is processed or the server ends the watch."""
    seconds = max(1, math.ceil(remaining))
    params = [
        ("watch", "true"),
        ("fieldSelector", f"metadata.name={request_name}"),
        ("resourceVersion", resource_version),
        ("timeoutSeconds", str(seconds)),
    ]
    try:
        response = rest.open("GET", collection, query=params, timeout=(5.0, seconds + _WATCH_READ_MARGIN))
    except ApiError as exc:
        if exc.expired:
            raise _Expired() from exc
        raise DownloadError(
            kind, name, f"cannot watch DownloadRequest {request_name}: {exc}", transient=exc.transient
        ) from exc
    status: dict[str, Any] = {}
    last_rv = ""
    finished = False
    try:
        for event in decode_watch_stream(response.stream(_CHUNK)):
            obj = event.object
            if event.type == "ERROR":
                error = ApiError.from_status(obj)
                if error.expired:
                    raise _Expired()
                raise DownloadError(
                    kind, name, f"watch of DownloadRequest {request_name} failed: {error}", transient=error.transient
                )
            if event.type == "DELETED":
                raise DownloadError(
                    kind, name, f"DownloadRequest {request_name} was deleted before Velero processed it", transient=True
                )
            last_rv = str((obj.get("metadata") or {}).get("resourceVersion", "")) or last_rv
            if event.type == "BOOKMARK":
                continue
            status = obj.get("status") or {}
            url = _processed_url(status)
            if url:
                return _Wait(url, status, last_rv)
        finished = True
    finally:
        if finished:
            response.release_conn()
        else:
            # Leaving a live watch: close the connection rather than return it to the pool unread.
            response.close()
            response.release_conn()
    return _Wait(None, status, last_rv)


def _processed_url(status: dict[str, Any]) -> str | None:
    url = status.get("downloadURL")
    return str(url) if status.get("phase") == _PROCESSED and url else None


def _timeout_reason(request_name: str, timeout: float, status: dict[str, Any]) -> str:
    """Why a request timed out, as far as its status tells."""
    if status.get("phase") == _PROCESSED:
        return f"Velero processed DownloadRequest {request_name} but gave no download URL within {timeout:.0f}s"
    if status.get("expiration"):
        # Velero's controller sets the expiration whenever it looks at a new request, also when it
        # cannot find the backup/restore or its storage location (download_request_controller.go).
        return (
            f"Velero saw DownloadRequest {request_name} but produced no URL within {timeout:.0f}s: does the "
            "backup/restore exist, and is its backup storage location available?"
        )
    return f"Velero never processed DownloadRequest {request_name} within {timeout:.0f}s: is the Velero server running?"


def _get(rest: Rest, path: str, kind: str, name: str) -> dict[str, Any]:
    try:
        return rest.request("GET", path)
    except ApiError as exc:
        if exc.not_found:
            raise DownloadError(
                kind, name, "the DownloadRequest disappeared before Velero processed it", transient=True
            ) from exc
        raise DownloadError(kind, name, f"cannot read the DownloadRequest: {exc}", transient=exc.transient) from exc


def _delete_quietly(rest: Rest, path: str) -> None:
    """Delete the request; failures only log (Velero deletes expired requests itself)."""
    try:
        rest.request("DELETE", path)
    except ApiError as exc:
        if not exc.not_found:
            log.info("could not delete download request", path=path, error=str(exc))
    except CONNECTION_ERRORS as exc:
        log.info("could not delete download request", path=path, error=repr(exc))


# ----------------------------------------------------------------------------- the object store


def _fetch(
    url: str,
    kind: str,
    name: str,
    http_timeout: tuple[float, float],
    max_bytes: int,
    http: requests.Session | None,
    verify: bool | str,
) -> bytes:
    """GET the presigned URL and return the artefact, gunzipped unless it is ``BackupContents``."""
    getter = http if http is not None else requests
    try:
        response = getter.get(url, timeout=http_timeout, stream=True, verify=verify)
    except requests.RequestException as exc:
        # The exception text may include the URL: name only its type and the host-free reason.
        raise DownloadError(kind, name, f"object store request failed: {type(exc).__name__}", transient=True) from None
    try:
        if response.status_code != 200:
            detail = _error_detail(response)
            status = response.status_code
            raise DownloadError(
                kind,
                name,
                f"object store answered HTTP {status}{detail}",
                status,
                transient=status == 429 or status >= 500,
            )
        chunks = response.iter_content(_CHUNK)
        if kind == TargetKind.BACKUP_CONTENTS:
            return _read_limited(chunks, kind, name, max_bytes)
        return _gunzip(chunks, kind, name, max_bytes)
    except requests.RequestException as exc:
        raise DownloadError(kind, name, f"object store transfer failed: {type(exc).__name__}", transient=True) from None
    finally:
        response.close()


def _error_detail(response: requests.Response) -> str:
    """The S3 error code of an error answer (``NoSuchKey``, ``AccessDenied``, ...), if any."""
    head = bytearray()
    try:
        for chunk in response.iter_content(1024):
            head += chunk
            if len(head) >= 2048:
                break
    except (requests.RequestException, OSError):
        pass  # best effort: the status code is the error
    text = head.decode("utf-8", "replace")
    start, end = text.find("<Code>"), text.find("</Code>")
    return f" ({text[start + 6 : end]})" if 0 <= start < end else ""


def _read_limited(chunks: Iterator[bytes], kind: str, name: str, max_bytes: int) -> bytes:
    out = bytearray()
    for chunk in chunks:
        out += chunk
        if len(out) > max_bytes:
            raise DownloadError(kind, name, f"artefact larger than {max_bytes} bytes")
    return bytes(out)


def _gunzip(chunks: Iterator[bytes], kind: str, name: str, max_bytes: int) -> bytes:
    """Decompress a gzip stream, refusing output beyond ``max_bytes``.

    Data that is not gzip (an object store that already decoded a ``Content-Encoding: gzip``
    answer) is returned as is.
    """
    iterator = iter(chunks)
    first = b""
    for chunk in iterator:
        if chunk:
            first = chunk
            break
    if not first.startswith(_GZIP_MAGIC):
        rest = _read_limited(iterator, kind, name, max_bytes)
        if len(first) + len(rest) > max_bytes:
            raise DownloadError(kind, name, f"artefact larger than {max_bytes} bytes")
        return first + rest
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    try:
        for chunk in _prepend(first, iterator):
            out += decompressor.decompress(chunk, max_bytes + 1 - len(out))
            if len(out) > max_bytes or decompressor.unconsumed_tail:
                raise DownloadError(kind, name, f"artefact larger than {max_bytes} bytes when decompressed")
            if decompressor.eof:
                break
        out += decompressor.flush()
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise ArtefactFormatError(kind, name, f"not valid gzip: {exc}") from exc
    if not decompressor.eof:
        raise ArtefactFormatError(kind, name, "gzip stream is truncated")
    if len(out) > max_bytes:
        raise DownloadError(kind, name, f"artefact larger than {max_bytes} bytes when decompressed")
    return bytes(out)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest
