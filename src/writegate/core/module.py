"""The contract between the core and an API module: its job side, loaded by every process."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from writegate.core.worker import JobSpec


@dataclass
class Module:
    """What a module hands to every process: its job kinds and its housekeeping."""

    name: str
    jobs: Sequence[JobSpec] = ()
    #: periodic housekeeping, (name, task) pairs run by every worker process
    maintenance: list[tuple[str, Callable[[], int | None]]] = field(default_factory=list)
