"""`serve` keeps idle client connections open longer than clients and proxies keep them."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.harness import fresh_database
from tests.system.faults import serve_env, serve_process

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"


def _answer(sock: socket.socket) -> bytes:
    """One HTTP response read off the socket (b"" if the server closed the connection)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_an_idle_connection_outlives_the_clients_own_idle_timeout(tmp_path: Path) -> None:
    """Regression: `serve` closed idle connections after uvicorn's 5 s, the time httpx keeps
    them too, so a client reusing one just as the server closed it got a ReadError (a request
    of the load test, now and then). The server now waits 65 s: the client side closes first."""
    with (
        fresh_database(str(tmp_path)) as url,
        serve_process(serve_env(url, []), str(tmp_path / "serve.log")) as srv,
        socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock,
    ):
        sock.sendall(REQUEST)
        assert _answer(sock).startswith(b"HTTP/1.1 200")
        time.sleep(6)  # idle past uvicorn's default of 5 s
        sock.sendall(REQUEST)
        assert _answer(sock).startswith(b"HTTP/1.1 200")


def test_the_keep_alive_time_is_a_setting(tmp_path: Path) -> None:
    """WRITEGATE_KEEP_ALIVE_SECONDS reaches the server: a connection idle past it is closed."""
    with fresh_database(str(tmp_path)) as url:
        env = serve_env(url, [], keep_alive_seconds=1)
        with (
            serve_process(env, str(tmp_path / "serve.log")) as srv,
            socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock,
        ):
            sock.sendall(REQUEST)
            assert _answer(sock).startswith(b"HTTP/1.1 200")
            time.sleep(2.5)
            sock.settimeout(1)  # uvicorn's default would keep it open for 2.5 s more
            assert sock.recv(1) == b""  # closed by the server
