"""Nesting-depth limits, so a deeply nested payload is refused instead of exhausting the stack."""

from __future__ import annotations

import re
from typing import Any

from ..errors import ProtocolError

MAX_DEPTH = 64
"""Deepest array/object nesting accepted in a message (System.Text.Json's default too)."""

# A JSON string (escapes included) or one bracket; strings are skipped whole.
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_OPENERS = frozenset(b"[{")


class NestingTooDeepError(ProtocolError):
    """A message nests arrays/objects deeper than allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"message nesting exceeds the maximum depth of {limit}")


def check_json_depth(data: bytes, limit: int = MAX_DEPTH) -> None:
    """Raise NestingTooDeepError when the JSON text in `data` nests deeper than `limit`."""
    # Fewer brackets than the limit cannot nest deeper: the common case costs two counts.
    if data.count(b"[") + data.count(b"{") <= limit:
        return
    depth = 0
    for match in _JSON_TOKENS.finditer(data):
        token = match.group()
        if len(token) != 1:
            continue
        if token[0] in _OPENERS:
            depth += 1
            if depth > limit:
                raise NestingTooDeepError(limit)
        else:
            depth -= 1


def check_value_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise NestingTooDeepError when lists/dicts in `value` nest deeper than `limit`."""
    # Iterative, so the check itself cannot overflow the stack.
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | tuple):
            children: Any = item
        elif isinstance(item, dict):
            children = item.values()
        else:
            continue
        if depth + 1 > limit:
            raise NestingTooDeepError(limit)
        stack.extend((child, depth + 1) for child in children)
