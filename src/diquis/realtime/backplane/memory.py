"""In-process backplane: instances sharing a bus name see each other's payloads."""

from __future__ import annotations

import uuid
import weakref

from .base import Backplane

_BUSES: weakref.WeakValueDictionary[str, _Bus] = weakref.WeakValueDictionary()


class _Bus:
    """The members of one named in-process bus."""

    def __init__(self) -> None:
        self.members: list[MemoryBackplane] = []


class MemoryBackplane(Backplane):
    """One-process backplane; `MemoryBackplane("x")` instances share bus "x"."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self.name = name or f"private-{uuid.uuid4().hex}"
        bus = _BUSES.get(self.name)
        if bus is None:
            bus = _Bus()
            _BUSES[self.name] = bus
        self._bus = bus
        bus.members.append(self)

    async def _publish(self, payload: str) -> None:
        for member in list(self._bus.members):
            if member._listening:
                await member._dispatch(payload)

    async def _start_listening(self) -> None:
        return None

    async def _close(self) -> None:
        if self in self._bus.members:
            self._bus.members.remove(self)
