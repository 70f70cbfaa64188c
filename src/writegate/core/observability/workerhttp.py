"""A standalone worker's small HTTP port: GET (and HEAD) /metrics and /healthz."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger("writegate.metrics")

#: worker states in which /healthz answers 200
HEALTHY = frozenset({"running", "paused"})


class WorkerHTTP:
    """Serves a worker's metrics and liveness on its own port, from a daemon thread."""

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, state: Callable[[], str]
    ) -> None:
        handler = _handler(registry, state)
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="writegate-metrics", daemon=True
        )

    def start(self) -> None:
        """Start answering."""
        self._thread.start()
        log.info("worker metrics and health on port %d", self.port)

    def stop(self) -> None:
        """Stop answering and close the socket."""
        self.server.shutdown()
        self.server.server_close()


def _handler(registry: CollectorRegistry, state: Callable[[], str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self._route(head=True)

        def do_GET(self) -> None:
            self._route(head=False)

        def _route(self, head: bool) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST, head)
            elif path == "/healthz":
                now = state()
                body = json.dumps({"status": "ok" if now in HEALTHY else "down", "worker": now})
                status = 200 if now in HEALTHY else 503
                self._answer(status, body.encode(), "application/json", head)
            else:
                self._answer(404, b'{"error":"not_found"}', "application/json", head)

        def _answer(self, status: int, body: bytes, content_type: str, head: bool) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    return Handler
