"""Pending → Restoring, sample-controller style: preloaded caches, ``sync`` called directly, the
exact API writes asserted (see ``restoretest_fixture``)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from lazarus.api.v1alpha1 import FailureReason, PendingReason, Phase
from lazarus.controllers.restoretest.decisions import Fail
from lazarus.informers import BACKUPS, LAZARUS_RESTORE_TESTS, NAMESPACES
from lazarus.sandbox import PROOF_ANNOTATION, proven_sandbox
from lazarus.velero.backup_contents import backup_contents_from_map
from tests.fakeclock import PARK_TIMEOUT
from tests.unit.restoretest_fixture import (
    NOW,
    RESTORE_NAME,
    SANDBOX,
    SANDBOX_KEY,
    SANDBOX_KEY_PATH,
    Fixture,
    backup,
    restore_test,
    sandbox,
    stamp,
)

NAMESPACES_PATH = "/api/v1/namespaces"
STATUS_PATH = "/apis/lazarus.io/v1alpha1/namespaces/team-a/lazarusrestoretests/shop-check/status"


def started(fx: Fixture) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _ in fx.rest.writes()]


def failed_with(fx: Fixture, reason: str) -> str:
    """The message of the one write: the test's failure with ``reason``."""
    assert [m for m, _p, _b in fx.rest.writes()] == ["PATCH"], fx.rest.writes()
    status = fx.last_status()
    assert (status["phase"], status["reason"]) == (Phase.FAILED, reason)
    assert status["result"]["success"] is False
    assert fx.rest.events() == [("Warning", reason)]
    return str(status["message"])


@pytest.fixture
def fx() -> Fixture:
    fixture = Fixture()
    fixture.add(LAZARUS_RESTORE_TESTS, restore_test())
    return fixture


def test_a_missing_backup_fails_the_test(fx: Fixture) -> None:
    fx.sync()
    assert failed_with(fx, FailureReason.BACKUP_NOT_FOUND) == "Velero backup velero/shop-1 does not exist"


def test_a_backup_in_another_namespace_than_velero_s_fails_the_test() -> None:
    fx = Fixture()
    fx.add(LAZARUS_RESTORE_TESTS, restore_test(backupNamespace="elsewhere"))
    fx.add(BACKUPS, backup())
    fx.sync()
    assert "not 'elsewhere'" in failed_with(fx, FailureReason.BACKUP_NOT_FOUND)


def test_a_running_backup_keeps_the_test_pending_and_says_so_once(fx: Fixture) -> None:
    fx.add(BACKUPS, backup(phase="InProgress"))
    fx.sync()
    assert fx.last_status()["phase"] == Phase.PENDING
    assert fx.last_status()["reason"] == PendingReason.WAITING_FOR_BACKUP
    assert fx.last_status()["message"] == "backup shop-1 is InProgress"
    fx.observe()
    fx.sync()
    assert len(fx.rest.writes()) == 1


@pytest.mark.parametrize(("phase", "hint"), [("Failed", False), ("PartiallyFailed", True)])
def test_a_backup_that_did_not_complete_fails_the_test(fx: Fixture, phase: str, hint: bool) -> None:
    fx.add(BACKUPS, backup(phase=phase))
    fx.sync()
    message = failed_with(fx, FailureReason.BACKUP_NOT_COMPLETED)
    assert message.startswith(f"backup shop-1 ended {phase}")
    assert ("set allowPartiallyFailed" in message) is hint


def test_a_partially_failed_backup_is_tested_when_allowed() -> None:
    fx = Fixture()
    fx.add(LAZARUS_RESTORE_TESTS, restore_test(allowPartiallyFailed=True))
    fx.add(BACKUPS, backup(phase="PartiallyFailed"))
    fx.sync()
    assert fx.last_status()["phase"] == Phase.RESTORING


def test_an_expired_backup_fails_the_test(fx: Fixture) -> None:
    expired = stamp(NOW - timedelta(seconds=1))
    fx.add(BACKUPS, backup(expiration=expired))
    fx.sync()
    assert failed_with(fx, FailureReason.BACKUP_EXPIRED) == f"backup shop-1 expired at {expired}"


def test_a_backup_listing_its_namespaces_starts_without_reading_its_contents(fx: Fixture) -> None:
    fx.add(BACKUPS, backup())
    fx.sync()
    assert started(fx) == [
        ("POST", NAMESPACES_PATH),
        ("POST", f"/apis/networking.k8s.io/v1/namespaces/{SANDBOX}/networkpolicies"),
        ("POST", "/api/v1/namespaces/velero/configmaps"),
        ("POST", "/apis/velero.io/v1/namespaces/velero/restores"),
        ("PATCH", STATUS_PATH),
    ]
    assert fx.reader.reads == []
    status = fx.last_status()
    assert (status["phase"], status["reason"], status["startTime"]) == (Phase.RESTORING, "RestoreCreated", stamp(NOW))
    assert status["namespaceMapping"] == {"shop": SANDBOX} and status["sandboxNamespaces"] == [SANDBOX]
    assert status["sandboxUIDs"] == {SANDBOX: f"uid-of-{SANDBOX}"}
    assert proven_sandbox(fx.rest.writes()[0][2] or {}, restore_test()["metadata"]["uid"], SANDBOX_KEY)
    assert status["restore"]["restoreName"] == RESTORE_NAME
    assert "parity" not in status  # read once the restore completed
    restore = fx.rest.writes()[3][2] or {}
    assert restore["spec"]["namespaceMapping"] == {"shop": SANDBOX}


@pytest.mark.parametrize("included", [["*"], ["shop-*"], []])
def test_a_wildcard_pattern_or_empty_namespace_list_is_read_from_the_backup_s_contents(
    fx: Fixture, included: list[str]
) -> None:
    fx.add(BACKUPS, backup(namespaces=included))
    fx.reader.contents = backup_contents_from_map({"apps/v1/Deployment": ["shop/web", "shop/api"],
                                                   "v1/ConfigMap": ["shop/config"]})  # fmt: skip
    fx.sync()
    assert fx.reader.reads == ["contents"]
    status = fx.last_status()
    assert status["namespaceMapping"] == {"shop": SANDBOX}
    assert status["workloads"] == {"expected": 2}
    assert status["parity"]["enforced"] is True and status["parity"]["expected"]


def test_a_backup_whose_contents_cannot_be_read_fails_closed(fx: Fixture) -> None:
    fx.add(BACKUPS, backup(namespaces=["*"]))
    fx.reader.contents = Fail(FailureReason.UNSAFE_RESTORE, "cannot determine the namespaces in backup shop-1")
    fx.sync()
    assert failed_with(fx, FailureReason.UNSAFE_RESTORE).startswith("cannot determine the namespaces")


def test_a_backup_without_the_selected_namespaces_has_nothing_to_restore() -> None:
    fx = Fixture()
    fx.add(LAZARUS_RESTORE_TESTS, restore_test(restore={"includedNamespaces": ["billing"]}))
    fx.add(BACKUPS, backup())
    fx.sync()
    assert "holds no namespaced resources" in failed_with(fx, FailureReason.NOTHING_TO_RESTORE)


def test_restore_namespace_names_the_one_sandbox() -> None:
    fx = Fixture()
    fx.add(LAZARUS_RESTORE_TESTS, restore_test(restoreNamespace="shop-drill"))
    fx.add(BACKUPS, backup())
    fx.sync()
    assert fx.last_status()["namespaceMapping"] == {"shop": "shop-drill"}
    assert (fx.rest.writes()[0][2] or {})["metadata"]["name"] == "shop-drill"


def test_restore_namespace_with_several_namespaces_is_an_invalid_spec() -> None:
    fx = Fixture()
    fx.add(LAZARUS_RESTORE_TESTS, restore_test(restoreNamespace="shop-drill"))
    fx.add(BACKUPS, backup(namespaces=["shop", "billing"]))
    fx.sync()
    failed_with(fx, FailureReason.INVALID_SPEC)


def test_an_unsafe_restore_spec_fails_before_anything_is_created() -> None:
    fx = Fixture()
    fx.add(LAZARUS_RESTORE_TESTS, restore_test(restore={"excludedResources": ["*"]}))
    fx.add(BACKUPS, backup())
    fx.sync()
    assert failed_with(fx, FailureReason.UNSAFE_RESTORE) == "excludedResources cannot contain '*'"


def test_an_existing_namespace_of_that_name_is_never_restored_into(fx: Fixture) -> None:
    fx.add(BACKUPS, backup())
    fx.rest.objects[f"{NAMESPACES_PATH}/{SANDBOX}"] = {"metadata": {"name": SANDBOX, "uid": "prod", "labels": {}}}
    fx.sync()
    assert started(fx) == [("POST", NAMESPACES_PATH), ("PATCH", STATUS_PATH)]
    status = fx.last_status()
    assert (status["phase"], status["reason"]) == (Phase.FAILED, FailureReason.UNSAFE_RESTORE)
    assert status["message"].startswith(f"namespace {SANDBOX} already exists and is not this test's sandbox")


def test_a_test_without_the_finalizer_gets_it_first_and_goes_on_with_the_patched_object() -> None:
    fx = Fixture()
    test = restore_test()
    test["metadata"]["finalizers"] = []
    fx.add(LAZARUS_RESTORE_TESTS, test)
    fx.add(BACKUPS, backup(phase="New"))
    fx.sync()
    first, second = fx.rest.writes()
    assert first[2] == {"metadata": {"resourceVersion": "10", "finalizers": ["lazarus.io/cleanup"]}}
    assert (second[2] or {})["metadata"] == {"resourceVersion": "11"}  # the status PATCH uses the new version


# ----------------------------------------------------------------- slots


def pending(name: str, uid: str) -> dict[str, Any]:
    return restore_test(name, uid)


def test_tests_admitted_before_the_cache_shows_them_running_hold_their_slots() -> None:
    """Two tests woken together when a slot frees: the cache lags the first one's status PATCH,
    so counting the cache alone admits both (limit 1)."""
    fx = Fixture(max_concurrent_tests=1)
    fx.add(LAZARUS_RESTORE_TESTS, pending("a", "uid-a-0000000000000001"), pending("b", "uid-b-0000000000000002"))
    fx.add(BACKUPS, backup())
    fx.sync("team-a/a")
    fx.sync("team-a/b")  # the cache still shows a Pending
    phases = [(s["phase"], s["reason"]) for s in fx.rest.status_patches()]
    assert phases == [(Phase.RESTORING, "RestoreCreated"), (Phase.PENDING, PendingReason.WAITING_FOR_SLOT)]
    assert fx.rest.status_patches()[1]["message"] == "waiting for a free slot: 1 running, at most 1 at once"


def test_a_slot_is_counted_from_the_cache_once_the_test_is_seen_running() -> None:
    fx = Fixture(max_concurrent_tests=1)
    fx.add(LAZARUS_RESTORE_TESTS, pending("a", "uid-a-0000000000000001"), pending("b", "uid-b-0000000000000002"))
    fx.add(BACKUPS, backup())
    fx.sync("team-a/a")
    fx.observe("team-a/a")
    fx.sync("team-a/a")  # seen Restoring: its reservation is dropped, the cache counts it
    assert not fx.reconciler.slots.release("team-a/a")
    fx.sync("team-a/b")
    assert fx.rest.status_patches()[-1]["reason"] == PendingReason.WAITING_FOR_SLOT


def test_a_start_that_fails_frees_its_slot() -> None:
    fx = Fixture(max_concurrent_tests=1)
    fx.add(LAZARUS_RESTORE_TESTS, restore_test("a", "uid-a-0000000000000001", restore={"excludedResources": ["*"]}),
           pending("b", "uid-b-0000000000000002"))  # fmt: skip
    fx.add(BACKUPS, backup())
    fx.sync("team-a/a")
    fx.sync("team-a/b")
    assert [s["phase"] for s in fx.rest.status_patches()] == [Phase.FAILED, Phase.RESTORING]


def test_deleting_a_running_test_wakes_the_tests_waiting_for_a_slot() -> None:
    fx = Fixture(max_concurrent_tests=1)
    running = restore_test("a", "uid-a-0000000000000001", status={"phase": "Restoring", "startTime": stamp(NOW)})
    fx.add(LAZARUS_RESTORE_TESTS, running, pending("b", "uid-b-0000000000000002"))
    fx.queued()
    fx.delete_event(LAZARUS_RESTORE_TESTS, running)
    assert sorted(fx.queued()) == ["team-a/a", "team-a/b"]


def test_deleting_an_admitted_test_not_yet_seen_running_frees_its_slot() -> None:
    fx = Fixture(max_concurrent_tests=1)
    fx.add(LAZARUS_RESTORE_TESTS, pending("a", "uid-a-0000000000000001"), pending("b", "uid-b-0000000000000002"))
    fx.add(BACKUPS, backup())
    fx.sync("team-a/a")
    fx.queued()
    fx.delete_event(LAZARUS_RESTORE_TESTS, fx.store(LAZARUS_RESTORE_TESTS).get_by_key("team-a/a"))
    assert sorted(fx.queued()) == ["team-a/a", "team-a/b"]
    fx.sync("team-a/b")
    assert fx.rest.status_patches()[-1]["phase"] == Phase.RESTORING


def test_the_backup_contents_are_read_outside_any_lock() -> None:
    """A slow download of one test's backup contents must not hold up another test's admission."""
    fx = Fixture(max_concurrent_tests=2)
    fx.add(LAZARUS_RESTORE_TESTS, pending("a", "uid-a-0000000000000001"), pending("b", "uid-b-0000000000000002"))
    fx.add(BACKUPS, backup(namespaces=["*"]))
    contents = fx.reader.contents

    def download_while_b_is_admitted(view: Any) -> Any:
        if view.key == "team-a/a":  # b is admitted by another worker while a's download runs
            other = threading.Thread(target=fx.sync, args=("team-a/b",))
            other.start()
            other.join(PARK_TIMEOUT)  # a guard against a hang, not a timing bound
            assert not other.is_alive(), "b's admission waited for a's download"
        return contents

    fx.reader.backup_contents = download_while_b_is_admitted  # type: ignore[method-assign]
    fx.sync("team-a/a")
    assert [s["phase"] for s in fx.rest.status_patches()] == [Phase.RESTORING, Phase.RESTORING]


def test_a_sandbox_left_by_a_crash_before_the_status_write_is_adopted(fx: Fixture) -> None:
    fx.add(BACKUPS, backup())
    fx.add(NAMESPACES, sandbox(restore_test(), SANDBOX))
    fx.sync()
    assert ("POST", NAMESPACES_PATH) not in started(fx)
    assert fx.last_status()["phase"] == Phase.RESTORING


@pytest.mark.parametrize("cached", [True, False], ids=["in-the-cache", "found-by-the-409"])
def test_a_namespace_with_the_test_s_label_but_no_valid_proof_is_never_restored_into(fx: Fixture,
                                                                                   cached: bool) -> None:  # fmt: skip
    """Someone who may create or label namespaces makes the test's sandbox before Lazarus does."""
    fx.add(BACKUPS, backup())
    forged = sandbox(restore_test(), SANDBOX, uid="forged", proof="0" * 64)
    if cached:
        fx.add(NAMESPACES, forged)
    fx.rest.objects[f"{NAMESPACES_PATH}/{SANDBOX}"] = forged
    fx.sync()
    assert started(fx) == [("POST", NAMESPACES_PATH), ("PATCH", STATUS_PATH)]
    status = fx.last_status()
    assert (status["phase"], status["reason"]) == (Phase.FAILED, FailureReason.UNSAFE_RESTORE)
    assert status["message"].startswith(f"namespace {SANDBOX} already exists and is not this test's sandbox")


def test_a_key_secret_without_a_usable_key_fails_the_test_before_anything_is_created(fx: Fixture) -> None:
    fx.add(BACKUPS, backup())
    fx.rest.objects[SANDBOX_KEY_PATH]["data"] = {"key": "c2hvcnQ="}  # "short"
    fx.sync()
    message = failed_with(fx, FailureReason.UNSAFE_RESTORE)
    assert message.startswith("cannot prove its sandboxes are Lazarus's: Secret lazarus-system/lazarus-sandbox-key "
                              "has no key 'key' of at least 32 bytes")  # fmt: skip
    assert PROOF_ANNOTATION not in message and "c2hvcnQ=" not in message
