"""The console's server-rendered pages under /console (Jinja2, htmx for live refresh)."""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError, IntegrityError
from starlette.concurrency import run_in_threadpool

from writegate.console import ops, views
from writegate.console.access import (
    READ_ROLES,
    SESSION_SECONDS,
    Cookies,
    Denied,
    Operator,
    check_csrf,
    operator_of,
    require_act,
)
from writegate.core import audit_log, login_limits, sign_outs
from writegate.core.auth import PasswordCheckBusy
from writegate.core.jobs import operator as jobs_admin
from writegate.core.jobs.criteria import FIELDS as FILTER_FIELDS
from writegate.core.jobs.criteria import STATUSES, parse_filter, parse_query, require_filter
from writegate.core.problems import BadInput
from writegate.core.services import Services
from writegate.core.text import whole_number
from writegate.core.webmodule import WebModule

if TYPE_CHECKING:
    from starlette.templating import Jinja2Templates

TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM_BYTES = 16 * 1024


def age(seconds: int | None) -> str:
    """A short human age: 42s, 5m 3s, 2h 10m, 3d 4h."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


#: bidirectional controls: a value holding them can show its text in another order than it
#: has (a job id or key that reads as another's)
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def reveal(value: Any) -> Any:
    """Text as shown on a page: each bidirectional control as a visible `[U+202E]`."""
    if isinstance(value, str) and _BIDI.search(value):
        # type(value): Markup stays Markup (the marker is safe text), or it would be escaped
        return type(value)(_BIDI.sub(lambda m: f"[U+{ord(m.group()):04X}]", value))
    return value


@functools.cache
def templates() -> Jinja2Templates:
    """The console's templates, HTML-escaped, loaded at the first page drawn."""
    # Imported here: Jinja2 and the compiled templates are about 3 MB that a process serving
    # only the APIs never needs.
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from starlette.templating import Jinja2Templates

    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(), finalize=reveal
    )
    env.globals["age"] = age
    env.globals["statuses"] = STATUSES
    return Jinja2Templates(env=env)


async def form(request: Request) -> dict[str, str]:
    """An urlencoded form body as a dict (last value wins); empty if too large."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


#: on every console page: never framed (clickjacking), no MIME sniffing, no URL in a Referer
PAGE_HEADERS = {
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


class ConsoleRoute(APIRoute):
    """A console page: its refusals answered as pages, every answer with PAGE_HEADERS."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler."""
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                response = await handler(request)
            except Denied as exc:
                response = render_denied(request, exc)
            except BadInput as exc:
                response = render_bad_input(request, exc)
            except DataError:  # a value the database cannot store or compare (a NUL)
                message = "a value contains characters the database cannot take"
                response = render_bad_input(request, BadInput([_problem("", message)]))
            response.headers.update(PAGE_HEADERS)
            return response

        return wrapped


def build(services: Services, modules: list[WebModule], cookies: Cookies) -> APIRouter:
    """The page routes: a route table of short closures over this app's services, templates
    and cookies."""
    router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)
    limits = login_limits.console(services)
    catalogue = views.catalogue(modules)

    async def who(request: Request) -> Operator:
        return await run_in_threadpool(operator_of, request, services, cookies)

    def page(
        request: Request, name: str, op: Operator | None, status: int = 200, **ctx: Any
    ) -> Response:
        data, fresh = cookies.ensure(request)
        msg, error = cookies.note(request)
        context = {
            "op": op,
            "csrf": data["csrf"],
            "module_views": catalogue,
            "msg": msg,
            "error": error,
            **ctx,
        }
        response = templates().TemplateResponse(request, name, context, status_code=status)
        if fresh:
            cookies.write(request, response, data)
        response.headers["cache-control"] = "no-store"
        return response

    def back(path: str, msg: str, error: bool = False) -> RedirectResponse:
        sep = "&" if "?" in path else "?"
        query = urlencode({"note": cookies.seal_note(msg[:500], error)})
        return RedirectResponse(f"{path}{sep}{query}", status_code=303)

    @router.get("/login")
    async def login_page(request: Request) -> Response:
        nxt = request.query_params.get("next", "/console")
        return page(request, "login.html", None, next=nxt if _local(nxt) else "")

    @router.post("/login")
    async def login(request: Request) -> Response:
        fields = await form(request)
        data = cookies.read(request)
        sent, kept = fields.get("csrf", ""), str(data.get("csrf", ""))
        nxt = fields.get("next", "")
        # A failed attempt keeps where the operator was going.
        again = f"/console/login?{urlencode({'next': nxt})}" if _local(nxt) else "/console/login"
        if not kept or not secrets.compare_digest(sent.encode(), kept.encode()):
            return back(again, "your sign-in form expired: try again", True)
        name, password = fields.get("name", "")[:200], fields.get("password", "")[:1000]
        address = request.client.host if request.client else ""
        k = login_limits.keys(login_limits.CONSOLE, name, address)
        check = functools.partial(_verify, services, name, password)
        try:
            principal = await run_in_threadpool(limits.checked, k, check, READ_ROLES)
        except login_limits.Limited as exc:
            message = f"too many failed sign-ins: try again in {exc.seconds} s"
            return back(again, message, True)
        except PasswordCheckBusy:
            return back(again, "too many sign-ins at once: try again shortly", True)
        if principal is None:
            return back(again, "wrong name or password, or no operator role", True)
        response = RedirectResponse(nxt if _local(nxt) else "/console", 303)
        # A new CSRF token with every sign-in: one fixed before sign-in is never reused.
        cookies.write(
            request,
            response,
            {
                "csrf": secrets.token_urlsafe(24),
                "name": principal.name,
                "pid": principal.id,
                "sid": secrets.token_urlsafe(24),  # what signing out refuses from then on
            },
        )
        await run_in_threadpool(_signed_in, services, principal, limits, k)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        op = await who(request)
        check_csrf(op, (await form(request)).get("csrf"))
        if op.sid is not None:
            await run_in_threadpool(_signed_out, services, op, op.sid)
        response = RedirectResponse("/console/login", 303)
        response.delete_cookie("wg_console", path="/")
        return response

    @router.get("")
    @router.get("/")
    @router.get("/overview")
    async def overview(request: Request) -> Response:
        op = await who(request)
        data = await run_in_threadpool(ops.overview, services, op, modules)
        per = data["throughput_per_minute"]
        peak = max([1, *(a + b for a, b in zip(per["succeeded"], per["failed"], strict=True))])
        return page(request, "overview.html", op, data=data, peak=peak)

    @router.get("/jobs")
    async def jobs(request: Request) -> Response:
        op = await who(request)
        params = dict(request.query_params)
        try:
            query = parse_query(params, services.clock.now())
        except BadInput as exc:
            empty: dict[str, Any] = {"jobs": [], "next_cursor": None}
            sent = {k: v for k, v in params.items() if k in FILTER_FIELDS}
            return _jobs_page(request, op, sent, empty, None, str(exc), 400)
        result = await run_in_threadpool(ops.list_jobs, services, op, query)
        return _jobs_page(request, op, query.raw, result, params.get("cursor"), None, 200)

    def _jobs_page(
        request: Request,
        op: Operator,
        raw: dict[str, str],
        result: dict[str, Any],
        cursor: str | None,
        problem: str | None,
        status: int,
    ) -> Response:
        kinds = sorted(services.registry.kinds())
        ctx: dict[str, Any] = {
            "page": result,
            "raw": raw,
            "kinds": kinds,
            "cursor": cursor,
            "query_string": urlencode(raw),
        }
        if problem:  # the form keeps what was sent; nothing refreshes or acts on it
            ctx.update(msg=problem, error=True, bad_filter=True)
        return page(request, "jobs.html", op, status, **ctx)

    @router.get("/jobs/{job_id}")
    async def job(request: Request, job_id: str) -> Response:
        op = await who(request)
        detail = await run_in_threadpool(ops.job_detail, services, modules, op, job_id)
        return page(request, "job.html", op, job=detail, entries=detail["audit"])

    @router.post("/jobs/{job_id}/{action}")
    async def act(request: Request, job_id: str, action: str) -> Response:
        op = await who(request)
        require_act(op)
        check_csrf(op, (await form(request)).get("csrf"))
        if action not in ops.ACTIONS:
            raise Denied(404, "not_found", f"no action {action!r}")
        if len(job_id) > 36:  # longer than any job id: no job (its first 36 characters acted)
            raise Denied(404, "not_found", "no such job")
        out = await run_in_threadpool(ops.act, services, op, action, [job_id])
        result = out["results"][0]
        return back(f"/console/jobs/{job_id}", result["message"], not result["ok"])

    @router.get("/bulk")
    async def bulk_confirm(request: Request) -> Response:
        op = await who(request)
        require_act(op)
        action = request.query_params.get("action", "")
        if action not in ops.ACTIONS:
            raise BadInput([_problem("action", "action must be retry or cancel")])
        params = {k: v for k, v in request.query_params.items() if k != "action"}
        require_filter(params)
        f, raw = parse_filter(params, services.clock.now())
        f = _scoped(op, f)
        ids = await run_in_threadpool(_matching, services, f)
        return page(
            request,
            "bulk.html",
            op,
            action=action,
            ids=ids,
            raw=raw,
            limit=jobs_admin.BULK_LIMIT,
            query_string=urlencode(raw),
        )

    @router.post("/bulk")
    async def bulk(request: Request) -> Response:
        op = await who(request)
        require_act(op)
        fields = await form(request)
        check_csrf(op, fields.get("csrf"))
        action = fields.get("action", "")
        if action not in ops.ACTIONS:
            raise BadInput([_problem("action", "action must be retry or cancel")])
        params = {k: v for k, v in fields.items() if k not in ("csrf", "action")}
        require_filter(params)
        f, raw = parse_filter(params, services.clock.now())
        out = await run_in_threadpool(ops.act, services, op, action, None, f, raw)
        msg = f"{action}: {out['done']} done, {out['refused']} refused"
        refusals = [r["message"] for r in out["results"] if not r["ok"]][:3]
        if refusals:
            msg += " (" + "; ".join(refusals) + ")"
        return back(f"/console/jobs?{urlencode(raw)}".rstrip("?"), msg, out["refused"] > 0)

    @router.get("/audit")
    async def audit(request: Request) -> Response:
        op = await who(request)
        before = whole_number(request.query_params.get("before", ""), 11)
        entries = await run_in_threadpool(ops.audit, services, op, limit=100, before=before)
        more = entries[-1]["id"] if len(entries) == 100 else None
        return page(request, "audit.html", op, entries=entries, more=more)

    @router.get("/views/{module}/{index}")
    async def view(request: Request, module: str, index: str) -> Response:
        op = await who(request)
        number = whole_number(index, 3)
        if number is None:
            raise Denied(404, "not_found", f"no console view {module}/{index}")
        table = await run_in_threadpool(views.run, services, modules, op, module, number)
        table["rows"] = [[views.cell_json(c) for c in row] for row in table["rows"]]
        return page(request, "view.html", op, table=table)

    router.add_api_route("/", overview, methods=["GET"], include_in_schema=False)
    return router


def _local(path: str) -> bool:
    """Whether a `next` is a console page of this server (never another host's)."""
    return path.startswith("/console") and not path.startswith("/console/login")


def render_denied(request: Request, exc: Denied) -> Response:
    """A page's answer to Denied: the sign-in page for 401, an error page otherwise."""
    if exc.status == 401:  # back to this page, its filter too, once signed in
        nxt = "/console"
        if request.method == "GET":
            query = request.url.query
            nxt = request.url.path + (f"?{query}" if query else "")
        return RedirectResponse(f"/console/login?{urlencode({'next': nxt})}", 303)
    return templates().TemplateResponse(
        request,
        "error.html",
        {"op": None, "status": exc.status, "message": exc.message, "module_views": []},
        status_code=exc.status,
    )


def render_bad_input(request: Request, exc: BadInput) -> Response:
    """A page's answer to bad filters or form fields."""
    return HTMLResponse(
        templates()
        .get_template("error.html")
        .render(op=None, status=400, message=str(exc), module_views=[]),
        status_code=400,
    )


def _problem(name: str, message: str) -> Any:
    from writegate.core.problems import FieldProblem

    return FieldProblem(name, "invalid", message)


def _scoped(op: Operator, f: jobs_admin.JobFilter) -> jobs_admin.JobFilter:
    import dataclasses

    return dataclasses.replace(f, tenant=op.tenant_filter(f.tenant))


def _matching(services: Services, f: jobs_admin.JobFilter) -> list[str]:
    with services.db.read() as s:
        return jobs_admin.matching_ids(s, f)


def _verify(services: Services, name: str, password: str) -> Any:
    with services.db.read() as s:
        return services.auth.verify_password(s, name, password)


def _signed_out(services: Services, op: Operator, sid: str) -> None:
    now = services.clock.now()
    try:
        with services.db.write() as s:
            sign_outs.sign_out(s, sid, until=now + timedelta(seconds=SESSION_SECONDS), now=now)
            audit_log.record(
                s, at=now, actor=op.name, tenant=op.principal.tenant, action="sign_out", job_ids=[]
            )
    except IntegrityError:
        pass  # a second sign-out of the session at the same moment: the first one recorded it


def _signed_in(
    services: Services, principal: Any, limits: login_limits.LoginLimits, k: login_limits.Keys
) -> None:
    with services.db.write() as s:
        limits.succeeded(s, k)
        audit_log.record(
            s,
            at=services.clock.now(),
            actor=principal.name,
            tenant=principal.tenant,
            action="sign_in",
            job_ids=[],
        )
