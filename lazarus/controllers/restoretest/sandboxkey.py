"""The key of the sandbox proofs (``lazarus.sandbox.sandbox_proof``): a Secret in the operator's namespace.

The first replica that needs it creates the Secret with 32 random bytes; a replica that loses
that race (409) reads the winner's. The key is read once per process and never logged. A Secret
that exists but holds no usable key is an error that names the Secret: a new key would make
every sandbox in flight unprovable, so Lazarus never replaces one by itself.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading

from lazarus.kube.client import ApiError, Rest

SECRET_NAME = "lazarus-sandbox-key"
DATA_KEY = "key"
KEY_BYTES = 32


class SandboxKeyError(RuntimeError):
    """The key cannot be had: its Secret holds no usable key, or creating it is refused."""


class SandboxKey:
    """The proof key, loaded (or created) on first use."""

    def __init__(self, rest: Rest, namespace: str) -> None:
        self._rest = rest
        self._namespace = namespace
        self._lock = threading.Lock()
        self._key: bytes | None = None

    def value(self) -> bytes:
        """The key; transient API errors propagate (the sync that asked is retried), an unusable or
        uncreatable key raises ``SandboxKeyError``."""
        with self._lock:
            if self._key is None:
                self._key = self._read() or self._create() or self._read()
                if self._key is None:
                    raise SandboxKeyError(f"Secret {self._namespace}/{SECRET_NAME} vanished while it was read")
            return self._key

    def _path(self, name: str = "") -> str:
        return f"/api/v1/namespaces/{self._namespace}/secrets" + (f"/{name}" if name else "")

    def _read(self) -> bytes | None:
        try:
            secret = self._rest.request("GET", self._path(SECRET_NAME))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        encoded = (secret.get("data") or {}).get(DATA_KEY, "")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) < KEY_BYTES:
            raise SandboxKeyError(f"Secret {self._namespace}/{SECRET_NAME} has no key {DATA_KEY!r} of at least "
                                  f"{KEY_BYTES} bytes; delete it to have a new one made (sandboxes in flight "
                                  "then fail as not Lazarus's)")  # fmt: skip
        return key

    def _create(self) -> bytes | None:
        """A new key, or None if another replica created the Secret first."""
        key = secrets.token_bytes(KEY_BYTES)
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET_NAME, "labels": {"app.kubernetes.io/name": "lazarus"}},
            "type": "Opaque",
            "data": {DATA_KEY: base64.b64encode(key).decode()},
        }
        try:
            self._rest.request("POST", self._path(), body=body)
        except ApiError as exc:
            if exc.conflict:
                return None
            if exc.transient:
                raise
            # Forbidden or no such namespace: retrying cannot help, so the test fails and says why.
            needs = "the operator needs create on secrets in its namespace (manifests/base/rbac-sandbox-key.yaml)"
            raise SandboxKeyError(f"cannot create Secret {self._namespace}/{SECRET_NAME} ({exc}); {needs}") from exc
        return key
