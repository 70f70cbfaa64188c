"""The contract between the core and an API module."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response

from writegate.core.console_view import ConsoleProvider
from writegate.core.http import ErrorInfo
from writegate.core.worker import JobSpec

ErrorRenderer = Callable[[Request, ErrorInfo], Response]


@dataclass
class Module:
    """What a module hands to the app: routes, its error envelope and its job kinds."""

    name: str
    router: APIRouter
    #: URL path prefixes this module owns; errors under them use `render_error`
    prefixes: tuple[str, ...]
    render_error: ErrorRenderer
    jobs: Sequence[JobSpec] = ()
    #: extra exception handlers (exception class -> handler) the app registers globally
    exception_handlers: dict[type[Exception], Callable[[Request, Any], Response]] = field(
        default_factory=dict
    )
    #: periodic housekeeping, (name, task) pairs run by every worker process
    maintenance: list[tuple[str, Callable[[], int | None]]] = field(default_factory=list)
    #: the module's views in the operator console, if any
    console: ConsoleProvider | None = None

    def owns(self, path: str) -> bool:
        """Whether a request path belongs to this module."""
        return any(path.startswith(p) for p in self.prefixes)
