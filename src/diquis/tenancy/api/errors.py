"""The error answers the API declares in its OpenAPI schema (FastAPI's ``{"detail": …}``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_MEANINGS = {
    400: "The request body cannot be read (not UTF-8 JSON)",
    401: "Not authenticated, or the token is invalid, expired or revoked",
    403: "Authenticated, but not allowed to do this",
    404: "No such resource (or not yours to see)",
    409: "The resource's state does not allow this now",
    413: "The request body is larger than the server accepts",
    429: "Too many requests; the Retry-After header says when to try again",
}


class ErrorOut(BaseModel):
    """What every refused request carries: a sentence saying what is wrong."""

    detail: str


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries declaring ``codes`` with the ErrorOut body."""
    return {code: {"model": ErrorOut, "description": _MEANINGS[code]} for code in codes}
