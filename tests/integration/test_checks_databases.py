"""Database checks on data Velero restored: PostgreSQL, MariaDB and FerretDB (MongoDB wire protocol).

A production namespace runs the three servers as StatefulSets with their data on PVCs
(``tests/integration/database_servers.py``); five orders are written, a Velero backup takes the
volumes (file-system backup), then production moves on (an order refunded, fifteen more). The
backup is restored into the sandbox, and the checks find the restored servers the way they find
any restored database: through the restored Services and Secrets of the sandbox. Every passing
expectation holds only for the backup's data, so a check that read production would fail.

The tests of connection failures (a closed port, a listener that never answers) test the drivers'
timeouts, not data: they point an ``ExternalName`` Service at ``localhost`` on this machine.
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
from kubernetes import client

from lazarus.checks.results import ERROR, FAILED, PASSED
from tests.integration import database_servers as servers
from tests.integration.conftest import delete_namespace_and_wait
from tests.integration.test_checks_fixtures import SOURCE, Sandbox
from tests.integration.workloads import apply, back_up_with_volumes, create_namespace, ready_pod_ip, restore_into

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.test_checks_fixtures"]

TABLE = "lazarus_it_orders"
EVIL = "lazarus_it_evil"  # what the write attempts would create
LOOPBACK = "loopback"  # an ExternalName Service to localhost, for the tests of connection failures
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


# Production moves on after the backup: row 1 is refunded and 15 orders arrive. Every passing
# expectation below holds only for the backup's five rows (count 1-10, three paid, row 1 paid).
AFTER_BACKUP = [(i, "open", 1.0, SEEDED_AT) for i in range(6, 21)]


def _postgres(settings: dict[str, str]) -> Data:
    import psycopg

    def connect() -> psycopg.Connection[Any]:
        return psycopg.connect(host=settings["HOST"], port=settings["PORT"], user=settings["USER"],
                               password=settings["PASSWORD"], dbname=settings["DATABASE"], autocommit=True)  # fmt: skip

    def seed() -> None:
        with connect() as conn:
            conn.execute(
                f"CREATE TABLE {TABLE} (id int PRIMARY KEY, status text, amount numeric, created_at timestamptz)"
            )
            conn.cursor().executemany(f"INSERT INTO {TABLE} VALUES (%s, %s, %s, %s)", ROWS)

    def move_on() -> None:
        with connect() as conn:
            conn.execute(f"UPDATE {TABLE} SET status = 'refunded' WHERE id = 1")
            conn.cursor().executemany(f"INSERT INTO {TABLE} VALUES (%s, %s, %s, %s)", AFTER_BACKUP)

    def count() -> int:
        with connect() as conn:
            row = conn.execute(
                f"SELECT count(*), to_regclass('{EVIL}') IS NULL FROM {TABLE} WHERE status <> 'hacked'"
            ).fetchone()
            return int(row[0]) if row and row[1] else -1

    return Data(seed, move_on, count)


def _mysql(settings: dict[str, str]) -> Data:
    import pymysql

    def execute(*statements: str, rows: list[tuple[Any, ...]] | None = None) -> int:
        conn = pymysql.connect(
            host=settings["HOST"], port=int(settings["PORT"]), user=settings["USER"], password=settings["PASSWORD"],
            database=settings["DATABASE"], autocommit=True,
        )  # fmt: skip
        with conn, conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
            if rows is not None:
                cursor.executemany(f"INSERT INTO {TABLE} VALUES (%s, %s, %s, %s)", rows)
            found = cursor.fetchone() if rows is None else None
            return int(found[0]) if found else 0

    def naive(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [(*r[:3], r[3].replace(tzinfo=None)) for r in rows]

    def count() -> int:
        if execute(f"SELECT count(*) FROM information_schema.tables WHERE table_name = '{EVIL}'"):
            return -1
        return execute(f"SELECT count(*) FROM {TABLE} WHERE status <> 'hacked'")

    return Data(
        lambda: execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, status text, amount decimal(10,2), "
                        "created_at datetime)", rows=naive(ROWS)),  # fmt: skip
        lambda: execute(f"UPDATE {TABLE} SET status = 'refunded' WHERE id = 1", rows=naive(AFTER_BACKUP)),
        count,
    )


def _mongo(settings: dict[str, str]) -> Data:
    import pymongo

    client_: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        host=settings["HOST"], port=int(settings["PORT"]), username=settings["USER"], password=settings["PASSWORD"],
        authSource=settings["DATABASE"], directConnection=True,
    )  # fmt: skip
    database = client_[settings["DATABASE"]]

    def documents(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return [{"id": i, "status": s, "amount": a, "created_at": t} for i, s, a, t in rows]

    def move_on() -> None:
        database[TABLE].update_one({"id": 1}, {"$set": {"status": "refunded"}})
        database[TABLE].insert_many(documents(AFTER_BACKUP))

    def count() -> int:
        if EVIL in database.list_collection_names():
            return -1
        return database[TABLE].count_documents({"status": {"$ne": "hacked"}})

    return Data(lambda: database[TABLE].insert_many(documents(ROWS)), move_on, count)


@dataclass(frozen=True)
class Data:
    """The test data on one server: write it, change it as production would after the backup, count it."""

    seed: Callable[[], object]
    move_on: Callable[[], object]
    count: Callable[[], int]


DATA = {"PG": _postgres, "MYSQL": _mysql, "MONGO": _mongo}


@pytest.fixture(scope="module")
def restored(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, sandbox: Sandbox
) -> Iterator[dict[str, Callable[[], int]]]:
    """Production's servers seeded, backed up with their volumes and changed; the backup restored
    into the module's sandbox, which then stands for production. Yields a count of each restored
    server's test rows."""
    production = create_namespace(core, "shop")
    try:
        apply(*(m for engine in ENGINES for m in servers.manifests(engine, production)))
        live = {engine: DATA[engine](servers.settings(engine, production)) for engine in ENGINES}
        for engine in ENGINES:
            server = servers.SERVERS[engine]
            ready_pod_ip(core, production, f"{server.service}-0")
            servers.first_contact(engine, live[engine].seed)
            # Credentials that do not work, restored with the rest.
            wrong = {"username": servers.USER, "password": "not-the-password"}
            apply(servers.secret(production, f"{server.service}-wrong", wrong))
        backup = back_up_with_volumes(custom, production)
        for engine in ENGINES:
            live[engine].move_on()
        restore_into(custom, backup, {production: sandbox.namespace})
        counts = {}
        for engine in ENGINES:
            ready_pod_ip(core, sandbox.namespace, f"{servers.SERVERS[engine].service}-0")
            counts[engine] = DATA[engine](servers.settings(engine, sandbox.namespace)).count
            servers.first_contact(engine, counts[engine])
            assert live[engine].count() == len(ROWS) + len(AFTER_BACKUP)
        sandbox.source = production
        yield counts
    finally:
        sandbox.source = SOURCE
        delete_namespace_and_wait(core, production)


@pytest.fixture(params=list(ENGINES))
def engine(request: pytest.FixtureRequest, restored: dict[str, Callable[[], int]]) -> Iterator[Engine]:
    yield ENGINES[request.param]
    assert restored[request.param]() == len(ROWS), "the test data changed: a check wrote to the database"


@pytest.fixture
def databases(restored: dict[str, Callable[[], int]], sandbox: Sandbox) -> dict[str, dict[str, str]]:
    """Each restored server's settings (port, user, password, database; host in the sandbox)."""
    return {engine: servers.settings(engine, sandbox.namespace) for engine in ENGINES}


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
    sandbox.external_service(LOOPBACK)
    spec = check(engine, databases[engine.key], queries_for(engine, {"count": {}}))
    spec["serviceRef"] = {"name": LOOPBACK, "port": closed_port}
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
        sandbox.external_service(LOOPBACK)
        spec = check(engine, databases[engine.key], queries_for(engine, {"count": {}}), connectTimeoutSeconds=2)
        spec["serviceRef"] = {"name": LOOPBACK, "port": silent.getsockname()[1]}
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
    """A Secret as production had it (host in the production namespace, which still runs) reaches
    the sandbox copy: three paid orders are the backup's, production has two."""
    settings = databases[engine.key]
    uri = _uri(engine, settings, f"{engine.service}.{sandbox.source}.svc.cluster.local")
    sandbox.secret(f"{engine.service}-app", {"DATABASE_URL": uri})
    spec = check(engine, settings, queries_for(engine, {"rows": {"expectedRows": 3}}))
    del spec["serviceRef"], spec["credentialsSecretRef"], spec["database"]
    spec["connectionString"] = {"secretRef": {"name": f"{engine.service}-app", "key": "DATABASE_URL"}}
    _, group = run_one(sandbox, spec)
    assert group["status"] == PASSED, group
    assert group["message"].startswith(f"{engine.type} at {engine.service}.{sandbox.namespace}.svc"), group["message"]


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
            f"Service {sandbox.namespace}/nowhere not found (restored from namespace {sandbox.source}",
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
