"""Who is asking: an API key or a signed console cookie, the operator roles, and CSRF."""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from writegate.core import sign_outs
from writegate.core.auth import Principal
from writegate.core.http import credentials
from writegate.core.services import Services

log = logging.getLogger("writegate.console")

#: may read the console and the admin API
READ_ROLES = ("operator", "superadmin")
#: may also retry and cancel
ACT_ROLE = "superadmin"
#: an operator whose tenant is this sees every tenant (superadmins always do)
GLOBAL_TENANT = "*"
COOKIE = "wg_console"
CSRF_HEADER = "x-csrf-token"
SESSION_SECONDS = 8 * 3600
#: how long a redirect's note is shown (a reload soon after shows it again)
NOTE_SECONDS = 300


class Denied(Exception):
    """The caller may not do this: 401 (who are you), 403 (not allowed) or 404 (not yours)."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Operator:
    """An authenticated console or admin API caller."""

    principal: Principal
    #: the console cookie's CSRF token; None for an API-key caller (no ambient credentials)
    csrf: str | None
    #: the console session's id (what signing out refuses); None for an API-key caller
    sid: str | None = None

    @property
    def name(self) -> str:
        """The principal's name (the audit log's actor)."""
        return self.principal.name

    @property
    def scope(self) -> str | None:
        """The one tenant this operator sees, or None for every tenant."""
        p = self.principal
        return None if p.all_tenants or p.tenant == GLOBAL_TENANT else p.tenant

    @property
    def can_act(self) -> bool:
        """True if the operator may retry and cancel."""
        return self.principal.has_any(ACT_ROLE)

    def tenant_filter(self, asked: str | None) -> str | None:
        """The tenant a query is limited to, refusing another tenant than the operator's."""
        scope = self.scope
        if scope is None:
            return asked
        if asked is not None and asked != scope:
            raise Denied(403, "forbidden", f"you may only see tenant {scope!r}")
        return scope


class Cookies:
    """Signs and reads the console's session cookie (HttpOnly, SameSite=Strict), and the
    notes its redirects carry to the next page."""

    def __init__(self, secret: str | None = None) -> None:
        if not secret:
            # Per process: sign-ins end when it restarts, and several HTTP processes each
            # need the same WRITEGATE_CONSOLE_SECRET to accept each other's cookies.
            secret = secrets.token_urlsafe(32)
        self._signer = URLSafeTimedSerializer(secret, salt="writegate-console")
        self._notes = URLSafeTimedSerializer(secret, salt="writegate-console-note")

    def read(self, request: Request) -> dict[str, Any]:
        """The cookie's content; empty if missing, forged or expired."""
        raw = request.cookies.get(COOKIE)
        if not raw or len(raw) > 4096:
            return {}
        try:
            data = self._signer.loads(raw, max_age=SESSION_SECONDS)
        except BadSignature:
            return {}
        return data if isinstance(data, dict) else {}

    def write(self, request: Request, response: Response, data: dict[str, Any]) -> None:
        """Set the cookie to data."""
        response.set_cookie(
            COOKIE,
            self._signer.dumps(data),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )

    def seal_note(self, message: str, error: bool) -> str:
        """A redirect's note (`?note=`), signed: a link cannot put its own words on a page."""
        return self._notes.dumps([message, error])

    def note(self, request: Request) -> tuple[str, bool]:
        """The page's note (message, whether an error); empty unless signed here lately."""
        raw = request.query_params.get("note", "")
        try:
            message, error = self._notes.loads(raw, max_age=NOTE_SECONDS) if raw else ("", False)
        except (BadSignature, ValueError, TypeError):
            return "", False
        return (message, error) if isinstance(message, str) else ("", False)

    def ensure(self, request: Request) -> tuple[dict[str, Any], bool]:
        """The cookie's content with a CSRF token in it; True if it had to be (re)made."""
        data = self.read(request)
        if isinstance(data.get("csrf"), str) and data["csrf"]:
            return data, False
        return {"csrf": secrets.token_urlsafe(24)}, True


def operator_of(request: Request, services: Services, cookies: Cookies) -> Operator:
    """The caller, from its API key or its console cookie; Denied if neither will do."""
    key = credentials(request)
    csrf: str | None = None
    sid: str | None = None
    with services.db.read() as s:
        if key is not None:
            principal = services.auth.by_api_key(s, key) if len(key) <= 512 else None
            if principal is None:
                raise Denied(401, "unauthorized", "unknown or revoked API key")
        else:
            data = cookies.read(request)
            name, session = data.get("name"), data.get("sid")
            principal = services.auth.by_name(s, name) if isinstance(name, str) else None
            if (
                principal is None
                or principal.id != data.get("pid")
                or not isinstance(session, str)
                or sign_outs.signed_out(s, session)
            ):
                raise Denied(401, "unauthorized", "sign in, or send an API key")
            csrf, sid = str(data.get("csrf") or ""), session
    if not principal.has_any(*READ_ROLES):
        raise Denied(403, "forbidden", "the console needs the operator or superadmin role")
    return Operator(principal, csrf, sid)


def check_csrf(op: Operator, sent: str | None) -> None:
    """Refuse a cookie-authenticated change whose CSRF token does not match the cookie's."""
    if op.csrf is None:
        return
    if not sent or not op.csrf or not hmac.compare_digest(sent, op.csrf):
        raise Denied(403, "csrf", "missing or wrong CSRF token: reload the page and try again")


def require_act(op: Operator) -> None:
    """Refuse an operator without the superadmin role."""
    if not op.can_act:
        raise Denied(403, "forbidden", "retry and cancel need the superadmin role")
