"""Stateful reconnect bookkeeping: sequence ids both ways and the buffer of unacked frames."""

from __future__ import annotations

from collections import deque

from ..errors import ProtocolError
from .base import HubProtocol
from .messages import SequenceMessage


class ReplayBuffer:
    """What one side of a stateful connection must remember to resume after a transport drop.

    Outgoing trackable frames get sequence ids 1, 2, 3... implicitly (ids never travel with
    the frame, so one encoded broadcast frame serves every connection) and stay buffered
    until the peer acks them. Incoming trackable messages are counted so that replayed
    duplicates can be dropped.
    """

    __slots__ = (
        "_acked_sent",
        "_bytes",
        "_first_id",
        "_frames",
        "_latest_received",
        "_next_receiving",
        "limit",
        "overflowed",
    )

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._frames: deque[bytes] = deque()
        self._first_id = 1  # the sequence id of _frames[0] (or of the next frame, if empty)
        self._bytes = 0
        self.overflowed = False
        self._next_receiving = 1
        self._latest_received = 0
        self._acked_sent = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes of sent frames the peer has not acknowledged."""
        return self._bytes

    @property
    def next_sequence_id(self) -> int:
        """The id the next tracked frame gets."""
        return self._first_id + len(self._frames)

    def track(self, frame: bytes) -> None:
        """Remember an outgoing trackable frame; past the limit, give up on replaying."""
        if self.overflowed:
            self._first_id += 1
            return
        self._frames.append(frame)
        self._bytes += len(frame)
        if self._bytes > self.limit:
            # Too much unacknowledged: a resume could not be lossless, so never resume.
            self.overflowed = True
            self._first_id += len(self._frames)
            self._frames.clear()
            self._bytes = 0

    def ack(self, sequence_id: int) -> None:
        """The peer has every frame up to `sequence_id`: forget them."""
        frames = self._frames
        while frames and self._first_id <= sequence_id:
            self._bytes -= len(frames.popleft())
            self._first_id += 1

    def replay(self, protocol: HubProtocol) -> bytes:
        """What to send on a resumed transport: a Sequence message, then every unacked frame."""
        if self.overflowed:
            raise ProtocolError("the replay buffer overflowed; the connection cannot resume")
        head = protocol.write_message(SequenceMessage(self._first_id))
        return head + b"".join(self._frames)

    def accept(self) -> bool:
        """Count one incoming trackable message; False when it is a replayed duplicate."""
        current = self._next_receiving
        self._next_receiving += 1
        if current <= self._latest_received:
            return False
        self._latest_received = current
        return True

    def restart_at(self, sequence_id: int) -> None:
        """The peer's Sequence message: its next trackable message has `sequence_id`."""
        if sequence_id > self._next_receiving or sequence_id < 1:
            raise ProtocolError("Sequence ID greater than amount of messages we've received.")
        self._next_receiving = sequence_id

    def ack_due(self) -> int | None:
        """The id to acknowledge, when there is something new to acknowledge."""
        if self._latest_received > self._acked_sent:
            self._acked_sent = self._latest_received
            return self._latest_received
        return None
