"""A local Axema Vaka simulator: a real HTTP server speaking the REST shape the connector uses."""

from __future__ import annotations

import base64
import hmac
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from writegate.modules.bokamera.connector import USERS_PATH

FIRST = ("Anna", "Erik", "Maria", "Lars", "Karin", "Johan", "Sara", "Nils", "Eva", "Olof")
LAST = ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Berg")
NAMESPACE = uuid.UUID("6f1d1c8e-5a3b-4f7e-9c2d-0b6a4e8f1a21")


def make_user(seed: int, i: int) -> dict[str, Any]:
    """The i-th simulated user of a simulator seeded with `seed` (deterministic)."""
    return {
        "id": str(uuid.uuid5(NAMESPACE, f"{seed}:{i}")),
        "firstName": FIRST[i % len(FIRST)],
        "lastName": LAST[(i // len(FIRST)) % len(LAST)],
        "email": f"user{i}.{seed}@vaka.example",
        "phone": f"+4670{i:07d}",
        "cardNumber": f"{seed % 1000:03d}{i:08d}",
    }


@dataclass
class SimState:
    """The simulator's users, credentials, failure knobs and counters."""

    users: list[dict[str, Any]]
    username: str = "vaka"
    password: str = "vaka"  # noqa: S105 - a simulator default, documented
    latency: float = 0.0
    fail_rate: float = 0.0
    #: answer the next N user requests with 503 (deterministic transient failures)
    fail_next: int = 0
    #: answer this page with a user lacking an id (a permanent data error)
    corrupt_page: int | None = None
    #: send a page's body a byte at a time, this many seconds apart (a Vaka that trickles)
    drip: float = 0.0
    max_page_size: int = 500
    seed: int = 0
    requests: int = 0
    #: the Host header of the last users request
    last_host: str | None = None
    failures_injected: int = 0
    rng: random.Random = field(default_factory=random.Random)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def change(self, count: int) -> list[str]:
        """Change the phone number of the first `count` users; return their ids."""
        with self.lock:
            changed = []
            for user in self.users[:count]:
                user["phone"] = user["phone"] + "9"
                changed.append(user["id"])
            return changed

    def add(self, count: int) -> None:
        """Append `count` new users."""
        with self.lock:
            start = len(self.users)
            self.users.extend(make_user(self.seed, start + i) for i in range(count))


class _Handler(BaseHTTPRequestHandler):
    server: VakaServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the simulator quiet."""

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        if status == 401:
            self.send_header("www-authenticate", 'Basic realm="vaka"')
        self.end_headers()
        drip = self.server.state.drip if status == 200 else 0.0
        if not drip:
            self.wfile.write(data)
            return
        try:
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
                time.sleep(drip)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting

    def _authorized(self, state: SimState) -> bool:
        scheme, _, value = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, pw = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(user, state.username) and hmac.compare_digest(pw, state.password)

    def do_GET(self) -> None:
        """GET /api/v1/users?page=&pageSize= and GET /_sim/stats."""
        state = self.server.state
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/_sim/stats":
            with state.lock:
                self._send(200, self._stats(state))
            return
        if url.path != USERS_PATH:
            self._send(404, {"error": "not found"})
            return
        if state.latency:
            time.sleep(state.latency)
        with state.lock:
            state.requests += 1
            state.last_host = self.headers.get("host")
            if not self._authorized(state):
                self._send(401, {"error": "invalid credentials"})
                return
            if state.fail_next > 0 or (state.fail_rate and state.rng.random() < state.fail_rate):
                state.fail_next = max(0, state.fail_next - 1)
                state.failures_injected += 1
                self._send(503, {"error": "simulated outage"})
                return
            try:
                page = int(query.get("page", ["1"])[0])
                size = int(query.get("pageSize", ["100"])[0])
            except ValueError:
                self._send(400, {"error": "page and pageSize must be integers"})
                return
            if page < 1 or size < 1:
                self._send(400, {"error": "page and pageSize must be at least 1"})
                return
            size = min(size, state.max_page_size)
            start = (page - 1) * size
            users = [dict(u) for u in state.users[start : start + size]]
            if state.corrupt_page == page and users:
                users[0].pop("id")
            body = {
                "users": users,
                "page": page,
                "pageSize": size,
                "totalCount": len(state.users),
                "hasMore": start + size < len(state.users),
            }
        self._send(200, body)

    def do_POST(self) -> None:
        """POST /_sim/change?count=N and /_sim/add?count=N (demo helpers)."""
        state = self.server.state
        url = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        try:
            count = int(parse_qs(url.query).get("count", ["1"])[0])
        except ValueError:
            self._send(400, {"error": "count must be an integer"})
            return
        if url.path == "/_sim/change":
            self._send(200, {"changed": state.change(count)})
        elif url.path == "/_sim/add":
            state.add(count)
            self._send(200, {"users": len(state.users)})
        else:
            self._send(404, {"error": "not found"})

    @staticmethod
    def _stats(state: SimState) -> dict[str, Any]:
        return {
            "users": len(state.users),
            "requests": state.requests,
            "failuresInjected": state.failures_injected,
        }


class VakaServer(ThreadingHTTPServer):
    """The simulator's HTTP server."""

    daemon_threads = True

    def __init__(self, state: SimState, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.state = state

    @property
    def url(self) -> str:
        """Base URL clients use."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


def build_state(
    users: int,
    *,
    seed: int = 0,
    username: str = "vaka",
    password: str = "vaka",  # noqa: S107 - a simulator default, documented
    latency: float = 0.0,
    fail_rate: float = 0.0,
    max_page_size: int = 500,
) -> SimState:
    """A simulator state with `users` deterministic users."""
    return SimState(
        users=[make_user(seed, i) for i in range(users)],
        username=username,
        password=password,
        latency=latency,
        fail_rate=fail_rate,
        max_page_size=max_page_size,
        seed=seed,
        rng=random.Random(seed),
    )


class RunningSimulator:
    """A simulator serving from a background thread (tests, embedding)."""

    def __init__(self, state: SimState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.server = VakaServer(state, host, port)
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="vaka-sim", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL of the running simulator."""
        return self.server.url

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
