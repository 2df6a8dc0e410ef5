"""Small helpers every dialect shares: read JSON and typed fields, failing only with FrameError.

A venue frame is untrusted input. These helpers turn every way it can be wrong (bad JSON,
a missing key, a string where a number belongs, NaN) into a :class:`FrameError` with a
bounded ``reason`` label, so a dialect never lets a KeyError, TypeError or ValueError out.
Reasons used here: ``malformed_json``, ``missing_field``, ``bad_value``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

import orjson

from monitor.errors import FrameError

T = TypeVar("T")

MALFORMED_JSON = "malformed_json"
MISSING_FIELD = "missing_field"
BAD_VALUE = "bad_value"


def describe(value: object, limit: int = 60) -> str:
    """A short rendering of a frame value for messages. Never recurses into containers:
    the repr of a deeply nested array raises RecursionError."""
    if isinstance(value, list | dict):
        return f"<{type(value).__name__} of {len(value)}>"
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def compact(value: object, limit: int = 200) -> str:
    """A venue's message as text: strings as they are, anything else as short JSON."""
    if isinstance(value, str):
        return value[:limit]
    try:
        return orjson.dumps(value).decode()[:limit]
    except orjson.JSONEncodeError:  # nested deeper than orjson writes
        return describe(value, limit)


def loads(text: str | bytes) -> Any:
    """Parse one frame. Raises FrameError("malformed_json") on anything orjson rejects."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise FrameError(MALFORMED_JSON, str(exc)) from None


def decode_utf8(data: bytes) -> str:
    """Binary frame to text for venues that send UTF-8 JSON in binary frames."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FrameError(MALFORMED_JSON, f"binary frame is not UTF-8: {exc}") from None


def obj(value: object, what: str) -> dict[str, Any]:
    """``value`` as a JSON object, or FrameError("bad_value")."""
    if isinstance(value, dict):
        return value
    raise FrameError(BAD_VALUE, f"{what}: expected an object, got {type(value).__name__}")


def arr(value: object, what: str) -> list[Any]:
    """``value`` as a JSON array, or FrameError("bad_value")."""
    if isinstance(value, list):
        return value
    raise FrameError(BAD_VALUE, f"{what}: expected an array, got {type(value).__name__}")


def req(d: dict[str, Any], key: str) -> Any:
    """``d[key]``, or FrameError("missing_field")."""
    try:
        return d[key]
    except KeyError:
        raise FrameError(MISSING_FIELD, key) from None


def req_str(d: dict[str, Any], key: str) -> str:
    """A required non-empty string field."""
    value = req(d, key)
    if isinstance(value, str) and value:
        return value
    raise FrameError(BAD_VALUE, f"{key}: expected a non-empty string, got {describe(value)}")


def req_choice(d: dict[str, Any], key: str, choices: Mapping[str, T]) -> tuple[str, T]:
    """A required field that must be one of ``choices`` (a side, a flag): its text and meaning."""
    raw = req(d, key)
    meaning = choices.get(raw) if isinstance(raw, str) else None
    if meaning is None:
        raise FrameError(BAD_VALUE, f"{key}: expected {' or '.join(choices)}, "
                                    f"got {describe(raw)}")
    return raw, meaning


def to_int(value: object, what: str) -> int:
    """An integer from a JSON integer or a string of digits (some venues quote timestamps)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    # int() of more than 4300 digits raises ValueError; no timestamp needs 20.
    if isinstance(value, str) and len(value) <= 20 and value.isascii() and value.isdigit():
        return int(value)
    raise FrameError(BAD_VALUE, f"{what}: expected an integer, got {describe(value)}")


def req_int(d: dict[str, Any], key: str) -> int:
    return to_int(req(d, key), key)


def to_float(value: object, what: str) -> float:
    """A finite float from a decimal string (how venues send prices) or a JSON number."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise FrameError(BAD_VALUE, f"{what}: not a number: {describe(value)}") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise FrameError(BAD_VALUE, f"{what}: expected a number, got {describe(value)}")
    if not math.isfinite(number):
        raise FrameError(BAD_VALUE, f"{what}: not finite: {describe(value)}")
    return number


def req_float(d: dict[str, Any], key: str) -> float:
    return to_float(req(d, key), key)


def opt_float(d: dict[str, Any], key: str, default: float = 0.0) -> float:
    """An optional numeric field; absent, null or "" gives ``default``."""
    value = d.get(key)
    if value is None or value == "":
        return default
    return to_float(value, key)


def positive(value: float, what: str) -> float:
    """``value`` if it is > 0, else FrameError("bad_value")."""
    if value > 0.0:
        return value
    raise FrameError(BAD_VALUE, f"{what}: expected > 0, got {value!r}")


def in_range(what: str, *values: float) -> None:
    """Products of valid numbers can still overflow or underflow: refuse those."""
    for value in values:
        if not 0.0 < value < math.inf:
            raise FrameError(BAD_VALUE, f"{what}: value {value!r} out of range")
