"""PostgreSQL checks with psycopg 3 (imported with this module: only when a postgres check runs).

Safety, per session and per query:

- read-only twice over: the session starts with ``default_transaction_read_only=on`` and every
  query runs in its own ``BEGIN READ ONLY`` ... ``ROLLBACK``; a write fails with SQLSTATE 25006;
- one statement per query: rows are streamed over the extended protocol, which refuses
  ``SELECT 1; DELETE ...``;
- ``statement_timeout`` is set (``SET LOCAL``) to the query's timeout; a query cut off by it is a
  clear ``CheckError``;
- ``connect_timeout`` per attempt, TCP keepalives and ``tcp_user_timeout`` so a server that
  vanishes mid-query is noticed instead of waited on forever;
- ``TimeZone=UTC``, so timestamps come back in UTC.

Connection strings: a ``postgresql://`` URI or libpq ``key=value`` pairs. ``hostaddr``, ``service``,
``servicefile`` and ``passfile`` are dropped: they would bypass the sandbox host mapping or read
files of the operator's container.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import conninfo, errors

from lazarus.checks.context import CheckError, Endpoint
from lazarus.checks.database import Target
from lazarus.checks.expectations import QueryResult, collect

APPLICATION_NAME = "lazarus-health-check"
# Keepalives: probe after 10 s idle, every 5 s, give up after 3 unanswered probes (~25 s).
KEEPALIVES_IDLE = 10
KEEPALIVES_INTERVAL = 5
KEEPALIVES_COUNT = 3
_DROPPED_PARAMETERS = ("hostaddr", "service", "servicefile", "passfile")
# Connection failures that a retry cannot fix (libpq reports them only as text).
_PERMANENT = (
    "password authentication failed",
    "authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
    "password is required",
    "no password supplied",
)


class PostgresSession:
    """A read-only psycopg connection."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection
        self.broken = False

    def run(self, query: Mapping[str, Any], timeout: float) -> QueryResult:
        """Stream one statement's rows in a read-only transaction cut off after ``timeout``."""
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true)", [str(max(math.ceil(timeout * 1000), 1))]
                )
                result = collect([], cursor.stream(str(query["sql"])))
                result.columns = [column.name for column in cursor.description or []]
                return result
        except errors.QueryCanceled:
            raise CheckError(f"query cancelled: it ran longer than its timeout of {timeout:g}s") from None
        except errors.ReadOnlySqlTransaction as exc:
            raise CheckError(f"refused: the check's session is read-only ({_first_line(exc)})") from None
        except psycopg.OperationalError:
            self.broken = True
            raise
        finally:
            self._rollback()

    def _rollback(self) -> None:
        if self.broken:
            return
        try:
            self.connection.rollback()
        except psycopg.Error:
            self.broken = True

    def close(self) -> None:
        """Close the connection; never raises."""
        try:
            self.connection.close()
        except psycopg.Error:
            pass


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class PostgresEngine:
    """The ``postgres`` database type."""

    name = "postgres"
    default_port = 5432

    def parse(self, connection_string: str) -> Target:
        """A URI or ``key=value`` pairs; ``ValueError`` if libpq cannot read it."""
        try:
            params = conninfo.conninfo_to_dict(connection_string)
        except psycopg.Error:
            raise ValueError("not a PostgreSQL connection string") from None
        hosts = [h for h in str(params.pop("host", "") or "").split(",") if h]
        if any(h.startswith("/") for h in hosts):
            raise ValueError("Unix-socket hosts cannot be reached from the operator")
        ports = [p for p in str(params.pop("port", "") or "").split(",") if p]
        if len(ports) == 1:
            ports *= len(hosts)
        if ports and len(ports) != len(hosts):
            raise ValueError("the numbers of hosts and ports differ")
        for name in _DROPPED_PARAMETERS:
            params.pop(name, None)
        user, password, database = params.pop("user", None), params.pop("password", None), params.pop("dbname", None)
        return Target(
            hosts=[(h, int(ports[i]) if ports else None) for i, h in enumerate(hosts)],
            user=str(user) if user else None,
            password=str(password) if password is not None else None,
            database=str(database) if database else None,
            options={k: str(v) for k, v in params.items() if v is not None},
        )

    def connect(
        self, target: Target, endpoints: Sequence[Endpoint], connect_timeout: float, read_timeout: float
    ) -> PostgresSession:
        """Open a read-only session (see the module docstring)."""
        params: dict[str, Any] = dict(target.options)
        params["options"] = f"{params.get('options', '')} -c default_transaction_read_only=on -c TimeZone=UTC".strip()
        params.update(
            host=",".join(e.host for e in endpoints),
            port=",".join(str(e.port) for e in endpoints),
            connect_timeout=max(math.ceil(connect_timeout), 1),
            application_name=APPLICATION_NAME,
            keepalives=1,
            keepalives_idle=KEEPALIVES_IDLE,
            keepalives_interval=KEEPALIVES_INTERVAL,
            keepalives_count=KEEPALIVES_COUNT,
            tcp_user_timeout=max(math.ceil(read_timeout * 1000), 1),
        )
        if target.user:
            params["user"] = target.user
        if target.password is not None:
            params["password"] = target.password
        if target.database:
            params["dbname"] = target.database
        connection = psycopg.connect(autocommit=False, **params)
        connection.read_only = True
        return PostgresSession(connection)

    def is_transient(self, exc: BaseException) -> bool:
        """Connection failures other than authentication and unknown database or role."""
        if not isinstance(exc, psycopg.OperationalError):
            return False
        text = str(exc).lower()
        return not any(marker in text for marker in _PERMANENT)

    def describe(self, exc: BaseException) -> str:
        """``SQLSTATE: first line`` for server errors, the libpq text otherwise."""
        sqlstate = getattr(exc, "sqlstate", None)
        line = _first_line(exc).replace("connection failed: ", "")
        return f"{sqlstate}: {line}" if sqlstate else line


ENGINE = PostgresEngine()
