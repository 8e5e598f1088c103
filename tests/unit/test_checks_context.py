"""Namespaces, host names, Services, Secrets and scrubbing shared by every check."""

from __future__ import annotations

import pytest

from lazarus.checks.context import CheckError, Endpoint, ServiceName, service_name
from lazarus.kube.client import ApiError
from tests.unit.test_checks_fakes import SANDBOX, SOURCE, TEST_NAMESPACE, FakeRest, make_context

MAPPING = {"shop": "sbx-shop", "billing": "sbx-billing"}


@pytest.mark.parametrize(
    ("host", "default", "expected"),
    [
        ("db", "sbx-shop", ServiceName("sbx-shop", "db", "db.sbx-shop.svc")),
        ("db.shop", None, ServiceName("sbx-shop", "db", "db.sbx-shop.svc")),
        ("db.billing.svc", None, ServiceName("sbx-billing", "db", "db.sbx-billing.svc")),
        ("db.shop.svc.cluster.local", None, ServiceName("sbx-shop", "db", "db.sbx-shop.svc")),
        ("DB.Shop.svc.cluster.local.", None, ServiceName("sbx-shop", "db", "db.sbx-shop.svc")),
        ("mongo-0.mongo.shop.svc.cluster.local", None, ServiceName("sbx-shop", "mongo", "mongo-0.mongo.sbx-shop.svc")),
        ("db.sbx-shop.svc", None, ServiceName("sbx-shop", "db", "db.sbx-shop.svc")),  # already in the sandbox
        ("127.0.0.1", None, None),
        ("::1", None, None),
        ("localhost", None, None),
        ("db.example.com", None, None),
        ("example.com", None, None),
    ],
)
def test_service_names_resolve_into_the_sandbox(host: str, default: str | None, expected: ServiceName | None) -> None:
    assert service_name(host, MAPPING, default) == expected


def test_a_service_outside_the_restored_namespaces_is_refused() -> None:
    with pytest.raises(CheckError, match="namespace 'prod', which this test did not restore"):
        service_name("db.prod.svc.cluster.local", MAPPING, None)


def test_a_dotless_name_with_several_namespaces_is_ambiguous() -> None:
    with pytest.raises(CheckError, match="write it as db.<namespace>"):
        service_name("db", MAPPING, None)


def test_resolve_reads_the_restored_service_and_checks_its_port() -> None:
    rest = FakeRest()
    rest.add_service(SANDBOX, "db", ports=[5432])
    ctx = make_context(rest)
    assert ctx.resolve("db", 5432) == Endpoint(f"db.{SANDBOX}.svc", 5432)
    with pytest.raises(CheckError, match=f"Service {SANDBOX}/db has no port 5433 \\(its ports: 5432\\)"):
        ctx.resolve("db.shop", 5433)
    assert rest.requests == [("GET", f"/api/v1/namespaces/{SANDBOX}/services/db")]  # read once per run


def test_resolve_follows_an_external_name_and_guards_it() -> None:
    rest = FakeRest()
    rest.add_service(SANDBOX, "ext", external_name="localhost")
    rest.add_service(SANDBOX, "alias", external_name="db.shop.svc.cluster.local")
    rest.add_service(SANDBOX, "escape", external_name="db.prod.svc.cluster.local")
    ctx = make_context(rest)
    assert ctx.resolve("ext", 1234) == Endpoint("localhost", 1234)
    assert ctx.resolve("alias", 5432) == Endpoint(f"db.{SANDBOX}.svc", 5432)
    with pytest.raises(CheckError, match="'prod', which this test did not restore"):
        ctx.resolve("escape", 5432)


def test_a_missing_service_says_it_was_not_restored() -> None:
    ctx = make_context(FakeRest())
    with pytest.raises(CheckError, match=f"Service {SANDBOX}/db not found \\(restored from namespace shop"):
        ctx.resolve("db", 5432)


def test_hosts_used_as_written_need_no_api_call() -> None:
    rest = FakeRest()
    assert make_context(rest).resolve("10.0.0.7", 80) == Endpoint("10.0.0.7", 80)
    assert rest.requests == []


def test_source_namespace_defaults_and_validation() -> None:
    ctx = make_context(FakeRest())
    assert ctx.source_namespace(None, None) == SOURCE
    assert ctx.source_namespace(None, SOURCE) == SOURCE
    with pytest.raises(CheckError, match="namespace 'prod' is not restored by this test"):
        ctx.source_namespace("prod")
    several = make_context(FakeRest(), MAPPING)
    with pytest.raises(CheckError, match="restores 2 namespaces"):
        several.source_namespace(None)


def test_placeholder_is_substituted() -> None:
    ctx = make_context(FakeRest(), MAPPING)
    text = "postgresql://app@db.{{ .SandboxNamespace }}.svc/app and {{.SandboxNamespace}}"
    assert ctx.substitute(text, "billing") == "postgresql://app@db.sbx-billing.svc/app and sbx-billing"
    assert ctx.substitute("no placeholder") == "no placeholder"


def test_secrets_from_the_sandbox_and_the_test_namespace() -> None:
    rest = FakeRest()
    rest.add_secret(SANDBOX, "db", {"password": "s3cret-pw\n", "username": "app"})
    rest.add_secret(TEST_NAMESPACE, "db", {"password": "other-pw"})
    ctx = make_context(rest)
    assert ctx.secret({"name": "db"}, "password") == "s3cret-pw"  # trailing newline dropped
    assert ctx.secret({"name": "db", "namespace": "shop"}, "username", sensitive=False) == "app"
    assert ctx.secret({"name": "db", "source": "TestNamespace"}, "password") == "other-pw"
    assert rest.requests == [
        ("GET", f"/api/v1/namespaces/{SANDBOX}/secrets/db"),
        ("GET", f"/api/v1/namespaces/{TEST_NAMESPACE}/secrets/db"),
    ]
    assert ctx.scrub("user app, pw s3cret-pw and other-pw") == "user app, pw *** and ***"


def test_missing_secret_and_key_are_named_without_values() -> None:
    rest = FakeRest()
    rest.add_secret(SANDBOX, "db", {"password": "hunter22", "user": "x"})
    ctx = make_context(rest)
    with pytest.raises(CheckError, match=r"Secret .*/db has no key 'pass' \(its keys: password, user\)"):
        ctx.secret({"name": "db"}, "pass")
    with pytest.raises(CheckError, match=f"Secret {SANDBOX}/gone not found \\(the restored copy of shop/gone"):
        ctx.secret({"name": "gone"}, "password")
    with pytest.raises(CheckError, match=f"Secret {TEST_NAMESPACE}/gone not found$"):
        ctx.secret({"name": "gone", "source": "TestNamespace"}, "password")


def test_forbidden_and_transient_api_errors() -> None:
    class Refusing(FakeRest):
        def request(self, method: str, path: str, **options: object) -> dict[str, object]:
            self.requests.append((method, path))
            raise ApiError(403 if "forbidden" in path else 503, "Nope", "no access")

    rest = Refusing()
    ctx = make_context(rest)
    with pytest.raises(CheckError, match="not allowed to read Secret .*/forbidden: no access"):
        ctx.secret({"name": "forbidden"}, "k")
    with pytest.raises(CheckError, match="cannot read Secret .*/flaky: 503 Nope"):
        ctx.secret({"name": "flaky"}, "k")
    with pytest.raises(CheckError):
        ctx.secret({"name": "flaky"}, "k")
    assert rest.requests.count(("GET", f"/api/v1/namespaces/{SANDBOX}/secrets/flaky")) == 2  # not cached


def test_scrub_masks_uri_and_pair_passwords_even_when_unknown() -> None:
    ctx = make_context(FakeRest())
    assert ctx.scrub("failed: postgresql://app:pa55@db:5432/x") == "failed: postgresql://app:***@db:5432/x"
    assert ctx.scrub("host=db password='a b' user=x") == "host=db password=*** user=x"
    ctx.remember_secret("ab")  # too short to mask inside other text
    assert ctx.scrub("about") == "about"


def test_budget_is_capped_by_the_deadline() -> None:
    ctx = make_context(FakeRest(), seconds=2)
    assert ctx.budget(30) <= 2
    assert ctx.budget(0.5) == 0.5
    expired = make_context(FakeRest(), seconds=-1)
    with pytest.raises(CheckError, match="deadline passed"):
        expired.budget(5)


def test_retrying_only_retries_what_it_is_told_within_attempts() -> None:
    sleeps: list[float] = []
    ctx = make_context(FakeRest(), sleeps=sleeps)
    calls: list[int] = []
    with pytest.raises(ConnectionError):
        for attempt in ctx.retrying(lambda e: isinstance(e, ConnectionError), 2):
            with attempt:
                calls.append(1)
                raise ConnectionError("refused")
    assert len(calls) == 3 and len(sleeps) == 2
    assert 1.0 <= sleeps[0] <= 2.0 and 2.0 <= sleeps[1] <= 3.0  # exponential backoff with jitter
    with pytest.raises(ValueError):
        for attempt in ctx.retrying(lambda e: isinstance(e, ConnectionError), 5):
            with attempt:
                calls.append(1)
                raise ValueError("permanent")
    assert len(calls) == 4


def test_retrying_stops_before_the_deadline() -> None:
    sleeps: list[float] = []
    ctx = make_context(FakeRest(), seconds=2.5, sleeps=sleeps)
    calls = 0
    with pytest.raises(ConnectionError):
        for attempt in ctx.retrying(lambda e: True, 10):
            with attempt:
                calls += 1
                raise ConnectionError()
    assert calls <= 2  # a 1-2 s backoff plus a 1 s attempt no longer fit after the first
