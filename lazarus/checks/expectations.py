"""Expectations on a query result, shared by the three database engines.

A query's result is normalised into ``QueryResult`` (columns, the first rows, the row count, and
for a MongoDB ``filter`` query the count as its value). ``evaluate`` checks every expectation the
query sets, in a fixed order, and returns one ``Evaluation``:

- ``expectedRows``: the exact row count.
- ``expectedRange {min, max}``: the query's single value is a number within the range (inclusive;
  either bound may be left out).
- ``expectedValue``: the single value, as text (``as_text``), equals the expected text.
- ``expectedRecency``: the single value is a timestamp no older than this many seconds, measured
  from the reference time (the time the backup was taken). Naive timestamps are UTC; numbers are
  Unix seconds; text must be ISO 8601. The timestamp is reported (``newest``) for the test's RPO,
  whether or not the expectation holds.
- ``expectedColumns``: every listed value appears in the result's first column (as text).

The single value: a result of exactly one row and one column (a MongoDB ``filter`` query: the
number of matching documents). No rows, or a NULL, means the data is not there: ``Failed``. Several
rows or columns, or a value of the wrong type (text for a range, a number for nothing), mean the
query does not fit the expectation: ``Error``. With no expectation, the query passes when it runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from lazarus.checks.results import ERROR, FAILED, MAX_NAME_LENGTH, MAX_NAMES, PASSED, QueryFigures

# Rows kept per query for expectedColumns and the single value: a check reads a result to judge
# it, not to copy a table; beyond this the rows are only counted (and the text says so).
MAX_KEPT_ROWS = 10_000
# Longest rendering of one value in a result text.
MAX_VALUE_TEXT = 200
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ExpectationError(Exception):
    """The result does not fit the expectation (shape or type): the query cannot be judged."""


_NO_VALUE = object()


@dataclass
class QueryResult:
    """A query's result, as the evaluator sees it."""

    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    """The first ``MAX_KEPT_ROWS`` rows."""
    row_count: int = 0
    """Every row the query returned (may exceed ``len(rows)``)."""
    value: Any = _NO_VALUE
    """The single value when the engine defines one itself (a MongoDB filter query's count)."""
    value_label: str | None = None
    """How the single value is named in texts (default: its column, else ``Value``)."""

    @property
    def truncated(self) -> bool:
        return self.row_count > len(self.rows)


def collect(columns: list[str], rows: Any) -> QueryResult:
    """A ``QueryResult`` from an iterable of rows: keep the first ``MAX_KEPT_ROWS``, count all."""
    result = QueryResult(columns=list(columns))
    for row in rows:
        if result.row_count < MAX_KEPT_ROWS:
            result.rows.append(tuple(row))
        result.row_count += 1
    return result


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one query: status, a human-readable text, and the newest timestamp found."""

    status: str
    text: str
    newest: datetime | None = None


def as_text(value: Any) -> str:
    """A value as the text expectations compare: JSON-like for booleans and NULL, integral floats
    without ``.0``, timestamps in ISO 8601, bytes decoded as UTF-8."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _shown(value: Any) -> str:
    text = "NULL" if value is None else as_text(value)
    return text if len(text) <= MAX_VALUE_TEXT else text[: MAX_VALUE_TEXT - 1] + "…"


def _label(result: QueryResult) -> str:
    if result.value_label:
        return result.value_label
    column = result.columns[0] if len(result.columns) == 1 else ""
    return column[:1].upper() + column[1:] if _IDENTIFIER.fullmatch(column) else "Value"


def _single(result: QueryResult, what: str) -> Any:
    """The single value; ``_NO_VALUE`` for no rows; ``ExpectationError`` for several."""
    if result.value is not _NO_VALUE:
        return result.value
    if result.row_count == 0:
        return _NO_VALUE
    width = len(result.rows[0]) if result.rows else len(result.columns)
    if result.row_count != 1 or width != 1:
        raise ExpectationError(
            f"{what} needs a single value, but the query returned {result.row_count} row(s) of {width} column(s)"
        )
    return result.rows[0][0]


def _number(value: Any, what: str) -> float | Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ExpectationError(
            f"{what} needs a number, but the query returned {_shown(value)!r} ({type(value).__name__})"
        )
    if isinstance(value, int | float | Decimal):
        return value
    try:
        return Decimal(value.strip())
    except InvalidOperation:
        raise ExpectationError(f"{what} needs a number, but the query returned text {_shown(value)!r}") from None


def _number_text(value: float | Decimal | int) -> str:
    return as_text(float(value)) if isinstance(value, float) else str(value)


def to_timestamp(value: Any) -> datetime:
    """``value`` as an aware datetime (see the module docstring); ``ExpectationError`` if it is none."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        if not math.isfinite(float(value)):
            raise ExpectationError(f"expectedRecency needs a timestamp, but the query returned {value}")
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        try:
            return to_timestamp(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ExpectationError(
        f"expectedRecency needs a timestamp, but the query returned {_shown(value)!r} ({type(value).__name__})"
    )


def _duration(seconds: float) -> str:
    return f"{seconds:.0f}s"


# Each check returns (passed, text, newest) and raises ExpectationError when it cannot judge.
_Outcome = tuple[bool, str, datetime | None]


def _rows(expected: int, result: QueryResult, _reference: datetime) -> _Outcome:
    ok = result.row_count == expected
    return ok, f"Rows: {result.row_count} ({'as expected' if ok else f'expected {expected}'})", None


def _range(bounds: Mapping[str, Any], result: QueryResult, _reference: datetime) -> _Outcome:
    low, high = bounds.get("min"), bounds.get("max")
    if low is not None and high is not None:
        wanted = f"range {_number_text(low)}-{_number_text(high)}"
    elif low is not None:
        wanted = f"at least {_number_text(low)}"
    elif high is not None:
        wanted = f"at most {_number_text(high)}"
    else:
        wanted = "any value"
    value = _single(result, "expectedRange")
    if value is _NO_VALUE or value is None:
        shown = "no rows" if value is _NO_VALUE else "NULL"
        return False, f"{_label(result)}: {shown} (expected {wanted})", None
    number = float(_number(value, "expectedRange"))
    ok = (low is None or number >= float(low)) and (high is None or number <= float(high))
    if low is not None and high is not None:
        verdict = f"{'within' if ok else 'outside'} {wanted}"
    else:
        verdict = wanted if ok else f"expected {wanted}"
    return ok, f"{_label(result)}: {_shown(value)} ({verdict})", None


def _value(expected: str, result: QueryResult, _reference: datetime) -> _Outcome:
    value = _single(result, "expectedValue")
    if value is _NO_VALUE:
        return False, f"{_label(result)}: no rows (expected {_shown(expected)!r})", None
    ok = as_text(value) == expected
    shown = _shown(value) if value is None else repr(_shown(value))
    return ok, f"{_label(result)}: {shown} ({'as expected' if ok else f'expected {_shown(expected)!r}'})", None


def _recency(max_age: int, result: QueryResult, reference: datetime) -> _Outcome:
    value = _single(result, "expectedRecency")
    if value is _NO_VALUE or value is None:
        shown = "no rows" if value is _NO_VALUE else "NULL"
        return False, f"Newest: {shown} (expected a timestamp at most {_duration(max_age)} before the backup)", None
    newest = to_timestamp(value)
    age = (reference - newest).total_seconds()
    ok = age <= max_age
    when = f"{_duration(age)} before the backup" if age >= 0 else f"{_duration(-age)} after the backup started"
    limit = f"at most {_duration(max_age)}" if ok else f"older than the allowed {_duration(max_age)}"
    return ok, f"Newest: {newest.isoformat()} ({when}; {limit})", newest


def _columns(expected: list[str], result: QueryResult, _reference: datetime) -> _Outcome:
    if result.row_count and result.rows and not result.rows[0]:
        raise ExpectationError("expectedColumns needs a result with at least one column")
    present = {as_text(row[0]) for row in result.rows if row}
    missing = [v for v in expected if v not in present]
    if not missing:
        return True, f"All {len(expected)} expected values present", None
    note = f" (only the first {len(result.rows)} of {result.row_count} rows were read)" if result.truncated else ""
    shown = ", ".join(_shown(m) for m in missing[:20]) + (", …" if len(missing) > 20 else "")
    return False, f"Missing {len(missing)} of {len(expected)} expected values: {shown}{note}", None


_CHECKS: tuple[tuple[str, Callable[[Any, QueryResult, datetime], _Outcome]], ...] = (
    ("expectedRows", _rows),
    ("expectedRange", _range),
    ("expectedValue", _value),
    ("expectedRecency", _recency),
    ("expectedColumns", _columns),
)


def figures(query: Mapping[str, Any], result: QueryResult) -> QueryFigures:
    """What ``result`` holds as data (see ``QueryFigures``); never raises."""
    single: Any = _NO_VALUE
    if result.value is not _NO_VALUE:
        single = result.value
    elif result.row_count == 1 and result.rows and len(result.rows[0]) == 1:
        single = result.rows[0][0]
    value = None
    if isinstance(single, int | float | Decimal) and not isinstance(single, bool) and math.isfinite(float(single)):
        value = float(single)
    columns = tuple(c[:MAX_NAME_LENGTH] for c in result.columns) if len(result.columns) <= MAX_NAMES else ()
    names = None
    if query.get("expectedColumns") is not None and not result.truncated and result.row_count <= MAX_NAMES:
        names = tuple(sorted({as_text(row[0])[:MAX_NAME_LENGTH] for row in result.rows if row}))
    return QueryFigures(rows=result.row_count, value=value, columns=columns, names=names)


def evaluate(query: Mapping[str, Any], result: QueryResult, reference_time: datetime) -> Evaluation:
    """Judge ``result`` against every expectation ``query`` sets (see the module docstring)."""
    texts: list[str] = []
    passed, newest = True, None
    for key, check in _CHECKS:
        if query.get(key) is None:
            continue
        try:
            ok, text, found = check(query[key], result, reference_time)
        except ExpectationError as exc:
            return Evaluation(ERROR, str(exc), newest)
        passed = passed and ok
        newest = found or newest
        texts.append(text)
    if not texts:
        return Evaluation(PASSED, f"Query ran: {result.row_count} row(s)")
    return Evaluation(PASSED if passed else FAILED, "; ".join(texts), newest)
