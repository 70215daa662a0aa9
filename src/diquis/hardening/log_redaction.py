"""Keep secrets out of logs: token query values, URL passwords, anything shaped like a JWT."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

#: ``token=…`` / ``access_token=…`` in a query string (also ``id_token``, ``refresh_token``)
_QUERY_TOKEN = re.compile(r"(?i)((?:^|[?&;\s\"'])(?:[a-z_]*_)?token=)[^&\s\"']+")
#: a JWT: base64url header (always starts ``eyJ``, ``{"``), payload and signature
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
#: the password of a URL's user info: ``postgresql://user:secret@host`` (also ``redis://:secret@``)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@/\s]+(?=@)")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with token query values, URL passwords and JWTs replaced by ``[redacted]``."""
    text = _QUERY_TOKEN.sub(lambda m: m.group(1) + REDACTED, text)
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED, text)
    return _JWT.sub(REDACTED, text)


class RedactSecrets(logging.Filter):
    """A filter that rewrites each record's message and arguments without secrets.

    The arguments are redacted one by one rather than folded into the message, because
    some formatters (uvicorn's access log) read them by position.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        return True


def _clean(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with the redacting filter on each of its handlers."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": RedactSecrets}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_secrets")
    return config


def install_log_redaction() -> None:
    """Put the filter on every handler there is, including uvicorn's own loggers'."""
    redactor = RedactSecrets()
    loggers = [logging.getLogger(), *(
        logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
    )]  # fmt: skip
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactSecrets) for f in handler.filters):
                handler.addFilter(redactor)
