"""Secret values for notifications, and scrubbing them out of every text Lazarus writes.

Notification URLs, routing keys and SMTP passwords are read from Secrets: one named by the test's
spec (always in the test's own namespace) or the operator's default Secret. ``SecretReader``
reads each Secret once per ``send_notifications`` call and remembers every value it handed out,
so ``scrub`` can remove them from error messages before they reach logs, status or events (an
HTTP library's error names the URL it failed on, and a webhook URL *is* its credential).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from lazarus.kube.client import ApiError, Rest

REDACTED = "[redacted]"
# Fragments shorter than this are not scrubbed on their own (a path of "/" is no secret).
MIN_FRAGMENT = 4


class DeliveryError(Exception):
    """A notification could not be delivered; ``transient`` ones are worth retrying."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class SecretRef:
    """One key of one Secret."""

    namespace: str
    name: str
    key: str

    def __str__(self) -> str:
        return f"Secret {self.namespace}/{self.name} key {self.key}"


Fetch = Callable[[str, str], dict[str, str]]
"""(namespace, name) → the Secret's decoded data; raises ``DeliveryError`` if it cannot be read."""


class SecretReader:
    """Reads Secret keys through ``fetch`` (each Secret once) and scrubs their values from text."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], dict[str, str]] = {}
        self._secrets: set[str] = set()

    def value(self, ref: SecretRef) -> str:
        """The value at ``ref``; raises a permanent ``DeliveryError`` naming the ref if missing."""
        with self._lock:
            data = self._cache.get((ref.namespace, ref.name))
            if data is None:
                data = self._fetch(ref.namespace, ref.name)
                self._cache[(ref.namespace, ref.name)] = data
        value = data.get(ref.key, "").strip()
        if not value:
            raise DeliveryError(f"{ref} is missing or empty")
        self.remember(value)
        return value

    def remember(self, value: str) -> None:
        """Treat ``value`` (and, for a URL, its path and query) as secret from now on."""
        fragments = {value, quote(value, safe="")}
        parts = urlsplit(value)
        if parts.scheme and parts.netloc:
            fragments.update({parts.path, parts.query, f"{parts.path}?{parts.query}"})
        with self._lock:
            self._secrets.update(f for f in fragments if len(f) >= MIN_FRAGMENT)

    def scrub(self, text: str) -> str:
        """``text`` with every remembered secret replaced (longest first, so a URL goes whole)."""
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, REDACTED)
        return text


def kube_fetch(rest: Rest) -> Fetch:
    """A ``Fetch`` that GETs the Secret from the API server (the operator may read Secrets)."""

    def fetch(namespace: str, name: str) -> dict[str, str]:
        try:
            secret = rest.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except ApiError as exc:
            if exc.not_found:
                raise DeliveryError(f"Secret {namespace}/{name} does not exist") from None
            raise DeliveryError(
                f"could not read Secret {namespace}/{name}: {exc.status} {exc.reason}", transient=exc.transient
            ) from None
        data = secret.get("data") or {}
        return {key: base64.b64decode(raw).decode("utf-8", "replace") for key, raw in data.items()}

    return fetch
