"""Baselines: query figures as data, the comparisons that flag drift, and the entry points with a
store faked at the REST level (the real API server round trip is an integration test)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lazarus.baseline import BaselineStore, compare_with_baseline, record_baseline
from lazarus.baseline.compare import Policy, compare
from lazarus.baseline.snapshot import Snapshot, snapshot_of
from lazarus.baseline.store import HISTORY_KEY, MAX_HISTORY, SNAPSHOT_KEY, configmap_name
from lazarus.checks.expectations import QueryResult, collect, figures
from lazarus.checks.results import MAX_NAMES
from lazarus.kube.client import ApiError

SOURCE = "schedule/nightly"
COLUMNS = ["id", "customer", "total", "created_at"]


def health(count: float, columns: list[str] = COLUMNS, rows: int = 3) -> dict[str, Any]:
    """status.healthChecks of the demo's checks: a count, a catalog query, a plain select."""
    return {
        "phase": "Completed",
        "databases": [
            {
                "name": "shop",
                "status": "Passed",
                "checks": [
                    {"name": "count", "status": "Passed", "rows": 1, "value": count, "columns": ["count"]},
                    {"name": "columns", "status": "Passed", "rows": len(columns), "columns": ["column_name"],
                     "names": sorted(columns)},
                    {"name": "recent", "status": "Passed", "rows": rows, "columns": columns},
                    {"name": "broken", "status": "Error", "result": "query failed"},
                ],
            }
        ],
    }  # fmt: skip


def a_test(
    uid: str = "u-1",
    kinds: dict[str, int] | None = None,
    *,
    count: float = 5432,
    columns: list[str] = COLUMNS,
    rto: float = 40.0,
    completed: str = "2026-11-29T12:00:00Z",
    **baseline: Any,
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ops", "name": f"t-{uid}", "uid": uid},
        "spec": {"backupName": f"bk-{uid}", "baseline": baseline},
        "status": {
            "phase": "Succeeded",
            "completionTime": completed,
            "parity": {"expected": kinds if kinds is not None else {"apps/Deployment": 2, "ConfigMap": 10}},
            "healthChecks": health(count, columns),
            "result": {"rto": rto},
        },
    }


def findings(current: dict[str, Any], baseline: dict[str, Any], **policy: Any) -> dict[str, str]:
    return {f.subject: f.message for f in compare(snapshot_of(current), (snapshot_of(baseline),), Policy(**policy))}


def test_query_figures_carry_values_rows_columns_and_names() -> None:
    count = figures({"sql": "SELECT count(*) FROM t"}, collect(["count"], [(5432,)]))
    assert count.to_status() == {"rows": 1, "value": 5432.0, "columns": ["count"]}
    catalog = figures({"expectedColumns": ["id"]}, collect(["column_name"], [("id",), ("total",), ("id",)]))
    assert catalog.names == ("id", "total") and catalog.value is None
    assert figures({}, collect(["column_name"], [("id",)])).names is None  # only catalog queries list names
    too_many = collect(["id"], [(i,) for i in range(MAX_NAMES + 1)])
    assert figures({"expectedColumns": ["1"]}, too_many).names is None
    assert figures({}, QueryResult(row_count=7, value=7, value_label="Count")).to_status() == {"rows": 7, "value": 7.0}
    assert figures({}, collect(["status"], [("paid",)])).value is None  # text is not a value


def test_a_fifty_percent_row_drop_is_flagged_and_a_ten_percent_one_is_not() -> None:
    dropped = {"databases/shop/count": "databases/shop/count: value 5432 → 2716 (-50%)"}
    assert findings(a_test(count=2716), a_test()) == dropped
    assert findings(a_test(count=4900), a_test()) == {}
    assert findings(a_test(count=4900), a_test(), max_drop_fraction=0.05) != {}
    assert findings(a_test(count=9000), a_test()) == {}  # growth is not drift


def test_a_dropped_column_is_flagged() -> None:
    found = findings(a_test(columns=["id", "customer", "created_at"]), a_test())
    assert found == {
        "databases/shop/columns": "databases/shop/columns: no longer lists total",
        "databases/shop/recent": "databases/shop/recent: columns gone: total",
    }


def test_a_removed_deployment_is_flagged() -> None:
    found = findings(a_test(kinds={"ConfigMap": 10}), a_test())
    assert found == {"apps/Deployment": "apps/Deployment: the backup held 2, now none"}
    assert findings(a_test(kinds={"apps/Deployment": 2, "ConfigMap": 4}), a_test()) == {
        "ConfigMap": "ConfigMap: 10 → 4 (-60%) items in the backup"
    }


def test_rto_growth_beyond_the_factor_is_flagged_unless_it_is_noise() -> None:
    assert findings(a_test(rto=130), a_test(rto=40)) == {"rto": "RTO 130s is 3.2x the baseline's 40s (allowed 2x)"}
    assert findings(a_test(rto=70), a_test(rto=40)) == {}  # under the factor
    assert findings(a_test(rto=25), a_test(rto=5)) == {}  # 5x, but only 20 s longer: noise
    assert findings(a_test(rto=130), a_test(rto=40), max_rto_growth_factor=4) == {}


def test_snapshots_round_trip_as_json() -> None:
    snapshot = snapshot_of(a_test())
    assert Snapshot.from_json(snapshot.to_json()) == snapshot
    assert set(snapshot.queries) == {"databases/shop/count", "databases/shop/columns", "databases/shop/recent"}
    with pytest.raises(ValueError, match="not a baseline snapshot"):
        Snapshot.from_json('{"test": 1}')


class FakeConfigMaps:
    """The ConfigMap REST calls of ``BaselineStore``, with resourceVersions and conflicts."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.version = 0

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        name = path.rsplit("/", 1)[-1]
        if method == "GET":
            if name not in self.objects:
                raise ApiError(404, "NotFound")
            return json.loads(json.dumps(self.objects[name]))
        if method == "DELETE":
            if self.objects.pop(name, None) is None:
                raise ApiError(404, "NotFound")
            return {}
        assert body is not None
        name = body["metadata"]["name"]
        if method == "POST" and name in self.objects:
            raise ApiError(409, "AlreadyExists")
        if method == "PUT" and self.objects[name]["metadata"]["resourceVersion"] != body["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict")
        self.version += 1
        self.objects[name] = {**body, "metadata": {**body["metadata"], "resourceVersion": str(self.version)}}
        return self.objects[name]


def decide(store: BaselineStore, finished: dict[str, Any], source: str = SOURCE) -> dict[str, Any]:
    """What the controller does: compare while deciding, record once the test ended."""
    status = finished["status"]
    rto = status["result"]["rto"]
    check = compare_with_baseline(store, finished, source, health_checks=status["healthChecks"], rto=rto)
    finished["status"]["baseline"] = check.status
    if check.fails_test:
        finished["status"]["phase"] = "Failed"
    finished["status"]["baseline"].update(record_baseline(store, finished, source).get("baseline", {}))
    return finished["status"]["baseline"]


def test_the_first_test_sets_the_baseline_and_says_so_then_the_next_is_compared() -> None:
    rest = FakeConfigMaps()
    store = BaselineStore(rest, "lazarus-system")  # type: ignore[arg-type]
    first = decide(store, a_test("u-1"))
    assert first["result"] == "NoBaseline" and "sets the baseline" in first["message"] and first["recorded"] is True
    assert first["configMap"] == f"lazarus-system/{configmap_name(SOURCE)}"
    stored = rest.objects[configmap_name(SOURCE)]
    assert stored["metadata"]["labels"] == {"lazarus.io/baseline": "true"}
    assert json.loads(stored["data"][SNAPSHOT_KEY])["backup"] == "bk-u-1"

    second = decide(store, a_test("u-2", completed="2026-11-30T12:00:00Z"))
    assert second["result"] == "Matched" and second["baselineBackup"] == "bk-u-1" and second["recorded"] is True
    assert json.loads(rest.objects[configmap_name(SOURCE)]["data"][SNAPSHOT_KEY])["backup"] == "bk-u-2"


def test_a_drifted_test_fails_and_keeps_the_last_good_baseline_until_reset() -> None:
    rest = FakeConfigMaps()
    store = BaselineStore(rest, "lazarus-system")  # type: ignore[arg-type]
    decide(store, a_test("u-1"))
    drifted = a_test("u-2", count=2716, completed="2026-11-30T12:00:00Z")
    status = decide(store, drifted)
    assert drifted["status"]["phase"] == "Failed" and status["result"] == "Drifted"
    assert status["findings"] == [
        {"type": "ValueDropped", "subject": "databases/shop/count",
         "message": "databases/shop/count: value 5432 → 2716 (-50%)"}
    ]  # fmt: skip
    assert "recorded" not in status
    assert decide(store, a_test("u-3", count=2716, completed="2026-12-01T12:00:00Z"))["result"] == "Drifted"
    assert store.reset(SOURCE) is True and store.reset(SOURCE) is False
    assert decide(store, a_test("u-4", count=2716, completed="2026-12-02T12:00:00Z"))["result"] == "NoBaseline"


def test_warn_lets_the_test_succeed_and_manual_and_disabled_tests_are_not_compared() -> None:
    rest = FakeConfigMaps()
    store = BaselineStore(rest, "lazarus-system")  # type: ignore[arg-type]
    decide(store, a_test("u-1"))
    warned = a_test("u-2", count=10, onDrift="Warn")
    check = compare_with_baseline(store, warned, SOURCE, health_checks=warned["status"]["healthChecks"], rto=40)
    assert check.drifted and not check.fails_test and check.message.startswith("drifted from the baseline")
    manual = compare_with_baseline(store, a_test("u-3"), "manual", health_checks={}, rto=1)
    assert manual.status["result"] == "NotApplicable"
    off = compare_with_baseline(store, a_test("u-4", enabled=False), SOURCE, health_checks={}, rto=1)
    assert off.status["result"] == "Disabled" and len(rest.objects) == 1


def test_an_older_test_never_replaces_a_newer_baseline() -> None:
    rest = FakeConfigMaps()
    store = BaselineStore(rest, "lazarus-system")  # type: ignore[arg-type]
    decide(store, a_test("u-2", completed="2026-11-30T12:00:00Z"))
    late = a_test("u-1", completed="2026-11-29T12:00:00Z")
    late["status"]["baseline"] = {"result": "Matched"}
    assert record_baseline(store, late, SOURCE) == {"baseline": {"recorded": False}}
    assert json.loads(rest.objects[configmap_name(SOURCE)]["data"][SNAPSHOT_KEY])["test_uid"] == "u-2"


def test_configmap_names_are_valid_and_distinct() -> None:
    assert configmap_name("schedule/nightly").startswith("lazarus-baseline-schedule-nightly-")
    assert configmap_name("policy/ops/shop") != configmap_name("policy/ops-shop")
    assert len(configmap_name("policy/" + "x" * 300)) <= 63


def day(n: int) -> str:
    return f"2026-12-{n:02d}T12:00:00Z"


def test_a_loss_spread_over_several_tests_adds_up_until_it_is_flagged() -> None:
    rest = FakeConfigMaps()
    store = BaselineStore(rest, "lazarus-system")  # type: ignore[arg-type]
    # 10 % fewer orders each day: never more than 20 % below the test before.
    results = [decide(store, a_test(f"u-{n}", count=count, completed=day(n)))
               for n, count in enumerate([1000, 900, 810, 729], start=1)]  # fmt: skip
    assert [r["result"] for r in results] == ["NoBaseline", "Matched", "Matched", "Drifted"]
    assert results[3]["findings"][0]["message"] == (
        "databases/shop/count: value 1000 → 729 (-27%) (from backup bk-u-1, the highest of the last 3 good tests)"
    )
    # With history 1 each test is compared with the one before only: nothing is flagged.
    store = BaselineStore(FakeConfigMaps(), "lazarus-system")  # type: ignore[arg-type]
    results = [decide(store, a_test(f"u-{n}", count=count, completed=day(n), history=1))
               for n, count in enumerate([1000, 900, 810, 729], start=1)]  # fmt: skip
    assert [r["result"] for r in results] == ["NoBaseline", "Matched", "Matched", "Matched"]


def test_the_history_window_ends_and_what_is_gone_is_compared_with_the_newest_only() -> None:
    window = tuple(snapshot_of(a_test(f"u-{n}", count=count)) for n, count in ((3, 800), (2, 900), (1, 1000)))
    current = snapshot_of(a_test("u-4", count=760))
    assert [f.message for f in compare(current, window, Policy())] == [
        "databases/shop/count: value 1000 → 760 (-24%) (from backup bk-u-1, the highest of the last 3 good tests)"
    ]
    assert compare(current, window, Policy(history=2)) == []  # 900 → 760 is -16 %
    # A column the oldest test had and the newest did not was accepted: not drift.
    older = snapshot_of(a_test("u-1", columns=[*COLUMNS, "legacy"]))
    assert compare(snapshot_of(a_test("u-3")), (snapshot_of(a_test("u-2")), older), Policy()) == []


def test_the_history_keeps_only_amounts_and_at_most_its_bound() -> None:
    rest = FakeConfigMaps()
    store = BaselineStore(rest, "lazarus-system")  # type: ignore[arg-type]
    for n in range(1, MAX_HISTORY + 5):
        decide(store, a_test(f"u-{n}", completed=f"2026-12-01T12:{n:02d}:00Z"))
    data = rest.objects[configmap_name(SOURCE)]["data"]
    history = json.loads(data[HISTORY_KEY])
    assert len(history) == MAX_HISTORY - 1 and history[0]["test_uid"] == f"u-{MAX_HISTORY + 3}"
    assert history[0]["queries"]["databases/shop/columns"] == {"rows": 4}  # names and columns left out
    assert "names" in json.loads(data[SNAPSHOT_KEY])["queries"]["databases/shop/columns"]
    stored = store.load(SOURCE)
    assert stored is not None and len(stored.window(50)) == MAX_HISTORY
    # A history edited into nonsense is ignored; the newest snapshot still counts.
    data[HISTORY_KEY] = '[{"test": 1}]'
    stored = store.load(SOURCE)
    assert stored is not None and stored.snapshot is not None and stored.history == ()
