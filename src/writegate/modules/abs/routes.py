"""HTTP routes: /model/package/* (every method is a POST with a JSON body)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from writegate.core.auth import Principal
from writegate.core.http import API_KEY_DOC, JsonBodyRoute, ServicesDep, authenticate
from writegate.modules.abs import service
from writegate.modules.abs.errors import AbsError, failure, ok
from writegate.modules.abs.schemas import (
    PackageChanges,
    PackageDelete,
    PackageEnvelope,
    PackageGet,
    PackageList,
    PackageListEnvelope,
    PackagePut,
)

SUPERADMIN = "superadmin"
READ_ROLE = "abs:read"
WRITE_ROLE = "abs:write"
#: roles that may read packages (the write role includes reading)
READ_ROLES = (READ_ROLE, WRITE_ROLE, SUPERADMIN)
WRITE_ROLES = (WRITE_ROLE, SUPERADMIN)


async def require_principal(request: Request) -> Principal:
    """The caller behind x-api-key / Authorization: Bearer (render_error words a 401).

    Async: a key seen lately is answered from the process's cache, with no thread hop.
    """
    principal = await authenticate(request)
    if principal is None:
        raise HTTPException(status_code=401, detail="unauthorized")
    return principal


def _with_role(principal: Principal, roles: tuple[str, ...], what: str) -> Principal:
    # Before the client code is looked at: a tenant that merely equals a code is not enough.
    if not principal.has_any(*roles):
        raise AbsError("ROLE_REQUIRED", f"{what} requires one of the roles {', '.join(roles)}")
    return principal


async def require_reader(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    """A caller that may read packages."""
    return _with_role(principal, READ_ROLES, "reading packages")


async def require_writer(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    """A caller that may create, change and delete packages."""
    return _with_role(principal, WRITE_ROLES, "writing packages")


Reader = Annotated[Principal, Depends(require_reader)]
Writer = Annotated[Principal, Depends(require_writer)]

router = APIRouter(prefix="/model/package", tags=["abs"], route_class=JsonBodyRoute)


async def _answer(call: Awaitable[Any], *, many: bool = False) -> JSONResponse:
    try:
        result = await call
    except AbsError as exc:
        return failure(exc.code, exc.description)
    if many:
        return ok(result.rows, result.total)
    return ok(result, 1)


@router.post(
    "/putDb",
    operation_id="abs_package_put_db",
    response_model=PackageEnvelope,
    openapi_extra=API_KEY_DOC,
)
async def put_db(body: PackagePut, principal: Writer, services: ServicesDep) -> JSONResponse:
    """Create a package (no id/uid) or update one; committed before the answer."""
    try:
        return ok(await service.put_package(services, principal, body), 1)
    except AbsError as exc:
        return failure(exc.code, exc.description)


@router.post(
    "/get",
    operation_id="abs_package_get",
    response_model=PackageEnvelope,
    openapi_extra=API_KEY_DOC,
)
async def get(body: PackageGet, principal: Reader, services: ServicesDep) -> JSONResponse:
    """One live package by id or uid."""
    return await _answer(service.get_package(services, principal, body))


@router.post(
    "/getList",
    operation_id="abs_package_get_list",
    response_model=PackageListEnvelope,
    openapi_extra=API_KEY_DOC,
)
async def get_list(body: PackageList, principal: Reader, services: ServicesDep) -> JSONResponse:
    """A page of live packages matching the search fields."""
    return await _answer(service.list_packages(services, principal, body), many=True)


@router.post(
    "/getChanges",
    operation_id="abs_package_get_changes",
    response_model=PackageListEnvelope,
    openapi_extra=API_KEY_DOC,
)
async def get_changes(
    body: PackageChanges, principal: Reader, services: ServicesDep
) -> JSONResponse:
    """Changes after offset_version, oldest first, deletions included (replication feed)."""
    return await _answer(service.package_changes(services, principal, body), many=True)


@router.post(
    "/delete",
    operation_id="abs_package_delete",
    response_model=PackageEnvelope,
    openapi_extra=API_KEY_DOC,
)
async def delete(body: PackageDelete, principal: Writer, services: ServicesDep) -> JSONResponse:
    """Mark a package deleted (state 1); it stays in the changes feed."""
    try:
        return ok(await service.delete_package(services, principal, body), 1)
    except AbsError as exc:
        return failure(exc.code, exc.description)
