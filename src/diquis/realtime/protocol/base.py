"""The hub protocol interface: JSON today, room for MessagePack."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from typing import Protocol

from .messages import HubMessage


class TransferFormat(enum.Enum):
    """How a transport must carry a protocol's frames."""

    TEXT = "Text"
    BINARY = "Binary"


class HubProtocol(ABC):
    """Turns hub messages into bytes and back; one instance is shared by all connections."""

    name: str
    version: int
    transfer_format: TransferFormat

    @abstractmethod
    def parse_messages(self, data: bytes) -> list[HubMessage]:
        """Parse every complete message in `data`; raise ProtocolError on bad input."""

    @abstractmethod
    def parse_record(self, record: bytes) -> HubMessage:
        """Parse one already-delimited record into a message."""

    @abstractmethod
    def write_message(self, message: HubMessage) -> bytes:
        """Encode one message as a complete, framed record."""

    @abstractmethod
    def record_reader(self, max_size: int | None) -> RecordSplitter:
        """A fresh splitter that cuts this protocol's byte stream into records."""


class RecordSplitter(Protocol):
    """Cuts a byte stream into the records of one protocol."""

    def feed(self, data: bytes) -> list[bytes]:
        """Return the records completed by `data`."""
