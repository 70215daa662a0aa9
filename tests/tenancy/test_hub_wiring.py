"""How `diquis serve` configures the notifications hub."""

from __future__ import annotations

import time

import pytest

from diquis.app import hub_options
from diquis.identity import Principal, issue_token
from diquis.realtime import AuthRequest
from diquis.settings import Settings, SettingsError
from diquis.tenancy.hub import token_authenticator


def test_serve_turns_on_stateful_reconnect_expiry_closes_and_caps(tmp_path):
    settings = Settings.from_env(
        {"DIQUIS_DATA_DIR": str(tmp_path), "DIQUIS_HUB_MAX_CONNECTIONS_PER_USER": "7"}
    )
    options = hub_options(settings)
    assert options.allow_stateful_reconnect
    assert options.close_on_token_expiry
    assert options.max_connections_per_user == 7
    assert options.max_pending_negotiations is not None
    assert (
        hub_options(Settings.from_env({"DIQUIS_DATA_DIR": str(tmp_path)})).max_connections_per_user
        == 100
    )
    with pytest.raises(SettingsError, match="DIQUIS_HUB_MAX_CONNECTIONS_PER_USER"):
        Settings.from_env(
            {"DIQUIS_DATA_DIR": str(tmp_path), "DIQUIS_HUB_MAX_CONNECTIONS_PER_USER": "0"}
        )


async def test_the_hub_identity_expires_with_the_token():
    secret = "s" * 40
    token = issue_token(secret, Principal("u1", "SuperAdmin", None), ttl=60)
    identity = await token_authenticator(secret)(AuthRequest(token, {}, {}, None))
    assert identity is not None
    assert identity.expires_at is not None
    assert 50 < identity.expires_at - time.time() <= 61
