"""The sans-IO core, continued: MessagePack, depth limits, versions, stateful reconnect."""

from __future__ import annotations

import datetime
import json

import pytest

from diquis.realtime.errors import HandshakeError, MessageTooLargeError, ProtocolError
from diquis.realtime.protocol import (
    AckMessage,
    BinaryRecordReader,
    CancelInvocationMessage,
    CloseMessage,
    CompletionMessage,
    HandshakeCompleted,
    InvocationMessage,
    JsonHubProtocol,
    MessagePackHubProtocol,
    MessageReceived,
    NegotiateResponse,
    PingMessage,
    ProtocolViolation,
    ReplayBuffer,
    SequenceMessage,
    ServerSession,
    StreamInvocationMessage,
    StreamItemMessage,
    parse_handshake_request,
)
from diquis.realtime.protocol.msgpack_protocol import write_varint

RS = b"\x1e"
msgpack_protocol = MessagePackHubProtocol()
json_protocol = JsonHubProtocol()


def hexes(text: str) -> bytes:
    return bytes(int(h, 16) for h in text.split())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # The spec's own examples, byte for byte.
        (
            "0x96 0x01 0x80 0xa3 0x78 0x79 0x7a 0xa6 0x6d 0x65 0x74 0x68 0x6f 0x64 0x91 0x2a 0x90",
            InvocationMessage("method", (42,), "xyz"),
        ),
        (
            "0x96 0x01 0x80 0xc0 0xa6 0x6d 0x65 0x74 0x68 0x6f 0x64 0x91 0x2a 0x90",
            InvocationMessage("method", (42,)),
        ),
        (
            "0x96 0x04 0x80 0xa3 0x78 0x79 0x7a 0xa6 0x6d 0x65 0x74 0x68 0x6f 0x64 0x91 0x2a 0x90",
            StreamInvocationMessage("xyz", "method", (42,)),
        ),
        ("0x94 0x02 0x80 0xa3 0x78 0x79 0x7a 0x2a", StreamItemMessage("xyz", 42)),
        (
            "0x95 0x03 0x80 0xa3 0x78 0x79 0x7a 0x01 0xa5 0x45 0x72 0x72 0x6f 0x72",
            CompletionMessage.with_error("xyz", "Error"),
        ),
        ("0x94 0x03 0x80 0xa3 0x78 0x79 0x7a 0x02", CompletionMessage("xyz")),
        ("0x95 0x03 0x80 0xa3 0x78 0x79 0x7a 0x03 0x2a", CompletionMessage.with_result("xyz", 42)),
        ("0x93 0x05 0x80 0xa3 0x78 0x79 0x7a", CancelInvocationMessage("xyz")),
        ("0x91 0x06", PingMessage()),
        ("0x92 0x07 0xa3 0x78 0x79 0x7a", CloseMessage("xyz")),
        ("0x93 0x07 0xa3 0x78 0x79 0x7a 0xc3", CloseMessage("xyz", True)),
        ("0x92 0x08 0xcc 0x24", AckMessage(36)),
        ("0x92 0x09 0xcc 0x13", SequenceMessage(19)),
    ],
)
def test_messagepack_reads_the_specs_examples_and_round_trips(body, message):
    raw = hexes(body)
    framed = write_varint(len(raw)) + raw
    assert msgpack_protocol.parse_messages(framed) == [message]
    assert msgpack_protocol.parse_messages(msgpack_protocol.write_message(message)) == [message]


def test_messagepack_ping_is_exactly_0x91_0x06_and_headers_are_read():
    assert msgpack_protocol.write_message(PingMessage()) == b"\x02\x91\x06"
    raw = hexes(
        "0x96 0x01 0x82 0xa1 0x78 0xa1 0x79 0xa1 0x7a 0xa1 0x7a 0xa3 0x78 0x79 0x7a "
        "0xa6 0x6d 0x65 0x74 0x68 0x6f 0x64 0x91 0x2a 0x90"
    )
    [message] = msgpack_protocol.parse_messages(write_varint(len(raw)) + raw)
    assert message.headers == {"x": "y", "z": "z"}


def test_messagepack_type_mapping():
    when = datetime.datetime(2026, 5, 4, 3, 2, 1, 500000, tzinfo=datetime.UTC)
    values = (7, -3, 2**40, 1.5, "héllo", b"\x00\xff", [1, [2]], {"k": None}, None, True, when)
    frame = msgpack_protocol.write_message(InvocationMessage("T", values))
    [back] = msgpack_protocol.parse_messages(frame)
    assert back.arguments == values
    # A naive datetime is taken as UTC.
    naive = msgpack_protocol.write_message(
        CompletionMessage.with_result("1", when.replace(tzinfo=None))
    )
    assert msgpack_protocol.parse_messages(naive)[0].result == when


def test_json_maps_bytes_to_base64_and_times_to_iso_8601():
    when = datetime.datetime(2026, 5, 4, 3, 2, 1, tzinfo=datetime.UTC)
    frame = json_protocol.write_message(CompletionMessage.with_result("1", [b"\x00\xff", when]))
    assert json.loads(frame[:-1])["result"] == ["AP8=", "2026-05-04T03:02:01+00:00"]


def test_varint_prefix_and_binary_framing():
    assert write_varint(0x35) == b"\x35"
    assert write_varint(0x1480) == b"\x80\x29"
    assert write_varint(0x7FFFFFFF) == b"\xff\xff\xff\xff\x07"
    reader = BinaryRecordReader()
    data = b"\x0bHello\nWorld\x02\x01\x02"
    assert reader.feed(data[:5]) == []
    assert reader.feed(data[5:]) == [b"Hello\nWorld", b"\x01\x02"]
    assert reader.pending == 0
    big = write_varint(300) + b"x" * 300
    assert reader.feed(big[:1]) == []  # half a prefix
    assert reader.feed(big[1:]) == [b"x" * 300]


def test_binary_framing_limits():
    with pytest.raises(MessageTooLargeError):
        BinaryRecordReader(max_size=10).feed(write_varint(11))  # refused before the body
    with pytest.raises(ProtocolError, match="5 bytes"):
        BinaryRecordReader().feed(b"\xff\xff\xff\xff\xff\x01")


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        (b"\x91\xc0", "not an integer"),
        (b"\x91\x63", "unknown message type 99"),
        (b"\x92\x01\x80", "at least 5"),
        (b"\x95\x03\x80\xa1x\x07\x01", "result kind"),
        (b"\xc1", "not valid MessagePack"),
        (b"\x2a", "array"),
    ],
)
def test_messagepack_bad_messages_name_the_problem(raw, complaint):
    with pytest.raises(ProtocolError, match=complaint):
        msgpack_protocol.parse_messages(write_varint(len(raw)) + raw)


def deep_json(depth: int) -> bytes:
    inner = b"[" * depth + b"]" * depth
    return b'{"type":1,"target":"echo","arguments":' + inner + b"}"


def test_nesting_depth_is_limited_in_json_and_messagepack():
    assert json_protocol.parse_record(deep_json(60)).target == "echo"
    for depth in (65, 30_000):
        with pytest.raises(ProtocolError, match="maximum depth of 64"):
            json_protocol.parse_record(deep_json(depth))
    # Brackets inside strings do not count.
    text = b'{"type":1,"target":"echo","arguments":["' + b"[" * 500 + b'"]}'
    assert json_protocol.parse_record(text).arguments == ("[" * 500,)
    for depth, ok in ((60, True), (65, False), (30_000, False)):
        body = b"\x95\x01\x80\xc0\xa4echo" + b"\x91" * depth + b"\x90"
        if ok:
            assert msgpack_protocol.parse_record(body).target == "echo"
        else:
            with pytest.raises(ProtocolError, match="maximum depth"):
                msgpack_protocol.parse_record(body)


def test_a_deep_handshake_is_refused_not_crashed():
    with pytest.raises(HandshakeError, match="depth"):
        parse_handshake_request(b"[" * 30_000 + b"]" * 30_000)
    session = ServerSession([json_protocol], None)
    [event] = session.receive_data(b"[" * 30_000 + RS)
    assert "depth" in event.error


def test_a_deep_message_closes_the_session_with_a_reason():
    session = ServerSession([json_protocol], None)
    session.receive_data(b'{"protocol":"json","version":1}' + RS)
    [event] = session.receive_data(deep_json(30_000) + RS)
    assert isinstance(event, ProtocolViolation)
    assert json.loads(event.close[:-1])["error"].endswith("maximum depth of 64")


@pytest.mark.parametrize("version", [0, 1, 2])
def test_every_version_up_to_ours_is_accepted(version):
    session = ServerSession([json_protocol, msgpack_protocol], None)
    handshake = b'{"protocol":"json","version":%d}' % version
    [event] = session.receive_data(handshake + RS)
    assert isinstance(event, HandshakeCompleted)
    assert session.protocol_version == version
    # Stateful reconnect needs version 2.
    assert session.enable_replay(1000) is (version >= 2)


def test_negotiate_says_when_stateful_reconnect_is_on():
    assert "useStatefulReconnect" not in json.loads(NegotiateResponse("c", "t", 1).to_json())
    body = json.loads(NegotiateResponse("c", "t", 1, stateful_reconnect=True).to_json())
    assert body["useStatefulReconnect"] is True


def test_replay_buffer_acks_replays_and_overflows():
    buffer = ReplayBuffer(limit=10)
    for frame in (b"aaa", b"bbb", b"ccc"):
        buffer.track(frame)
    assert buffer.next_sequence_id == 4
    buffer.ack(1)
    assert buffer.buffered_bytes == 6
    replay = buffer.replay(json_protocol)
    assert replay == json_protocol.write_message(SequenceMessage(2)) + b"bbbccc"
    buffer.ack(3)
    assert buffer.replay(json_protocol) == json_protocol.write_message(SequenceMessage(4))
    buffer.track(b"x" * 11)
    assert buffer.overflowed
    with pytest.raises(ProtocolError):
        buffer.replay(json_protocol)


def test_replay_buffer_drops_duplicates_after_the_peers_sequence():
    buffer = ReplayBuffer(limit=100)
    assert [buffer.accept() for _ in range(3)] == [True, True, True]
    assert buffer.ack_due() == 3
    assert buffer.ack_due() is None
    buffer.restart_at(2)  # the client replays 2 and 3, then sends 4
    assert [buffer.accept() for _ in range(3)] == [False, False, True]
    with pytest.raises(ProtocolError):
        buffer.restart_at(9)


def test_stateful_session_consumes_acks_and_sequences_and_skips_duplicates():
    session = ServerSession([json_protocol], None)
    session.receive_data(b'{"protocol":"json","version":2}' + RS)
    assert session.enable_replay(1000)
    assert session.replay is not None
    session.replay.track(b"frame-1")
    invoke = b'{"type":1,"target":"a","arguments":[]}' + RS
    events = session.receive_data(b'{"type":8,"sequenceId":1}' + RS + invoke + invoke)
    assert events == [MessageReceived(InvocationMessage("a"))] * 2
    assert session.replay.buffered_bytes == 0
    # After a reconnect the client starts again at 2: that one is a duplicate.
    events = session.receive_data(b'{"type":9,"sequenceId":2}' + RS + invoke + invoke)
    assert events == [MessageReceived(InvocationMessage("a"))]
    [bad] = session.receive_data(b'{"type":9,"sequenceId":99}' + RS)
    assert isinstance(bad, ProtocolViolation)
