"""Defences of the web app as a whole: headers, body limits, log redaction, offline API docs."""

from .body_limit import BodyLimit
from .headers import SecurityHeaders
from .log_redaction import RedactSecrets, install_log_redaction, redact, uvicorn_log_config

__all__ = [
    "BodyLimit",
    "RedactSecrets",
    "SecurityHeaders",
    "install_log_redaction",
    "redact",
    "uvicorn_log_config",
]
