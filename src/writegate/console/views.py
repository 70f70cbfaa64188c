"""The modules' console views: listing them and running one for an operator."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from writegate.console.access import Denied, Operator
from writegate.core.console_view import Cell, ConsoleView, Link, Progress
from writegate.core.services import Services
from writegate.core.webmodule import WebModule


def catalogue(modules: Sequence[WebModule]) -> list[dict[str, Any]]:
    """Every module view: module name, index and title."""
    out = []
    for m in modules:
        if m.console is None:
            continue
        for i, v in enumerate(m.console.views()):
            out.append({"module": m.name, "index": i, "title": v.title})
    return out


def find(modules: Sequence[WebModule], module: str, index: int) -> ConsoleView:
    """One view; Denied 404 if there is none."""
    for m in modules:
        if m.name == module and m.console is not None:
            views = m.console.views()
            if 0 <= index < len(views):
                return views[index]
    raise Denied(404, "not_found", f"no console view {module}/{index}")


def cell_json(cell: Cell) -> Any:
    """A cell as JSON: scalars as they are, progress and links as small objects."""
    if isinstance(cell, Progress):
        return {"done": cell.done, "total": cell.total, "label": cell.label}
    if isinstance(cell, Link):
        return {"label": cell.label, "href": cell.href}
    if isinstance(cell, datetime):
        return cell.isoformat(timespec="seconds") + "Z"
    return cell


def run(
    services: Services, modules: Sequence[WebModule], op: Operator, module: str, index: int
) -> dict[str, Any]:
    """A view's table for the operator's tenant scope."""
    view = find(modules, module, index)
    with services.db.read() as s:
        table = view.rows(s, op.scope)
    return {
        "module": module,
        "index": index,
        "title": view.title,
        "columns": table.columns,
        "rows": table.rows,
        "note": table.note,
    }
