"""Linux inotify through ctypes: which files of one directory were just created or written.

Watching the directory (not the file) keeps working when a watched file is deleted and
made again: SQLite removes the ``-wal`` file when its last connection closes, and the
next writer creates a new one. The descriptor is non-blocking; an event loop waits on
:meth:`DirectoryWatch.fileno` and calls :meth:`DirectoryWatch.read`.

Where inotify does not exist (macOS, Windows) or cannot be had (the per-user instance
limit), the constructor raises :class:`OSError` and callers fall back to polling.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import struct
import sys
from collections.abc import Collection
from pathlib import Path

IN_MODIFY = 0x00000002
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_Q_OVERFLOW = 0x00004000
IN_ONLYDIR = 0x01000000
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name

_libc: ctypes.CDLL | None = None


def linux_libc(*functions: str) -> ctypes.CDLL:
    """The C library, on Linux only, with ``functions`` in it (else :class:`OSError`)."""
    global _libc
    if not sys.platform.startswith("linux"):
        raise OSError(errno.ENOSYS, f"{functions[0]} exists on Linux only")
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    missing = [f for f in functions if not hasattr(_libc, f)]
    if missing:
        raise OSError(errno.ENOSYS, f"this C library has no {missing[0]}")
    return _libc


def _load() -> ctypes.CDLL:
    libc = linux_libc("inotify_init1", "inotify_add_watch")
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    return libc


class DirectoryWatch:
    """Reports when any of ``names`` in ``directory`` is created, written or moved in."""

    def __init__(self, directory: Path, names: Collection[str]) -> None:
        libc = _load()
        self._names = {os.fsencode(n) for n in names}
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        mask = IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_ONLYDIR
        if libc.inotify_add_watch(fd, os.fsencode(directory), mask) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, f"inotify_add_watch({directory}): {os.strerror(err)}")
        self._fd: int | None = fd

    def fileno(self) -> int:
        """The descriptor to wait on for readability."""
        if self._fd is None:
            raise ValueError("the watch is closed")
        return self._fd

    def read(self) -> bool:
        """Consume every pending event; whether one concerned our names (or some were lost)."""
        hit = False
        while True:
            try:
                data = os.read(self.fileno(), 64 * 1024)
            except BlockingIOError:
                return hit
            if not data:
                return hit
            offset = 0
            while offset + _HEADER.size <= len(data):
                _, mask, _, size = _HEADER.unpack_from(data, offset)
                offset += _HEADER.size
                name = data[offset : offset + size].rstrip(b"\0")
                offset += size
                if mask & IN_Q_OVERFLOW or name in self._names:
                    hit = True

    def close(self) -> None:
        """Stop watching (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


__all__ = ["DirectoryWatch"]
