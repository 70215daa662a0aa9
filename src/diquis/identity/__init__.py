"""Users, roles, passwords and tokens, shared by the API, the hub and the dashboard."""

from .passwords import PasswordPolicyError, hash_password, validate_password, verify_password
from .tokens import (
    ROLE_ADMIN,
    ROLE_SUPERADMIN,
    SESSION_COOKIE,
    InvalidTokenError,
    Principal,
    issue_token,
    verify_token,
)

__all__ = [
    "ROLE_ADMIN",
    "ROLE_SUPERADMIN",
    "SESSION_COOKIE",
    "InvalidTokenError",
    "PasswordPolicyError",
    "Principal",
    "hash_password",
    "issue_token",
    "validate_password",
    "verify_password",
    "verify_token",
]
