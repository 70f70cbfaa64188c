"""The full stack's answers to odd request bodies, and the body's size and time limits."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import Server, fresh_database, start_server, uid

MODULES = ["jef_one", "abs", "ikonomikal", "bokamera", "tests.testkit"]
JSON = {"content-type": "application/json"}
#: the body time limit of this file's server, in seconds
BODY_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server without a worker on its own database, with a short body time limit."""
    with fresh_database(str(tmp_path_factory.mktemp("bodies"))) as url:
        server = start_server(
            url, embedded_worker=False, modules=MODULES, body_timeout_seconds=BODY_TIMEOUT
        )
        yield server
        server.stop()


def _chunks() -> Iterator[bytes]:
    yield b'{"mode": "ok",'
    yield b' "note": "in two chunks"}'


def _too_large_chunks() -> Iterator[bytes]:
    yield b'{"note": "'
    yield b"x" * 70_000
    yield b'"}'


CASES: list[tuple[str, dict[str, Any], int, Any]] = [
    ("ok", {"json": {"mode": "ok", "note": "hello ☃"}}, 201, {"echo": "hello ☃"}),
    (
        "charset",
        {
            "content": b'{"mode": "ok"}',
            "headers": {"content-type": "application/json; charset=utf-8"},
        },
        201,
        {"echo": ""},
    ),
    ("chunked", {"content": _chunks, "headers": JSON}, 201, {"echo": "in two chunks"}),
    (
        "refused by a module handler",
        {"json": {"mode": "refuse", "note": "no"}},
        409,
        {"refused": "no"},
    ),
    ("unexpected error", {"json": {"mode": "crash", "note": "x"}}, 500, "internal"),
    ("invalid field", {"json": {"mode": "sideways"}}, 400, "validation"),
    ("unknown field", {"json": {"mode": "ok", "extra": 1}}, 400, "validation"),
    ("malformed JSON", {"content": b'{"mode": ', "headers": JSON}, 400, "malformed"),
    ("empty body", {"content": b"", "headers": JSON}, 400, "validation"),
    (
        "not JSON",
        {"content": b"mode=ok", "headers": {"content-type": "text/plain"}},
        415,
        "content_type",
    ),
    ("no content type", {"content": b'{"mode": "ok"}'}, 415, "content_type"),
    ("no content type, no body", {"content": b""}, 400, "validation"),
    ("too large, chunked", {"content": _too_large_chunks, "headers": JSON}, 413, "too_large"),
]


@pytest.mark.parametrize(("name", "request_kw", "status", "want"), CASES, ids=[c[0] for c in CASES])
def test_odd_requests_to_a_json_body_route_get_the_modules_answer(
    srv: Server, name: str, request_kw: dict[str, Any], status: int, want: Any
) -> None:
    """A JsonBodyRoute endpoint: its own answers, its module's handlers and error envelope."""
    content = request_kw.get("content")
    kw = {**request_kw, "content": content()} if callable(content) else request_kw
    with srv.client() as c:
        r = c.post("/testkit/direct", **kw)
    assert r.status_code == status, r.text
    body = r.json()
    if isinstance(want, str):
        assert body == {"testkit_error": want}
    else:
        assert {k: body[k] for k in want} == want
    if name == "refused by a module handler":
        assert r.headers["x-refused"] == "1"
    if status == 413:
        assert r.headers["connection"] == "close"


def test_a_declared_length_over_the_limit_is_answered_413(srv: Server) -> None:
    with srv.client() as c:
        r = c.post("/testkit/direct", json={"mode": "ok", "note": "x" * 70_000})
    assert r.status_code == 413
    assert r.json() == {"testkit_error": "too_large"}
    assert r.headers["connection"] == "close"


def test_regression_a_500_says_connection_close_so_the_next_request_is_not_reset(
    srv: Server,
) -> None:
    """uvicorn closes the connection after an unhandled error; the 500 must announce it."""
    with srv.client() as c:
        crashed = c.post("/testkit/direct", json={"mode": "crash"})
        assert crashed.status_code == 500
        assert crashed.headers["connection"] == "close"
        for _ in range(5):
            r = c.post("/testkit/direct", json={"mode": "ok", "note": "after"})
            assert r.status_code == 201


def _raw(srv: Server, head: str, parts: list[tuple[float, bytes]], wait: float) -> bytes:
    """Send a request head, then each part after its pause; the whole reply (or b"")."""
    host, port = srv.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(head.encode("latin-1"))
        for pause, part in parts:
            time.sleep(pause)
            sock.sendall(part)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except TimeoutError:
            pass
    return reply


def _reply(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body) if body else None


def _head(path: str, extra: str) -> str:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}\r\n"


def test_a_body_not_complete_in_time_is_answered_408_and_nothing_runs(srv: Server) -> None:
    """Headers and part of the body, then silence: 408 once the body time limit passes."""
    note = uid("slow-")
    body = json.dumps({"mode": "crash", "note": note}).encode()
    started = time.monotonic()
    raw = _raw(
        srv,
        _head("/testkit/direct", f"Content-Length: {len(body)}\r\n"),
        [(0, body[:10])],
        wait=BODY_TIMEOUT + 10,
    )
    took = time.monotonic() - started
    status, headers, answer = _reply(raw)
    assert status == 408
    assert answer == {"testkit_error": "timeout"}
    assert headers["connection"] == "close"
    assert BODY_TIMEOUT * 0.9 <= took < BODY_TIMEOUT + 5
    with srv.client() as c:  # the server goes on serving
        assert c.get("/healthz").status_code == 200


def test_a_chunked_body_that_stalls_is_answered_408(srv: Server) -> None:
    raw = _raw(
        srv,
        _head("/testkit/direct", "Transfer-Encoding: chunked\r\n"),
        [(0, b'5\r\n{"mod\r\n')],
        wait=BODY_TIMEOUT + 10,
    )
    status, _, answer = _reply(raw)
    assert status == 408
    assert answer == {"testkit_error": "timeout"}


def test_a_slow_body_is_refused_in_the_owning_apis_envelope_with_nothing_written(
    srv: Server,
) -> None:
    """jef-one's refusal (400 BAD_REQUEST: its API has no 408); the session is not created."""
    session = {
        "session_id": uid("slow-"),
        "entity_number": "1001",
        "employee_number": "00001",
        "app_type": "mobile",
        "app_number": "001",
    }
    body = json.dumps(session).encode()
    raw = _raw(
        srv,
        _head("/one-post-create-session-job", f"Content-Length: {len(body)}\r\n"),
        [(0, body[:-5])],
        wait=BODY_TIMEOUT + 10,
    )
    status, headers, answer = _reply(raw)
    assert (status, answer["is_accepted"], answer["error_code"]) == (400, False, "BAD_REQUEST")
    assert answer["message"] == f"request body not received within {BODY_TIMEOUT:g} s"
    assert headers["connection"] == "close"
    with srv.client() as c:
        r = c.get(
            "/jef-one-get-session-by-session-id", params={"session_id": session["session_id"]}
        )
    assert r.json()["is_found"] is False, r.text


@pytest.mark.parametrize(
    ("path", "status", "refused"),
    [
        (
            "/model/package/putDb",
            200,
            lambda a: (a["status"], a["error"]) == ("ERROR", "REQUEST_TIMEOUT"),
        ),
        (
            "/bcss_wbcl_wa_sc/api/O1_getSCSessWBLogVer",
            200,
            lambda a: (
                (a["rspPrc"]["rspID"], a["rspPrc"]["rspMsg"])
                == (9000015, f"The request was not received within {BODY_TIMEOUT:g} seconds.")
            ),
        ),
        (
            "/codelock/axema/usersync",
            408,
            lambda a: (
                (a["ResponseStatus"]["ErrorCode"], a["ResponseStatus"]["Message"])
                == ("RequestTimeout", f"request body not received within {BODY_TIMEOUT:g} s")
            ),
        ),
    ],
    ids=["abs", "ikonomikal", "bokamera"],
)
def test_regression_a_slow_body_was_an_internal_error_or_an_invalid_request(
    srv: Server, path: str, status: int, refused: Any
) -> None:
    """A body that does not arrive in time: Ikonomikal answered 9000009 "Internal error." (an
    unexpected failure), ABS INVALID_REQUEST (a body that is not an object) and BokaMera a
    408 whose ErrorCode was `Error`. Each says the body did not arrive in time."""
    raw = _raw(srv, _head(path, "Content-Length: 100\r\n"), [(0, b"{")], wait=BODY_TIMEOUT + 10)
    got, headers, answer = _reply(raw)
    assert got == status, answer  # ABS and Ikonomikal answer every refusal with HTTP 200
    assert refused(answer), answer
    assert headers["connection"] == "close"


def test_a_body_sent_slowly_but_within_the_limit_is_served(srv: Server) -> None:
    note = uid("paced-")
    body = json.dumps({"mode": "ok", "note": note}).encode()
    pause = BODY_TIMEOUT / 10  # three pauses: well within the limit, even on a busy machine
    raw = _raw(
        srv,
        _head("/testkit/direct", f"Content-Length: {len(body)}\r\nConnection: close\r\n"),
        [(pause, body[:8]), (pause, body[8:16]), (pause, body[16:])],
        wait=BODY_TIMEOUT + 10,
    )
    status, _, answer = _reply(raw)
    assert status == 201
    assert answer["echo"] == note


@pytest.mark.parametrize(
    ("path", "body", "read"),
    [
        (
            "/one-entities-post-one",
            '{"entity_number": N, "entity_name": "x"}',
            lambda r: (r.status_code, r.json()["error_code"], r.json()["message"]),
        ),
        (
            "/model/package/putDb",
            '{"client_code": "X", "id": N}',
            lambda r: (r.status_code, r.json()["error"], r.json()["error_description"]),
        ),
        (
            "/bcss_wbcl_wa_ss/api/ss_02_ss07_sav",
            '{"cmdStat": 0, "saveData": {"f004": N}}',
            lambda r: (r.status_code, r.json()["rspPrc"]["rspID"], r.json()["rspPrc"]["rspMsg"]),
        ),
    ],
    ids=["jef-one", "abs", "ikonomikal"],
)
def test_regression_a_number_past_pythons_digit_limit_was_called_invalid_json(
    srv: Server, path: str, body: str, read: Any
) -> None:
    """A JSON integer of more than 4,300 digits (Python's limit on reading one) was answered
    "not valid JSON or not UTF-8": it is valid JSON, so the answer says what it is."""
    said = "malformed request body: a number has more than 4300 digits"
    expected = {
        "jef-one": (400, "MALFORMED_JSON", said),
        "abs": (200, "MALFORMED_JSON", said),
        "ikonomikal": (200, 9000001, f"The request is not valid JSON: {said}"),
    }
    with srv.client() as c:
        r = c.post(path, content=body.replace("N", "1" + "0" * 5000), headers=JSON)
    which = {"/one": "jef-one", "/mod": "abs", "/bcs": "ikonomikal"}[path[:4]]
    assert read(r) == expected[which]
