"""Text record framing: each record ends with the ASCII record separator 0x1E."""

from __future__ import annotations

from ..errors import MessageTooLargeError

RECORD_SEPARATOR = b"\x1e"


def write_record(payload: bytes) -> bytes:
    """Frame one payload as a record."""
    return payload + RECORD_SEPARATOR


class RecordReader:
    """Split a byte stream into records, buffering a partial record between feeds."""

    __slots__ = ("_buffer", "_max_size")

    def __init__(self, max_size: int | None = None) -> None:
        self._buffer = b""
        self._max_size = max_size

    @property
    def pending(self) -> int:
        """How many bytes of an unfinished record are buffered."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Return the records completed by `data` (without separators)."""
        if not data:
            return []
        buffered = self._buffer + data if self._buffer else data
        *records, rest = buffered.split(RECORD_SEPARATOR)
        limit = self._max_size
        if limit is not None:
            if len(rest) > limit:
                raise MessageTooLargeError(f"message exceeds the maximum size of {limit} bytes")
            for record in records:
                if len(record) > limit:
                    raise MessageTooLargeError(f"message exceeds the maximum size of {limit} bytes")
        self._buffer = rest
        return records
