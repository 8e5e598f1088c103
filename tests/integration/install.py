"""The install manifests in tests: render them with ``kubectl kustomize``, apply their RBAC, and
authenticate ``lazarus run`` as their ServiceAccount.

Every integration test that starts the operator (``operator_process.start_operator``) runs it with
a kubeconfig holding a token of ``lazarus-system/lazarus``, bound to the roles in
``manifests/base`` and under its namespace admission policy, so a missing permission fails the
suite. Namespaced roles are re-created in the
namespaces a test points the operator at (``--namespace``, ``--velero-namespace``), exactly as an
overlay moves them.
"""

from __future__ import annotations

import copy
import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "manifests" / "base"
SERVICE_ACCOUNT = ("lazarus-system", "lazarus")
# What decides what the operator may do: its ServiceAccount (and namespace), RBAC, and the
# admission policy that limits its namespace create/delete to sandboxes.
ACCESS_KINDS = (
    "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
)  # fmt: skip
# Namespaced roles of the base, by the flag that moves them (their base namespace is the default).
MOVABLE_ROLES = {
    "--namespace": ("lazarus-leader-election", "lazarus-sandbox-key"),
    "--velero-namespace": ("lazarus-velero",),
}
TOKEN_DURATION = "6h"


def _testbed_versions() -> dict[str, str]:
    lines = (ROOT / "e2e" / "testbed" / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def cached_component_dir(component: str, version_key: str) -> Path:
    """Where e2e/testbed/build.sh caches ``component`` at the version ``versions.env`` names."""
    cache = os.environ.get("LAZARUS_TESTBED_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lazarus-testbed"
    )
    return Path(cache) / "bin" / f"{component}-{_testbed_versions()[version_key]}"


@functools.cache
def kubectl_path() -> str:
    """``$KUBECTL``, else the test bed's kubectl, else ``kubectl`` on PATH (e.g. with kind)."""
    bed = cached_component_dir("kubernetes", "KUBERNETES_VERSION") / "kubectl"
    found = os.environ.get("KUBECTL") or (str(bed) if bed.exists() else shutil.which("kubectl"))
    if not found:
        raise RuntimeError("no kubectl: set KUBECTL, build the test bed, or put kubectl on PATH")
    return found


def kubectl(*args: str, stdin: str | None = None, kubeconfig: str | None = None) -> str:
    """Run kubectl as the cluster admin (``KUBECONFIG``); its stdout; raise with its stderr."""
    command = [kubectl_path(), "--kubeconfig", kubeconfig or os.environ["KUBECONFIG"], *args]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command[3:])} failed: {done.stderr.strip()}")
    return done.stdout


def kustomize(path: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize path`` renders."""
    return [doc for doc in yaml.safe_load_all(kubectl("kustomize", str(path))) if doc]


def apply(objects: Iterable[dict[str, Any]], *flags: str) -> str:
    """Server-side apply ``objects`` (``flags`` e.g. ``--dry-run=server``); kubectl's output."""
    return kubectl("apply", "--server-side", "--force-conflicts", *flags, "-f", "-", stdin=yaml.safe_dump_all(objects))


def access_objects() -> list[dict[str, Any]]:
    """The base's ``ACCESS_KINDS`` objects."""
    return [obj for obj in kustomize(BASE) if obj["kind"] in ACCESS_KINDS]


def overlay_additions(overlay: Path) -> list[dict[str, Any]]:
    """The objects ``overlay`` renders that the base does not have (by kind and name)."""
    base = {(o["kind"], o["metadata"]["name"]) for o in kustomize(BASE)}
    return [o for o in kustomize(overlay) if (o["kind"], o["metadata"]["name"]) not in base]


def moved(objects: Sequence[dict[str, Any]], role: str, namespace: str) -> list[dict[str, Any]]:
    """Copies of Role ``role`` and its RoleBinding (same name) in ``namespace``."""
    copies = []
    for obj in objects:
        if obj["kind"] in ("Role", "RoleBinding") and obj["metadata"]["name"] == role:
            obj = copy.deepcopy(obj)
            obj["metadata"]["namespace"] = namespace
            copies.append(obj)
    return copies


def token_kubeconfig(namespace: str, service_account: str, path: Path) -> Path:
    """Write a kubeconfig for the admin kubeconfig's cluster with a TokenRequest token of the
    ServiceAccount (valid ``TOKEN_DURATION``); return ``path``."""
    token = kubectl("create", "token", service_account, "-n", namespace, "--duration", TOKEN_DURATION).strip()
    admin = yaml.safe_load(kubectl("config", "view", "--raw", "--minify", "--flatten", "-o", "yaml"))
    user = f"{namespace}:{service_account}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": admin["clusters"][0]["name"], "user": user}}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@functools.cache
def _base_identity() -> tuple[Path, tuple[dict[str, Any], ...]]:
    """Apply the base RBAC once per session; the ServiceAccount's kubeconfig and the objects."""
    objects = access_objects()
    apply(objects)
    directory = Path(tempfile.mkdtemp(prefix="lazarus-sa-"))
    return token_kubeconfig(*SERVICE_ACCOUNT, directory / "kubeconfig"), tuple(objects)


def operator_kubeconfig(args: Sequence[str]) -> str:
    """A kubeconfig for ``lazarus run args`` as the manifests' ServiceAccount, with the base's
    namespaced roles also in the namespaces ``args`` name."""
    path, objects = _base_identity()
    extra = [
        obj
        for flag, roles in MOVABLE_ROLES.items()
        if flag in args
        for role in roles
        for obj in moved(objects, role, args[list(args).index(flag) + 1])
    ]
    if extra:
        apply(extra)
    return str(path)
