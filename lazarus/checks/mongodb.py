"""MongoDB checks with pymongo (imported with this module: only when a mongodb check runs).

A query names a ``collection`` and either a ``filter`` (default: every document) or a
``pipeline``:

- ``filter``: the matching documents are the rows; the query's single value is their number
  (``count_documents``), named ``Count``. ``expectedColumns`` reads the first matching documents;
  ``expectedRecency`` needs a pipeline that returns one timestamp (the check says so).
- ``pipeline``: the documents the aggregation returns are the rows.

The columns of a document are its fields in order, without ``_id`` unless it is the only one (so
``{$group: {_id: "$status"}}`` lists statuses and ``{$project: {_id: 0, ts: 1}}`` one timestamp).
``filter`` and ``pipeline`` may use MongoDB Extended JSON (``{"$date": "2024-01-01T00:00:00Z"}``,
``{"$oid": "..."}``).

Safety:

- reads only: ``count_documents``, ``find`` and ``aggregate``; a pipeline with a ``$out`` or
  ``$merge`` stage anywhere is refused before anything is sent;
- a direct connection to one host (``directConnection``): replica-set members are never
  discovered, because the member names in a restored replica-set configuration point at
  production; with several hosts in the connection string the first is used;
- ``mongodb+srv://`` is refused for the same reason (its DNS records name production servers);
- ``maxTimeMS`` per operation, ``socketTimeoutMS`` as the backstop, ``connectTimeoutMS`` and
  ``serverSelectionTimeoutMS`` per connection attempt; timestamps come back in UTC.

``authSource`` is the connection string's (by default the database in its path), else the
database checked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pymongo
from bson import json_util
from pymongo import errors

from lazarus.checks.context import CheckError, Endpoint
from lazarus.checks.database import Target, parse_uri
from lazarus.checks.expectations import MAX_KEPT_ROWS, QueryResult, collect

APPLICATION_NAME = "lazarus-health-check"
_WRITING_STAGES = ("$out", "$merge")
# Options of a connection string that would undo the direct, single-host connection, and those the
# check sets itself (compared case-insensitively, as MongoDB reads URI options).
_DROPPED_OPTIONS = {
    o.lower()
    for o in (
        "replicaSet",
        "directConnection",
        "loadBalanced",
        "srvServiceName",
        "srvMaxHosts",
        "connectTimeoutMS",
        "serverSelectionTimeoutMS",
        "socketTimeoutMS",
        "appName",
        "retryReads",
        "retryWrites",
        "tz_aware",
        "connect",
        "username",
        "password",
        "host",
        "port",
    )
}
_EXECUTION_TIMEOUT = 50  # MaxTimeMSExpired


def _extended_json(value: Any) -> Any:
    """``value`` (plain JSON from the spec) with Extended JSON types decoded."""
    return json_util.loads(json.dumps(value))


def _writing_stage(node: Any) -> str | None:
    """The first ``$out``/``$merge`` key anywhere in ``node``, if any."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in _WRITING_STAGES:
                return str(key)
            found = _writing_stage(value)
            if found:
                return found
    elif isinstance(node, list):
        for item in node:
            found = _writing_stage(item)
            if found:
                return found
    return None


def _documents(documents: Iterable[Mapping[str, Any]]) -> QueryResult:
    """Documents as rows; the columns come from the first document (see the module docstring)."""
    iterator = iter(documents)
    first = next(iterator, None)
    if first is None:
        return QueryResult()
    columns = [k for k in first if k != "_id"] or list(first)

    def rows() -> Iterator[tuple[Any, ...]]:
        yield tuple(first.get(c) for c in columns)
        for document in iterator:
            yield tuple(document.get(c) for c in columns)

    return collect(columns, rows())


class MongoSession:
    """A read-only pymongo client on one database."""

    def __init__(self, client: pymongo.MongoClient[dict[str, Any]], database: str) -> None:
        self.client = client
        self.database = database
        self.broken = False

    def run(self, query: Mapping[str, Any], timeout: float) -> QueryResult:
        """Count, find or aggregate on ``collection`` within ``timeout``."""
        collection = self.client[self.database][str(query["collection"])]
        max_time_ms = max(math.ceil(timeout * 1000), 1)
        try:
            if query.get("pipeline") is not None:
                stage = _writing_stage(query["pipeline"])
                if stage:
                    raise CheckError(f"refused: pipeline stage {stage} writes to the database, and checks only read")
                return _documents(collection.aggregate(_extended_json(query["pipeline"]), maxTimeMS=max_time_ms))
            if query.get("expectedRecency") is not None:
                raise CheckError(
                    "expectedRecency needs one timestamp: use a pipeline such as "
                    '[{"$sort": {"ts": -1}}, {"$limit": 1}, {"$project": {"_id": 0, "ts": 1}}] instead of a filter'
                )
            selector = _extended_json(query.get("filter") or {})
            count = collection.count_documents(selector, maxTimeMS=max_time_ms)
            result = QueryResult(row_count=count, value=count, value_label="Count")
            if query.get("expectedColumns") is not None:
                found = _documents(collection.find(selector, limit=MAX_KEPT_ROWS, max_time_ms=max_time_ms))
                result.columns, result.rows = found.columns, found.rows
            return result
        except errors.ExecutionTimeout:
            raise CheckError(f"query cancelled: it ran longer than its timeout of {timeout:g}s") from None
        except errors.ConnectionFailure:
            self.broken = True
            raise

    def close(self) -> None:
        """Close the client; never raises."""
        try:
            self.client.close()
        except errors.PyMongoError:
            pass


class MongoEngine:
    """The ``mongodb`` database type."""

    name = "mongodb"
    default_port = 27017

    def parse(self, connection_string: str) -> Target:
        """A ``mongodb://`` URI; ``ValueError`` for ``mongodb+srv://`` and malformed ones."""
        if connection_string.strip().lower().startswith("mongodb+srv://"):
            raise ValueError("mongodb+srv:// is not supported: its DNS records name the production servers")
        target = parse_uri(connection_string, ("mongodb",))
        target.options = {k: v for k, v in target.options.items() if k.lower() not in _DROPPED_OPTIONS}
        if target.database:
            target.options.setdefault("authSource", target.database)
        return target

    def connect(
        self, target: Target, endpoints: Sequence[Endpoint], connect_timeout: float, read_timeout: float
    ) -> MongoSession:
        """Connect directly to the first endpoint, authenticate and ping."""
        if not target.database:
            raise CheckError("no database to check: set database, or name it in the connection string's path")
        timeout_ms = max(math.ceil(connect_timeout * 1000), 1)
        options: dict[str, Any] = dict(target.options)
        options.setdefault("authSource", target.database if target.user else None)
        if target.user:
            options.update(username=target.user, password=target.password or "")
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            host=endpoints[0].host,
            port=endpoints[0].port,
            directConnection=True,
            connectTimeoutMS=timeout_ms,
            serverSelectionTimeoutMS=timeout_ms,
            socketTimeoutMS=max(math.ceil(read_timeout * 1000), 1),
            appname=APPLICATION_NAME,
            retryReads=False,
            retryWrites=False,
            tz_aware=True,
            connect=False,
            **{k: v for k, v in options.items() if v is not None},
        )
        try:
            client[target.database].command("ping")
        except errors.PyMongoError:
            client.close()
            raise
        return MongoSession(client, target.database)

    def is_transient(self, exc: BaseException) -> bool:
        """Network failures and server-selection timeouts (not authentication or configuration)."""
        return isinstance(exc, errors.ConnectionFailure)

    def describe(self, exc: BaseException) -> str:
        """``CodeName: errmsg`` for server errors, the first part of the text otherwise."""
        if isinstance(exc, errors.OperationFailure):
            details = exc.details or {}
            return f"{details.get('codeName') or exc.code}: {details.get('errmsg') or exc}"
        return str(exc).split(", Timeout:")[0].split(", full error:")[0] or type(exc).__name__


ENGINE = MongoEngine()
