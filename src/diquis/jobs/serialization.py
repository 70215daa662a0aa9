"""Job arguments as JSON, with UUID, datetime, date, time, Decimal and bytes kept exact.

Values are walked before encoding so a bad argument fails at enqueue time with its
path named (``kwargs['user'].created``), never at run time in a worker.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import uuid
from decimal import Decimal
from typing import Any

from .errors import JobArgumentError

# A one-key dict whose key starts with "$" is a tagged value; user dicts of that exact
# shape are wrapped in {"$dict": ...} so they round-trip unchanged.
_TAGS = ("$uuid", "$datetime", "$date", "$time", "$decimal", "$bytes", "$dict")


def _to_json(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise JobArgumentError(f"job argument {path} is {value!r}, which JSON cannot hold")
        return value
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$time": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, list | tuple):
        return [_to_json(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise JobArgumentError(
                    f"job argument {path} has a key {key!r} of type {type(key).__name__}; "
                    "only string keys can be stored as JSON"
                )
            out[key] = _to_json(item, f"{path}[{key!r}]")
        if len(out) == 1 and next(iter(out)).startswith("$"):
            return {"$dict": out}
        return out
    raise JobArgumentError(
        f"job argument {path} is a {type(value).__module__}.{type(value).__qualname__}, "
        "which cannot be stored as JSON (use str, int, float, bool, None, list, dict, UUID, "
        "datetime, date, time, Decimal or bytes)"
    )


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        key, raw = next(iter(value.items()))
        if key == "$uuid":
            return uuid.UUID(raw)
        if key == "$datetime":
            return dt.datetime.fromisoformat(raw)
        if key == "$date":
            return dt.date.fromisoformat(raw)
        if key == "$time":
            return dt.time.fromisoformat(raw)
        if key == "$decimal":
            return Decimal(raw)
        if key == "$bytes":
            return base64.b64decode(raw)
        if key == "$dict":
            return {k: _from_json(v) for k, v in raw.items()}
    return {k: _from_json(v) for k, v in value.items()}


# one encoder for every call (json.dumps builds one per call when given options); it keeps
# no state between calls, so threads may share it
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
# argument types _to_json returns unchanged: checked by type, without building a path
_PLAIN = frozenset({str, int, bool, type(None)})


def dumps_value(value: Any, path: str = "value") -> str:
    """Encode one value as compact JSON, raising JobArgumentError naming ``path``."""
    return _encode(_to_json(value, path))


def loads_value(text: str | None) -> Any:
    """Decode a value written by :func:`dumps_value`."""
    if text is None:
        return None
    return _from_json(json.loads(text))


def dumps_args(args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> tuple[str, str]:
    """Encode positional and keyword arguments, naming the first bad one in the error."""
    encoded_args = [
        a if type(a) in _PLAIN else _to_json(a, f"args[{i}]") for i, a in enumerate(args)
    ]
    encoded_kwargs = {
        k: v if type(v) in _PLAIN else _to_json(v, f"kwargs[{k!r}]") for k, v in kwargs.items()
    }
    return _encode(encoded_args), _encode(encoded_kwargs) if encoded_kwargs else "{}"


def loads_args(args: str, kwargs: str) -> tuple[list[Any], dict[str, Any]]:
    """Decode arguments written by :func:`dumps_args`."""
    # no keyword arguments is the common case: skip the parser for it; and tagged values
    # are objects, so arguments without a "{" hold none and need no second walk
    decoded = json.loads(args)
    return (
        decoded if "{" not in args else _from_json(decoded),
        {} if kwargs == "{}" else _from_json(json.loads(kwargs)),
    )


__all__ = ["_TAGS", "dumps_args", "dumps_value", "loads_args", "loads_value"]
