"""Exceptions raised by the core."""

from __future__ import annotations


class WritegateError(Exception):
    """Base class of every core error."""


class ConfigError(WritegateError):
    """A setting a process cannot start with; the message names it and says why."""


class JobError(WritegateError):
    """A job-related failure."""


class ExclusiveJobExists(JobError):
    """Another active job already holds the exclusive key."""

    def __init__(self, key: str, job_id: str | None, status: str | None = None) -> None:
        super().__init__(f"an active job already holds exclusive key {key!r}: {job_id}")
        self.key = key
        self.job_id = job_id
        #: the holder's status when it was read (`queued` or `running`); None if unknown
        self.status = status


class LeaseLost(JobError):
    """The worker no longer owns the job (lease expired, job cancelled or re-claimed)."""


class PermanentJobError(JobError):
    """Raised by a handler to fail the job at once, without retrying."""


class UnknownJobKind(JobError):
    """No handler is registered for a job kind."""


class TokenError(WritegateError):
    """A process token could not be consumed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"process token {reason}")
        #: one of "missing", "expired", "used", "mismatch"
        self.reason = reason
