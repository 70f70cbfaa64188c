"""The web side of a module's contract: routes, error envelope and console, for `serve` only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response

from writegate.core.console_view import ConsoleProvider
from writegate.core.http import ErrorInfo

ErrorRenderer = Callable[[Request, ErrorInfo], Response]


@dataclass
class WebModule:
    """What a module hands to the app: its routes, its error envelope and its console views."""

    name: str
    router: APIRouter
    #: URL path prefixes this module owns; errors under them use `render_error`
    prefixes: tuple[str, ...]
    render_error: ErrorRenderer
    #: extra exception handlers (exception class -> handler) the app registers globally
    exception_handlers: dict[type[Exception], Callable[[Request, Any], Response]] = field(
        default_factory=dict
    )
    #: the module's views in the operator console, if any
    console: ConsoleProvider | None = None
    #: its paths match in any letter case, as on the vendor's servers
    any_case: bool = False

    def __post_init__(self) -> None:
        if self.any_case:  # `owns` compares lower-cased paths
            self.prefixes = tuple(p.lower() for p in self.prefixes)

    def owns(self, path: str) -> bool:
        """Whether a request path belongs to this module."""
        return (path.lower() if self.any_case else path).startswith(self.prefixes)
