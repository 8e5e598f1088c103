"""The namespace guard's proof: who the operator is, and what the API server answers to a dry-run
create of a namespace that is not a sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from lazarus.kube.client import ApiError
from lazarus.namespaceguard import PROBE_PREFIX, SELF_SUBJECT_REVIEWS, check

SERVICE_ACCOUNT = "system:serviceaccount:ops:lazarus"


class GuardRest:
    """Answers the SelfSubjectReview with ``user`` and the namespace POST with ``create`` (an
    error to raise, or None to accept it); records every request."""

    def __init__(self, user: str, create: ApiError | None) -> None:
        self.user, self.create = user, create
        self.requests: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        self.requests.append((method, path, options))
        if path == SELF_SUBJECT_REVIEWS:
            return {"status": {"userInfo": {"username": self.user}}}
        if self.create is not None:
            raise self.create
        return options["body"]


def test_a_refused_dry_run_proves_the_guard_and_nothing_is_created() -> None:
    denial = ApiError(403, "Forbidden", "ValidatingAdmissionPolicy 'lazarus-sandbox-namespaces' denied request")
    rest = GuardRest(SERVICE_ACCOUNT, denial)
    result = check(rest)  # type: ignore[arg-type]
    assert result.in_effect and result.applies and "lazarus-sandbox-namespaces' denied" in result.detail
    (_review, (method, path, options)) = rest.requests
    assert (method, path, options["query"]) == ("POST", "/api/v1/namespaces", {"dryRun": "All"})
    metadata = options["body"]["metadata"]
    assert metadata["name"].startswith(PROBE_PREFIX) and "labels" not in metadata


def test_an_accepted_dry_run_means_the_guard_is_not_in_effect_for_this_service_account() -> None:
    result = check(GuardRest(SERVICE_ACCOUNT, None))  # type: ignore[arg-type]
    assert not result.in_effect
    assert SERVICE_ACCOUNT in result.detail and "lazarus-sandbox-namespaces" in result.detail
    assert "manifests/base/namespace-guard.yaml" in result.detail


def test_a_user_s_own_credentials_are_outside_the_policy_and_are_not_probed() -> None:
    rest = GuardRest("kubernetes-admin", None)
    result = check(rest)  # type: ignore[arg-type]
    assert result.in_effect and not result.applies and "kubernetes-admin" in result.detail
    assert [path for _m, path, _o in rest.requests] == [SELF_SUBJECT_REVIEWS]


@pytest.mark.parametrize("error", [ApiError(503, "ServiceUnavailable"), ApiError(409, "AlreadyExists")])
def test_an_answer_that_proves_nothing_is_raised_to_be_retried(error: ApiError) -> None:
    with pytest.raises(ApiError) as raised:
        check(GuardRest(SERVICE_ACCOUNT, error))  # type: ignore[arg-type]
    assert raised.value is error
