"""HTTP checks of restored applications with requests (imported only when an HTTP check runs).

One endpoint is one ``CheckResult`` (with ``statusCode``):

- URL: ``{{ .SandboxNamespace }}`` is substituted and the host resolves into the sandbox as
  ``lazarus.checks.context`` describes: ``http://api:8080/health`` and
  ``http://api.<source-namespace>:8080/health`` reach the restored Service ``api`` as
  ``api.<sandbox>.svc``; IP addresses, ``localhost`` and other DNS names are used as written.
- Request: ``method``, ``headers`` (literal, or from a Secret: never logged or reported),
  ``body``; each attempt limited to ``timeout`` seconds (connect, then the whole body); redirects
  are not followed (a redirect may lead out of the sandbox: accept its status instead); proxies
  and ``.netrc`` from the operator's environment are ignored (``trust_env`` off).
- Attempts: a request that fails (connection refused, DNS, timeout) or answers with a status that
  is not accepted (``expectedStatus``, default 200, or one of ``acceptedStatuses``) is retried
  ``retries`` times with backoff, within the overall deadline. Body expectations are judged once,
  on the accepted answer: they are not retried.
- Body (``expectedBody``; all that are set must hold; at most ``MAX_BODY_BYTES`` are read):
  ``contains`` (text), ``regex`` (Python ``re.search``), ``json`` (``path`` dotted into the
  parsed body, list items by index, e.g. ``items.0.name``; ``equals`` compared as text: JSON
  ``true``, ``3``, ``"x"`` read as ``true``, ``3``, ``x``).
- TLS: certificates are verified (system CAs) unless ``tls.insecureSkipVerify`` (the result then
  says so, and urllib3 logs its InsecureRequestWarning once per process); ``tls.caBundleSecretRef``
  names a Secret key with the PEM CA bundle to verify against instead.

Outcomes: ``Passed``; ``Failed`` for an unaccepted status or an unmet body expectation; ``Error``
when no answer came (unreachable host, DNS, timeout, TLS verification) or the check is invalid (a
bad regex, a missing Secret), with the reason.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from lazarus.checks.context import CheckContext, CheckError
from lazarus.checks.expectations import as_text
from lazarus.checks.results import ERROR, FAILED, PASSED, CheckResult

# CRD defaults, repeated for specs the API server did not default.
DEFAULT_METHOD = "GET"
DEFAULT_EXPECTED_STATUS = 200
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
# Bytes of a response body read: enough for any health or status document; a check must not pull
# a large download into the operator's memory.
MAX_BODY_BYTES = 1024 * 1024
_CHUNK = 64 * 1024
_CHARSET = re.compile(r"charset=\s*\"?([\w.:-]+)", re.IGNORECASE)
_OBJECT_REPR = re.compile(r"^<[^>]*>: |^\w+Pool\([^)]*\): ")
_SSL_LOCATION = re.compile(r" \(_ssl\.c:\d+\)")


class _RetryableError(Exception):
    """An attempt that may succeed if repeated: no answer, or an unaccepted status."""

    def __init__(self, text: str, status_code: int | None = None) -> None:
        super().__init__(text)
        self.status_code = status_code


@dataclass
class _Answer:
    status_code: int
    body: str
    truncated: bool
    elapsed: float


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, without object reprs."""
    inner: BaseException = exc
    for _ in range(10):
        nested = getattr(inner, "reason", None)
        if not isinstance(nested, BaseException) and inner.args and isinstance(inner.args[0], BaseException):
            nested = inner.args[0]
        if not isinstance(nested, BaseException) or nested is inner:
            break
        inner = nested
    text = _SSL_LOCATION.sub("", _OBJECT_REPR.sub("", str(inner)))
    return text or type(inner).__name__


def _sandbox_url(ctx: CheckContext, url: str) -> str:
    """``url`` with the placeholder substituted and its host resolved into the sandbox."""
    try:
        parts = urlsplit(ctx.substitute(url))
    except CheckError:
        raise CheckError(
            f"{{{{ .SandboxNamespace }}}} in {url!r} is ambiguous: this test restores several namespaces "
            f"({', '.join(sorted(ctx.mapping))}); write the host as <service>.<source-namespace>"
        ) from None
    if parts.password:
        ctx.remember_secret(parts.password)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise CheckError(f"URL {url!r} has an invalid port") from None
    if not parts.hostname:
        raise CheckError(f"URL {url!r} names no host")
    endpoint = ctx.resolve(parts.hostname, port)
    userinfo = parts.netloc.rpartition("@")[0]
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    netloc = (f"{userinfo}@" if userinfo else "") + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _headers(ctx: CheckContext, endpoint: Mapping[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for header in endpoint.get("headers") or []:
        ref = (header.get("valueFrom") or {}).get("secretKeyRef")
        headers[str(header["name"])] = ctx.secret(ref, str(ref["key"])) if ref else str(header.get("value", ""))
    return headers


@contextmanager
def _verify(ctx: CheckContext, tls: Mapping[str, Any]) -> Iterator[bool | str]:
    """requests' ``verify``: True, False, or the path of a temporary CA bundle file."""
    if tls.get("insecureSkipVerify"):
        yield False
        return
    ref = tls.get("caBundleSecretRef")
    if not ref:
        yield True
        return
    bundle = ctx.secret(ref, str(ref["key"]))
    handle, path = tempfile.mkstemp(prefix="lazarus-ca-", suffix=".pem")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(bundle)
        yield path
    finally:
        os.unlink(path)


def _read(response: requests.Response, ctx: CheckContext, deadline: float) -> tuple[bytes, bool]:
    """At most ``MAX_BODY_BYTES`` of the body, all of it received before ``deadline``."""
    body = bytearray()
    for chunk in response.iter_content(_CHUNK):
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return bytes(body[:MAX_BODY_BYTES]), True
        if ctx.clock() > deadline:
            raise _RetryableError("the body did not arrive within the timeout")
    return bytes(body), False


def _send(
    ctx: CheckContext,
    session: requests.Session,
    endpoint: Mapping[str, Any],
    url: str,
    headers: dict[str, str],
    verify: bool | str,
    accepted: set[int],
) -> _Answer:
    """One attempt; raises ``_RetryableError`` for no answer or an unaccepted status."""
    timeout = ctx.budget(float(endpoint.get("timeout") or DEFAULT_TIMEOUT))
    started = ctx.clock()
    body = endpoint.get("body")
    try:
        response = session.request(
            str(endpoint.get("method") or DEFAULT_METHOD),
            url,
            headers=headers,
            data=body.encode("utf-8") if isinstance(body, str) else None,
            timeout=(timeout, timeout),
            verify=verify,
            allow_redirects=False,
            stream=True,
        )
        try:
            raw, truncated = _read(response, ctx, started + timeout)
        finally:
            response.close()
    except requests.exceptions.SSLError as exc:
        raise CheckError(f"TLS failed: {_reason(exc)} (set tls.caBundleSecretRef, or tls.insecureSkipVerify)") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise _RetryableError(f"no answer: {_reason(exc)}") from None
    except requests.exceptions.RequestException as exc:
        raise CheckError(f"request failed: {_reason(exc)}") from None
    match = _CHARSET.search(response.headers.get("Content-Type", ""))
    try:
        text = raw.decode(match.group(1) if match else "utf-8", "replace")
    except LookupError:
        text = raw.decode("utf-8", "replace")
    answer = _Answer(response.status_code, text, truncated, ctx.clock() - started)
    if answer.status_code not in accepted:
        wanted = " or ".join(str(s) for s in sorted(accepted))
        note = ""
        if 300 <= answer.status_code < 400:
            note = f"; redirects are not followed (Location: {response.headers.get('Location', '-')})"
        raise _RetryableError(f"HTTP {answer.status_code} (expected {wanted}){note}", answer.status_code)
    return answer


def _json_at(document: Any, path: str) -> Any:
    """The value at dotted ``path``; ``KeyError`` naming the missing step."""
    node = document
    for step in path.split("."):
        if isinstance(node, list) and step.lstrip("-").isdigit() and -len(node) <= int(step) < len(node):
            node = node[int(step)]
        elif isinstance(node, dict) and step in node:
            node = node[step]
        else:
            raise KeyError(step)
    return node


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":")) if isinstance(value, dict | list) else as_text(value)


def _judge_body(expected: Mapping[str, Any], answer: _Answer) -> tuple[bool, list[str]]:
    """Every body expectation: (all hold, texts). ``CheckError`` for an invalid regex."""
    ok, texts = True, []
    if expected.get("contains") is not None:
        found = str(expected["contains"]) in answer.body
        ok = ok and found
        texts.append(f"body {'contains' if found else 'does not contain'} {expected['contains']!r}")
    if expected.get("regex") is not None:
        try:
            matched = re.search(str(expected["regex"]), answer.body) is not None
        except re.error as exc:
            raise CheckError(f"expectedBody.regex is not a valid regular expression: {exc}") from None
        ok = ok and matched
        texts.append(f"body {'matches' if matched else 'does not match'} /{expected['regex']}/")
    if expected.get("json"):
        try:
            document = json.loads(answer.body)
        except ValueError:
            return False, [*texts, "body is not JSON" + (" (cut at 1 MiB)" if answer.truncated else "")]
        for item in expected["json"]:
            path, wanted = str(item["path"]), str(item["equals"])
            try:
                actual = _json_text(_json_at(document, path))
            except KeyError as missing:
                ok = False
                texts.append(f"{path}: not found (no {missing.args[0]!r})")
                continue
            ok = ok and actual == wanted
            texts.append(f"{path} = {actual!r}" + ("" if actual == wanted else f" (expected {wanted!r})"))
    if answer.truncated and not ok:
        texts.append("only the first 1 MiB of the body was read")
    return ok, texts


def run_endpoint(ctx: CheckContext, endpoint: Mapping[str, Any]) -> CheckResult:
    """Check one endpoint (see the module docstring); never raises for anything it meets."""
    name = str(endpoint.get("name", "endpoint"))
    started = ctx.clock()
    result = CheckResult(name, ERROR)
    accepted = {int(endpoint.get("expectedStatus") or DEFAULT_EXPECTED_STATUS)}
    accepted |= {int(s) for s in endpoint.get("acceptedStatuses") or []}
    retries = DEFAULT_RETRIES if endpoint.get("retries") is None else int(endpoint["retries"])
    attempts = 0
    try:
        url = _sandbox_url(ctx, str(endpoint["url"]))
        headers = _headers(ctx, endpoint)
        with requests.Session() as session, _verify(ctx, endpoint.get("tls") or {}) as verify:
            session.trust_env = False
            try:
                for attempt in ctx.retrying(lambda exc: isinstance(exc, _RetryableError), retries):
                    with attempt:
                        attempts += 1
                        answer = _send(ctx, session, endpoint, url, headers, verify, accepted)
            except _RetryableError as exc:
                result.status_code = exc.status_code
                result.status = FAILED if exc.status_code is not None else ERROR
                suffix = f" (after {attempts} attempts)" if attempts > 1 else ""
                result.result = ctx.scrub(f"{exc}{suffix}")
                return result
        result.status_code = answer.status_code
        ok, texts = _judge_body(endpoint.get("expectedBody") or {}, answer)
        result.status = PASSED if ok else FAILED
        unverified = ["TLS certificate not verified (insecureSkipVerify)"] if verify is False else []
        result.result = ctx.scrub(
            "; ".join([f"HTTP {answer.status_code} in {answer.elapsed:.3f}s", *unverified, *texts])
        )
    except CheckError as exc:
        result.result = ctx.scrub(str(exc))
    finally:
        result.duration = ctx.clock() - started
    return result
