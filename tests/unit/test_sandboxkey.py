"""The sandbox proofs' key: created once, read by every replica, never replaced by Lazarus."""

from __future__ import annotations

import base64

import pytest

from lazarus.controllers.restoretest.sandboxkey import KEY_BYTES, SECRET_NAME, SandboxKey, SandboxKeyError
from lazarus.kube.client import ApiError
from tests.unit.restoretest_fixture import FakeRest

SECRETS = "/api/v1/namespaces/lazarus-system/secrets"
KEY_PATH = f"{SECRETS}/{SECRET_NAME}"


def secret(key: bytes) -> dict[str, object]:
    return {"metadata": {"name": SECRET_NAME}, "data": {"key": base64.b64encode(key).decode()}}


def test_the_first_replica_creates_a_random_key_and_reads_it_only_once() -> None:
    rest = FakeRest()
    store = SandboxKey(rest, "lazarus-system")  # type: ignore[arg-type]
    key = store.value()
    assert len(key) == KEY_BYTES
    assert [(m, p) for m, p, _ in rest.requests] == [("GET", KEY_PATH), ("POST", SECRETS)]
    body = rest.requests[1][2] or {}
    assert base64.b64decode(body["data"]["key"]) == key
    assert store.value() == key and len(rest.requests) == 2
    assert SandboxKey(FakeRest(), "lazarus-system").value() != key  # type: ignore[arg-type]  # random


def test_a_replica_that_loses_the_creation_race_uses_the_winner_s_key() -> None:
    rest = FakeRest()
    winner = bytes(range(32))

    def create_first(method: str, path: str, **options: object) -> dict[str, object]:
        if method == "POST":
            rest.objects[KEY_PATH] = secret(winner)  # the other replica's POST landed first
        return FakeRest.request(rest, method, path, **options)  # type: ignore[arg-type]

    rest.request = create_first  # type: ignore[method-assign]
    assert SandboxKey(rest, "lazarus-system").value() == winner  # type: ignore[arg-type]
    assert [m for m, _p, _b in rest.requests] == ["GET", "POST", "GET"]


@pytest.mark.parametrize("data", [{}, {"key": "not base64!"}, {"key": base64.b64encode(b"short").decode()}])
def test_a_secret_without_a_usable_key_is_an_error_and_is_not_replaced(data: dict[str, str]) -> None:
    rest = FakeRest()
    rest.objects[KEY_PATH] = {"metadata": {"name": SECRET_NAME}, "data": data}
    with pytest.raises(SandboxKeyError, match=f"Secret lazarus-system/{SECRET_NAME} has no key 'key' of at least 32"):
        SandboxKey(rest, "lazarus-system").value()  # type: ignore[arg-type]
    assert rest.writes() == []


def test_other_api_errors_propagate_and_the_next_call_tries_again() -> None:
    rest = FakeRest()
    rest.refuse[("GET", KEY_PATH)] = ApiError(403, "Forbidden")
    store = SandboxKey(rest, "lazarus-system")  # type: ignore[arg-type]
    with pytest.raises(ApiError):
        store.value()
    del rest.refuse[("GET", KEY_PATH)]
    rest.objects[KEY_PATH] = secret(b"k" * 32)
    assert store.value() == b"k" * 32


@pytest.mark.parametrize("error", [ApiError(403, "Forbidden", "cannot create secrets"), ApiError(404, "NotFound")])
def test_a_create_that_retrying_cannot_fix_is_an_error_naming_the_secret_and_the_rbac(error: ApiError) -> None:
    rest = FakeRest()
    rest.refuse[("POST", SECRETS)] = error
    with pytest.raises(SandboxKeyError, match=f"cannot create Secret lazarus-system/{SECRET_NAME} .*rbac-sandbox-key"):
        SandboxKey(rest, "lazarus-system").value()  # type: ignore[arg-type]


def test_a_transient_create_error_propagates_to_be_retried() -> None:
    rest = FakeRest()
    rest.refuse[("POST", SECRETS)] = ApiError(503, "ServiceUnavailable")
    with pytest.raises(ApiError) as raised:
        SandboxKey(rest, "lazarus-system").value()  # type: ignore[arg-type]
    assert not isinstance(raised.value, SandboxKeyError) and raised.value.status == 503
