"""DirectJsonRoutes: the same answers as the full stack, for every kind of request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.middleware.gzip import GZipMiddleware

from tests.harness import Server, fresh_database, start_server, uid
from writegate.app import create_app
from writegate.core.http import DirectJsonRoutes
from writegate.settings import Settings

MODULES = ["jef_one", "tests.testkit"]
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    """Two servers, no worker, on one fresh database: with DirectJsonRoutes and without."""
    with fresh_database(str(tmp_path_factory.mktemp("direct"))) as url:
        direct = start_server(url, embedded_worker=False, modules=MODULES)
        full = start_server(url, embedded_worker=False, modules=MODULES, direct_routes=False)
        yield direct, full
        direct.stop()
        full.stop()


def _answer(r: httpx.Response, drop: tuple[str, ...] = ()) -> tuple[Any, ...]:
    try:
        body: Any = r.json()
    except ValueError:
        body = r.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in drop}
    headers = {k: v for k, v in r.headers.items() if k not in ("date", "content-length")}
    return r.status_code, headers, body


def test_the_direct_layer_serves_exactly_the_eligible_routes(
    servers: tuple[Server, Server],
) -> None:
    direct, full = servers
    for srv in servers:  # the middleware stack is built on the first request
        with srv.client() as c:
            c.get("/healthz")
    layer = direct.app.middleware_stack
    assert isinstance(layer, DirectJsonRoutes)
    assert set(layer.routes) == {
        "/one-post-create-session-job",
        "/one-entities-post-one",
        "/one-employees-post-one",
        "/testkit/direct",
    }
    assert not isinstance(full.app.middleware_stack, DirectJsonRoutes)


def test_a_middleware_added_to_the_app_turns_the_direct_layer_off(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The layer skips every middleware, so it steps aside once there is one it cannot honour."""
    url = f"sqlite:///{tmp_path_factory.mktemp('mw')}/wg.db"
    plain = create_app(Settings(database_url=url, modules=MODULES))
    assert isinstance(plain.build_middleware_stack(), DirectJsonRoutes)
    extra = create_app(Settings(database_url=url, modules=MODULES))
    extra.add_middleware(GZipMiddleware)
    assert not isinstance(extra.build_middleware_stack(), DirectJsonRoutes)
    for app in (plain, extra):
        app.state.services.close()


def _chunks() -> Iterator[bytes]:
    yield b'{"mode": "ok",'
    yield b' "note": "in two chunks"}'


CASES: list[tuple[str, dict[str, Any]]] = [
    ("ok", {"json": {"mode": "ok", "note": "hello ☃"}}),
    (
        "charset",
        {
            "content": b'{"mode": "ok"}',
            "headers": {"content-type": "application/json; charset=utf-8"},
        },
    ),
    ("chunked", {"content": _chunks, "headers": JSON}),
    ("refused by a module handler", {"json": {"mode": "refuse", "note": "no"}}),
    ("unexpected error", {"json": {"mode": "crash", "note": "x"}}),
    ("invalid field", {"json": {"mode": "sideways"}}),
    ("unknown field", {"json": {"mode": "ok", "extra": 1}}),
    ("malformed JSON", {"content": b'{"mode": ', "headers": JSON}),
    ("empty body", {"content": b"", "headers": JSON}),
    ("not JSON", {"content": b"mode=ok", "headers": {"content-type": "text/plain"}}),
    ("no content type", {"content": b'{"mode": "ok"}'}),
    ("too large", {"json": {"mode": "ok", "note": "x" * 70_000}}),
    (
        "too large, chunked",
        {"content": lambda: iter([b'{"note": "', b"x" * 70_000, b'"}']), "headers": JSON},
    ),
]


@pytest.mark.parametrize(("name", "request_kw"), CASES, ids=[c[0] for c in CASES])
def test_answers_match_the_full_stack(
    servers: tuple[Server, Server], name: str, request_kw: dict[str, Any]
) -> None:
    def kw() -> dict[str, Any]:
        content = request_kw.get("content")
        return {**request_kw, "content": content()} if callable(content) else request_kw

    answers = []
    for srv in servers:
        with srv.client() as c:
            answers.append(_answer(c.request("POST", "/testkit/direct", **kw())))
    with_direct, without = answers
    assert with_direct == without
    assert with_direct[0] in (201, 400, 409, 413, 415, 500)


def test_jef_one_accepts_and_refusals_match_the_full_stack(
    servers: tuple[Server, Server],
) -> None:
    body = {
        "entity_number": "1001",
        "employee_number": "00001",
        "app_type": "mobile",
        "app_number": "001",
    }
    per_server = []
    for srv in servers:
        session = {**body, "session_id": uid("direct-")}
        with srv.client() as c:
            first = c.post("/one-post-create-session-job", json=session)
            again = c.post("/one-post-create-session-job", json=session)
        assert first.status_code == 202, first.text
        assert again.status_code == 409, again.text
        assert again.json()["job_id"] == first.json()["job_id"]
        ids = ("job_id", "target_pk", "confirmation", "error", "message")
        per_server.append((_answer(first, ids), _answer(again, ids)))
    assert per_server[0] == per_server[1]
