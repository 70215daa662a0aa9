"""Linux timerfd through ctypes: a descriptor that turns readable every few microseconds.

An event loop's timers wake it in whole milliseconds (epoll's time-out), which is a long
time next to a local disk's fsync. A periodic timerfd is a descriptor like any other: the
loop wakes the moment it fires, however short the period. :class:`Ticker` is off until
:meth:`Ticker.start`; an event loop waits on :meth:`Ticker.fileno` and calls
:meth:`Ticker.read`.

Where timerfd does not exist (not Linux) the constructor raises :class:`OSError` and
callers fall back to the loop's own timers.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

from .inotify import linux_libc

CLOCK_MONOTONIC = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _timespec(seconds: float) -> _Timespec:
    whole = int(seconds)
    return _Timespec(whole, int((seconds - whole) * 1e9))


class Ticker:
    """A periodic timer as a non-blocking descriptor, stopped until started."""

    def __init__(self) -> None:
        libc = linux_libc("timerfd_create", "timerfd_settime")
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.c_void_p,
        ]
        fd = libc.timerfd_create(CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_create: {os.strerror(err)}")
        self._libc = libc
        self._fd: int | None = fd
        self.period = 0.0  # seconds between ticks; 0 while stopped

    def fileno(self) -> int:
        """The descriptor to wait on for readability."""
        if self._fd is None:
            raise ValueError("the ticker is closed")
        return self._fd

    def _set(self, period: float) -> None:
        spec = _Itimerspec(_timespec(period), _timespec(period))
        if self._libc.timerfd_settime(self.fileno(), 0, ctypes.byref(spec), None) < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_settime: {os.strerror(err)}")
        self.period = period

    def start(self, period: float) -> None:
        """Tick every ``period`` seconds from now on (> 0)."""
        if period <= 0:
            raise ValueError(f"a ticker's period must be positive, got {period!r}")
        if period != self.period:
            self._set(period)

    def stop(self) -> None:
        """No more ticks (a tick already due may still be read once)."""
        if self.period:
            self._set(0.0)

    def read(self) -> int:
        """Consume the ticks that fired since the last read; how many."""
        try:
            data = os.read(self.fileno(), 8)
        except BlockingIOError:
            return 0
        return int.from_bytes(data, "little") if len(data) == 8 else 0

    def close(self) -> None:
        """Stop and let go of the descriptor (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


__all__ = ["Ticker"]
