"""Unit tests of lazarus.velero.backup_contents: the BackupResourceList format of Velero v1.17."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from lazarus.velero import backup_contents
from lazarus.velero.backup_contents import (
    GroupVersionKind,
    backup_resource_list,
    parse_backup_resource_list,
    parse_kind_key,
)
from lazarus.velero.downloads import ArtefactFormatError, DownloadError

# Shaped like Velero's pkg/backup/request_test.go (TestRequest_BackupResourceList) plus the
# Namespace entries a namespace backup holds.
RESOURCE_LIST = {
    "apps/v1/Deployment": ["default/my-deploy", "shop/web"],
    "v1/Pod": ["ns1/pod1", "ns2/pod2"],
    "v1/PersistentVolume": ["my-pv"],
    "v1/Namespace": ["shop", "empty"],
    "rbac.authorization.k8s.io/v1/ClusterRole": ["reader"],
    "gateway.networking.k8s.io/v1/HTTPRoute": ["shop/front"],
}


def test_parse_kind_key() -> None:
    assert parse_kind_key("apps/v1/Deployment") == GroupVersionKind("apps", "v1", "Deployment")
    assert parse_kind_key("v1/Pod") == GroupVersionKind("", "v1", "Pod")
    assert parse_kind_key("gateway.networking.k8s.io/v1/HTTPRoute").api_version == "gateway.networking.k8s.io/v1"
    assert parse_kind_key("v1/Pod").api_version == "v1"
    for bad in ("Pod", "a/b/c/d", "/v1/Pod", "v1/"):
        with pytest.raises(ValueError):
            parse_kind_key(bad)


def test_parse_resource_list() -> None:
    contents = parse_backup_resource_list(json.dumps(RESOURCE_LIST).encode())

    assert contents.items["apps/v1/Deployment"] == ("default/my-deploy", "shop/web")
    assert contents.namespaces == frozenset({"default", "shop", "ns1", "ns2", "empty"})
    assert dict(contents.cluster_scoped) == {
        "v1/PersistentVolume": ("my-pv",),
        "rbac.authorization.k8s.io/v1/ClusterRole": ("reader",),
    }
    assert contents.counts["v1/Pod"] == 2 and contents.counts["v1/Namespace"] == 2
    assert contents.total == 9
    kinds = [k.kind for k in contents.kinds()]
    assert kinds == ["Deployment", "HTTPRoute", "ClusterRole", "Namespace", "PersistentVolume", "Pod"]


def test_contents_are_read_only() -> None:
    contents = parse_backup_resource_list(json.dumps(RESOURCE_LIST))
    with pytest.raises(TypeError):
        contents.items["v1/Pod"] = ()  # type: ignore[index]
    with pytest.raises(AttributeError):
        contents.namespaces = frozenset()  # type: ignore[misc]


def test_empty_backup() -> None:
    for data in ("{}", "null"):
        contents = parse_backup_resource_list(data)
        assert contents.total == 0 and contents.namespaces == frozenset() and not contents.items


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        "[]",
        json.dumps({"Deployment": ["a/b"]}),
        json.dumps({"v1/Pod": "a/b"}),
        json.dumps({"v1/Pod": [1]}),
        json.dumps({"v1/Pod": ["a/b/c"]}),
        json.dumps({"v1/Pod": ["/b"]}),
    ],
)
def test_malformed_lists_are_format_errors(data: str) -> None:
    with pytest.raises(ArtefactFormatError) as info:
        parse_backup_resource_list(data, "b1")
    assert isinstance(info.value, DownloadError)  # callers catch one exception type
    assert info.value.kind == "BackupResourceList" and info.value.name == "b1"


def test_backup_resource_list_downloads_the_right_target(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_download(rest: Any, kind: str, name: str, namespace: str, **options: Any) -> bytes:
        seen.update(kind=kind, name=name, namespace=namespace, options=options)
        return gzip.decompress(gzip.compress(json.dumps(RESOURCE_LIST).encode()))

    monkeypatch.setattr(backup_contents, "download", fake_download)
    contents = backup_resource_list(object(), "b1", "velero", timeout=5)  # type: ignore[arg-type]
    assert seen == {"kind": "BackupResourceList", "name": "b1", "namespace": "velero", "options": {"timeout": 5}}
    assert "shop" in contents.namespaces
