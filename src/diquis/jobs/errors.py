"""The job engine's exception hierarchy: every error it raises on purpose is a JobError."""

from __future__ import annotations


class JobError(Exception):
    """Base class of every error the job engine raises."""


class ConfigurationError(JobError):
    """The engine, a storage URL or a registration is set up wrongly."""


class JobArgumentError(JobError, TypeError):
    """A job's arguments do not fit its target or cannot be stored as JSON."""


class UnknownTargetError(JobError):
    """A job names a target that this app did not register."""


class JobNotFoundError(JobError, LookupError):
    """No job (or recurring job) has the given id."""


class InvalidStateError(JobError):
    """The requested state change is not allowed from the job's current state."""


class DuplicateJobError(JobError):
    """A live job with the same unique key blocks the change."""
