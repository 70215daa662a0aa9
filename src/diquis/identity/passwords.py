"""Password hashing (argon2 via pwdlib) and the strength rule for new passwords."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from pwdlib import PasswordHash
from zxcvbn import zxcvbn

MIN_LENGTH = 10
MAX_LENGTH = 256
#: zxcvbn's scale is 0 (guessed at once) to 4; 3 resists an offline attack on a slow hash
MIN_SCORE = 3
#: zxcvbn refuses longer input (its matching is quadratic); the rest only adds strength
_SCORED_PREFIX = 72

#: every rule, for people, in the order they are checked (the web form shows these)
RULES = (
    f"at least {MIN_LENGTH} characters (at most {MAX_LENGTH})",
    "hard to guess: not a common password, word, name, date, keyboard pattern or sequence",
    "not built from your e-mail address or organisation name",
)


class PasswordPolicyError(ValueError):
    """A new password that is too weak; the message says what to change."""


@lru_cache(maxsize=1)
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


def _context_words(email: str | None, context: Iterable[str]) -> list[str]:
    words = [w for w in context if w]
    if email:
        local, _, domain = email.lower().partition("@")
        words += [email.lower(), local, *domain.split(".")]
    return [w for w in words if len(w) >= 3]


def validate_password(
    password: str, *, email: str | None = None, context: Iterable[str] = ()
) -> None:
    """Raise PasswordPolicyError unless ``password`` is acceptable as a new password.

    ``email`` and ``context`` (say the organisation's name) are words the password must
    not lean on: zxcvbn counts them as guessed first.
    """
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"password must be at most {MAX_LENGTH} characters long")
    result = zxcvbn(password[:_SCORED_PREFIX], user_inputs=_context_words(email, context))
    if result["score"] < MIN_SCORE:
        feedback = result["feedback"]
        hint = feedback.get("warning") or " ".join(feedback.get("suggestions") or [])
        raise PasswordPolicyError(
            "password is too easy to guess" + (f": {hint.rstrip('.')}" if hint else "")
        )


def hash_password(password: str) -> str:
    """An argon2 hash of ``password``."""
    return _hasher().hash(password)


def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches ``hashed``."""
    try:
        return bool(_hasher().verify(password, hashed))
    except Exception:
        return False
