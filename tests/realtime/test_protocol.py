"""The sans-IO protocol core, with no sockets."""

from __future__ import annotations

import json

import pytest

from diquis.realtime.errors import HandshakeError, MessageTooLargeError, ProtocolError
from diquis.realtime.protocol import (
    CancelInvocationMessage,
    CloseMessage,
    CompletionMessage,
    HandshakeCompleted,
    HandshakeFailed,
    InvocationMessage,
    JsonHubProtocol,
    MessageReceived,
    NegotiateResponse,
    PingMessage,
    ProtocolViolation,
    RecordReader,
    ServerSession,
    SessionState,
    StreamInvocationMessage,
    StreamItemMessage,
    parse_handshake_request,
    parse_negotiate_version,
    write_handshake_response,
)

RS = b"\x1e"
HANDSHAKE = b'{"protocol":"json","version":1}' + RS
json_protocol = JsonHubProtocol()


def test_record_reader_buffers_partial_records_and_splits_several():
    reader = RecordReader()
    assert reader.feed(b'{"a":1}' + RS + b'{"b"') == [b'{"a":1}']
    assert reader.pending == 4
    assert reader.feed(b":2}" + RS + b"{}" + RS) == [b'{"b":2}', b"{}"]
    assert reader.pending == 0


def test_record_reader_rejects_oversized_records_even_before_they_end():
    with pytest.raises(MessageTooLargeError):
        RecordReader(max_size=8).feed(b"x" * 9)
    with pytest.raises(MessageTooLargeError):
        RecordReader(max_size=8).feed(b"x" * 9 + RS)


def test_handshake_request_and_response():
    assert parse_handshake_request(b'{"protocol":"json","version":1}').protocol == "json"
    assert write_handshake_response() == b"{}" + RS
    assert json.loads(write_handshake_response("nope")[:-1]) == {"error": "nope"}
    for bad in [b"{", b"[]", b'{"version":1}', b'{"protocol":"json","version":"1"}']:
        with pytest.raises(HandshakeError):
            parse_handshake_request(bad)


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (
            {"type": 1, "invocationId": "7", "target": "Send", "arguments": [1, "é", {"a": None}]},
            InvocationMessage("Send", (1, "é", {"a": None}), "7"),
        ),
        ({"type": 1, "target": "Fire", "arguments": []}, InvocationMessage("Fire")),
        ({"type": 2, "invocationId": "1", "item": [1]}, StreamItemMessage("1", [1])),
        ({"type": 3, "invocationId": "1", "result": 5}, CompletionMessage.with_result("1", 5)),
        ({"type": 3, "invocationId": "1", "error": "x"}, CompletionMessage.with_error("1", "x")),
        ({"type": 3, "invocationId": "1"}, CompletionMessage("1")),
        (
            {"type": 4, "invocationId": "2", "target": "Counter", "arguments": [3]},
            StreamInvocationMessage("2", "Counter", (3,)),
        ),
        ({"type": 5, "invocationId": "2"}, CancelInvocationMessage("2")),
        ({"type": 6}, PingMessage()),
        ({"type": 7}, CloseMessage()),
        ({"type": 7, "error": "bye", "allowReconnect": True}, CloseMessage("bye", True)),
    ],
)
def test_every_message_type_round_trips(wire, message):
    raw = json.dumps(wire).encode() + RS
    assert json_protocol.parse_messages(raw) == [message]
    assert json.loads(json_protocol.write_message(message)[:-1]) == wire


def test_several_messages_in_one_frame():
    raw = b'{"type":6}' + RS + b'{"type":5,"invocationId":"9"}' + RS
    assert json_protocol.parse_messages(raw) == [PingMessage(), CancelInvocationMessage("9")]


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1,2]", "JSON object"),
        (b'{"type":42}', "unknown message type 42"),
        (b'{"type":"1"}', "'type'"),
        (b'{"type":1,"arguments":[]}', "'target'"),
        (b'{"type":1,"target":"x"}', "'arguments'"),
        (b'{"type":1,"target":"x","arguments":{}}', "'arguments'"),
        (b'{"type":3,"invocationId":"1","result":1,"error":"e"}', "both"),
        (b'{"type":7,"allowReconnect":"yes"}', "'allowReconnect'"),
    ],
)
def test_bad_messages_name_the_problem(raw, complaint):
    with pytest.raises(ProtocolError, match=complaint):
        json_protocol.parse_messages(raw + RS)


def test_writing_a_non_json_value_fails_loudly():
    with pytest.raises((TypeError, ValueError)):
        json_protocol.write_message(CompletionMessage.with_result("1", object()))
    with pytest.raises(ValueError):
        json_protocol.write_message(CompletionMessage.with_result("1", float("nan")))


def test_session_handshake_then_messages_in_the_same_frame():
    session = ServerSession([json_protocol], 1024)
    events = session.receive_data(HANDSHAKE + b'{"type":6}' + RS + b'{"type":1,"tar')
    assert isinstance(events[0], HandshakeCompleted)
    assert events[0].response == b"{}" + RS
    assert events[1:] == [MessageReceived(PingMessage())]
    assert session.state is SessionState.OPEN
    more = session.receive_data(b'get":"X","arguments":[]}' + RS)
    assert more == [MessageReceived(InvocationMessage("X"))]


def test_session_handshake_split_across_frames():
    session = ServerSession([json_protocol], 1024)
    assert session.receive_data(HANDSHAKE[:10]) == []
    assert isinstance(session.receive_data(HANDSHAKE[10:])[0], HandshakeCompleted)


@pytest.mark.parametrize(
    ("handshake", "complaint"),
    [
        (b'{"protocol":"messagepack","version":1}', "not supported"),
        (b'{"protocol":"json","version":3}', "version 3"),
        (b"garbage", "not valid JSON"),
    ],
)
def test_session_refuses_bad_handshakes(handshake, complaint):
    session = ServerSession([json_protocol], 1024)
    [event] = session.receive_data(handshake + RS)
    assert isinstance(event, HandshakeFailed)
    assert complaint in event.error
    assert complaint in json.loads(event.response[:-1])["error"]
    assert session.state is SessionState.CLOSED
    assert session.receive_data(HANDSHAKE) == []


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b'{"type":99}' + RS, "unknown message type"),
        (b"{oops" + RS, "not valid JSON"),
        (b'{"type":1,"target":"x","arguments":["' + b"y" * 200 + b'"]}' + RS, "maximum size"),
    ],
)
def test_session_closes_with_a_reason_on_protocol_violations(data, complaint):
    session = ServerSession([json_protocol], 100)
    session.receive_data(HANDSHAKE)
    [event] = session.receive_data(data)
    assert isinstance(event, ProtocolViolation)
    assert complaint in event.error
    assert event.close is not None
    close = json.loads(event.close[:-1])
    assert close["type"] == 7
    assert complaint in close["error"]
    assert session.state is SessionState.CLOSED


def test_session_close_says_why_and_may_invite_reconnect():
    session = ServerSession([json_protocol], None)
    assert session.close("early") is None  # nothing to say before the handshake
    session = ServerSession([json_protocol], None)
    session.receive_data(HANDSHAKE)
    frame = session.close("Server is shutting down.", allow_reconnect=True)
    assert frame is not None
    assert json.loads(frame[:-1]) == {
        "type": 7,
        "error": "Server is shutting down.",
        "allowReconnect": True,
    }


def test_negotiate_payloads_v0_and_v1():
    v1 = json.loads(NegotiateResponse("cid", "secret", 1).to_json())
    assert v1["connectionId"] == "cid"
    assert v1["connectionToken"] == "secret"
    assert v1["negotiateVersion"] == 1
    assert [t["transport"] for t in v1["availableTransports"]] == [
        "WebSockets",
        "ServerSentEvents",
        "LongPolling",
    ]
    assert v1["availableTransports"][1]["transferFormats"] == ["Text"]
    v0 = json.loads(NegotiateResponse("cid", "cid", 0).to_json())
    assert "connectionToken" not in v0
    assert v0["negotiateVersion"] == 0


def test_negotiate_version_is_clamped_and_validated():
    assert parse_negotiate_version(None) == 0
    assert parse_negotiate_version("1") == 1
    assert parse_negotiate_version("7") == 1
    for bad in ["x", "-1"]:
        with pytest.raises(ProtocolError, match="negotiateVersion"):
            parse_negotiate_version(bad)
