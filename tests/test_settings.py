"""Settings from DIQUIS_* variables: defaults, and every parse error names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from diquis.settings import Settings, SettingsError

BAD = [
    ("DIQUIS_DEV", "maybe"),
    ("DIQUIS_DEMO_STEP_DELAY", "soon"),
    ("DIQUIS_DEMO_STEP_DELAY", "-1"),
    ("DIQUIS_DB_POOL_SIZE", "many"),
    ("DIQUIS_DB_POOL_SIZE", "0"),
    ("DIQUIS_DB_MAX_OVERFLOW", "1.5"),
    ("DIQUIS_PROVISIONING_STUCK_AFTER", "never"),
    ("DIQUIS_HUB_MAX_CONNECTIONS_PER_USER", "0"),
    ("DIQUIS_MAX_BODY_BYTES", "10"),
    ("DIQUIS_TENANT_DB_PREFIX", "Bad-Prefix"),
    ("DIQUIS_TRUSTED_PROXIES", "not-an-ip"),
    ("DIQUIS_FAULTS", "no_such_step:1"),
    ("DIQUIS_SECRET_KEY", "short"),
    ("DIQUIS_METRICS_TOKEN", "short"),
    ("DIQUIS_DATABASE_URL", "mysql://x"),
    ("DIQUIS_PUBLIC_URL", "ftp://x"),
    ("DIQUIS_SMTP_URL", "http://x"),
]


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v}" for n, v in BAD])
def test_a_bad_value_names_its_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"DIQUIS_DATA_DIR": str(tmp_path), name: value})


def test_defaults_are_embedded(tmp_path: Path) -> None:
    settings = Settings.from_env({"DIQUIS_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path.resolve()}/diquis.db"
    assert settings.backplane_url == "memory://diquis"
    assert not settings.dev and settings.metrics_token is None
    assert len(settings.secret_key) >= 32
    # the generated secret is kept: a restart keeps sessions valid
    assert Settings.from_env({"DIQUIS_DATA_DIR": str(tmp_path)}).secret_key == settings.secret_key


def test_good_values_are_parsed(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "DIQUIS_DATA_DIR": str(tmp_path),
            "DIQUIS_DEV": "true",
            "DIQUIS_DB_POOL_SIZE": "7",
            "DIQUIS_DEMO_STEP_DELAY": "0.5",
            "DIQUIS_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1",
            "DIQUIS_PUBLIC_URL": "https://diquis.example/",
        }
    )
    assert settings.dev and settings.db_pool_size == 7 and settings.demo_step_delay == 0.5
    assert settings.public_url == "https://diquis.example"
    assert len(settings.trusted_proxies) == 2


@pytest.mark.parametrize(
    ("name", "value", "scheme"),
    [
        ("DIQUIS_DATABASE_URL", "mysql://app:hunter2-secret@db/app", "'mysql'"),
        ("DIQUIS_DATABASE_URL", "app:hunter2-secret@db/app", "'(none)'"),
        ("DIQUIS_SMTP_URL", "http://mailer:hunter2-secret@mail:25", "'http'"),
    ],
)
def test_a_bad_url_is_named_by_its_scheme_without_its_password(
    tmp_path: Path, name: str, value: str, scheme: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"DIQUIS_DATA_DIR": str(tmp_path), name: value})
    assert name in str(caught.value) and scheme in str(caught.value)
    assert "hunter2" not in str(caught.value)
