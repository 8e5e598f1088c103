"""Reporting, cleanup, retention, finalizer and orphans of restore tests (see ``restoretest_fixture``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from lazarus.api.v1alpha1 import ConditionType
from lazarus.informers import BACKUPS, LAZARUS_RESTORE_TESTS, NAMESPACES, RESTORES
from lazarus.sandbox import sandbox_name
from tests.unit.restoretest_fixture import (
    NOW,
    RESTORE_NAME,
    SANDBOX,
    Fixture,
    backup,
    restore_test,
    sandbox,
    stamp,
    velero_restore,
)

DELETE_BODY = {"propagationPolicy": "Background"}


def finished(phase: str = "Succeeded", minutes_ago: int = 0, **spec: Any) -> dict[str, Any]:
    status = {"phase": phase, "reason": phase, "completionTime": stamp(NOW - timedelta(minutes=minutes_ago)),
              "notifications": [], "sandboxNamespaces": [SANDBOX], "restore": {"restoreName": RESTORE_NAME,
                                                                               "veleroPhase": "Completed"}}  # fmt: skip
    return restore_test(status=status, **spec)


def with_objects(test: dict[str, Any], restore_phase: str = "Completed") -> Fixture:
    fx = Fixture()
    fx.add(LAZARUS_RESTORE_TESTS, test)
    fx.add(BACKUPS, backup())
    fx.add(NAMESPACES, sandbox(test, SANDBOX, uid="uid-sbx"))
    fx.add(RESTORES, velero_restore(test, phase=restore_phase))
    return fx


def deletes(fx: Fixture) -> list[tuple[str, dict[str, Any] | None]]:
    return [(p, b) for m, p, b in fx.rest.writes("DELETE")]


def test_a_finished_test_is_reported_once() -> None:
    test = finished()
    del test["status"]["notifications"]
    fx = with_objects(test)
    fx.sync()
    first = fx.rest.status_patches()[0]
    assert first["notifications"] == [] and "cost" in first
    assert ("Normal", "RestoreTestSucceeded") in fx.rest.events()


def test_a_replica_without_the_lease_does_not_report() -> None:
    test = finished()
    del test["status"]["notifications"]
    fx = with_objects(test)
    fx.leading = False
    fx.sync()
    assert fx.rest.status_patches() == [] and fx.rest.events() == [] and deletes(fx) == []


def test_cleanup_deletes_the_sandbox_and_the_restore_with_uid_preconditions() -> None:
    fx = with_objects(finished())
    fx.sync()
    assert deletes(fx) == [
        (f"/api/v1/namespaces/{SANDBOX}", {**DELETE_BODY, "preconditions": {"uid": "uid-sbx"}}),
        (f"/apis/velero.io/v1/namespaces/velero/restores/{RESTORE_NAME}",
         {**DELETE_BODY, "preconditions": {"uid": "uid-restore"}}),
        (f"/api/v1/namespaces/velero/configmaps/{RESTORE_NAME}", DELETE_BODY),
    ]  # fmt: skip
    assert fx.rest.status_patches() == []  # not gone from the caches yet


def test_cleanup_completes_once_the_caches_show_everything_gone() -> None:
    fx = Fixture()
    fx.add(LAZARUS_RESTORE_TESTS, finished())
    fx.sync()
    conditions = fx.last_status()["conditions"]
    assert [(c["type"], c["status"]) for c in conditions] == [(ConditionType.CLEANUP_COMPLETED, "True")]


def test_nothing_is_deleted_while_velero_still_restores() -> None:
    fx = with_objects(finished(phase="Failed", minutes_ago=60), restore_phase="InProgress")
    fx.sync()
    assert deletes(fx) == []


def test_a_failed_test_s_sandbox_is_kept_for_the_failure_retention() -> None:
    fx = with_objects(finished(phase="Failed", minutes_ago=10))
    fx.sync()
    assert deletes(fx) == []
    fx.now = NOW + timedelta(minutes=5)
    fx.sync()
    assert deletes(fx)


def test_ttl_keeps_the_sandbox_and_keep_on_failure_keeps_it_until_deletion() -> None:
    fx = with_objects(finished(ttl="1h", minutes_ago=59))
    fx.sync()
    assert deletes(fx) == []
    kept = with_objects(finished(phase="Failed", minutes_ago=600, cleanup={"keepOnFailure": True}))
    kept.sync()
    assert deletes(kept) == []


def test_a_deleted_test_is_cleaned_up_then_its_finalizer_removed() -> None:
    test = finished()
    test["metadata"]["deletionTimestamp"] = stamp(NOW)
    fx = Fixture()
    fx.add(LAZARUS_RESTORE_TESTS, test)
    fx.sync()
    assert fx.rest.writes() == [
        ("PATCH", "/apis/lazarus.io/v1alpha1/namespaces/team-a/lazarusrestoretests/shop-check",
         {"metadata": {"resourceVersion": "10", "finalizers": []}}),
    ]  # fmt: skip


def test_leftovers_of_a_test_recreated_under_the_same_name_are_removed() -> None:
    old = restore_test(uid="uid-of-an-older-test-0001")
    fx = Fixture()
    fx.add(LAZARUS_RESTORE_TESTS, restore_test(status={"phase": "Pending"}))
    fx.add(BACKUPS, backup(phase="New"))
    generated = sandbox_name("lazarus-sbx-", "uid-of-an-older-test-0001", "shop")
    orphan = sandbox(old, generated, uid="uid-old-sbx")  # with its proof
    fx.add(NAMESPACES, orphan, sandbox(old, "labelled-by-hand", uid="uid-hand-made", proof=""))
    fx.sync()
    precondition = {**DELETE_BODY, "preconditions": {"uid": "uid-old-sbx"}}
    assert deletes(fx) == [(f"/api/v1/namespaces/{generated}", precondition)]  # not the one without a proof


def test_a_gone_test_s_leftovers_are_removed_and_it_is_forgotten() -> None:
    test = restore_test()
    fx = Fixture()
    fx.add(RESTORES, velero_restore(test))
    fx.sync()
    assert [p for p, _b in deletes(fx)] == [f"/apis/velero.io/v1/namespaces/velero/restores/{RESTORE_NAME}",
                                            f"/api/v1/namespaces/velero/configmaps/{RESTORE_NAME}"]  # fmt: skip
    assert fx.rest.status_patches() == []


# ----------------------------------------------------------------- retention


def made_by(maker: str | None, name: str, minutes_ago: int, phase: str = "Succeeded") -> dict[str, Any]:
    test = finished(phase=phase, minutes_ago=minutes_ago)
    test["metadata"].update(name=name, uid=f"uid-{name}-00000000000")
    if maker is not None:
        test["metadata"]["labels"] = {"lazarus.io/created-by": maker, "lazarus.io/schedule": "nightly"}
    return test


def deleted_tests(fx: Fixture) -> list[tuple[str, dict[str, Any] | None]]:
    return [(p.rsplit("/", 1)[-1], b) for p, b in deletes(fx) if "/lazarusrestoretests/" in p]


def test_tests_of_a_schedule_beyond_the_kept_count_are_deleted_oldest_first() -> None:
    fx = Fixture()
    tests = [made_by("backup-trigger", f"t{i}", minutes_ago=i) for i in range(12)]
    fx.add(LAZARUS_RESTORE_TESTS, *tests)
    fx.sync("team-a/t0")
    assert deleted_tests(fx) == [(f"t{i}", {**DELETE_BODY, "preconditions": {"uid": f"uid-t{i}-00000000000"}})
                                 for i in (10, 11)]  # fmt: skip


def test_failed_tests_are_kept_fewer() -> None:
    fx = Fixture()
    fx.add(LAZARUS_RESTORE_TESTS, *[made_by("cli", f"f{i}", minutes_ago=100 + i, phase="Failed") for i in range(6)])
    fx.sync("team-a/f0")
    assert [name for name, _ in deleted_tests(fx)] == ["f5"]


def test_a_test_finished_more_than_30_days_ago_is_deleted() -> None:
    fx = Fixture()
    fx.add(LAZARUS_RESTORE_TESTS, made_by("cli", "new", minutes_ago=1), made_by("cli", "old", minutes_ago=31 * 1440))
    fx.sync("team-a/new")
    assert [name for name, _ in deleted_tests(fx)] == ["old"]


def test_tests_a_user_made_or_a_policy_owns_are_not_retained_here() -> None:
    fx = Fixture()
    fx.add(LAZARUS_RESTORE_TESTS, made_by(None, "mine", minutes_ago=1), made_by(None, "ancient", minutes_ago=99999),
           made_by("policy", "p-old", minutes_ago=99999))  # fmt: skip
    for name in ("mine", "ancient", "p-old"):
        fx.sync(f"team-a/{name}")
    assert deleted_tests(fx) == []
