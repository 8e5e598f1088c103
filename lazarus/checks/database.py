"""Database checks: find the restored database, connect read-only, run each query, judge it.

One database check (``healthChecks.database`` or an item of ``healthChecks.databases``) is one
``GroupResult``; each of its queries is one ``CheckResult``. The flow is the same for every engine;
what differs (driver, read-only session, statement timeout, error texts) is an ``Engine``, loaded
with its driver only when a check of that type runs (``ENGINE_MODULES``): the three drivers cost
~16 MiB together, and most operators need one at most.

Where the database is:

- ``serviceRef {namespace, name, port}``: the restored Service in the sandbox of ``namespace`` (a
  SOURCE namespace; default: the backup's only one), port defaulting to the engine's usual one;
  credentials from ``credentialsSecretRef`` (keys ``username``/``password`` by default);
- ``connectionString.secretRef``: a URI (or, for PostgreSQL, ``key=value`` pairs) read from a
  Secret; ``{{ .SandboxNamespace }}`` is substituted, and host names resolve into the sandbox as
  ``lazarus.checks.context`` describes; ``credentialsSecretRef`` and ``database``, when also set,
  override the string's user, password and database.

Connecting: ``connectTimeoutSeconds`` per attempt; transient failures (refused, unreachable, DNS,
server starting) are retried ``healthChecks.retries`` times with exponential backoff and jitter,
within the overall deadline; permanent ones (wrong password, unknown database) are not. A failed
expectation is never retried: the restored data does not change between attempts.

Queries run one after another on one connection, each in its own read-only transaction with its
own statement timeout (``timeoutSeconds``), so one bad query cannot spoil the next. A query that
fails to run is ``Error`` with the driver's reason (secrets scrubbed); a lost connection is made
again for the next query.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

from lazarus.checks.context import CheckContext, CheckError, Endpoint
from lazarus.checks.expectations import QueryResult, evaluate, figures
from lazarus.checks.results import ERROR, PASSED, SKIPPED, CheckResult, GroupResult, rollup

# The engine modules, imported on first use (see the module docstring).
ENGINE_MODULES = {
    "postgres": "lazarus.checks.postgres",
    "mysql": "lazarus.checks.mysql",
    "mongodb": "lazarus.checks.mongodb",
}
# CRD defaults, repeated for specs that were not defaulted by the API server (tests, old objects).
DEFAULT_NAME = "database"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_QUERY_TIMEOUT = 30.0
# Client-side socket read timeouts exceed the server-side statement timeout by this much, so the
# server's clear "statement timeout" error normally arrives first; the socket timeout is only the
# backstop for a server that stopped answering.
SOCKET_TIMEOUT_GRACE = 5.0


@dataclass
class Target:
    """A database location before host names are resolved into the sandbox."""

    hosts: list[tuple[str, int | None]] = field(default_factory=list)
    user: str | None = None
    password: str | None = None
    database: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    """Further connection parameters from the connection string, passed to the driver."""


class Session(Protocol):
    """An open, read-only connection."""

    broken: bool
    """True once the connection can no longer be used (the next query reconnects)."""

    def run(self, query: Mapping[str, Any], timeout: float) -> QueryResult:
        """Run one query in a read-only transaction limited to ``timeout`` seconds.

        Raises ``CheckError`` with a clear text for known cases (timeout, a write refused), or a
        driver error.
        """
        ...

    def close(self) -> None:
        """Close the connection; never raises."""
        ...


class Engine(Protocol):
    """One database type."""

    name: str
    default_port: int

    def parse(self, connection_string: str) -> Target:
        """Split a connection string; raise ``ValueError`` (without quoting it) if invalid."""
        ...

    def connect(
        self, target: Target, endpoints: Sequence[Endpoint], connect_timeout: float, read_timeout: float
    ) -> Session:
        """Open a read-only session on ``endpoints`` (``target``'s hosts, resolved)."""
        ...

    def is_transient(self, exc: BaseException) -> bool:
        """Whether a failed connection attempt may succeed if tried again."""
        ...

    def describe(self, exc: BaseException) -> str:
        """The driver error as one line of text (not yet scrubbed)."""
        ...


def parse_uri(text: str, schemes: Sequence[str]) -> Target:
    """Split ``scheme://[user[:password]@]host[:port][,host[:port]...][/database][?options]``.

    Percent-encoded user, password and database are decoded; a leading ``jdbc:`` is ignored.
    Raises ``ValueError`` (never quoting ``text``) if the scheme is not one of ``schemes`` or the
    URI is malformed.
    """
    text = text.strip()
    text = text[5:] if text.lower().startswith("jdbc:") else text
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in schemes:
        raise ValueError(f"expected a URI starting with {' or '.join(s + '://' for s in schemes)}")
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    userinfo, _, host_list = authority.rpartition("@")
    path, _, query = tail.lstrip("/").partition("?")
    user, has_password, password = userinfo.partition(":")
    hosts: list[tuple[str, int | None]] = []
    for item in filter(None, host_list.split(",")):
        if item.startswith("["):
            host, _, port_text = item[1:].partition("]")
            port_text = port_text.removeprefix(":")
        else:
            host, _, port_text = item.partition(":")
        if not host or (port_text and not port_text.isdigit()):
            raise ValueError("malformed host list")
        hosts.append((unquote(host), int(port_text) if port_text else None))
    return Target(
        hosts=hosts,
        user=unquote(user) or None,
        password=unquote(password) if has_password else None,
        database=unquote(path) or None,
        options=dict(parse_qsl(query)),
    )


def load_engine(type_: str) -> Engine:
    """The engine for ``type_`` (importing its driver now); ``CheckError`` for an unknown type."""
    module_name = ENGINE_MODULES.get(type_)
    if module_name is None:
        raise CheckError(f"unknown database type {type_!r} (one of: {', '.join(ENGINE_MODULES)})")
    engine: Engine = importlib.import_module(module_name).ENGINE
    return engine


def run_database_check(
    ctx: CheckContext, spec: Mapping[str, Any], *, named: bool, engine: Engine | None = None
) -> GroupResult:
    """Run one database check; never raises for anything the check meets (see the module docstring)."""
    name = str(spec.get("name") or DEFAULT_NAME)
    group = GroupResult(status=SKIPPED, name=name if named else None)
    queries: list[Mapping[str, Any]] = list(spec.get("queries") or [])
    if not spec.get("enabled", True):
        group.message = "disabled"
        return group
    try:
        engine = engine or load_engine(str(spec.get("type")))
        target, endpoints = _locate(ctx, spec, engine)
    except CheckError as exc:
        return _not_run(group, queries, f"cannot locate the database: {ctx.scrub(str(exc))}", "located")
    where = f"{engine.name} at {endpoints[0]}" + (f"/{target.database}" if target.database else "")
    connect_timeout = float(spec.get("connectTimeoutSeconds") or DEFAULT_CONNECT_TIMEOUT)
    read_timeout = max(float(q.get("timeoutSeconds") or DEFAULT_QUERY_TIMEOUT) for q in queries) if queries else 0.0
    session: Session | None = None
    try:
        for index, query in enumerate(queries):
            if session is None or session.broken:
                if session is not None:
                    session.close()
                session = None
                try:
                    session = _connect(ctx, engine, target, endpoints, connect_timeout, read_timeout)
                except CheckError as exc:
                    reason = ctx.scrub(str(exc))
                    if index == 0:
                        return _not_run(group, queries, f"cannot connect to {where}: {reason}", "reached")
                    group.checks += [_error(q, f"not run: cannot reconnect: {reason}") for q in queries[index:]]
                    break
            check, newest = _run_query(ctx, engine, session, query)
            group.checks.append(check)
            if newest is not None and (group.newest_data is None or newest > group.newest_data):
                group.newest_data = newest
    finally:
        if session is not None:
            session.close()
    group.status = rollup(c.status for c in group.checks)
    passed = sum(c.status == PASSED for c in group.checks)
    group.message = f"{where}: {passed} of {len(group.checks)} queries passed"
    return group


def _error(query: Mapping[str, Any], text: str) -> CheckResult:
    return CheckResult(str(query.get("name", "query")), ERROR, text)


def _not_run(group: GroupResult, queries: Sequence[Mapping[str, Any]], reason: str, step: str) -> GroupResult:
    group.status = ERROR
    group.message = reason
    group.checks = [_error(q, f"not run: the database could not be {step} (see the check's message)") for q in queries]
    return group


def _locate(ctx: CheckContext, spec: Mapping[str, Any], engine: Engine) -> tuple[Target, list[Endpoint]]:
    """The target (with credentials) and its endpoints in the sandbox; ``CheckError`` if impossible."""
    service_ref = spec.get("serviceRef")
    secret_ref = (spec.get("connectionString") or {}).get("secretRef")
    if service_ref:
        source = ctx.source_namespace(service_ref.get("namespace"))
        port = int(service_ref.get("port") or engine.default_port)
        target = Target(hosts=[(f"{service_ref['name']}.{source}", port)])
        default_source: str | None = source
    elif secret_ref:
        default_source = secret_ref.get("namespace")
        text = ctx.secret(secret_ref, str(secret_ref["key"]))
        text = ctx.substitute(text, default_source)
        ctx.remember_secret(text)
        try:
            target = engine.parse(text)
        except ValueError:
            where, _ = ctx.secret_data(secret_ref)
            raise CheckError(
                f"{where} key {secret_ref['key']!r} does not hold a valid {engine.name} connection string"
            ) from None
        if not target.hosts:
            raise CheckError(f"the connection string in Secret {secret_ref['name']} names no host")
    else:
        raise CheckError("set serviceRef or connectionString")
    credentials = spec.get("credentialsSecretRef")
    if credentials:
        username_key = str(credentials.get("usernameKey") or "username")
        target.user = ctx.secret(credentials, username_key, default_source, sensitive=False)
        target.password = ctx.secret(credentials, str(credentials.get("passwordKey") or "password"), default_source)
    if spec.get("database"):
        target.database = str(spec["database"])
    endpoints = [ctx.resolve(host, port or engine.default_port, default_source) for host, port in target.hosts]
    return target, endpoints


def _connect(
    ctx: CheckContext,
    engine: Engine,
    target: Target,
    endpoints: Sequence[Endpoint],
    connect_timeout: float,
    query_timeout: float,
) -> Session:
    """Connect with retries for transient failures (see the module docstring)."""
    tried = 0
    try:
        for attempt in ctx.retrying(engine.is_transient, ctx.retries):
            with attempt:
                tried += 1
                timeout = ctx.budget(connect_timeout)
                read_timeout = ctx.budget(query_timeout) + SOCKET_TIMEOUT_GRACE
                return engine.connect(target, endpoints, timeout, read_timeout)
    except CheckError:
        raise
    except Exception as exc:  # the driver's error, after the last attempt
        suffix = f" (after {tried} attempts)" if tried > 1 else ""
        raise CheckError(engine.describe(exc) + suffix) from None
    raise CheckError("no connection attempt was made")  # unreachable: the loop returns or raises


def _run_query(
    ctx: CheckContext, engine: Engine, session: Session, query: Mapping[str, Any]
) -> tuple[CheckResult, datetime | None]:
    """Run and judge one query, returning its result and the newest timestamp it found; every
    failure becomes an ``Error`` result with its reason."""
    name = str(query.get("name", "query"))
    started = ctx.clock()
    try:
        timeout = ctx.budget(float(query.get("timeoutSeconds") or DEFAULT_QUERY_TIMEOUT))
        result = session.run(query, timeout)
    except CheckError as exc:
        return CheckResult(name, ERROR, ctx.scrub(str(exc)), ctx.clock() - started), None
    except Exception as exc:  # the driver's error: bad SQL, unknown column, lost connection, ...
        text = f"query failed: {ctx.scrub(engine.describe(exc))}"
        return CheckResult(name, ERROR, text, ctx.clock() - started), None
    evaluation = evaluate(query, result, ctx.reference_time)
    check = CheckResult(name, evaluation.status, evaluation.text, ctx.clock() - started, figures=figures(query, result))
    return check, evaluation.newest
