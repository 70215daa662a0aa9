"""ASGI transports: WebSockets, Server-Sent Events and long polling (with HTTP POST sends)."""
