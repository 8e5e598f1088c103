"""The database-check flow (with a fake engine) and the engines' connection-string parsing."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from lazarus.checks.context import CheckError, Endpoint
from lazarus.checks.database import Target, load_engine, parse_uri, run_database_check
from lazarus.checks.expectations import QueryResult, collect
from lazarus.checks.results import ERROR, FAILED, PASSED, SKIPPED
from tests.unit.test_checks_fakes import SANDBOX, TEST_NAMESPACE, FakeRest, make_context


class Refused(Exception):
    """A transient connection failure of the fake driver."""


class Denied(Exception):
    """A permanent connection failure of the fake driver (wrong password)."""


class LostConnection(Exception):
    """The fake driver's connection broke during a query."""


@dataclass
class FakeSession:
    engine: FakeEngine
    broken: bool = False

    def run(self, query: Mapping[str, Any], timeout: float) -> QueryResult:
        self.engine.queries.append((str(query["sql"]), timeout))
        answer = self.engine.answers.get(str(query["sql"]))
        if isinstance(answer, LostConnection):
            self.broken = True
            raise answer
        if isinstance(answer, Exception):
            raise answer
        return answer if answer is not None else collect(["v"], [(1,)])

    def close(self) -> None:
        self.engine.closed += 1


@dataclass
class FakeEngine:
    """Connects after ``failures`` (exceptions raised in order); answers queries from ``answers``."""

    failures: list[Exception] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)
    connects: list[tuple[Target, list[Endpoint], float]] = field(default_factory=list)
    queries: list[tuple[str, float]] = field(default_factory=list)
    closed: int = 0
    name: str = "fakedb"
    default_port: int = 7777

    def parse(self, connection_string: str) -> Target:
        return parse_uri(connection_string, ("fakedb",))

    def connect(
        self, target: Target, endpoints: Sequence[Endpoint], connect_timeout: float, read_timeout: float
    ) -> FakeSession:
        self.connects.append((target, list(endpoints), connect_timeout))
        if self.failures:
            raise self.failures.pop(0)
        return FakeSession(self)

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, Refused)

    def describe(self, exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}"


def service_check(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "orders",
        "type": "postgres",
        "serviceRef": {"name": "db"},
        "database": "shop",
        "credentialsSecretRef": {"name": "db-credentials"},
        "queries": [{"name": "count", "sql": "SELECT count(*)", "expectedRange": {"min": 1}}],
    }
    spec.update(overrides)
    return spec


def rest_with_db() -> FakeRest:
    rest = FakeRest()
    rest.add_service(SANDBOX, "db", ports=[7777])
    rest.add_secret(SANDBOX, "db-credentials", {"username": "app", "password": "pa55word"})
    return rest


def test_service_ref_with_credentials() -> None:
    engine = FakeEngine()
    group = run_database_check(make_context(rest_with_db()), service_check(), named=True, engine=engine)
    assert (group.name, group.status) == ("orders", PASSED)
    assert group.message == f"fakedb at db.{SANDBOX}.svc:7777/shop: 1 of 1 queries passed"
    target, endpoints, _ = engine.connects[0]
    assert (target.user, target.password, target.database) == ("app", "pa55word", "shop")
    assert endpoints == [Endpoint(f"db.{SANDBOX}.svc", 7777)]
    assert engine.closed == 1


def test_connection_string_hosts_map_into_the_sandbox() -> None:
    rest = rest_with_db()
    rest.add_secret(TEST_NAMESPACE, "url", {"uri": "fakedb://u:pw1234@db.{{ .SandboxNamespace }}.svc:7777/app"})
    rest.add_secret(SANDBOX, "url", {"uri": "fakedb://u:pw1234@db.shop.svc.cluster.local/app"})
    for source in ("TestNamespace", "Sandbox"):
        engine = FakeEngine()
        spec = service_check(serviceRef=None, credentialsSecretRef=None, database=None)
        spec["connectionString"] = {"secretRef": {"name": "url", "key": "uri", "source": source}}
        assert run_database_check(make_context(rest), spec, named=False, engine=engine).status == PASSED
        target, endpoints, _ = engine.connects[0]
        assert (target.user, target.password, target.database) == ("u", "pw1234", "app")
        assert endpoints == [Endpoint(f"db.{SANDBOX}.svc", 7777)]


def test_transient_connection_failures_are_retried_with_backoff() -> None:
    sleeps: list[float] = []
    engine = FakeEngine(failures=[Refused("connection refused"), Refused("connection refused")])
    group = run_database_check(
        make_context(rest_with_db(), retries=3, sleeps=sleeps), service_check(), named=True, engine=engine
    )
    assert group.status == PASSED
    assert len(engine.connects) == 3 and len(sleeps) == 2


def test_retries_are_exhausted_then_the_reason_is_reported() -> None:
    engine = FakeEngine(failures=[Refused("connection refused")] * 5)
    group = run_database_check(make_context(rest_with_db(), retries=2), service_check(), named=True, engine=engine)
    assert group.status == ERROR
    assert group.message == (
        f"cannot connect to fakedb at db.{SANDBOX}.svc:7777/shop: Refused: connection refused (after 3 attempts)"
    )
    assert [c.result for c in group.checks] == ["not run: the database could not be reached (see the check's message)"]


def test_permanent_connection_failures_are_not_retried_and_secrets_are_scrubbed() -> None:
    engine = FakeEngine(failures=[Denied("password pa55word rejected for user app")])
    group = run_database_check(make_context(rest_with_db(), retries=3), service_check(), named=True, engine=engine)
    assert len(engine.connects) == 1
    assert group.status == ERROR
    assert group.message.endswith("Denied: password *** rejected for user app")


def test_a_failed_expectation_is_never_retried() -> None:
    engine = FakeEngine(answers={"SELECT count(*)": collect(["count"], [(0,)])})
    group = run_database_check(make_context(rest_with_db(), retries=3), service_check(), named=True, engine=engine)
    assert group.status == FAILED
    assert len(engine.connects) == 1 and len(engine.queries) == 1
    assert group.checks[0].result == "Count: 0 (expected at least 1)"


def test_query_errors_do_not_stop_the_next_query_and_a_lost_connection_is_remade() -> None:
    engine = FakeEngine(
        answers={"bad": RuntimeError("syntax error at or near SELEC"), "lost": LostConnection("server closed")}
    )
    queries = [{"name": n, "sql": n} for n in ("bad", "lost", "good")]
    group = run_database_check(make_context(rest_with_db()), service_check(queries=queries), named=True, engine=engine)
    assert [(c.name, c.status) for c in group.checks] == [("bad", ERROR), ("lost", ERROR), ("good", PASSED)]
    assert group.checks[0].result == "query failed: RuntimeError: syntax error at or near SELEC"
    assert len(engine.connects) == 2
    assert group.status == ERROR


def test_query_timeouts_are_passed_and_capped_by_the_deadline() -> None:
    engine = FakeEngine()
    queries = [{"name": "a", "sql": "a", "timeoutSeconds": 5}, {"name": "b", "sql": "b", "timeoutSeconds": 3600}]
    run_database_check(
        make_context(rest_with_db(), seconds=60), service_check(queries=queries), named=True, engine=engine
    )
    assert engine.queries[0] == ("a", 5.0)
    assert engine.queries[1][1] <= 60


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (service_check(serviceRef={"name": "nope"}), f"Service {SANDBOX}/nope not found"),
        (service_check(serviceRef={"name": "db", "namespace": "prod"}), "namespace 'prod' is not restored"),
        (service_check(credentialsSecretRef={"name": "missing"}), f"Secret {SANDBOX}/missing not found"),
        (
            service_check(credentialsSecretRef={"name": "db-credentials", "passwordKey": "pw"}),
            "has no key 'pw' (its keys: password, username)",
        ),
        (service_check(type="oracle"), "unknown database type 'oracle'"),
    ],
)
def test_a_check_that_cannot_be_located_is_an_error(spec: dict[str, Any], message: str) -> None:
    group = run_database_check(
        make_context(rest_with_db()), spec, named=True, engine=None if "oracle" in message else FakeEngine()
    )
    assert group.status == ERROR
    assert message in group.message
    assert [c.status for c in group.checks] == [ERROR]


def test_an_invalid_connection_string_is_named_but_never_quoted() -> None:
    rest = rest_with_db()
    rest.add_secret(SANDBOX, "url", {"uri": "this is not:a uri with password hunter22"})
    spec = service_check(serviceRef=None, connectionString={"secretRef": {"name": "url", "key": "uri"}})
    group = run_database_check(make_context(rest), spec, named=False, engine=FakeEngine())
    assert (
        group.message
        == f"cannot locate the database: Secret {SANDBOX}/url key 'uri' does not hold a valid fakedb connection string"
    )


def test_disabled_check_is_skipped() -> None:
    group = run_database_check(make_context(FakeRest()), service_check(enabled=False), named=False, engine=FakeEngine())
    assert (group.status, group.name, group.message) == (SKIPPED, None, "disabled")


def test_newest_timestamp_of_recency_queries_is_reported() -> None:
    from datetime import UTC, datetime

    older, newer = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    engine = FakeEngine(answers={"a": collect(["t"], [(older,)]), "b": collect(["t"], [(newer,)])})
    queries = [{"name": n, "sql": n, "expectedRecency": 10**9} for n in ("b", "a")]
    group = run_database_check(make_context(rest_with_db()), service_check(queries=queries), named=True, engine=engine)
    assert group.newest_data == newer


# ------------------------------------------------------------------ connection-string parsing


def test_parse_uri() -> None:
    target = parse_uri("jdbc:mysql://us%40r:p%2Fw@h1:3307,[::1]:3308,h3/db%20x?charset=utf8&ssl=true", ("mysql",))
    assert target.hosts == [("h1", 3307), ("::1", 3308), ("h3", None)]
    assert (target.user, target.password, target.database) == ("us@r", "p/w", "db x")
    assert target.options == {"charset": "utf8", "ssl": "true"}
    assert parse_uri("mysql://h?x=1", ("mysql",)).hosts == [("h", None)]
    for bad in ("postgres://h/db", "h:3306/db", "mysql://h:port/db"):
        with pytest.raises(ValueError):
            parse_uri(bad, ("mysql",))


def test_postgres_parses_uris_and_key_value_pairs() -> None:
    engine = load_engine("postgres")
    target = engine.parse("postgresql://app:p%40ss@db1:5432,db2:5433/shop?sslmode=require&hostaddr=10.0.0.1")
    assert target.hosts == [("db1", 5432), ("db2", 5433)]
    assert (target.user, target.password, target.database) == ("app", "p@ss", "shop")
    assert target.options == {"sslmode": "require"}  # hostaddr would bypass the sandbox mapping
    pairs = engine.parse("host=db port=5432 user=app password='a b' dbname=shop")
    assert (pairs.hosts, pairs.password) == ([("db", 5432)], "a b")
    for bad in ("host=/var/run/postgresql dbname=x", "not a = valid = string '"):
        with pytest.raises(ValueError):
            engine.parse(bad)


def test_mongodb_refuses_srv_and_drops_discovery_options() -> None:
    engine = load_engine("mongodb")
    target = engine.parse(
        "mongodb://u:p@m0.mongo.shop.svc:27017,m1:27017/app?replicaSet=rs0&w=majority&connectTimeoutMS=1"
    )
    assert target.options == {"w": "majority", "authSource": "app"}
    assert target.hosts == [("m0.mongo.shop.svc", 27017), ("m1", 27017)]
    with pytest.raises(ValueError, match="mongodb\\+srv"):
        engine.parse("mongodb+srv://u:p@cluster.example.com/app")


def test_mysql_parses_uris() -> None:
    target = load_engine("mysql").parse("mariadb://app:pw@db.shop:3306/shop")
    assert (target.hosts, target.database) == ([("db.shop", 3306)], "shop")


def test_drivers_are_imported_only_by_their_engine() -> None:
    import subprocess

    code = (
        "import sys, lazarus.checks, lazarus.checks.runner, lazarus.checks.database;"
        "print(sorted(m for m in ('psycopg', 'pymysql', 'pymongo') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_mongodb_refuses_writing_pipeline_stages() -> None:
    from lazarus.checks.mongodb import MongoSession

    session = MongoSession(client={"db": {"orders": object()}}, database="db")  # type: ignore[arg-type]
    for pipeline in ([{"$match": {}}, {"$out": "copy"}], [{"$facet": {"a": [{"$merge": {"into": "x"}}]}}]):
        with pytest.raises(CheckError, match="refused: pipeline stage \\$(out|merge) writes"):
            session.run({"collection": "orders", "pipeline": pipeline}, 5)
