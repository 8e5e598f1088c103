"""The expectation evaluator shared by the three database engines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from lazarus.checks.expectations import MAX_KEPT_ROWS, QueryResult, as_text, collect, evaluate, to_timestamp
from lazarus.checks.results import ERROR, FAILED, PASSED

BACKUP = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)


def scalar(value: Any, column: str = "count") -> QueryResult:
    return collect([column], [(value,)])


def judge(query: dict[str, Any], result: QueryResult) -> tuple[str, str]:
    evaluation = evaluate(query, result, BACKUP)
    return evaluation.status, evaluation.text


def test_no_expectation_passes_when_the_query_ran() -> None:
    assert judge({}, collect(["a"], [(1,), (2,)])) == (PASSED, "Query ran: 2 row(s)")


@pytest.mark.parametrize(
    ("bounds", "value", "expected"),
    [
        ({"min": 1000, "max": 10000}, 5432, (PASSED, "Count: 5432 (within range 1000-10000)")),
        ({"min": 1000, "max": 10000}, 12, (FAILED, "Count: 12 (outside range 1000-10000)")),
        ({"min": 1000.0, "max": 10000.0}, Decimal("1000"), (PASSED, "Count: 1000 (within range 1000-10000)")),
        ({"min": 1}, 0, (FAILED, "Count: 0 (expected at least 1)")),
        ({"max": 5}, 5, (PASSED, "Count: 5 (at most 5)")),
        ({"min": 0.5, "max": 1.5}, "1.25", (PASSED, "Count: 1.25 (within range 0.5-1.5)")),
        ({"min": 1}, None, (FAILED, "Count: NULL (expected at least 1)")),
    ],
)
def test_expected_range(bounds: dict[str, Any], value: Any, expected: tuple[str, str]) -> None:
    assert judge({"expectedRange": bounds}, scalar(value)) == expected


def test_range_on_no_rows_fails_and_on_several_values_is_an_error() -> None:
    assert judge({"expectedRange": {"min": 1}}, collect(["?column?"], [])) == (
        FAILED,
        "Value: no rows (expected at least 1)",
    )
    status, text = judge({"expectedRange": {"min": 1}}, collect(["a", "b"], [(1, 2)]))
    assert status == ERROR
    assert text == "expectedRange needs a single value, but the query returned 1 row(s) of 2 column(s)"
    status, text = judge({"expectedRange": {"min": 1}}, collect(["a"], [(1,), (2,)]))
    assert (status, "2 row(s)" in text) == (ERROR, True)


@pytest.mark.parametrize("value", ["many", True, [1], b"7"])
def test_range_on_a_non_number_is_an_error(value: Any) -> None:
    status, text = judge({"expectedRange": {"min": 1}}, scalar(value))
    assert status == ERROR
    assert text.startswith("expectedRange needs a number, but the query returned")


def test_column_names_label_the_value_only_when_they_are_identifiers() -> None:
    assert judge({"expectedValue": "5"}, scalar(5, "COUNT(*)"))[1] == "Value: '5' (as expected)"
    assert judge({"expectedValue": "5"}, scalar(5, "total_orders"))[1] == "Total_orders: '5' (as expected)"


@pytest.mark.parametrize(
    ("value", "text", "status"),
    [
        ("paid", "paid", PASSED),
        ("paid", "open", FAILED),
        (True, "true", PASSED),
        (None, "null", PASSED),
        (3.0, "3", PASSED),
        (Decimal("10.50"), "10.50", PASSED),
        (date(2026, 1, 2), "2026-01-02", PASSED),
    ],
)
def test_expected_value_compares_text(value: Any, text: str, status: str) -> None:
    assert judge({"expectedValue": text}, scalar(value, "v"))[0] == status


def test_expected_value_texts() -> None:
    assert judge({"expectedValue": "open"}, scalar("paid", "status")) == (FAILED, "Status: 'paid' (expected 'open')")
    assert judge({"expectedValue": "x"}, scalar(None, "status")) == (FAILED, "Status: NULL (expected 'x')")
    assert judge({"expectedValue": "x"}, collect(["status"], [])) == (FAILED, "Status: no rows (expected 'x')")


def test_expected_rows() -> None:
    rows = collect(["id"], [(i,) for i in range(3)])
    assert judge({"expectedRows": 3}, rows) == (PASSED, "Rows: 3 (as expected)")
    assert judge({"expectedRows": 4}, rows) == (FAILED, "Rows: 3 (expected 4)")


def test_expected_recency_measures_from_the_backup_and_reports_the_newest() -> None:
    newest = BACKUP - timedelta(minutes=30)
    evaluation = evaluate({"expectedRecency": 3600}, scalar(newest, "max"), BACKUP)
    assert (evaluation.status, evaluation.newest) == (PASSED, newest)
    assert evaluation.text == "Newest: 2026-01-02T11:30:00+00:00 (1800s before the backup; at most 3600s)"
    stale = evaluate({"expectedRecency": 600}, scalar(newest, "max"), BACKUP)
    assert (stale.status, stale.newest) == (FAILED, newest)
    assert "older than the allowed 600s" in stale.text


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        (datetime(2026, 1, 2, 11, 0), datetime(2026, 1, 2, 11, 0, tzinfo=UTC)),  # naive: UTC
        ("2026-01-02T11:00:00Z", datetime(2026, 1, 2, 11, 0, tzinfo=UTC)),
        (datetime(2026, 1, 2, 11, 0, tzinfo=UTC).timestamp(), datetime(2026, 1, 2, 11, 0, tzinfo=UTC)),
        (date(2026, 1, 2), datetime(2026, 1, 2, tzinfo=UTC)),
    ],
)
def test_timestamps_in_several_forms(value: Any, moment: datetime) -> None:
    assert to_timestamp(value) == moment


def test_recency_edge_cases() -> None:
    assert judge({"expectedRecency": 60}, scalar(None, "max"))[0] == FAILED  # empty table: max() is NULL
    assert judge({"expectedRecency": 60}, scalar("yesterday", "max"))[0] == ERROR
    after = evaluate({"expectedRecency": 60}, scalar(BACKUP + timedelta(seconds=90), "max"), BACKUP)
    assert after.status == PASSED
    assert "90s after the backup started" in after.text


def test_expected_columns_reads_the_first_column() -> None:
    result = collect(["column_name", "type"], [("id", "int"), ("amount", "numeric"), ("created_at", "ts")])
    assert judge({"expectedColumns": ["id", "created_at"]}, result) == (PASSED, "All 2 expected values present")
    status, text = judge({"expectedColumns": ["id", "email", "type"]}, result)
    assert (status, text) == (FAILED, "Missing 2 of 3 expected values: email, type")


def test_expected_columns_says_when_rows_were_cut() -> None:
    result = collect(["v"], [(str(i),) for i in range(MAX_KEPT_ROWS + 5)])
    assert result.row_count == MAX_KEPT_ROWS + 5 and len(result.rows) == MAX_KEPT_ROWS
    status, text = judge({"expectedColumns": ["0", str(MAX_KEPT_ROWS + 1)]}, result)
    assert status == FAILED
    assert f"only the first {MAX_KEPT_ROWS} of {MAX_KEPT_ROWS + 5} rows were read" in text


def test_all_expectations_must_hold_and_each_is_reported() -> None:
    result = scalar(5432)
    status, text = judge(
        {"expectedRows": 1, "expectedRange": {"min": 1000, "max": 10000}, "expectedValue": "5"}, result
    )
    assert status == FAILED
    assert text == "Rows: 1 (as expected); Count: 5432 (within range 1000-10000); Count: '5432' (expected '5')"


def test_engine_defined_value_is_the_single_value() -> None:
    result = QueryResult(row_count=5432, value=5432, value_label="Count")  # a MongoDB filter query
    assert judge({"expectedRange": {"min": 1000, "max": 10000}, "expectedRows": 5432}, result) == (
        PASSED,
        "Rows: 5432 (as expected); Count: 5432 (within range 1000-10000)",
    )


def test_as_text() -> None:
    assert [as_text(v) for v in (None, False, 2.5, 2.0, b"ab", 7)] == ["null", "false", "2.5", "2", "ab", "7"]
