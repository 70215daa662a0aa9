"""HTTP POST: the client-to-server half used with Server-Sent Events and long polling."""

from __future__ import annotations

from .host import Receive, Refused, Scope, Send, TransportHost, respond


async def serve_send(host: TransportHost, scope: Scope, receive: Receive, send: Send) -> None:
    """Feed a POST body to its connection; 409 while another POST for it is in flight."""
    try:
        identity = await host.authenticate(scope, None)
        connection = host.find_connection(scope, identity)
        if connection.closed:
            raise Refused(404, "The connection has ended.")
        if connection.posting:
            raise Refused(409, "Another send request is in progress for this connection.")
    except Refused as refused:
        await respond(send, refused.status, refused.detail.encode())
        return
    connection.posting = True
    try:
        more = True
        while more and not connection.closed:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            more = message.get("more_body", False)
            # Fed as it arrives: the session's size limit bounds what is buffered.
            await connection.receive_data(message.get("body", b""), host.now())
    finally:
        connection.posting = False
    await respond(send, 200)
