"""Schemathesis against every module's OpenAPI description: no 500, errors in the API's envelope.

Cases are generated from the live server's `/openapi.json` (positive and negative data) and
sent over real HTTP with the credentials each API needs, so they get past authentication
and exercise the validators and handlers behind it.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import Server
from tests.system.apis import REFUSAL, app_modules, module_of, present_modules, request_headers

EXAMPLES = int(os.environ.get("WRITEGATE_FUZZ_EXAMPLES", "25"))


def _spec(server: Server) -> dict[str, Any]:
    with server.client() as c:
        spec: dict[str, Any] = c.get("/openapi.json").json()
    return spec


def _send(c: httpx.Client, case: Any, headers: dict[str, str]) -> httpx.Response | None:
    kw: dict[str, Any] = {"params": case.query or None}
    sent = {k: str(v) for k, v in (case.headers or {}).items()}
    sent = {**sent, **headers}
    body = case.body
    if body is not None and not isinstance(body, schemathesis.core.NotSet):
        if isinstance(body, bytes | str):
            kw["content"] = body
        else:
            kw["content"] = json.dumps(body)
        sent.setdefault("content-type", case.media_type or "application/json")
    try:
        return c.request(case.method, case.formatted_path, headers=sent, **kw)
    except (httpx.LocalProtocolError, UnicodeEncodeError, ValueError):
        return None  # not sendable over HTTP at all (e.g. a newline in a header value)


@pytest.mark.parametrize("module", present_modules())
def test_openapi_fuzz_no_500_errors_in_own_envelope(server: Server, module: str) -> None:
    """Every operation of the module, fuzzed with valid and invalid data."""
    spec = _spec(server)
    modules = app_modules(server)
    schema = schemathesis.openapi.from_dict(spec)
    operations = [r.ok() for r in schema.get_all_operations()]
    mine = [op for op in operations if module_of(modules, op.path) == module]
    assert mine, f"{module} publishes no operation in /openapi.json"
    refusal = REFUSAL[module]
    headers = request_headers(server, module)
    problems: list[str] = []
    refused: list[bool] = []
    seen = 0
    statuses: Counter[int] = Counter()

    with server.client() as c:

        def fuzz(op: Any) -> None:
            strategy = st.one_of(
                op.as_strategy(schemathesis.GenerationMode.POSITIVE),
                op.as_strategy(schemathesis.GenerationMode.NEGATIVE),
            )

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: Any) -> None:
                nonlocal seen
                r = _send(c, case, headers)
                if r is None:
                    return
                seen += 1
                statuses[r.status_code] += 1
                refused.append(refusal(r))
                if r.status_code >= 500 or (r.status_code >= 400 and not refusal(r)):
                    problems.append(
                        f"{op.method.upper()} {op.path} -> {r.status_code} {r.text[:300]}"
                        f" for {case.as_curl_command()[:500]}"
                    )

            run()

        for op in mine:
            fuzz(op)
    assert problems == [], "\n".join(problems[:10])
    assert seen >= len(mine) * 5
    # Negative data must have been refused somewhere, or the fuzzing proved nothing.
    assert any(refusal_seen for refusal_seen in refused), statuses
