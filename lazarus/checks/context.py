"""What every check needs from its surroundings: the sandbox, Secrets, Services, time, scrubbing.

One ``CheckContext`` serves one run of a test's health checks; checks share it from several
threads (its caches are locked).

Namespaces. Checks name namespaces as they were in the backup (SOURCE namespaces); the context maps
them to the sandbox namespaces they were restored into. Where a check names none, the default is
the backup's only namespace; with several, the check must say which (``CheckError`` otherwise).

Host names (database ``serviceRef``, hosts in connection strings, HTTP URLs) resolve into the
sandbox, so a check never reaches production by accident:

- ``name`` (no dot): the Service ``name`` in the default namespace's sandbox;
- ``name.<source>``, ``name.<source>.svc``, ``name.<source>.svc.<cluster-domain>``, and pod names
  such as ``pod-0.name.<source>.svc...``: the same names in ``<source>``'s sandbox
  (``...<sandbox>.svc``, resolved by the cluster's DNS search path);
- a name already in a sandbox namespace of this test (e.g. written with the
  ``{{ .SandboxNamespace }}`` placeholder) stays as it is;
- ``...<namespace>.svc...`` of a namespace this test did not restore is refused (``CheckError``):
  that is a production Service;
- IP addresses, ``localhost`` and other DNS names (``db.example.com``) are used as written.

A name that maps to a Service is checked against the restored Service (read through the API): a
missing Service, or one without the port, is a clear ``CheckError``; an ``ExternalName`` Service
resolves to its ``externalName`` (which is mapped and guarded the same way).

Placeholder. ``{{ .SandboxNamespace }}`` (spaces inside the braces optional) in a connection
string or URL is replaced with the sandbox namespace of the check's default source namespace
(the ``namespace`` of the Secret reference or ``serviceRef`` when set, else the backup's only
namespace).

Secrets. Values read from Secrets (passwords, connection strings, header values; not user names)
are remembered and removed from every text the checks produce (``scrub``), together with the
password part of any URI and ``password=...`` pairs, so driver error messages that echo a
connection string cannot leak one into status or logs.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import tenacity

from lazarus.kube.client import CONNECTION_ERRORS, ApiError, Rest

PLACEHOLDER = "{{ .SandboxNamespace }}"
_PLACEHOLDER = re.compile(r"\{\{\s*\.SandboxNamespace\s*\}\}")

SANDBOX, TEST_NAMESPACE = "Sandbox", "TestNamespace"

# Backoff between attempts (connections, HTTP requests): 1 s, 2 s, 4 s ... capped at 10 s, each
# with up to 1 s of jitter. A restored application usually needs seconds, not minutes, to accept
# connections after its workload reports ready; the cap keeps a short deadline useful.
RETRY_INITIAL_WAIT = 1.0
RETRY_MAX_WAIT = 10.0
RETRY_JITTER = 1.0
# No attempt is started with less than this left before the deadline: it could not finish.
MIN_ATTEMPT_SECONDS = 1.0

# Scrubbing: the password of ``scheme://user:password@host`` and of ``password=...`` pairs (libpq
# and ADO-style connection strings), whatever the source of the text.
_URI_PASSWORD = re.compile(r"(://[^:/@\s]*):[^@\s]*@")
_PAIR_PASSWORD = re.compile(r"(?i)\b(password|passwd|pwd)(\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s;&]+)")
MASK = "***"
# Secret values shorter than this are not replaced inside other text (a two-letter value would
# mangle every message); URI and ``password=`` passwords are masked whatever their length.
MIN_SCRUB_LENGTH = 4


class CheckError(Exception):
    """A check cannot run. The message says exactly what and why; it never holds a secret value."""


@dataclass(frozen=True)
class ServiceName:
    """A host name that stands for a Service in a sandbox namespace."""

    namespace: str
    """The sandbox namespace."""
    service: str
    host: str
    """The full host name in the sandbox, e.g. ``db.<sandbox>.svc`` or ``db-0.db.<sandbox>.svc``."""


@dataclass(frozen=True)
class Endpoint:
    """Where to connect."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def service_name(host: str, mapping: Mapping[str, str], default_sandbox: str | None) -> ServiceName | None:
    """The sandbox Service that ``host`` names, or None for a host used as written.

    ``default_sandbox`` is where a dotless name lives (None: ambiguous). Raises ``CheckError`` for
    an ambiguous dotless name and for a ``.svc`` name in a namespace this test did not restore.
    See the module docstring for the rules.
    """
    name = host.rstrip(".").lower()
    if not name or name == "localhost" or _is_ip(name):
        return None
    labels = name.split(".")
    sandboxes = set(mapping.values())
    if len(labels) == 1:
        if default_sandbox is None:
            raise CheckError(
                f"host {host!r} names no namespace, and this test restores several "
                f"({', '.join(sorted(mapping))}): write it as {name}.<namespace>"
            )
        return ServiceName(default_sandbox, name, f"{name}.{default_sandbox}.svc")
    svc_at = labels.index("svc", 2) if "svc" in labels[2:] else None
    if svc_at is None and len(labels) != 2:
        return None  # an ordinary DNS name, e.g. db.example.com
    namespace_at = (svc_at if svc_at is not None else 2) - 1
    namespace, prefix = labels[namespace_at], labels[:namespace_at]
    if namespace in mapping:
        sandbox = mapping[namespace]
    elif namespace in sandboxes:
        sandbox = namespace
    elif svc_at is not None:
        raise CheckError(
            f"host {host!r} is in namespace {namespace!r}, which this test did not restore "
            f"(restored: {', '.join(sorted(mapping)) or 'none'}): checks never reach outside the sandbox"
        )
    else:
        return None  # two labels, not a namespace: a DNS name such as example.com
    return ServiceName(sandbox, prefix[-1], ".".join([*prefix, sandbox, "svc"]))


class CheckContext:
    """The sandbox and services one run of checks shares (thread-safe).

    ``deadline`` is on the ``clock`` (monotonic seconds): nothing a check does may last past it.
    ``reference_time`` is what ``expectedRecency`` measures from (the time the backup was taken).
    ``retries`` is how often a connection that failed for a transient reason is tried again.
    """

    def __init__(
        self,
        rest: Rest,
        test: dict[str, Any],
        mapping: Mapping[str, str],
        *,
        deadline: float,
        reference_time: datetime,
        retries: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rest = rest
        self.test = test
        self.mapping = dict(mapping)
        self.deadline = deadline
        self.reference_time = reference_time
        self.retries = retries
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._objects: dict[str, dict[str, Any] | CheckError] = {}

    # ------------------------------------------------------------------ time

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once it passed)."""
        return self.deadline - self.clock()

    def budget(self, own: float) -> float:
        """``own`` seconds, or less if the deadline comes first; ``CheckError`` if it passed."""
        left = self.remaining()
        if left <= 0:
            raise CheckError("the overall health-check deadline passed before this step could start")
        return min(own, left)

    def retrying(self, retry_on: Callable[[BaseException], bool], retries: int) -> tenacity.Retrying:
        """Attempts (iterate them, ``with attempt: ...``): up to ``retries`` more after the first,
        only for exceptions ``retry_on`` accepts, with backoff, never past the deadline. The last
        exception is re-raised."""

        def stop(state: tenacity.RetryCallState) -> bool:
            out_of_time = self.remaining() <= state.upcoming_sleep + MIN_ATTEMPT_SECONDS
            return state.attempt_number > max(retries, 0) or out_of_time

        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(retry_on),
            stop=stop,
            wait=tenacity.wait_exponential(multiplier=RETRY_INITIAL_WAIT, max=RETRY_MAX_WAIT)
            + tenacity.wait_random(0, RETRY_JITTER),
            sleep=self.sleep,
            reraise=True,
        )

    # ------------------------------------------------------------------ namespaces

    @property
    def test_namespace(self) -> str:
        return str(self.test["metadata"]["namespace"])

    def source_namespace(self, *candidates: str | None) -> str:
        """The first of ``candidates`` that is set, else the backup's only namespace.

        Raises ``CheckError`` if that namespace was not restored, or if none is set and the test
        restores several.
        """
        chosen = next((c for c in candidates if c), None)
        if chosen is None:
            if len(self.mapping) != 1:
                raise CheckError(
                    f"this test restores {len(self.mapping)} namespaces "
                    f"({', '.join(sorted(self.mapping)) or 'none'}): set the namespace the check refers to"
                )
            return next(iter(self.mapping))
        if chosen not in self.mapping:
            raise CheckError(
                f"namespace {chosen!r} is not restored by this test "
                f"(restored: {', '.join(sorted(self.mapping)) or 'none'})"
            )
        return chosen

    def default_sandbox(self, *candidates: str | None) -> str | None:
        """The sandbox of ``source_namespace(*candidates)``, or None when that is ambiguous."""
        if not any(candidates) and len(self.mapping) != 1:
            return None
        return self.mapping[self.source_namespace(*candidates)]

    def substitute(self, text: str, *candidates: str | None) -> str:
        """``text`` with the ``{{ .SandboxNamespace }}`` placeholder replaced."""
        if not _PLACEHOLDER.search(text):
            return text
        sandbox = self.mapping[self.source_namespace(*candidates)]
        return _PLACEHOLDER.sub(sandbox, text)

    # ------------------------------------------------------------------ Secrets

    def secret_data(self, ref: Mapping[str, Any], *default_sources: str | None) -> tuple[str, dict[str, str]]:
        """``(description, data)`` of the Secret ``ref`` names (base64 still encoded).

        ``ref``: ``name``, ``source`` (``Sandbox``: the restored copy, in the sandbox of ``ref``'s
        ``namespace`` or the first of ``default_sources``; ``TestNamespace``: the test's own
        namespace). Raises ``CheckError`` if the Secret cannot be read.
        """
        name = str(ref["name"])
        if ref.get("source", SANDBOX) == TEST_NAMESPACE:
            namespace, where = self.test_namespace, f"Secret {self.test_namespace}/{name}"
            hint = ""
        else:
            source = self.source_namespace(ref.get("namespace"), *default_sources)
            namespace = self.mapping[source]
            where = f"Secret {namespace}/{name}"
            hint = f" (the restored copy of {source}/{name}: was it in the backup?)"
        obj = self._get(f"/api/v1/namespaces/{namespace}/secrets/{name}", where, hint)
        return where, dict(obj.get("data") or {})

    def secret(self, ref: Mapping[str, Any], key: str, *default_sources: str | None, sensitive: bool = True) -> str:
        """The text under ``key`` of the Secret ``ref`` names; remembered for scrubbing when
        ``sensitive`` (user names are not: drivers name the user in errors such as "password
        authentication failed for user app", which is what makes them useful, and masking a
        common word like ``postgres`` would garble every message).

        One trailing newline is dropped (``kubectl create secret --from-file`` keeps the file's).
        Raises ``CheckError`` naming the Secret and key if it is missing or not UTF-8 text.
        """
        where, data = self.secret_data(ref, *default_sources)
        if key not in data:
            keys = ", ".join(sorted(data)) or "none"
            raise CheckError(f"{where} has no key {key!r} (its keys: {keys})")
        try:
            value = base64.b64decode(data[key], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise CheckError(f"{where} key {key!r} is not UTF-8 text") from None
        value = value[:-2] if value.endswith("\r\n") else value[:-1] if value.endswith("\n") else value
        if sensitive:
            self.remember_secret(value)
        return value

    def remember_secret(self, value: str) -> None:
        """Scrub ``value`` from every text produced from now on."""
        if len(value) >= MIN_SCRUB_LENGTH:
            with self._lock:
                self._secrets.add(value)

    def scrub(self, text: str) -> str:
        """``text`` without any remembered secret value or URI/``password=`` password."""
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, MASK)
        text = _URI_PASSWORD.sub(rf"\1:{MASK}@", text)
        return _PAIR_PASSWORD.sub(rf"\1\2{MASK}", text)

    # ------------------------------------------------------------------ Services and hosts

    def resolve(self, host: str, port: int, *candidates: str | None) -> Endpoint:
        """Where to connect for ``host:port`` (see the module docstring); ``CheckError`` if refused."""
        target = service_name(host, self.mapping, self.default_sandbox(*candidates))
        if target is None:
            return Endpoint(host, port)
        where = f"Service {target.namespace}/{target.service}"
        source = next((s for s, t in self.mapping.items() if t == target.namespace), target.namespace)
        service = self._get(
            f"/api/v1/namespaces/{target.namespace}/services/{target.service}",
            where,
            f" (restored from namespace {source}: was the Service in the backup?)",
        )
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName":
            external = str(spec.get("externalName") or "")
            if not external:
                raise CheckError(f"{where} is an ExternalName Service without an externalName")
            inner = service_name(external, self.mapping, target.namespace) if "." in external else None
            return Endpoint(inner.host if inner else external.rstrip("."), port)
        ports = [p.get("port") for p in spec.get("ports") or []]
        if ports and port not in ports:
            raise CheckError(f"{where} has no port {port} (its ports: {', '.join(map(str, ports))})")
        return Endpoint(target.host, port)

    # ------------------------------------------------------------------ API reads (cached)

    def _get(self, path: str, what: str, not_found_hint: str) -> dict[str, Any]:
        """GET ``path`` once per run (errors too); ``CheckError`` describing ``what`` on failure."""
        with self._lock:
            cached = self._objects.get(path)
        if cached is None:
            try:
                cached = self.rest.request("GET", path, timeout=(5.0, min(30.0, max(self.remaining(), 1.0))))
            except ApiError as exc:
                if exc.not_found:
                    cached = CheckError(f"{what} not found{not_found_hint}")
                elif exc.status == 403:
                    cached = CheckError(f"not allowed to read {what}: {exc.message or exc.reason}")
                else:
                    return self._raise(CheckError(f"cannot read {what}: {exc}"))  # transient: not cached
            except CONNECTION_ERRORS as exc:
                return self._raise(CheckError(f"cannot read {what}: the API server is unreachable ({exc})"))
            with self._lock:
                self._objects[path] = cached
        if isinstance(cached, CheckError):
            raise cached
        return cached

    @staticmethod
    def _raise(error: CheckError) -> dict[str, Any]:
        raise error
