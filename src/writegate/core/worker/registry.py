"""Job kinds known to a process: each kind's handler and retry policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from writegate.core.exceptions import UnknownJobKind
from writegate.core.jobs import RetryPolicy

if TYPE_CHECKING:
    from writegate.core.worker.context import JobContext

Handler = Callable[["JobContext"], Any]


@dataclass(frozen=True)
class JobSpec:
    """A job kind, its handler and its retry policy."""

    kind: str
    handler: Handler
    policy: RetryPolicy | None = None
    #: A short job only reads and writes the database through ctx.session, quickly: it runs
    #: inside the group commit (the same shared COMMIT as the API's writes), not on a thread
    #: of its own with a commit of its own. It cannot use ctx.checkpoint().
    short: bool = False


class Registry:
    """Job kinds known to this process."""

    def __init__(self) -> None:
        self._specs: dict[str, JobSpec] = {}

    def add(self, spec: JobSpec) -> None:
        """Register a job kind; a kind may be registered once."""
        if spec.kind in self._specs:
            raise ValueError(f"job kind {spec.kind!r} registered twice")
        self._specs[spec.kind] = spec

    def get(self, kind: str) -> JobSpec:
        """The spec of a kind."""
        try:
            return self._specs[kind]
        except KeyError:
            raise UnknownJobKind(kind) from None

    def kinds(self, *, short: bool | None = None) -> list[str]:
        """Every registered kind, or only the short (or the other) ones."""
        return sorted(k for k, s in self._specs.items() if short is None or s.short == short)

    def policies(self) -> dict[str, RetryPolicy]:
        """Per-kind retry policies that override the default."""
        return {k: s.policy for k, s in self._specs.items() if s.policy is not None}
