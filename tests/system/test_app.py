"""App-wide behaviour shared by every module."""

from __future__ import annotations

import gc
import sys
from typing import Any

import httpx
import pytest

from tests.harness import fresh_database, start_server


def test_openapi_never_advertises_a_framework_422(client: httpx.Client) -> None:
    """Every API answers bad input in its own envelope, so no 422 is documented."""
    doc = client.get("/openapi.json").json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "422" not in op.get("responses", {}), (method, path)
    assert "HTTPValidationError" not in doc.get("components", {}).get("schemas", {})


def test_serve_sets_its_gil_switch_interval_and_collector_threshold_while_it_runs(
    tmp_path: Any,
) -> None:
    """A ready commit thread waits at most the configured interval for the busy loop's GIL,
    and the youngest generation is collected at the configured threshold."""
    before, collector = sys.getswitchinterval(), gc.get_threshold()
    with fresh_database(str(tmp_path)) as url:
        srv = start_server(
            url, embedded_worker=False, gil_switch_interval_ms=2.5, gc_young_threshold=4321
        )
        try:
            assert sys.getswitchinterval() == pytest.approx(0.0025)
            assert gc.get_threshold() == (4321, *collector[1:])
            with srv.client() as client:
                assert client.get("/openapi.json").status_code == 200
        finally:
            srv.stop()
    assert sys.getswitchinterval() == pytest.approx(before)
    assert gc.get_threshold() == collector
