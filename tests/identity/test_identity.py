"""Tokens and passwords, without a server."""

from __future__ import annotations

import time

import jwt
import pytest

from diquis.identity import (
    ROLE_ADMIN,
    ROLE_SUPERADMIN,
    InvalidTokenError,
    PasswordPolicyError,
    Principal,
    hash_password,
    issue_token,
    tokens,
    validate_password,
    verify_password,
    verify_token,
)

SECRET = "unit-test-secret-with-at-least-32-bytes!!"


def test_a_token_round_trips_its_principal() -> None:
    who = Principal("u1", ROLE_ADMIN, "t1", email="a@acme.test")
    back = verify_token(SECRET, issue_token(SECRET, who, ttl=60))
    assert (back.user_id, back.role, back.tenant_id, back.email) == (
        "u1",
        ROLE_ADMIN,
        "t1",
        "a@acme.test",
    )
    assert back.token_id and back.expires_at is not None
    assert not back.is_superadmin
    assert Principal("u2", ROLE_SUPERADMIN, None).is_superadmin


def test_every_token_has_its_own_id() -> None:
    who = Principal("u1", ROLE_ADMIN, None)
    first, second = (verify_token(SECRET, issue_token(SECRET, who)) for _ in range(2))
    assert first.token_id != second.token_id


def test_an_expired_token_is_refused() -> None:
    token = issue_token(SECRET, Principal("u1", ROLE_ADMIN, None), ttl=10, now=time.time() - 60)
    with pytest.raises(InvalidTokenError, match="expired"):
        verify_token(SECRET, token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        issue_token("another-secret-of-at-least-32-bytes!!!", Principal("u1", ROLE_ADMIN, None)),
        jwt.encode(
            {"sub": "u1", "role": "Root", "iss": "diquis", "iat": 1, "exp": 2**31, "jti": "x"},
            SECRET,
            algorithm="HS256",
        ),
        jwt.encode({"sub": "u1", "role": ROLE_ADMIN, "exp": 2**31}, SECRET, algorithm="HS256"),
        jwt.encode(
            {"sub": "u1", "role": ROLE_ADMIN, "iss": "x", "iat": 1, "exp": 2**31, "jti": "x"},
            SECRET,
            algorithm="HS256",
        ),
    ],
    ids=["empty", "garbage", "other-secret", "unknown-role", "missing-claims", "other-issuer"],
)
def test_a_bad_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidTokenError):
        verify_token(SECRET, token)


def test_a_password_hash_verifies_only_its_password() -> None:
    hashed = hash_password("Correct-Horse-Battery-9")
    assert hashed != "Correct-Horse-Battery-9"
    assert verify_password("Correct-Horse-Battery-9", hashed)
    assert not verify_password("correct-horse-battery-9", hashed)
    assert not verify_password("anything", "not-a-hash")


@pytest.mark.parametrize(
    ("password", "email", "why"),
    [
        ("short", None, "at least"),
        ("x" * 1000, None, "at most"),
        ("password1234", None, "too easy"),
        ("acmecorp2026", "admin@acmecorp.test", "too easy"),
    ],
)
def test_a_weak_password_is_refused(password: str, email: str | None, why: str) -> None:
    with pytest.raises(PasswordPolicyError, match=why):
        validate_password(password, email=email)


def test_a_strong_password_passes() -> None:
    validate_password("Platform-Keeper-2026!", email="admin@example.com")


def test_a_token_verified_before_is_still_checked_for_expiry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = issue_token(SECRET, Principal("u1", ROLE_ADMIN, None), ttl=60)
    expires_at = verify_token(SECRET, token).expires_at  # now remembered
    assert expires_at is not None
    monkeypatch.setattr(tokens, "clock", lambda: expires_at - 0.5)
    assert verify_token(SECRET, token).user_id == "u1"
    monkeypatch.setattr(tokens, "clock", lambda: expires_at)
    with pytest.raises(InvalidTokenError, match="expired"):
        verify_token(SECRET, token)


def test_a_token_verified_before_is_refused_under_another_secret_or_with_a_changed_byte() -> None:
    token = issue_token(SECRET, Principal("u1", ROLE_ADMIN, None), ttl=60)
    assert verify_token(SECRET, token).user_id == "u1"
    with pytest.raises(InvalidTokenError):
        verify_token("another-secret-of-at-least-32-bytes!!!", token)
    head, body, signature = token.split(".")
    changed = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    with pytest.raises(InvalidTokenError):
        verify_token(SECRET, f"{head}.{body}.{changed}")
    assert verify_token(SECRET, token).user_id == "u1"
