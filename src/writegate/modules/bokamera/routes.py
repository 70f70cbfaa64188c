"""BokaMera routes: thin handlers over service.py, each also reachable with a format suffix."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError, field_validator

from writegate.core.http import ServicesDep, field_problems
from writegate.core.text import STORABLE
from writegate.modules.bokamera import service
from writegate.modules.bokamera.access import Reader, Writer
from writegate.modules.bokamera.bodies import read_fields, respell_query
from writegate.modules.bokamera.errors import (
    ApiError,
    field_errors,
    render_api_error,
    validation_error,
)
from writegate.modules.bokamera.formats import MEDIA, UnknownFormat, negotiate, render
from writegate.modules.bokamera.schemas import (
    AxemaSettingsResponse,
    AxemaUserSyncJobResponse,
    AxemaUserSyncQueryResponse,
    CreateAxemaSettings,
    CreateAxemaUserSync,
    CustomerQueryResponse,
    SyncStatus,
    UpdateAxemaSettings,
    empty_guid,
)

M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])


class BokaMeraRoute(APIRoute):
    """Binds query parameters in any letter case, as ServiceStack does, and answers ApiError
    raised anywhere in a request (dependencies included) as ResponseStatus."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler."""
        handler = super().get_route_handler()
        names = _query_names(self.dependant)

        async def wrapped(request: Request) -> Response:
            if names and request.scope["query_string"]:  # respelled before FastAPI reads it
                request.scope["query_string"] = respell_query(request.scope["query_string"], names)
            try:
                return await handler(request)
            except ApiError as err:
                return render_api_error(request, err)

        return wrapped


def _query_names(dependant: Dependant) -> list[str]:
    """The query parameters a route reads, its dependencies' included."""
    names = [str(p.alias) for p in dependant.query_params]
    for sub in dependant.dependencies:
        names += _query_names(sub)
    return names


async def check_format(request: Request) -> None:
    """Refuse an unknown ?format= or suffix before doing any work."""
    try:
        negotiate(request)
    except UnknownFormat as exc:
        raise ApiError(
            400,
            "UnsupportedFormat",
            f"Unknown format {str(exc)!r}: use one of {', '.join(sorted(MEDIA))}",
        ) from None


router = APIRouter(route_class=BokaMeraRoute, dependencies=[Depends(check_format)])


def body_of(model: type[M]) -> Callable[[Request], Coroutine[Any, Any, M]]:
    """A dependency that reads the request DTO from JSON, JSON Lines, a form or the query."""

    names = [field.alias or name for name, field in model.model_fields.items()]

    async def parse(request: Request) -> M:
        data = await read_fields(request, names)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise validation_error(field_errors(field_problems(exc.errors()))) from None

    return parse


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    content = {t: {"schema": schema} for t in ("application/json", "text/jsonl")}
    return {"requestBody": {"required": False, "content": content}}


def _route(path: str, methods: list[str], operation_id: str, **kw: Any) -> Callable[[F], F]:
    """Register `path` and its `.{ext}` twin (the twin first, so it wins the match)."""

    def deco(fn: F) -> F:
        router.add_api_route(f"{path}.{{ext}}", fn, methods=methods, include_in_schema=False, **kw)
        router.add_api_route(path, fn, methods=methods, operation_id=operation_id, **kw)
        return fn

    return deco


SyncBody = Annotated[CreateAxemaUserSync, Depends(body_of(CreateAxemaUserSync))]
CreateSettingsBody = Annotated[CreateAxemaSettings, Depends(body_of(CreateAxemaSettings))]
UpdateSettingsBody = Annotated[UpdateAxemaSettings, Depends(body_of(UpdateAxemaSettings))]


class _CompanyParam(BaseModel):
    CompanyId: uuid.UUID | None = None

    @field_validator("CompanyId", mode="before")
    @classmethod
    def _empty(cls, v: Any) -> Any:
        return empty_guid(v)


async def company_param(
    CompanyId: Annotated[
        str | None, Query(description="Defaults to your own company (also when empty).")
    ] = None,
) -> uuid.UUID | None:
    """?CompanyId=: a GUID; empty or Guid.Empty means the caller's own company."""
    try:
        return _CompanyParam(CompanyId=CompanyId).CompanyId
    except ValidationError as exc:
        raise validation_error(field_errors(field_problems(exc.errors()))) from None


CompanyQuery = Annotated[uuid.UUID | None, Depends(company_param)]
Skip = Annotated[int, Query(ge=0, le=2**31 - 1, description="Results to skip.")]
Take = Annotated[int, Query(ge=1, le=service.MAX_TAKE, description="Results to return.")]
SYNC = "AxemaUserSyncJobResponse"


@_route(
    "/codelock/axema/usersync",
    ["POST"],
    "createAxemaUserSync",
    response_model=AxemaUserSyncJobResponse,
    summary="Start a sync of users from the Axema Vaka system into BokaMera customers",
    openapi_extra=_body_doc(CreateAxemaUserSync),
    responses={409: {"description": "A sync is already running for the company"}},
)
def create_sync(
    request: Request, principal: Writer, services: ServicesDep, body: SyncBody
) -> Response:
    """Start a background sync (one at a time per company)."""
    return render(
        request, service.start_sync(services, principal, body).model_dump(mode="json"), root=SYNC
    )


@_route(
    "/codelock/axema/usersync",
    ["GET"],
    "queryAxemaUserSyncs",
    response_model=AxemaUserSyncQueryResponse,
    summary="List Axema user syncs",
)
async def query_syncs(
    request: Request,
    principal: Reader,
    services: ServicesDep,
    CompanyId: CompanyQuery,
    Status: Annotated[SyncStatus | None, Query()] = None,
    Skip: Skip = 0,
    Take: Take = 100,
) -> Response:
    """Syncs filtered by company and status, newest first."""
    result = await service.list_syncs(services, principal, CompanyId, Status, Skip, Take)
    return render(
        request,
        result.model_dump(mode="json"),
        root="QueryResponseOfAxemaUserSyncJobResponse",
        item_name=SYNC,
    )


@_route(
    "/codelock/axema/usersync/{Id}",
    ["GET"],
    "getAxemaUserSync",
    response_model=AxemaUserSyncJobResponse,
    summary="Status and counters of one Axema user sync",
)
async def get_sync(
    request: Request,
    principal: Reader,
    services: ServicesDep,
    Id: uuid.UUID,
) -> Response:
    """One sync."""
    sync = await service.get_sync(services, principal, Id)
    return render(request, sync.model_dump(mode="json"), root=SYNC)


SETTINGS = "AxemaSettingsResponse"


@_route(
    "/codelock/axema/settings",
    ["GET"],
    "getAxemaSettings",
    response_model=AxemaSettingsResponse,
    summary="The company's Axema Vaka connection (never the password)",
)
async def get_settings(
    request: Request,
    principal: Reader,
    services: ServicesDep,
    CompanyId: CompanyQuery,
) -> Response:
    """Read the settings."""
    settings = await service.get_settings(services, principal, CompanyId)
    return render(request, settings.model_dump(mode="json"), root=SETTINGS)


@_route(
    "/codelock/axema/settings",
    ["POST"],
    "createAxemaSettings",
    response_model=AxemaSettingsResponse,
    summary="Store the company's Axema Vaka connection",
    openapi_extra=_body_doc(CreateAxemaSettings),
)
def create_settings(
    request: Request, principal: Writer, services: ServicesDep, body: CreateSettingsBody
) -> Response:
    """Create the settings (409 if they exist)."""
    return render(
        request,
        service.create_settings(services, principal, body).model_dump(mode="json"),
        root=SETTINGS,
    )


@_route(
    "/codelock/axema/settings",
    ["PUT"],
    "updateAxemaSettings",
    response_model=AxemaSettingsResponse,
    summary="Change the company's Axema Vaka connection",
    openapi_extra=_body_doc(UpdateAxemaSettings),
)
def update_settings(
    request: Request, principal: Writer, services: ServicesDep, body: UpdateSettingsBody
) -> Response:
    """Update the given fields (404 if there are no settings yet)."""
    return render(
        request,
        service.update_settings(services, principal, body).model_dump(mode="json"),
        root=SETTINGS,
    )


@_route(
    "/customers",
    ["GET"],
    "queryCustomers",
    response_model=CustomerQueryResponse,
    summary="The company's customers (what the Axema sync produced)",
)
async def query_customers(
    request: Request,
    principal: Reader,
    services: ServicesDep,
    CompanyId: CompanyQuery,
    VakaUserId: Annotated[str | None, Query(max_length=100), STORABLE] = None,
    Email: Annotated[str | None, Query(max_length=200), STORABLE] = None,
    Skip: Skip = 0,
    Take: Take = 100,
) -> Response:
    """A page of customers in creation order."""
    result = await service.list_customers(
        services, principal, CompanyId, VakaUserId, Email, Skip, Take
    )
    return render(
        request,
        result.model_dump(mode="json"),
        root="QueryResponseOfCustomerQueryResponse",
        item_name="CustomerQueryResponse",
    )
