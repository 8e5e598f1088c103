"""The namespace guard, proven on the operator's own credentials before it reconciles anything.

RBAC cannot limit namespace create/delete to sandboxes (their names are generated), so the admission
policy ``lazarus-sandbox-namespaces`` (``manifests/base/namespace-guard.yaml``) does, for every
ServiceAccount named ``lazarus``. An install where that policy is missing, not bound, or does not
match the operator's identity (renamed ServiceAccount, admission policies disabled) would lose the
protection without a sign. So a replica that runs as a ServiceAccount asks the API server for a
server-side dry run (``dryRun=All``: nothing is stored, admission still runs) of creating a namespace
without the sandbox label; unless that is refused, the guard is not in effect and the replica stays
unready and reconciles nothing (fail closed).

A user's own credentials (``lazarus run`` on a workstation) are outside the policy by design: that
case is logged as a warning and not refused.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from lazarus.kube.client import ApiError, Rest

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
POLICY = "lazarus-sandbox-namespaces"
POLICY_FILE = "manifests/base/namespace-guard.yaml"
SELF_SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
PROBE_PREFIX = "lazarus-guard-probe-"


@dataclass(frozen=True)
class GuardCheck:
    """One verification's outcome: ``in_effect`` means reconciling is safe; ``detail`` says why."""

    in_effect: bool
    detail: str
    applies: bool = True
    """False when the identity is not a ServiceAccount (the policy does not cover it by design)."""


def identity(rest: Rest) -> str:
    """This client's user name, as the API server authenticates it (SelfSubjectReview)."""
    review = rest.request("POST", SELF_SUBJECT_REVIEWS, body={
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
    })  # fmt: skip
    return str(review.get("status", {}).get("userInfo", {}).get("username", ""))


def check(rest: Rest) -> GuardCheck:
    """Verify that this identity may not create a namespace that is not a sandbox.

    Raises ``ApiError`` for answers that say nothing either way (transient errors, an unexpected
    status): the caller retries.
    """
    user = identity(rest)
    if not user.startswith(SERVICE_ACCOUNT_PREFIX):
        return GuardCheck(True, f"running as {user or 'an unnamed user'}, not a ServiceAccount: the admission "
                                f"policy {POLICY} does not cover it; only the operator's own checks guard "
                                f"namespace create/delete", applies=False)  # fmt: skip
    probe = PROBE_PREFIX + secrets.token_hex(4)
    try:
        rest.request("POST", "/api/v1/namespaces", query={"dryRun": "All"}, body={
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": probe},
        })  # fmt: skip
    except ApiError as refused:
        if refused.status in (403, 422):
            return GuardCheck(True, f"a dry-run create of the non-sandbox namespace {probe} was refused: "
                                    f"{refused.message or refused.reason}")  # fmt: skip
        raise
    return GuardCheck(False, (
        f"the API server accepted a dry-run create of the namespace {probe} without the label "
        f"lazarus.io/sandbox=true from {user}: the admission policy {POLICY} ({POLICY_FILE}) is missing, "
        f"unbound or does not match this ServiceAccount, so nothing stops this identity from creating or "
        f"deleting any namespace; not reconciling until it does"
    ))  # fmt: skip
