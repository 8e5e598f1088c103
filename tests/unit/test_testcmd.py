"""``lazarus test``: the spec file, the object it creates, and how the result reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from lazarus import testcmd
from lazarus.testcmd import describe_result, load_spec


def test_a_spec_file_is_a_spec_or_a_whole_test_with_its_labels(tmp_path: Path) -> None:
    bare = tmp_path / "spec.yaml"
    bare.write_text("healthChecks: {timeout: 60}\n")
    assert load_spec(str(bare)) == ({"healthChecks": {"timeout": 60}}, {})
    whole = tmp_path / "test.yaml"
    whole.write_text(
        "apiVersion: lazarus.io/v1alpha1\nkind: LazarusRestoreTest\n"
        "metadata: {name: x, labels: {lazarus.io/schedule-name: nightly}}\nspec: {ttl: 1h}\n"
    )
    assert load_spec(str(whole)) == ({"ttl": "1h"}, {"lazarus.io/schedule-name": "nightly"})
    assert load_spec(None) == ({}, {})
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n")
    with pytest.raises(ValueError, match="expected a mapping, got list"):
        load_spec(str(listed))


def test_the_created_test_keeps_the_labels_and_marks_the_cli() -> None:
    body = testcmd.test_body("shop-1", "ops", {"ttl": "1h"}, {"lazarus.io/schedule-name": "nightly"})
    assert body["metadata"]["labels"] == {"lazarus.io/schedule-name": "nightly", "lazarus.io/created-by": "cli"}
    assert body["metadata"]["generateName"].startswith("shop-1-")
    assert body["spec"] == {"ttl": "1h", "backupName": "shop-1"}


def test_the_result_names_its_baseline_comparison_and_cost() -> None:
    status = {
        "phase": "Failed",
        "reason": "BaselineDrift",
        "message": "drifted",
        "result": {"rto": 12.34, "rpo": None, "resourcesRecovered": 7},
        "baseline": {"result": "Drifted", "message": "database/order-count: value 250 → 150 (-40%)"},
        "cost": {"estimate": 0.00012, "currency": "USD", "cpuCoreSeconds": 3.5, "memoryGiBSeconds": 1.75,
                 "storageGiBSeconds": 0},
    }  # fmt: skip
    lines = describe_result({"status": status})
    assert lines[0] == "result: Failed (BaselineDrift): drifted"
    assert "RTO: 12.3s   RPO: n/a" in lines
    assert "baseline: Drifted: database/order-count: value 250 → 150 (-40%)" in lines
    assert "cost: 0.000120 USD (3.5 CPU core-seconds, 1.75 memory GiB-seconds, 0 storage GiB-seconds)" in lines
    status["baseline"] = {"result": "NoBaseline", "message": "first test", "recorded": True}
    assert "baseline: NoBaseline: first test (now the baseline)" in describe_result({"status": status})
