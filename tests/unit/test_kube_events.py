"""The event recorder: the exact API calls for new, repeated, expired and forgotten events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lazarus.kube.client import ApiError
from lazarus.kube.events import AGGREGATION_WINDOW, WARNING, EventRecorder
from tests.fakeclock import FakeClock

TEST = {
    "apiVersion": "lazarus.io/v1alpha1",
    "kind": "LazarusRestoreTest",
    "metadata": {"name": "shop-1", "namespace": "team-a", "uid": "uid-1", "resourceVersion": "7"},
}


class FakeRest:
    """Records (method, path, body, content type); ``missing`` paths answer 404; ``broken``: no
    answer at all (a connection error)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any], str | None]] = []
        self.missing: set[str] = set()
        self.broken = False

    def request(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        self.calls.append((method, path, options["body"], options.get("content_type")))
        if self.broken:
            raise ConnectionResetError("Connection reset by peer")
        if path in self.missing:
            raise ApiError(404, "NotFound")
        return options["body"]


def recorder(**options: Any) -> tuple[EventRecorder, FakeRest, FakeClock]:
    rest, clock = FakeRest(), FakeClock()
    seconds = iter(range(1000))

    def stamps() -> datetime:  # one second later at each call
        return datetime(2026, 1, 10, 4, 0, tzinfo=UTC) + timedelta(seconds=next(seconds))

    return EventRecorder(rest, "lazarus-0", clock=clock, now=stamps, **options), rest, clock  # type: ignore[arg-type]


def created_name(rest: FakeRest, index: int) -> str:
    method, _, body, _ = rest.calls[index]
    assert method == "POST"
    return str(body["metadata"]["name"])


def test_repeats_patch_the_count_of_one_event() -> None:
    events, rest, clock = recorder()
    for _ in range(3):
        events.record(TEST, WARNING, "ChecksFailed", "2 of 5 checks failed")
        clock.step(60)
    name = created_name(rest, 0)
    method, path, body, _ = rest.calls[0]
    assert (method, path) == ("POST", "/api/v1/namespaces/team-a/events")
    assert name.startswith("shop-1.")
    assert body["count"] == 1
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2026-01-10T04:00:00Z"
    assert body["involvedObject"] == {
        "apiVersion": "lazarus.io/v1alpha1", "kind": "LazarusRestoreTest", "name": "shop-1",
        "namespace": "team-a", "uid": "uid-1", "resourceVersion": "7",
    }  # fmt: skip
    assert (body["type"], body["reason"], body["message"]) == (WARNING, "ChecksFailed", "2 of 5 checks failed")
    assert rest.calls[1:] == [
        ("PATCH", f"/api/v1/namespaces/team-a/events/{name}",
         {"count": 2, "lastTimestamp": "2026-01-10T04:00:01Z"}, "application/merge-patch+json"),
        ("PATCH", f"/api/v1/namespaces/team-a/events/{name}",
         {"count": 3, "lastTimestamp": "2026-01-10T04:00:02Z"}, "application/merge-patch+json"),
    ]  # fmt: skip


def test_another_message_reason_or_object_is_another_event() -> None:
    events, rest, _ = recorder()
    events.record(TEST, WARNING, "ChecksFailed", "2 of 5 checks failed")
    events.record(TEST, WARNING, "ChecksFailed", "3 of 5 checks failed")
    events.record(TEST, WARNING, "Timeout", "2 of 5 checks failed")
    other = {**TEST, "metadata": {**TEST["metadata"], "name": "shop-2", "uid": "uid-2"}}  # type: ignore[dict-item]
    events.record(other, WARNING, "ChecksFailed", "2 of 5 checks failed")
    assert [method for method, *_ in rest.calls] == ["POST"] * 4


def test_a_repeat_after_the_window_is_a_new_event() -> None:
    events, rest, clock = recorder()
    events.record(TEST, WARNING, "ChecksFailed", "failed")
    clock.step(AGGREGATION_WINDOW - 1)
    events.record(TEST, WARNING, "ChecksFailed", "failed")  # the window runs from the last one
    clock.step(AGGREGATION_WINDOW)
    events.record(TEST, WARNING, "ChecksFailed", "failed")
    assert [method for method, *_ in rest.calls] == ["POST", "PATCH", "POST"]
    assert rest.calls[2][2]["count"] == 1 and created_name(rest, 2) != created_name(rest, 0)


def test_a_patch_answered_404_creates_the_event_again() -> None:
    events, rest, _ = recorder()
    events.record(TEST, WARNING, "ChecksFailed", "failed")
    rest.missing.add(f"/api/v1/namespaces/team-a/events/{created_name(rest, 0)}")  # expired (event TTL)
    events.record(TEST, WARNING, "ChecksFailed", "failed")
    events.record(TEST, WARNING, "ChecksFailed", "failed")
    assert [method for method, *_ in rest.calls] == ["POST", "PATCH", "POST", "PATCH"]
    assert rest.calls[2][2]["count"] == 1
    assert rest.calls[3][1].endswith(created_name(rest, 2)) and rest.calls[3][2]["count"] == 2


def test_the_cache_keeps_the_most_recently_used_events() -> None:
    events, rest, _ = recorder(cache_size=2)
    for message in ("a", "b", "a", "c", "a", "b"):  # "c" pushes out "b", the least recently used
        events.record(TEST, WARNING, "R", message)
    assert [(method, body.get("message")) for method, _, body, _ in rest.calls] == [
        ("POST", "a"), ("POST", "b"), ("PATCH", None), ("POST", "c"), ("PATCH", None), ("POST", "b"),
    ]  # fmt: skip


def test_a_failure_to_record_is_logged_not_raised() -> None:
    events, rest, _ = recorder()
    rest.missing.add("/api/v1/namespaces/team-a/events")
    events.record(TEST, WARNING, "R", "m")  # no exception
    rest.broken = True
    events.record(TEST, WARNING, "R", "m")
    assert len(rest.calls) == 2
