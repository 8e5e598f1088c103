"""Dataclass fields read from JSON: each names its key (``json``) and, for a nested object, its
dataclass (``section``); ``parse`` applies the defaults, ``json_defaults`` lists them for the CRD."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, field, fields
from typing import Any, TypeVar

_T = TypeVar("_T")


def json_key(json: str, default: Any = MISSING, *, section: type | None = None) -> Any:
    """A field read from the JSON key ``json`` (a nested ``section`` dataclass when given)."""
    metadata = {"json": json, "section": section}
    if section is not None:
        return field(default_factory=section, metadata=metadata)
    return field(default=default, metadata=metadata)


def parse(cls: type[_T], raw: Mapping[str, Any] | None) -> _T:
    """``cls`` from the JSON object ``raw``: absent or null keys take the field's default; lists
    become tuples, so the result is immutable throughout."""
    raw = raw or {}
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        value = raw.get(f.metadata["json"])
        if value is None:
            continue
        section = f.metadata["section"]
        values[f.name] = parse(section, value) if section is not None else _frozen(value)
    return cls(**values)


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def json_defaults(cls: type) -> dict[str, Any]:
    """The defaults of ``cls``'s plain fields by JSON key (lists as lists), for the CRD. A field
    whose default means "not set" (None, an empty list or string) has none in the CRD."""
    return {
        f.metadata["json"]: list(f.default) if isinstance(f.default, tuple) else f.default
        for f in fields(cls)
        if f.metadata["section"] is None and not any(f.default is unset for unset in (MISSING, None))
        and f.default not in ((), "")
    }
