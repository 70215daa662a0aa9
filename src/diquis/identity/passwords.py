"""Password hashing (argon2 via pwdlib) and the strength rule for new passwords."""

from __future__ import annotations

from functools import lru_cache

from pwdlib import PasswordHash

MIN_LENGTH = 10
MAX_LENGTH = 256


class PasswordPolicyError(ValueError):
    """A new password that is too weak; the message says what to change."""


@lru_cache(maxsize=1)
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


def validate_password(password: str, *, email: str | None = None) -> None:
    """Raise PasswordPolicyError unless ``password`` is acceptable as a new password."""
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"password must be at most {MAX_LENGTH} characters long")
    if len(set(password)) < 5:
        raise PasswordPolicyError("password must use at least 5 different characters")
    local = email.split("@")[0].lower() if email else ""
    if len(local) >= 3 and local in password.lower():
        raise PasswordPolicyError("password must not contain the e-mail's name")
    if password.lower() in {"password123", "1234567890", "qwertyuiop", "letmein123"}:
        raise PasswordPolicyError("password is too common")


def hash_password(password: str) -> str:
    """An argon2 hash of ``password``."""
    return _hasher().hash(password)


def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches ``hashed``."""
    try:
        return bool(_hasher().verify(password, hashed))
    except Exception:
        return False
