"""Unit tests of lazarus.velero.downloads with a fake API (Rest) and a fake object store."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from lazarus.kube.client import ApiError
from lazarus.velero.downloads import (
    DOWNLOAD_LABEL,
    ArtefactFormatError,
    DownloadError,
    TargetKind,
    download,
    download_json,
    download_request_body,
)

COLLECTION = "/apis/velero.io/v1/namespaces/velero/downloadrequests"
SECRET_URL = "http://s3.local/bucket/backups/b1/b1-resource-list.json.gz?X-Amz-Signature=secret"


def event(kind: str, status: dict[str, Any] | None = None, rv: str = "11") -> bytes:
    obj = {"metadata": {"name": "x", "resourceVersion": rv}, "status": status or {}}
    return (json.dumps({"type": kind, "object": obj}) + "\n").encode()


PROCESSED = {"phase": "Processed", "downloadURL": SECRET_URL, "expiration": "2030-01-01T00:00:00Z"}


class FakeWatchResponse:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.released = False
        self.closed = False

    def stream(self, amt: int) -> Iterator[bytes]:
        yield from self.chunks

    def release_conn(self) -> None:
        self.released = True

    def close(self) -> None:
        self.closed = True


class FakeRest:
    """Answers POST with the created object, watches with scripted streams, GET/DELETE as told."""

    def __init__(self, watches: list[list[bytes] | ApiError], created_status: dict[str, Any] | None = None) -> None:
        self.watches = list(watches)
        self.created_status = created_status or {}
        self.calls: list[tuple[str, str, Any]] = []
        self.get_answer: dict[str, Any] = {}
        self.post_error: ApiError | None = None
        self.responses: list[FakeWatchResponse] = []

    def request(self, method: str, path: str, *, query: Any = None, body: Any = None, **_: Any) -> dict[str, Any]:
        self.calls.append((method, path, body if method == "POST" else query))
        if method == "POST":
            if self.post_error:
                raise self.post_error
            created = json.loads(json.dumps(body))
            created["metadata"]["resourceVersion"] = "10"
            created["status"] = self.created_status
            return dict(created)
        if method == "GET":
            return self.get_answer
        return {}

    def open(self, method: str, path: str, *, query: Any = None, **_: Any) -> FakeWatchResponse:
        self.calls.append((method, path, dict(query)))
        script = self.watches.pop(0)
        if isinstance(script, ApiError):
            raise script
        response = FakeWatchResponse(script)
        self.responses.append(response)
        return response

    def methods(self) -> list[str]:
        return [call[0] for call in self.calls]


class FakeHttpResponse:
    def __init__(self, status: int, body: bytes) -> None:
        self.status_code = status
        self.body = body
        self.closed = False

    def iter_content(self, size: int) -> Iterator[bytes]:
        for i in range(0, len(self.body), 7):  # small chunks exercise the streaming paths
            yield self.body[i : i + 7]

    def close(self) -> None:
        self.closed = True


class FakeHttp:
    def __init__(self, status: int = 200, body: bytes = b"", error: Exception | None = None) -> None:
        self.response = FakeHttpResponse(status, body)
        self.error = error
        self.urls: list[str] = []
        self.kwargs: dict[str, Any] = {}

    def get(self, url: str, **kwargs: Any) -> FakeHttpResponse:
        self.urls.append(url)
        self.kwargs = kwargs
        if self.error:
            raise self.error
        return self.response


def run(rest: FakeRest, http: FakeHttp, kind: str = TargetKind.BACKUP_RESOURCE_LIST, **kw: Any) -> bytes:
    return download(rest, kind, "b1", "velero", http=http, **kw)  # type: ignore[arg-type]


def test_request_body_is_a_labelled_download_request() -> None:
    body = download_request_body("lazarus-abc", "velero", TargetKind.RESTORE_RESULTS, "r1")
    assert body == {
        "apiVersion": "velero.io/v1",
        "kind": "DownloadRequest",
        "metadata": {"name": "lazarus-abc", "namespace": "velero", "labels": {DOWNLOAD_LABEL: "true"}},
        "spec": {"target": {"kind": "RestoreResults", "name": "r1"}},
    }


def test_download_creates_watches_fetches_gunzips_and_leaves_deletion_to_velero() -> None:
    rest = FakeRest([[event("MODIFIED", {"expiration": "x"}), event("MODIFIED", PROCESSED, rv="12")]])
    http = FakeHttp(body=gzip.compress(b'{"v1/Pod": ["ns/p"]}\n'))

    assert run(rest, http) == b'{"v1/Pod": ["ns/p"]}\n'

    post, watch = rest.calls  # processed: Velero deletes it when its URL expires
    name = post[2]["metadata"]["name"]
    assert post[:2] == ("POST", COLLECTION) and name.startswith("lazarus-") and len(name) > len("lazarus-") + 8
    assert post[2]["spec"]["target"] == {"kind": "BackupResourceList", "name": "b1"}
    assert watch[0:2] == ("GET", COLLECTION)
    assert watch[2]["watch"] == "true"
    assert watch[2]["fieldSelector"] == f"metadata.name={name}"
    assert watch[2]["resourceVersion"] == "10"  # from the creation: no update can be missed
    assert int(watch[2]["timeoutSeconds"]) >= 1
    assert http.urls == [SECRET_URL]
    assert http.kwargs["timeout"] and http.kwargs["stream"] is True
    # The watch was left before its end: its connection is closed, not returned to the pool unread.
    assert rest.responses[0].closed and http.response.closed


def test_already_processed_at_creation_needs_no_watch() -> None:
    rest = FakeRest([], created_status=PROCESSED)
    assert run(rest, FakeHttp(body=gzip.compress(b"log"))) == b"log"
    assert rest.methods() == ["POST"]


def test_backup_contents_are_returned_as_stored() -> None:
    tarball = gzip.compress(b"tar bytes")
    rest = FakeRest([[event("MODIFIED", PROCESSED)]])
    assert run(rest, FakeHttp(body=tarball), kind=TargetKind.BACKUP_CONTENTS) == tarball


def test_uncompressed_answer_is_returned_as_is() -> None:
    rest = FakeRest([[event("MODIFIED", PROCESSED)]])
    assert run(rest, FakeHttp(body=b'{"errors": {}}')) == b'{"errors": {}}'


def test_watch_that_ends_is_reopened_from_the_last_resource_version() -> None:
    rest = FakeRest([[event("MODIFIED", {"expiration": "x"}, rv="15")], [event("MODIFIED", PROCESSED, rv="16")]])
    assert run(rest, FakeHttp(body=gzip.compress(b"ok"))) == b"ok"
    watches = [call for call in rest.calls if call[0] == "GET"]
    assert [w[2]["resourceVersion"] for w in watches] == ["10", "15"]
    assert rest.responses[0].released  # a watch the server ended goes back to the pool


def test_expired_resource_version_rereads_the_object() -> None:
    gone = ApiError(410, "Expired", "too old resource version")
    rest = FakeRest([gone])
    rest.get_answer = {"metadata": {"name": "x", "resourceVersion": "30"}, "status": PROCESSED}
    assert run(rest, FakeHttp(body=gzip.compress(b"ok"))) == b"ok"
    assert rest.methods() == ["POST", "GET", "GET"]


def test_deleted_request_fails_and_is_deleted_again_to_be_sure() -> None:
    rest = FakeRest([[event("DELETED")]])
    with pytest.raises(DownloadError, match="deleted before Velero processed it") as info:
        run(rest, FakeHttp())
    assert info.value.kind == "BackupResourceList" and info.value.name == "b1"
    assert rest.methods()[-1] == "DELETE"


def test_watch_error_event_fails() -> None:
    status = {"kind": "Status", "code": 500, "reason": "InternalError", "message": "boom"}
    rest = FakeRest([[(json.dumps({"type": "ERROR", "object": status}) + "\n").encode()]])
    with pytest.raises(DownloadError, match="boom"):
        run(rest, FakeHttp())
    assert rest.methods()[-1] == "DELETE"


class StepClock:
    """A clock that advances one second per reading."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_timeout_when_velero_never_looks_at_the_request() -> None:
    rest = FakeRest([[], [], [], [], []])
    with pytest.raises(DownloadError, match="never processed .* is the Velero server running") as info:
        run(rest, FakeHttp(), timeout=3, clock=StepClock())
    assert info.value.transient
    assert rest.methods()[-1] == "DELETE"


def test_timeout_when_velero_saw_it_but_gave_no_url() -> None:
    rest = FakeRest([[event("MODIFIED", {"expiration": "2030-01-01T00:00:00Z"})], [], [], [], []])
    with pytest.raises(DownloadError, match="saw DownloadRequest .* does the backup/restore exist"):
        run(rest, FakeHttp(), timeout=3, clock=StepClock())


def test_object_store_404_is_not_found_and_names_the_s3_code() -> None:
    rest = FakeRest([[event("MODIFIED", PROCESSED)]])
    http = FakeHttp(status=404, body=b"<Error><Code>NoSuchKey</Code><Message>nope</Message></Error>")
    with pytest.raises(DownloadError) as info:
        run(rest, http)
    assert info.value.not_found and info.value.http_status == 404 and not info.value.transient
    assert "HTTP 404 (NoSuchKey)" in str(info.value)
    assert "DELETE" not in rest.methods()  # processed: Velero removes it after its URL expires


def test_presigned_url_never_appears_in_errors() -> None:
    rest = FakeRest([[event("MODIFIED", PROCESSED)]])
    http = FakeHttp(error=requests.ConnectionError(f"cannot connect to {SECRET_URL}"))
    with pytest.raises(DownloadError) as info:
        run(rest, http)
    assert "Signature" not in str(info.value) and "s3.local" not in str(info.value)
    assert info.value.transient
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_size_limit_applies_to_decompressed_data() -> None:
    rest = FakeRest([[event("MODIFIED", PROCESSED)]])
    with pytest.raises(DownloadError, match="larger than 1000 bytes"):
        run(rest, FakeHttp(body=gzip.compress(b"x" * 5000)), max_bytes=1000)


def test_truncated_gzip_is_a_format_error() -> None:
    rest = FakeRest([[event("MODIFIED", PROCESSED)]])
    with pytest.raises(ArtefactFormatError, match="truncated") as info:
        run(rest, FakeHttp(body=gzip.compress(b"x" * 5000)[:-12]))
    assert not info.value.transient


def test_create_failure_is_a_download_error_without_delete() -> None:
    rest = FakeRest([])
    rest.post_error = ApiError(403, "Forbidden", "no rights")
    with pytest.raises(DownloadError, match="cannot create DownloadRequest: 403 Forbidden") as info:
        run(rest, FakeHttp())
    assert rest.methods() == ["POST"] and not info.value.transient


def test_object_store_server_errors_are_transient() -> None:
    rest = FakeRest([[event("MODIFIED", PROCESSED)]])
    with pytest.raises(DownloadError) as info:
        run(rest, FakeHttp(status=503, body=b"<Error><Code>SlowDown</Code></Error>"))
    assert info.value.transient and info.value.http_status == 503 and "(SlowDown)" in str(info.value)


def test_download_json_parses_or_raises_format_error() -> None:
    rest = FakeRest([[event("MODIFIED", PROCESSED)]])
    assert download_json(rest, TargetKind.RESTORE_RESULTS, "r", "velero", http=FakeHttp(body=b"[1]")) == [1]  # type: ignore[arg-type]
    rest = FakeRest([[event("MODIFIED", PROCESSED)]])
    with pytest.raises(ArtefactFormatError, match="not valid JSON"):
        download_json(rest, TargetKind.RESTORE_RESULTS, "r", "velero", http=FakeHttp(body=b"{"))  # type: ignore[arg-type]


def test_target_kinds_match_velero_enum() -> None:
    # The +kubebuilder:validation:Enum of DownloadTargetKind in Velero v1.17.
    velero_enum = (
        "BackupLog;BackupContents;BackupVolumeSnapshots;BackupItemOperations;BackupResourceList;BackupResults;"
        "RestoreLog;RestoreResults;RestoreResourceList;RestoreItemOperations;CSIBackupVolumeSnapshots;"
        "CSIBackupVolumeSnapshotContents;BackupVolumeInfos;RestoreVolumeInfo"
    )
    assert {k.value for k in TargetKind} == set(velero_enum.split(";"))
