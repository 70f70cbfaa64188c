"""How long the app takes to find a request's route: `python -m bench.route_probe [N]`.

Builds `writegate serve`'s app (every module, on a throwaway SQLite file) and, for one
path of each API and of the console, times N lookups the way Starlette's router makes
them: each route's `matches(scope)` in the app's order until one matches in full. It
prints microseconds per lookup and how many routes were asked. A bare FastAPI app with
the same path as its only route (the ceiling's case) is timed alongside.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

from fastapi import FastAPI
from starlette.routing import Match

#: (method, path) of one request per API, in the order the modules are loaded, and the console
PATHS = [
    ("POST", "/one-post-create-session-job"),
    ("POST", "/bcss_wbcl_wa_ss/api/ss_02_ss07_sav"),
    ("GET", "/codelock/axema/usersync/abc"),
    ("POST", "/model/package/get"),
    ("GET", "/console/jobs"),
]


def lookup(app: FastAPI, method: str, path: str) -> tuple[Any, int]:
    """The route that serves the request, and how many routes were asked first."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "headers": [],
        "query_string": b"",
        "app": app,
    }
    for asked, route in enumerate(app.router.routes, start=1):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route, asked
    raise LookupError(f"no route for {method} {path}")


def per_lookup_us(app: FastAPI, method: str, path: str, n: int) -> float:
    """Microseconds a lookup takes, over n lookups."""
    lookup(app, method, path)
    start = time.perf_counter()
    for _ in range(n):
        lookup(app, method, path)
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["WRITEGATE_DATABASE_URL"] = f"sqlite:///{tmp}/route_probe.db"
        from writegate.app import create_app

        app = create_app()
        for method, path in PATHS:
            bare = FastAPI()
            bare.add_api_route(path, lambda: None, methods=[method])
            _, asked = lookup(app, method, path)
            print(
                f"{method:4} {path:40} writegate {per_lookup_us(app, method, path, n):5.1f} us "
                f"({asked} routes asked)   bare FastAPI "
                f"{per_lookup_us(bare, method, path, n):4.1f} us",
                flush=True,
            )


if __name__ == "__main__":
    main()
