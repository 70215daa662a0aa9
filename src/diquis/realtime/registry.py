"""The connections living in this process, indexed by id, user and group."""

from __future__ import annotations

from collections.abc import Iterable

from .audience import Audience, AudienceKind
from .connection import HubConnection


class LocalConnections:
    """Open connections of one hub in this process."""

    def __init__(self) -> None:
        self.by_id: dict[str, HubConnection] = {}
        self._by_user: dict[str, set[HubConnection]] = {}
        self._groups: dict[str, set[HubConnection]] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def add(self, connection: HubConnection) -> None:
        """Index an open connection."""
        self.by_id[connection.id] = connection
        if connection.user_id is not None:
            self._by_user.setdefault(connection.user_id, set()).add(connection)

    def remove(self, connection: HubConnection) -> None:
        """Forget a connection and its group memberships."""
        if self.by_id.pop(connection.id, None) is None:
            return
        user = connection.user_id
        if user is not None:
            _discard(self._by_user, user, connection)
        for group in connection.groups:
            _discard(self._groups, group, connection)
        connection.clear_groups()

    def join(self, connection_id: str, group: str) -> bool:
        """Add a local connection to a group; False when the connection is not here."""
        connection = self.by_id.get(connection_id)
        if connection is None:
            return False
        connection.add_group(group)
        self._groups.setdefault(group, set()).add(connection)
        return True

    def leave(self, connection_id: str, group: str) -> bool:
        """Remove a local connection from a group; False when the connection is not here."""
        connection = self.by_id.get(connection_id)
        if connection is None:
            return False
        connection.discard_group(group)
        _discard(self._groups, group, connection)
        return True

    def select(self, audience: Audience) -> Iterable[HubConnection]:
        """The local connections an audience addresses."""
        kind = audience.kind
        if kind is AudienceKind.ALL:
            found: Iterable[HubConnection] = self.by_id.values()
        elif kind is AudienceKind.CONNECTIONS:
            found = [c for c in map(self.by_id.get, audience.names) if c is not None]
        else:
            index = self._by_user if kind is AudienceKind.USERS else self._groups
            if len(audience.names) == 1:
                found = index.get(audience.names[0], ())
            else:
                merged: set[HubConnection] = set()
                for name in audience.names:
                    merged.update(index.get(name, ()))
                found = merged
        if audience.excluded:
            excluded = set(audience.excluded)
            return [c for c in found if c.id not in excluded]
        return list(found)


def _discard(index: dict[str, set[HubConnection]], key: str, connection: HubConnection) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(connection)
        if not members:
            del index[key]
