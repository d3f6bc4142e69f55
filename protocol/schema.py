"""Hand-written validation of message bodies against their dataclass definitions.

A body class is a dataclass whose field annotations use only: `str`, `int`, `float`, `bool`,
`Literal[...]` of strings, `list[X]`, `X | None` and nested dataclasses. Rules that types
cannot say (ranges, lengths, formats) go in the field's metadata through `rule()`. Problems
are reported by field path and expected type, never with the offending value: payloads carry
personal data and the problem text ends up in logs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import types
import typing
import uuid
from typing import Any, Literal, Union, get_args, get_origin

MAX_TEXT = 2000  # default longest string field (a sentence or a short message)
MAX_ITEMS = 50  # default longest list field

_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)")
_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{2,30}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Never in a text: control characters but tab and line breaks, lone surrogates (not
# encodable: a store or a voice would fail on them later), and the bidirectional overrides
# and isolates that make a text shown to a family member read other than it is.
_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]"
)

FORMATS = ("ts", "uuid", "id", "clock", "date", "phone", "url")


class SchemaError(ValueError):
    """A value that does not fit its field; the text names the field, not the value."""


def rule(
    default: Any = dataclasses.MISSING,
    *,
    low: float | None = None,
    high: float | None = None,
    max_len: int | None = None,
    fmt: str | None = None,
    allow_empty: bool = False,
) -> Any:
    """A dataclass field with validation rules in its metadata."""
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    metadata = {
        "low": low,
        "high": high,
        "max_len": max_len,
        "fmt": fmt,
        "allow_empty": allow_empty,
    }
    return dataclasses.field(default=default, metadata=metadata)


def utc_timestamp(when: dt.datetime | None = None) -> str:
    """ISO-8601 in UTC with milliseconds and a `Z`: what every `ts` field carries."""
    when = when or dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        raise ValueError("a naive datetime has no time zone; use an aware UTC datetime")
    text = when.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def is_utc_timestamp(value: object) -> bool:
    if not isinstance(value, str) or not _TS.fullmatch(value):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:  # 2026-02-30 and the like
        return False
    return True


def canonical_uuid(value: object) -> str | None:
    """The lower-case hyphenated form of a UUID string, or None when it is not one."""
    if not isinstance(value, str) or len(value) != 36:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def from_dict(cls: type, data: object, path: str = "body") -> Any:
    """Build `cls` from decoded JSON, checking every field. Unknown keys are ignored, so a
    v1 sender may add an optional field without breaking older receivers."""
    if not isinstance(data, dict):
        raise SchemaError(f"{path}: expected an object")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = f"{path}.{f.name}"
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SchemaError(f"{key}: missing")
            continue
        values[f.name] = _value(hints[f.name], data[f.name], key, f.metadata)
    obj = cls(**values)
    check = getattr(obj, "check", None)
    problem = check() if check else None
    if problem:
        raise SchemaError(f"{path}: {problem}")
    return obj


def _value(tp: Any, value: Any, key: str, meta: Any) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise SchemaError(f"{key}: must not be null")
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, value, key, meta)
    if value is None:
        raise SchemaError(f"{key}: must not be null")
    if origin is Literal:
        if not isinstance(value, str) or value not in get_args(tp):
            raise SchemaError(f"{key}: not one of {', '.join(get_args(tp))}")
        return value
    if origin is list:
        (item,) = get_args(tp)
        if not isinstance(value, list):
            raise SchemaError(f"{key}: expected a list")
        if len(value) > (meta.get("max_len") or MAX_ITEMS):
            raise SchemaError(f"{key}: too many items")
        return [_value(item, v, f"{key}[{i}]", {}) for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise SchemaError(f"{key}: expected true or false")
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise SchemaError(f"{key}: expected an integer")
        return _in_range(value, key, meta)
    if tp is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise SchemaError(f"{key}: expected a number")
        if not math.isfinite(value):
            raise SchemaError(f"{key}: expected a finite number")
        return _in_range(float(value), key, meta)
    if tp is str:
        if not isinstance(value, str):
            raise SchemaError(f"{key}: expected a string")
        return _string(value, key, meta)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    raise TypeError(f"{key}: unsupported annotation {tp!r}")  # a bug in a body class


def _in_range(value: float, key: str, meta: Any) -> Any:
    low, high = meta.get("low"), meta.get("high")
    if low is not None and value < low:
        raise SchemaError(f"{key}: below {low}")
    if high is not None and value > high:
        raise SchemaError(f"{key}: above {high}")
    return value


def _string(value: str, key: str, meta: Any) -> str:
    if not value.strip() and not meta.get("allow_empty"):
        raise SchemaError(f"{key}: must not be empty")
    if len(value) > (meta.get("max_len") or MAX_TEXT):
        raise SchemaError(f"{key}: too long")
    if _FORBIDDEN.search(value):
        raise SchemaError(f"{key}: control or unpaired surrogate characters")
    fmt = meta.get("fmt")
    if fmt == "ts" and not is_utc_timestamp(value):
        raise SchemaError(f"{key}: expected an ISO-8601 UTC timestamp")
    if fmt == "uuid":
        canonical = canonical_uuid(value)
        if canonical is None:
            raise SchemaError(f"{key}: expected a UUID")
        return canonical
    if fmt == "id" and not _ID.fullmatch(value):
        raise SchemaError(f"{key}: expected an id (letters, digits, _ . -)")
    if fmt == "clock" and not _CLOCK.fullmatch(value):
        raise SchemaError(f"{key}: expected HH:MM")
    if fmt == "date" and not _is_date(value):
        raise SchemaError(f"{key}: expected a date YYYY-MM-DD")
    if fmt == "phone" and not _PHONE.fullmatch(value):
        raise SchemaError(f"{key}: expected a phone number")
    if fmt == "url" and not value.startswith("https://"):
        raise SchemaError(f"{key}: expected an https URL")
    return value


def _is_date(value: str) -> bool:
    try:
        return len(value) == 10 and bool(dt.date.fromisoformat(value))
    except ValueError:
        return False


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)
