"""Tunable limits and timers of a hub server."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class HubOptions:
    """Timers (seconds) and limits of a hub; SignalR's defaults unless told otherwise."""

    keep_alive_interval: float = 15.0
    client_timeout: float = 30.0
    handshake_timeout: float = 15.0
    max_message_size: int | None = 32 * 1024
    long_polling_timeout: float = 90.0
    max_buffered_bytes: int = 1024 * 1024
    detailed_errors: bool = False
    # Stateful reconnect (`withStatefulReconnect()`): off by default, as in ASP.NET Core.
    allow_stateful_reconnect: bool = False
    stateful_reconnect_buffer_size: int = 100_000
    stateful_reconnect_window: float = 30.0
    # Close a connection once its identity's `expires_at` passes (CloseOnAuthenticationExpiration).
    close_on_token_expiry: bool = False
    max_connections_per_user: int | None = None
    max_pending_negotiations: int | None = None
    clock: Callable[[], float] = field(default=time.monotonic)
    wall_clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        for name in (
            "keep_alive_interval",
            "client_timeout",
            "handshake_timeout",
            "stateful_reconnect_window",
            "stateful_reconnect_buffer_size",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"HubOptions.{name} must be positive")
        if self.max_message_size is not None and self.max_message_size <= 0:
            raise ValueError("HubOptions.max_message_size must be positive or None")
        for name in ("max_connections_per_user", "max_pending_negotiations"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"HubOptions.{name} must be positive or None")

    @property
    def tick_interval(self) -> float:
        """How often the keep-alive sweeper looks at every connection."""
        shortest = min(self.keep_alive_interval, self.client_timeout, self.handshake_timeout)
        return max(0.005, min(1.0, shortest / 4))
