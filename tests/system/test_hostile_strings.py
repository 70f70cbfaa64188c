"""A lone surrogate or a NUL in each string field of each write: a refusal in the envelope.

Every POST and PUT body of every module is built from its own OpenAPI schema; then each
string field in turn (nested objects and arrays included) carries the hostile value. JSON's
"\\ud800" escape decodes to a lone surrogate, which no UTF-8 encoder (database, argon2,
response) can write: it must be refused at the door, naming the field.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.harness import Server, fresh_database, start_server
from tests.system.apis import REFUSAL, app_modules, module_of, present_modules, request_headers

Path = tuple[str | int, ...]


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Every module on a database nothing else writes to."""
    with fresh_database(str(tmp_path_factory.mktemp("strings"))) as url:
        srv = start_server(url, modules=present_modules())
        yield srv
        srv.stop()


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return _resolve(spec, spec["components"]["schemas"][ref.rsplit("/", 1)[1]])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return _resolve(spec, options[0])
    return schema


def sample(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A value of the schema's type: every property present."""
    schema = _resolve(spec, schema)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {k: sample(spec, v) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [sample(spec, schema.get("items", {}))]
    if kind == "integer":
        return int(max(schema.get("minimum", 0), min(0, schema.get("maximum", 0))))
    if kind == "number":
        return 0
    if kind == "boolean":
        return True
    return "x"


def strings(spec: dict[str, Any], schema: dict[str, Any], at: Path = ()) -> Iterator[Path]:
    """Paths of every string leaf of the schema."""
    schema = _resolve(spec, schema)
    kind = schema.get("type")
    if kind == "object":
        for key, sub in schema.get("properties", {}).items():
            yield from strings(spec, sub, (*at, key))
    elif kind == "array":
        yield from strings(spec, schema.get("items", {}), (*at, 0))
    elif kind == "string" and "const" not in schema and "enum" not in schema:
        yield at


def _with(body: Any, at: Path, value: str) -> Any:
    out = copy.deepcopy(body)
    node = out
    for step in at[:-1]:
        node = node[step]
    node[at[-1]] = value
    return out


def writes(server: Server) -> Iterator[tuple[str, str, str, dict[str, Any], list[Path]]]:
    """(module, method, path, sample body, string paths) of every POST and PUT."""
    with server.client() as c:
        spec = c.get("/openapi.json").json()
    modules = app_modules(server)
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("post", "put"):
                continue
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None:
                continue
            module = module_of(modules, path)
            assert module is not None, path
            schema = content["schema"]
            yield module, method, path, sample(spec, schema), list(strings(spec, schema))


def _send(c: httpx.Client, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    # ensure_ascii: the surrogate travels as the JSON escape "\ud800", as a client sends it
    data = json.dumps(body, ensure_ascii=True).encode()
    try:
        return c.request(
            method.upper(),
            path,
            content=data,
            headers={**headers, "content-type": "application/json"},
        )
    except httpx.TransportError as exc:  # the server dropped the connection: no answer at all
        return httpx.Response(599, text=f"no answer: {exc!r}")


def _name(at: Path) -> str:
    return str([p for p in at if isinstance(p, str)][-1])


#: the part of each envelope that describes the error (not the blank response fields)
ERROR_PART = {
    "jef_one": lambda body: [body.get("errors"), body.get("message")],
    "ikonomikal": lambda body: body.get("rspPrc"),
    "bokamera": lambda body: body.get("ResponseStatus") or body.get("responseStatus"),
    "abs": lambda body: body.get("error_description"),
}


def names_field(module: str, r: httpx.Response, at: Path) -> bool:
    """Whether the refusal's error part names the field."""
    return REFUSAL[module](r) and _name(at) in json.dumps(ERROR_PART[module](r.json()))


def test_every_string_field_refuses_a_lone_surrogate(quiet: Server) -> None:
    """Each string field of each write, holding "\\ud800": a refusal in the API's own
    envelope that names the field (never "Internal error"), and the server still answers."""
    problems, tried = [], 0
    with quiet.client() as c:
        for module, method, path, body, paths in writes(quiet):
            headers = request_headers(quiet, module)
            for at in paths:
                tried += 1
                r = _send(c, method, path, _with(body, at, "a\ud800b"), headers)
                if not names_field(module, r, at):
                    problems.append(
                        f"{module} {method} {path} {at}: {r.status_code} {r.text[:200]}"
                    )
        assert c.get("/healthz").status_code == 200
    assert tried >= 40, tried
    assert problems == [], "\n".join(problems)


def test_a_nul_in_any_string_field_is_never_a_server_error(quiet: Server) -> None:
    """A NUL is refused in the envelope where the field cannot store it, or accepted where
    it can (passwords, session ids): never a 5xx, never an answer outside the envelope."""
    problems = []
    with quiet.client() as c:
        for module, method, path, body, paths in writes(quiet):
            headers = request_headers(quiet, module)
            for at in paths:
                r = _send(c, method, path, _with(body, at, "a\x00b"), headers)
                if r.status_code >= 500 or (r.status_code >= 400 and not REFUSAL[module](r)):
                    problems.append(
                        f"{module} {method} {path} {at}: {r.status_code} {r.text[:200]}"
                    )
    assert problems == [], "\n".join(problems)
