"""Job kinds known to a process: each kind's handler and retry policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from writegate.core.exceptions import UnknownJobKind
from writegate.core.jobs import RetryPolicy

if TYPE_CHECKING:
    from writegate.core.worker.context import JobContext

#: a kind's handler: one job's context in, its result out (an exception fails the attempt)
Handler = Callable[["JobContext"], Any]
#: a batch kind's handler: the contexts of every job of the kind in a shared batch, and one
#: outcome per context, in order: its result, or the exception that fails that attempt alone
BatchHandler = Callable[[list["JobContext"]], list[Any]]


@dataclass(frozen=True)
class JobSpec:
    """A job kind, its handler and its retry policy."""

    kind: str
    handler: Handler | BatchHandler
    policy: RetryPolicy | None = None
    #: A short job only reads and writes the database through ctx.session, quickly: it runs
    #: inside the group commit (the same shared COMMIT as the API's writes), not on a thread
    #: of its own with a commit of its own. It cannot use ctx.step().
    short: bool = False
    #: A batch kind is short, and its handler is a `BatchHandler`: it takes every job of the
    #: kind in a shared batch at once, so it can read and write them all with a statement
    #: each rather than several statements per job.
    batch: bool = False

    def __post_init__(self) -> None:
        if self.batch and not self.short:
            raise ValueError(f"job kind {self.kind!r}: a batch kind must be short")

    def run(self, ctx: JobContext) -> Any:
        """The handler on one job (a kind that is not a batch kind)."""
        handler: Handler = self.handler  # type: ignore[assignment]
        return handler(ctx)

    def run_batch(self, ctxs: list[JobContext]) -> list[Any]:
        """The handler on several jobs (a batch kind): one outcome per context, in order."""
        handler: BatchHandler = self.handler  # type: ignore[assignment]
        outcomes = handler(ctxs)
        if len(outcomes) != len(ctxs):
            raise RuntimeError(f"{self.kind}: {len(outcomes)} outcomes for {len(ctxs)} jobs")
        return outcomes


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

    def is_short(self, kind: str) -> bool:
        """Whether kind is registered, as a short kind."""
        spec = self._specs.get(kind)
        return spec is not None and spec.short

    def kinds(self, *, short: bool | None = None) -> list[str]:
        """Every registered kind, or only the short (or the other) ones."""
        return sorted(k for k, s in self._specs.items() if short is None or s.short == short)

    def policies(self) -> dict[str, RetryPolicy]:
        """Per-kind retry policies that override the default."""
        return {k: s.policy for k, s in self._specs.items() if s.policy is not None}
