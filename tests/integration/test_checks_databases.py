"""Database checks against real servers: PostgreSQL, MariaDB and FerretDB (MongoDB wire protocol).

The servers run on loopback (``e2e/testbed/databases.sh``); the checks find them the way they
find a restored database: through a Service in the sandbox namespace on the test bed (an
``ExternalName`` Service pointing at ``localhost``) and Secrets read through the API server.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lazarus.checks.results import ERROR, FAILED, PASSED
from tests.integration.test_checks_fixtures import SOURCE, Sandbox

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.test_checks_fixtures"]

TABLE = "lazarus_it_orders"
EVIL = "lazarus_it_evil"  # what the write attempts would create
SEEDED_AT = datetime.now(UTC).replace(microsecond=0)
NEWEST = SEEDED_AT - timedelta(hours=1)  # row i was created i hours before SEEDED_AT
ROWS = [(i, "paid" if i <= 3 else "open", i * 10.5, SEEDED_AT - timedelta(hours=i)) for i in range(1, 6)]


@dataclass(frozen=True)
class Engine:
    """How each purpose is expressed on one engine."""

    key: str
    type: str
    service: str
    queries: dict[str, dict[str, Any]]
    writes: tuple[dict[str, Any], ...]
    slow: dict[str, Any] | None
    unknown_column: dict[str, Any] | None


def sql(text: str) -> dict[str, Any]:
    return {"sql": text}


SQL_QUERIES = {
    "count": sql(f"SELECT count(*) AS total FROM {TABLE}"),
    "columns": sql(f"SELECT column_name FROM information_schema.columns WHERE table_name = '{TABLE}'"),
    "newest": sql(f"SELECT max(created_at) FROM {TABLE}"),
    "value": sql(f"SELECT status FROM {TABLE} WHERE id = 1"),
    "rows": sql(f"SELECT id FROM {TABLE} WHERE status = 'paid'"),
    "bad": sql("SELEC 1"),
    "wide": sql(f"SELECT id, status FROM {TABLE}"),
}
SQL_WRITES = (
    sql(f"INSERT INTO {TABLE} (id, status) VALUES (99, 'x')"),
    sql(f"UPDATE {TABLE} SET status = 'hacked'"),
    sql(f"CREATE TABLE {EVIL} (a int)"),
    sql(f"SELECT 1; DELETE FROM {TABLE}"),
)
ENGINES = {
    "PG": Engine(
        "PG",
        "postgres",
        "postgres",
        SQL_QUERIES,
        SQL_WRITES,
        sql("SELECT pg_sleep(10)"),
        sql(f"SELECT nope FROM {TABLE}"),
    ),
    "MYSQL": Engine(
        "MYSQL",
        "mysql",
        "mysql",
        SQL_QUERIES,
        SQL_WRITES,
        sql("SELECT SLEEP(10)"),
        sql(f"SELECT nope FROM {TABLE}"),
    ),
    "MONGO": Engine(
        "MONGO",
        "mongodb",
        "mongo",
        {
            "count": {"collection": TABLE},
            "columns": {"collection": TABLE, "pipeline": [{"$group": {"_id": "$status"}}]},
            "newest": {
                "collection": TABLE,
                "pipeline": [{"$sort": {"created_at": -1}}, {"$limit": 1}, {"$project": {"_id": 0, "created_at": 1}}],
            },
            "value": {"collection": TABLE, "pipeline": [{"$match": {"id": 1}}, {"$project": {"_id": 0, "status": 1}}]},
            "rows": {"collection": TABLE, "filter": {"status": "paid"}},
            "bad": {"collection": TABLE, "pipeline": [{"$bogus": 1}]},
            "wide": {"collection": TABLE, "pipeline": [{"$project": {"_id": 0, "id": 1, "status": 1}}]},
        },
        (
            {"collection": TABLE, "pipeline": [{"$out": EVIL}]},
            {"collection": TABLE, "pipeline": [{"$match": {}}, {"$merge": {"into": EVIL}}]},
        ),
        None,  # FerretDB has no way to make a query slow ($where, $function and sleep are not implemented)
        None,  # documents have no schema: an unknown field is not an error in MongoDB
    ),
}
PASSING: dict[str, dict[str, Any]] = {
    "count": {"expectedRange": {"min": 1, "max": 10}},
    "columns": {"expectedColumns": ["id", "status", "created_at"]},
    "newest": {"expectedRecency": 7200},
    "value": {"expectedValue": "paid"},
    "rows": {"expectedRows": 3},
}
FAILING: dict[str, tuple[dict[str, Any], str]] = {
    "count": ({"expectedRange": {"min": 100, "max": 200}}, "5 (outside range 100-200)"),
    "columns": ({"expectedColumns": ["id", "email"]}, "Missing 1 of 2 expected values: email"),
    "newest": ({"expectedRecency": 60}, "older than the allowed 60s"),
    "value": ({"expectedValue": "open"}, "Status: 'paid' (expected 'open')"),
    "rows": ({"expectedRows": 4}, "Rows: 3 (expected 4)"),
}
MONGO_COLUMNS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "columns": ({"expectedColumns": ["paid", "open"]}, {"expectedColumns": ["paid", "refunded"]})
}


def _seed_postgres(host: str, port: str, user: str, password: str, database: str) -> Callable[[], int]:
    import psycopg

    def connect() -> psycopg.Connection[Any]:
        return psycopg.connect(host=host, port=port, user=user, password=password, dbname=database, autocommit=True)

    with connect() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, status text, amount numeric, created_at timestamptz)")
        conn.cursor().executemany(f"INSERT INTO {TABLE} VALUES (%s, %s, %s, %s)", ROWS)

    def count() -> int:
        with connect() as conn:
            row = conn.execute(
                f"SELECT count(*), to_regclass('{EVIL}') IS NULL FROM {TABLE} WHERE status <> 'hacked'"
            ).fetchone()
            return int(row[0]) if row and row[1] else -1

    return count


def _seed_mysql(host: str, port: str, user: str, password: str, database: str) -> Callable[[], int]:
    import pymysql

    def connect() -> Any:
        return pymysql.connect(
            host=host, port=int(port), user=user, password=password, database=database, autocommit=True
        )

    with connect() as conn, conn.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cursor.execute(
            f"CREATE TABLE {TABLE} (id int PRIMARY KEY, status text, amount decimal(10,2), created_at datetime)"
        )
        rows = [(*r[:3], r[3].replace(tzinfo=None)) for r in ROWS]
        cursor.executemany(f"INSERT INTO {TABLE} VALUES (%s, %s, %s, %s)", rows)

    def count() -> int:
        with connect() as conn, conn.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM information_schema.tables WHERE table_name = '{EVIL}'")
            if cursor.fetchone()[0]:
                return -1
            cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE status <> 'hacked'")
            return int(cursor.fetchone()[0])

    return count


def _seed_mongo(host: str, port: str, user: str, password: str, database: str) -> Callable[[], int]:
    import pymongo

    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        host=host, port=int(port), username=user, password=password, authSource=database, directConnection=True
    )
    client[database][TABLE].drop()
    client[database][TABLE].insert_many([{"id": i, "status": s, "amount": a, "created_at": t} for i, s, a, t in ROWS])

    def count() -> int:
        if EVIL in client[database].list_collection_names():
            return -1
        return client[database][TABLE].count_documents({"status": {"$ne": "hacked"}})

    return count


SEEDS = {"PG": _seed_postgres, "MYSQL": _seed_mysql, "MONGO": _seed_mongo}


@pytest.fixture(scope="module")
def seeded(databases: dict[str, dict[str, str]], sandbox: Sandbox) -> dict[str, Callable[[], int]]:
    """Every server seeded; Services and credentials in the sandbox like a restored application's."""
    counts = {
        engine: SEEDS[engine](*(databases[engine][k] for k in ("HOST", "PORT", "USER", "PASSWORD", "DATABASE")))
        for engine in ENGINES
    }
    for engine in ENGINES.values():
        sandbox.external_service(engine.service)
        settings = databases[engine.key]
        sandbox.secret(
            f"{engine.service}-credentials", {"username": settings["USER"], "password": settings["PASSWORD"]}
        )
        sandbox.secret(f"{engine.service}-wrong", {"username": settings["USER"], "password": "not-the-password"})
    return counts


@pytest.fixture(params=list(ENGINES))
def engine(request: pytest.FixtureRequest, seeded: dict[str, Callable[[], int]]) -> Iterator[Engine]:
    yield ENGINES[request.param]
    assert seeded[request.param]() == len(ROWS), "the test data changed: a check wrote to the database"


def check(engine: Engine, settings: dict[str, str], queries: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": engine.service,
        "type": engine.type,
        "serviceRef": {"name": engine.service, "port": int(settings["PORT"])},
        "database": settings["DATABASE"],
        "credentialsSecretRef": {"name": f"{engine.service}-credentials"},
        "connectTimeoutSeconds": 3,
        "queries": queries,
    }
    spec.update(overrides)
    return spec


def queries_for(engine: Engine, expectations: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": purpose, **engine.queries[purpose], **expected} for purpose, expected in expectations.items()]


def run_one(sandbox: Sandbox, spec: dict[str, Any], **checks: Any) -> Any:
    report = sandbox.run({"retries": 0, "databases": [spec], **checks}, backup_time=SEEDED_AT)
    return report, report.status["databases"][0]


def test_every_expectation_passes(engine: Engine, databases: dict[str, dict[str, str]], sandbox: Sandbox) -> None:
    expectations = dict(PASSING)
    if engine.key == "MONGO":
        expectations["columns"] = MONGO_COLUMNS["columns"][0]
    report, group = run_one(sandbox, check(engine, databases[engine.key], queries_for(engine, expectations)))
    assert [(c["name"], c["status"]) for c in group["checks"]] == [(p, PASSED) for p in expectations], group
    assert report.passed
    assert report.newest_data == NEWEST
    results = {c["name"]: c["result"] for c in group["checks"]}
    assert results["count"].endswith("5 (within range 1-10)")
    assert results["newest"].startswith(f"Newest: {NEWEST.isoformat()} (3600s before the backup")
    # The same results as data, for baselines (lazarus.checks.results.QueryFigures).
    figures = {c["name"]: c for c in group["checks"]}
    mongo = engine.key == "MONGO"
    assert (figures["count"]["value"], figures["count"]["rows"]) == (5, 5 if mongo else 1)
    assert figures["rows"]["rows"] == 3
    assert set(figures["columns"]["names"]) == ({"paid", "open"} if mongo else {"id", "status", "amount", "created_at"})
    assert "names" not in figures["count"] and "value" not in figures["value"]  # text is not a value
    if not mongo:
        assert figures["count"]["columns"] == ["total"]


def test_every_expectation_fails(engine: Engine, databases: dict[str, dict[str, str]], sandbox: Sandbox) -> None:
    failing = dict(FAILING)
    if engine.key == "MONGO":
        failing["columns"] = (MONGO_COLUMNS["columns"][1], "Missing 1 of 2 expected values: refunded")
    queries = queries_for(engine, {purpose: expected for purpose, (expected, _) in failing.items()})
    report, group = run_one(sandbox, check(engine, databases[engine.key], queries))
    assert group["status"] == FAILED and not report.passed
    for item in group["checks"]:
        assert item["status"] == FAILED, item
        assert failing[item["name"]][1] in item["result"], item


def test_queries_that_cannot_run_are_errors(
    engine: Engine, databases: dict[str, dict[str, str]], sandbox: Sandbox
) -> None:
    queries = [
        {"name": "bad", **engine.queries["bad"]},
        {"name": "wide", **engine.queries["wide"], "expectedRange": {"min": 1}},
        {"name": "fine", **engine.queries["count"], "expectedRange": {"min": 1}},
    ]
    if engine.unknown_column:
        queries.append({"name": "unknown-column", **engine.unknown_column})
    _, group = run_one(sandbox, check(engine, databases[engine.key], queries))
    results = {c["name"]: (c["status"], c["result"]) for c in group["checks"]}
    assert results["fine"][0] == PASSED  # one failing query never stops the others
    assert results["bad"][0] == ERROR
    expected_bad = {
        "PG": "42601: syntax error",
        "MYSQL": "error 1064",
        "MONGO": 'Unrecognized pipeline stage name: "$bogus"',
    }
    assert expected_bad[engine.key] in results["bad"][1]
    assert results["wide"] == (
        ERROR,
        "expectedRange needs a single value, but the query returned 5 row(s) of 2 column(s)",
    )
    if engine.unknown_column:
        assert results["unknown-column"][0] == ERROR
        assert "nope" in results["unknown-column"][1]


def test_writes_are_refused(engine: Engine, databases: dict[str, dict[str, str]], sandbox: Sandbox) -> None:
    queries = [{"name": f"write-{i}", **w} for i, w in enumerate(engine.writes)]
    _, group = run_one(sandbox, check(engine, databases[engine.key], queries))
    for item in group["checks"]:
        assert item["status"] == ERROR, item
    results = [c["result"] for c in group["checks"]]
    if engine.key == "MONGO":
        assert all(r.startswith("refused: pipeline stage $") for r in results), results
    else:
        assert all(r.startswith("refused: the check's session is read-only") for r in results[:3]), results
        assert "query failed" in results[3]  # a second statement is refused outright
    # the engine fixture asserts afterwards that the data is unchanged


def test_a_slow_query_is_cut_off(engine: Engine, databases: dict[str, dict[str, str]], sandbox: Sandbox) -> None:
    if engine.slow is None:
        pytest.skip("FerretDB cannot run a slow query on purpose; maxTimeMS and socketTimeoutMS are still set")
    started = time.monotonic()
    _, group = run_one(
        sandbox, check(engine, databases[engine.key], [{"name": "slow", **engine.slow, "timeoutSeconds": 1}])
    )
    assert time.monotonic() - started < 4
    assert group["checks"][0]["status"] == ERROR
    assert group["checks"][0]["result"] == "query cancelled: it ran longer than its timeout of 1s"


def test_the_overall_timeout_cuts_off_a_running_query(databases: dict[str, dict[str, str]], sandbox: Sandbox) -> None:
    engine = ENGINES["PG"]
    spec = check(engine, databases["PG"], [{"name": "slow", **(engine.slow or {}), "timeoutSeconds": 60}])
    started = time.monotonic()
    report, group = run_one(sandbox, spec, timeout=2)
    assert time.monotonic() - started < 3.5
    assert group["status"] == ERROR and not report.passed
    # The query's own timeout was capped by the overall deadline: the server cancelled it.
    assert group["checks"][0]["result"].startswith(("query cancelled", "not finished: did not finish within"))


def test_wrong_password_is_an_error_without_the_password(
    engine: Engine,
    databases: dict[str, dict[str, str]],
    sandbox: Sandbox,
) -> None:
    spec = check(engine, databases[engine.key], queries_for(engine, {"count": {}}))
    spec["credentialsSecretRef"] = {"name": f"{engine.service}-wrong"}
    report, group = run_one(sandbox, spec, retries=3)
    assert group["status"] == ERROR
    expected = {
        "PG": "password authentication failed",
        "MYSQL": "error 1045: Access denied",
        "MONGO": "AuthenticationFailed",
    }
    assert expected[engine.key] in group["message"], group["message"]
    assert "after" not in group["message"]  # an authentication failure is not retried
    assert "not-the-password" not in str(report)


def test_unreachable_server_is_an_error_after_retries(
    engine: Engine,
    databases: dict[str, dict[str, str]],
    sandbox: Sandbox,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    spec = check(engine, databases[engine.key], queries_for(engine, {"count": {}}))
    spec["serviceRef"]["port"] = closed_port
    started = time.monotonic()
    _, group = run_one(sandbox, spec, retries=1)
    assert 1.0 <= time.monotonic() - started < 12
    assert group["status"] == ERROR
    assert group["message"].startswith(f"cannot connect to {engine.type} at localhost:{closed_port}")
    assert group["message"].endswith("(after 2 attempts)")
    assert "refused" in group["message"].lower()


def test_a_server_that_never_answers_does_not_hang_the_check(
    engine: Engine,
    databases: dict[str, dict[str, str]],
    sandbox: Sandbox,
) -> None:
    """A listener that accepts connections and never says a word: the connect timeout ends it."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        spec = check(engine, databases[engine.key], queries_for(engine, {"count": {}}), connectTimeoutSeconds=2)
        spec["serviceRef"]["port"] = silent.getsockname()[1]
        started = time.monotonic()
        _, group = run_one(sandbox, spec)
        assert time.monotonic() - started < 6
        assert group["status"] == ERROR and group["message"].startswith("cannot connect")
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        silent.close()


def _uri(engine: Engine, settings: dict[str, str], host: str) -> str:
    """The engine's connection string to ``host`` with the test bed's credentials and port."""
    scheme = {"PG": "postgresql", "MYSQL": "mysql", "MONGO": "mongodb"}[engine.key]
    return f"{scheme}://{settings['USER']}:{settings['PASSWORD']}@{host}:{settings['PORT']}/{settings['DATABASE']}"


def test_connection_string_from_the_test_namespace_with_the_placeholder(
    engine: Engine,
    databases: dict[str, dict[str, str]],
    sandbox: Sandbox,
) -> None:
    settings = databases[engine.key]
    uri = _uri(engine, settings, f"{engine.service}.{{{{ .SandboxNamespace }}}}.svc")
    sandbox.secret(f"{engine.service}-uri", {"uri": uri}, in_test_namespace=True)
    spec = check(engine, settings, queries_for(engine, {"count": {"expectedRange": {"min": 5, "max": 5}}}))
    del spec["serviceRef"], spec["credentialsSecretRef"], spec["database"]
    spec["connectionString"] = {"secretRef": {"name": f"{engine.service}-uri", "key": "uri", "source": "TestNamespace"}}
    report, group = run_one(sandbox, spec)
    assert group["status"] == PASSED, group
    assert settings["PASSWORD"] not in str(report)


def test_restored_connection_string_naming_the_source_namespace(
    engine: Engine,
    databases: dict[str, dict[str, str]],
    sandbox: Sandbox,
) -> None:
    """A Secret as production had it (host in the SOURCE namespace) reaches the sandbox copy."""
    settings = databases[engine.key]
    uri = _uri(engine, settings, f"{engine.service}.{SOURCE}.svc.cluster.local")
    sandbox.secret(f"{engine.service}-app", {"DATABASE_URL": uri})
    spec = check(engine, settings, queries_for(engine, {"rows": {"expectedRows": 3}}))
    del spec["serviceRef"], spec["credentialsSecretRef"], spec["database"]
    spec["connectionString"] = {"secretRef": {"name": f"{engine.service}-app", "key": "DATABASE_URL"}}
    _, group = run_one(sandbox, spec)
    assert group["status"] == PASSED, group
    assert group["message"].startswith(f"{engine.type} at localhost:{settings['PORT']}/")


def test_missing_secret_key_and_service_are_named(databases: dict[str, dict[str, str]], sandbox: Sandbox) -> None:
    engine, settings = ENGINES["PG"], databases["PG"]
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "no-secret": ({"credentialsSecretRef": {"name": "gone"}}, f"Secret {sandbox.namespace}/gone not found"),
        "no-key": (
            {"credentialsSecretRef": {"name": "postgres-credentials", "passwordKey": "pw"}},
            "has no key 'pw' (its keys: password, username)",
        ),
        "no-service": (
            {"serviceRef": {"name": "nowhere", "port": 5432}},
            f"Service {sandbox.namespace}/nowhere not found (restored from namespace {SOURCE}",
        ),
        "not-restored": ({"serviceRef": {"name": "postgres", "namespace": "prod"}}, "namespace 'prod' is not restored"),
    }
    specs = [
        {**check(engine, settings, queries_for(engine, {"count": {}})), **overrides, "name": name}
        for name, (overrides, _) in cases.items()
    ]
    report = sandbox.run({"retries": 0, "databases": specs})
    for group in report.status["databases"]:
        assert group["status"] == ERROR
        assert cases[group["name"]][1] in group["message"], group["message"]
