"""Unit tests of lazarus.velero.restore_results: the RestoreResults format of Velero v1.17."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lazarus.velero import restore_results as module
from lazarus.velero.downloads import ArtefactFormatError, DownloadError
from lazarus.velero.restore_results import RestoreResults, parse_restore_results, restore_results

# map[string]results.Result{"warnings": ..., "errors": ...} as putResults encodes it.
RESULTS = {
    "errors": {
        "velero": ["error getting backup store"],
        "cluster": ["error restoring persistentvolumes/pv-1: forbidden"],
        "namespaces": {
            "sbx-b": ["error restoring services/sbx-b/web: invalid"],
            "sbx-a": ["error restoring configmaps/sbx-a/c: boom", "second"],
        },
    },
    "warnings": {
        "namespaces": {"sbx-a": ["could not restore, ConfigMap:kube-root-ca.crt already exists."]},
    },
}


def test_messages_are_flattened_with_their_scope_in_a_stable_order() -> None:
    results = parse_restore_results(json.dumps(RESULTS).encode())
    assert results.errors == [
        "velero: error getting backup store",
        "cluster: error restoring persistentvolumes/pv-1: forbidden",
        "namespace sbx-a: error restoring configmaps/sbx-a/c: boom",
        "namespace sbx-a: second",
        "namespace sbx-b: error restoring services/sbx-b/web: invalid",
    ]
    assert results.warnings == ["namespace sbx-a: could not restore, ConfigMap:kube-root-ca.crt already exists."]
    assert (len(results.errors), len(results.warnings)) == (5, 1)


def test_empty_results() -> None:
    # Every field of results.Result is omitempty: a clean restore uploads {"errors":{},"warnings":{}}.
    for data in ('{"errors": {}, "warnings": {}}', "{}", "null", '{"errors": null}'):
        assert parse_restore_results(data) == RestoreResults([], [])


def test_lists_concatenate_with_other_lists() -> None:
    results = parse_restore_results(json.dumps(RESULTS))
    combined = ["velero: failure"] + results.errors + [f"warning: {w}" for w in results.warnings]
    assert len(combined) == 7


@pytest.mark.parametrize(
    "data",
    [
        "{",
        "[]",
        json.dumps({"errors": []}),
        json.dumps({"errors": {"velero": "one"}}),
        json.dumps({"errors": {"namespaces": ["a"]}}),
        json.dumps({"warnings": {"namespaces": {"a": [1]}}}),
    ],
)
def test_malformed_results_are_format_errors(data: str) -> None:
    with pytest.raises(ArtefactFormatError) as info:
        parse_restore_results(data, "r1")
    assert isinstance(info.value, DownloadError)
    assert info.value.kind == "RestoreResults" and info.value.name == "r1"


def test_restore_results_downloads_the_right_target(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_download(rest: Any, kind: str, name: str, namespace: str, **options: Any) -> bytes:
        seen.update(kind=kind, name=name, namespace=namespace)
        return json.dumps(RESULTS).encode()

    monkeypatch.setattr(module, "download", fake_download)
    results = restore_results(object(), "r1", "velero")  # type: ignore[arg-type]
    assert seen == {"kind": "RestoreResults", "name": "r1", "namespace": "velero"}
    assert len(results.errors) == 5
