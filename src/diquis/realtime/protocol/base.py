"""The hub protocol interface: JSON today, room for MessagePack."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from typing import Protocol

from ..errors import ProtocolError
from .depth import MAX_DEPTH
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
    #: what a trailing partial record lacks, for the error message
    incomplete: str = "the end of its record"

    def __init__(self, max_depth: int = MAX_DEPTH) -> None:
        self.max_depth = max_depth  # arrays/maps nested deeper close the connection

    def parse_messages(self, data: bytes) -> list[HubMessage]:
        """Parse every message in `data`; ProtocolError on bad input or a partial record."""
        reader = self.record_reader(None)
        records = reader.feed(data)
        if reader.pending:
            raise ProtocolError(f"incomplete message: {self.incomplete}")
        return [self.parse_record(record) for record in records]

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
        ...

    @property
    def pending(self) -> int:
        """Bytes held of a record not yet complete."""
        ...
