"""The JSON admin API under /admin/api/: everything the console page does, for scripts."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from writegate.console import ops, views
from writegate.console.access import CSRF_HEADER, Cookies, Operator, check_csrf, require_act
from writegate.console.access import operator_of as _operator_of
from writegate.core.http import field_problems, is_json, not_json
from writegate.core.jobs.criteria import parse_filter, parse_query, require_filter
from writegate.core.jobs.operator import BULK_LIMIT
from writegate.core.problems import BadInput, FieldProblem
from writegate.core.services import Services
from writegate.core.text import whole_number
from writegate.core.webmodule import WebModule

JobId = Annotated[str, Field(min_length=1, max_length=36)]


class BulkBody(BaseModel):
    """A bulk action: these ids, or every job matching this filter (at most 1000)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[JobId] | None = Field(default=None, min_length=1, max_length=BULK_LIMIT)
    filter: dict[str, str | list[str]] | None = None


def error(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    """The admin API's error envelope (the same shape as the app's generic errors)."""
    fields = extra.pop("fields", [])
    return JSONResponse(
        {"error": kind, "message": message, "fields": fields, **extra}, status_code=status
    )


def bad_input(exc: BadInput) -> JSONResponse:
    """400 naming every bad field."""
    return error(400, "validation", str(exc), fields=[p.__dict__ for p in exc.problems])


class _NoStore(APIRoute):
    """An admin API route whose answers no cache keeps: they hold jobs' payloads and errors."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler."""
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            response = await handler(request)
            response.headers["cache-control"] = "no-store"
            return response

        return wrapped


def build(services: Services, modules: list[WebModule], cookies: Cookies) -> APIRouter:
    """The admin API's routes: a route table of short closures over this app's services."""
    # Left out of /openapi.json: docs/console.md documents it, and the suite's per-module
    # checks of every documented operation (hostile bodies, schemathesis) are for the APIs.
    router = APIRouter(
        prefix="/admin/api", tags=["admin"], include_in_schema=False, route_class=_NoStore
    )

    async def who(request: Request) -> Operator:
        return await run_in_threadpool(_operator_of, request, services, cookies)

    @router.get("/me", operation_id="admin_me")
    async def me(request: Request) -> JSONResponse:
        """The caller: name, tenant, roles, the tenant it sees (null: all), whether it may act."""
        op = await who(request)
        p = op.principal
        return JSONResponse(
            {
                "name": p.name,
                "tenant": p.tenant,
                "roles": sorted(p.roles),
                "scope": op.scope,
                "can_act": op.can_act,
            }
        )

    @router.get("/overview", operation_id="admin_overview")
    async def overview(request: Request) -> JSONResponse:
        """Per kind counts, oldest queued age, failures and throughput; workers; database."""
        op = await who(request)
        return JSONResponse(await run_in_threadpool(ops.overview, services, op, modules))

    @router.get("/jobs", operation_id="admin_jobs")
    async def jobs(request: Request) -> JSONResponse:
        """Jobs newest first: status, kind, tenant, q, since, until, limit, cursor."""
        op = await who(request)
        params = _multi(request)
        try:
            query = parse_query(params, services.clock.now())
        except BadInput as exc:
            return bad_input(exc)
        return JSONResponse(await run_in_threadpool(ops.list_jobs, services, op, query))

    @router.get("/jobs/{job_id}", operation_id="admin_job")
    async def job(request: Request, job_id: str) -> JSONResponse:
        """One job in full: payload (secrets masked), result, error, progress, audit entries."""
        op = await who(request)
        return JSONResponse(await run_in_threadpool(ops.job_detail, services, modules, op, job_id))

    async def one(request: Request, job_id: str, action: str) -> JSONResponse:
        op = await who(request)
        require_act(op)
        check_csrf(op, request.headers.get(CSRF_HEADER))
        out = await run_in_threadpool(ops.act, services, op, action, [job_id[:36]])
        result = out["results"][0]
        if result["ok"]:
            return JSONResponse(out)
        status = 404 if result["reason"] == "not_found" else 409
        kind = "not_found" if status == 404 else "conflict"
        return error(status, kind, result["message"], result=result, audit_id=out["audit_id"])

    @router.post("/jobs/{job_id}/retry", operation_id="admin_job_retry")
    async def retry(request: Request, job_id: str) -> JSONResponse:
        """Queue a failed or cancelled job again (superadmin); 409 if final, active or key held."""
        return await one(request, job_id, "retry")

    @router.post("/jobs/{job_id}/cancel", operation_id="admin_job_cancel")
    async def cancel(request: Request, job_id: str) -> JSONResponse:
        """Cancel a queued or running job (superadmin); 409 if already final."""
        return await one(request, job_id, "cancel")

    async def bulk(request: Request, action: str) -> JSONResponse:
        op = await who(request)
        require_act(op)
        check_csrf(op, request.headers.get(CSRF_HEADER))
        ctype = request.headers.get("content-type", "")
        if not is_json(ctype):
            return error(415, "content_type", not_json(ctype))
        try:
            body = BulkBody.model_validate_json(await request.body())
        except ValidationError as exc:
            problems = field_problems(exc.errors())
            return error(
                400, "validation", "invalid request", fields=[p.__dict__ for p in problems]
            )
        if (body.ids is None) == (body.filter is None):
            return bad_input(
                BadInput([FieldProblem("", "one_of", "give exactly one of ids or filter")])
            )
        job_filter = raw = None
        if body.filter is not None:
            unknown = sorted(set(body.filter) - {"status", "kind", "tenant", "q", "since", "until"})
            if unknown:
                return bad_input(
                    BadInput([FieldProblem(f"filter.{unknown[0]}", "extra", "unknown filter")])
                )
            try:
                require_filter(body.filter)
                job_filter, raw = parse_filter(body.filter, services.clock.now())
            except BadInput as exc:
                return bad_input(exc)
        out = await run_in_threadpool(ops.act, services, op, action, body.ids, job_filter, raw)
        return JSONResponse(out)

    @router.post("/jobs/retry", operation_id="admin_jobs_retry")
    async def retry_many(request: Request) -> JSONResponse:
        """Retry jobs by ids or by filter (superadmin): one result per job, one audit entry."""
        return await bulk(request, "retry")

    @router.post("/jobs/cancel", operation_id="admin_jobs_cancel")
    async def cancel_many(request: Request) -> JSONResponse:
        """Cancel jobs by ids or by filter (superadmin): one result per job, one audit entry."""
        return await bulk(request, "cancel")

    @router.get("/audit", operation_id="admin_audit")
    async def audit(request: Request) -> JSONResponse:
        """Operator actions, newest first: limit (1-500), before (an entry id)."""
        op = await who(request)
        problems = []
        limit = whole_number(request.query_params.get("limit", "100"), 3)
        text = request.query_params.get("before")
        before = None if text is None else whole_number(text, 11)
        if limit is None or not 1 <= limit <= 500:
            problems.append(FieldProblem("limit", "range", "limit must be a whole number 1-500"))
        if text is not None and before is None:
            problems.append(FieldProblem("before", "type", "before must be an entry id"))
        if problems or limit is None:
            return bad_input(BadInput(problems))
        entries = await run_in_threadpool(ops.audit, services, op, limit=limit, before=before)
        return JSONResponse({"entries": entries})

    @router.get("/views", operation_id="admin_views")
    async def view_list(request: Request) -> JSONResponse:
        """The modules' console views."""
        await who(request)
        return JSONResponse({"views": views.catalogue(modules)})

    @router.get("/views/{module}/{index}", operation_id="admin_view")
    async def view(request: Request, module: str, index: str) -> JSONResponse:
        """One module view's table, for the caller's tenants."""
        op = await who(request)
        number = whole_number(index, 3)
        if number is None:
            return bad_input(BadInput([FieldProblem("index", "type", "index must be a number")]))
        table = await run_in_threadpool(views.run, services, modules, op, module, number)
        table["rows"] = [[views.cell_json(c) for c in row] for row in table["rows"]]
        return JSONResponse(table)

    return router


def _multi(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        out[key] = values if len(values) > 1 else values[0]
    return out
