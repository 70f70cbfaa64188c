"""Helpers for the module console-view tests: read one view through the admin API."""

from __future__ import annotations

from typing import Any

import httpx


def view(client: httpx.Client, key: str, title: str) -> dict[str, Any]:
    """The table of the view with this title, as the admin API gives it to key's holder."""
    h = {"x-api-key": key}
    listed = client.get("/admin/api/views", headers=h)
    assert listed.status_code == 200, listed.text
    found = [v for v in listed.json()["views"] if v["title"] == title]
    assert found, listed.json()
    v = found[0]
    r = client.get(f"/admin/api/views/{v['module']}/{v['index']}", headers=h)
    assert r.status_code == 200, r.text
    table: dict[str, Any] = r.json()
    return table


def rows_by_first(table: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    """Rows keyed by their first cell, each row as column -> cell."""
    return {row[0]: dict(zip(table["columns"], row, strict=True)) for row in table["rows"]}
