"""App-wide behaviour shared by every module."""

from __future__ import annotations

import httpx


def test_openapi_never_advertises_a_framework_422(client: httpx.Client) -> None:
    """Every API answers bad input in its own envelope, so no 422 is documented."""
    doc = client.get("/openapi.json").json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "422" not in op.get("responses", {}), (method, path)
    assert "HTTPValidationError" not in doc.get("components", {}).get("schemas", {})
