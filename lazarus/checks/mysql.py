"""MySQL and MariaDB checks with PyMySQL (imported with this module: only when a mysql check runs).

Safety, per session and per query:

- read-only twice over: ``SET SESSION TRANSACTION READ ONLY``, and every query runs in its own
  ``START TRANSACTION READ ONLY`` ... ``ROLLBACK``; writes and DDL fail with error 1792;
- one statement per query: PyMySQL does not ask for ``CLIENT_MULTI_STATEMENTS``, so the server
  rejects ``SELECT 1; DELETE ...`` as a syntax error;
- statement timeout: MariaDB's ``max_statement_time`` (any statement) or MySQL's
  ``max_execution_time`` (SELECT only), plus socket read/write timeouts as the backstop;
- ``connect_timeout`` per attempt; ``time_zone = '+00:00'`` so timestamps come back in UTC;
  rows are streamed (unbuffered cursor) and only the first ``MAX_KEPT_ROWS`` kept.

Connection strings: ``mysql://``, ``mariadb://`` or ``mysql+pymysql://`` URIs (a leading ``jdbc:``
is ignored) with one host; of the options only ``charset`` is used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pymysql
import pymysql.cursors

from lazarus.checks.context import CheckError, Endpoint
from lazarus.checks.database import Target, parse_uri
from lazarus.checks.expectations import QueryResult, collect

SCHEMES = ("mysql", "mariadb", "mysql+pymysql")
DEFAULT_CHARSET = "utf8mb4"
PROGRAM_NAME = "lazarus-health-check"
# Server error codes.
_TIMEOUT_CODES = {1969, 3024, 1317}  # MariaDB max_statement_time, MySQL max_execution_time, interrupted
_READ_ONLY_CODES = {1792, 1290, 1836}  # read-only transaction, --read-only server, read-only mode
_LOST_CODES = {2006, 2013, 2014, 2055}  # gone away, lost during query, out of sync, lost at handshake
# Connection failures that a retry cannot fix: access denied (user, database), unknown database,
# authentication plugin problems.
_PERMANENT_CONNECT_CODES = {1044, 1045, 1049, 1251, 1698, 2059}


def _code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


class MySQLSession:
    """A read-only PyMySQL connection."""

    def __init__(self, connection: pymysql.connections.Connection[Any], mariadb: bool) -> None:
        self.connection = connection
        self.mariadb = mariadb
        self.broken = False

    def run(self, query: Mapping[str, Any], timeout: float) -> QueryResult:
        """Stream one statement's rows in a read-only transaction cut off after ``timeout``."""
        cursor = self.connection.cursor()
        try:
            if self.mariadb:
                cursor.execute("SET SESSION max_statement_time = %s", (round(timeout, 3),))
            else:
                cursor.execute("SET SESSION max_execution_time = %s", (max(math.ceil(timeout * 1000), 1),))
            cursor.execute("START TRANSACTION READ ONLY")
            cursor.execute(str(query["sql"]))  # no arguments: the SQL is sent exactly as written
            return collect([str(d[0]) for d in cursor.description or []], cursor)
        except pymysql.MySQLError as exc:
            code = _code(exc)
            if code in _TIMEOUT_CODES:
                raise CheckError(f"query cancelled: it ran longer than its timeout of {timeout:g}s") from None
            if code in _READ_ONLY_CODES:
                raise CheckError(f"refused: the check's session is read-only (error {code}: {exc.args[1]})") from None
            if code in _LOST_CODES or isinstance(exc, pymysql.err.InterfaceError):
                self.broken = True
            raise
        finally:
            self._finish(cursor)

    def _finish(self, cursor: pymysql.cursors.Cursor) -> None:
        if self.broken:
            return
        try:
            cursor.close()
            self.connection.rollback()
        except pymysql.MySQLError:
            self.broken = True

    def close(self) -> None:
        """Close the connection; never raises."""
        try:
            self.connection.close()
        except pymysql.MySQLError:
            pass


class MySQLEngine:
    """The ``mysql`` database type (MySQL and MariaDB)."""

    name = "mysql"
    default_port = 3306

    def parse(self, connection_string: str) -> Target:
        """A ``mysql://`` URI; ``ValueError`` if malformed."""
        return parse_uri(connection_string, SCHEMES)

    def connect(
        self, target: Target, endpoints: Sequence[Endpoint], connect_timeout: float, read_timeout: float
    ) -> MySQLSession:
        """Open a read-only session on the one endpoint (see the module docstring)."""
        if len(endpoints) != 1:
            raise CheckError(f"a mysql check connects to one host, but the connection string names {len(endpoints)}")
        handshake_timeout = max(math.ceil(connect_timeout), 1)
        connection = pymysql.connect(
            host=endpoints[0].host,
            port=endpoints[0].port,
            user=target.user,
            password=target.password or "",
            database=target.database,
            charset=target.options.get("charset", DEFAULT_CHARSET),
            connect_timeout=handshake_timeout,
            # The handshake is read with the read timeout: a server that accepts the connection and
            # never greets must be given up after the connect timeout, not the query timeout.
            read_timeout=handshake_timeout,
            write_timeout=handshake_timeout,
            autocommit=False,
            local_infile=False,
            cursorclass=pymysql.cursors.SSCursor,
            program_name=PROGRAM_NAME,
        )
        # Queries get the longer socket timeouts. PyMySQL has no public setter; it re-applies these
        # attributes to its socket before every read and write.
        connection._read_timeout = connection._write_timeout = max(math.ceil(read_timeout), 1)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET SESSION TRANSACTION READ ONLY")
                cursor.execute("SET time_zone = '+00:00'")
        except pymysql.MySQLError:
            connection.close()
            raise
        return MySQLSession(connection, "mariadb" in connection.get_server_info().lower())

    def is_transient(self, exc: BaseException) -> bool:
        """Connection failures other than access denied and unknown database."""
        return isinstance(exc, pymysql.err.OperationalError) and _code(exc) not in _PERMANENT_CONNECT_CODES

    def describe(self, exc: BaseException) -> str:
        """``error CODE: message`` for server and client errors, the text otherwise."""
        code = _code(exc)
        if code is not None and len(exc.args) > 1:
            return f"error {code}: {exc.args[1]}"
        return str(exc) or type(exc).__name__


ENGINE = MySQLEngine()
