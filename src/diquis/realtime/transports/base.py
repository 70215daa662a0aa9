"""What a connection needs from the transport carrying its server-to-client bytes."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..protocol.negotiate import TransportType


class Transport(ABC):
    """The server-to-client half of a connection."""

    __slots__ = ()
    kind: TransportType

    @abstractmethod
    def wake(self) -> None:
        """Frames are waiting in the connection's outbox."""

    @abstractmethod
    def finish(self) -> None:
        """The connection is closed: flush what is waiting, then end the transport."""
