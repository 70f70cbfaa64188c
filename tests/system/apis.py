"""Per-API knowledge the system suite needs: which modules exist and what their refusals look like.

Every matrix test iterates over `present_modules()`, so a module merged later is picked up
automatically; a module without an entry here makes those tests fail loudly, not skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

import writegate.modules
from writegate.core.db import Base

#: the order the vendor APIs are listed in the design document
KNOWN = ("jef_one", "ikonomikal", "bokamera", "abs")


def present_modules() -> list[str]:
    """API modules whose code is in this tree (a module directory with an __init__.py)."""
    root = Path(writegate.modules.__file__).parent
    found = [p.name for p in root.iterdir() if (p / "__init__.py").is_file()]
    return sorted(found, key=lambda n: (KNOWN.index(n) if n in KNOWN else len(KNOWN), n))


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return None


def jef_one_refusal(r: httpx.Response) -> bool:
    """jef-one: 4xx/503 with `is_accepted: false`, error_type and error_code."""
    body = _json(r)
    return (
        isinstance(body, dict)
        and body.get("is_accepted") is False
        and isinstance(body.get("error_type"), str)
        and isinstance(body.get("error_code"), str)
        and r.status_code in (400, 401, 403, 404, 405, 409, 503)
    )


def ikonomikal_refusal(r: httpx.Response) -> bool:
    """Ikonomikal: HTTP 200 with rspPrc.rspID != 0 and a message."""
    body = _json(r)
    if not isinstance(body, dict) or r.status_code != 200:
        return False
    prc = body.get("rspPrc")
    return isinstance(prc, dict) and prc.get("rspID") not in (0, None) and bool(prc.get("rspMsg"))


def bokamera_refusal(r: httpx.Response) -> bool:
    """BokaMera: 4xx/503 with a ServiceStack ResponseStatus carrying ErrorCode and Message."""
    body = _json(r)
    if not isinstance(body, dict) or not (400 <= r.status_code < 500 or r.status_code == 503):
        return False
    status = body.get("ResponseStatus") or body.get("responseStatus")
    if not isinstance(status, dict):
        return False
    code = status.get("ErrorCode") or status.get("errorCode")
    return isinstance(code, str) and bool(code)


def abs_refusal(r: httpx.Response) -> bool:
    """Elcoin ABS: `status: "ERROR"` with an error code and error_description."""
    body = _json(r)
    return (
        isinstance(body, dict)
        and body.get("status") == "ERROR"
        and isinstance(body.get("error"), str)
        and bool(body.get("error"))
        and "error_description" in body
        and (r.status_code < 500 or r.status_code == 503)
    )


#: module name -> predicate "this response is a refusal in the API's own envelope"
REFUSAL: dict[str, Callable[[httpx.Response], bool]] = {
    "jef_one": jef_one_refusal,
    "ikonomikal": ikonomikal_refusal,
    "bokamera": bokamera_refusal,
    "abs": abs_refusal,
}


def app_modules(server: Any) -> list[Any]:
    """The live in-process app's Module objects."""
    modules: list[Any] = server._uvicorn.config.app.state.modules
    return modules


_CALLERS: dict[tuple[int, str], dict[str, str]] = {}


def new_principal(server: Any, tenant: str, roles: list[str], **kw: Any) -> str:
    """Create a principal straight in the server's database; return its API key."""
    with server.services.db.write() as s:
        _, key = server.services.auth.create(
            s, name=uuid.uuid4().hex, tenant=tenant, roles=roles, **kw
        )
    return str(key)


def abs_client_code(server: Any) -> str:
    """A freshly registered ABS client code."""
    from writegate.modules.abs import service

    code = f"EN{uuid.uuid4().hex[:10].upper()}"
    assert service.register_client(server.services, code, name="reliability suite")
    return code


def request_headers(server: Any, module: str) -> dict[str, str]:
    """Headers that authenticate a fully privileged caller of `module` on `server`."""
    key = (id(server), module)
    if key in _CALLERS:
        return _CALLERS[key]
    if module in ("jef_one", "ikonomikal"):
        # jef-one sits behind its own gateway; Ikonomikal authenticates by sessID in the body.
        headers: dict[str, str] = {}
    elif module == "bokamera":
        roles = ["bookingsupplier-administrator-write", "bookingsupplier-administrator-read"]
        headers = {"x-api-key": new_principal(server, str(uuid.uuid4()), roles)}
    elif module == "abs":
        headers = {"x-api-key": new_principal(server, abs_client_code(server), ["abs:write"])}
    else:
        raise KeyError(f"no credentials recipe for module {module!r}")
    _CALLERS[key] = headers
    return headers


def module_of(app_modules: list[Any], path: str) -> str | None:
    """Name of the module owning a path, from the live app's module list."""
    for m in app_modules:
        if m.owns(path):
            return str(m.name)
    return None


def row_counts(server: Any) -> dict[str, int]:
    """Rows per table, over every table known to the metadata."""
    with server.services.db.read() as s:
        return {
            t.name: int(s.scalar(select(func.count()).select_from(t)) or 0)
            for t in Base.metadata.sorted_tables
        }
