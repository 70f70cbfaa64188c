"""Imports kept light: a package's names imported on first use, and imports without an
optional extra that a library loads whenever it is installed."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Iterator
from typing import Any


def exports(namespace: dict[str, Any], where: dict[str, str]) -> Callable[[str], Any]:
    """A package `__getattr__`: each name of `where` imported from its submodule when asked."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__


@contextlib.contextmanager
def without(*names: str) -> Iterator[None]:
    """In the block, importing one of these modules raises ImportError (unless it is loaded).

    For libraries that load an extra if it is installed: structlog's rich tracebacks,
    httpx's command line (click, rich and pygments). rich is installed for the CLI's tables
    (typer's), and each of these extras costs a process 1-5 MB that writegate does not use.
    """
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
