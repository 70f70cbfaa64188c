"""jef-one HTTP routes: thin, delegating to service.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from writegate.core.http import JsonBodyRoute, ServicesDep
from writegate.modules.jef_one import service
from writegate.modules.jef_one.schemas import (
    EMPLOYEE_NUMBER,
    ENTITY_NUMBER,
    SESSION_ID,
    AcceptedResponse,
    CreateSessionJob,
    EmployeePost,
    EmployeeView,
    EntityPost,
    EntityView,
    ErrorResponse,
    JobView,
    SessionView,
)

router = APIRouter(tags=["jef-one"], route_class=JsonBodyRoute)

_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Bad input; no job was created"},
    409: {"model": ErrorResponse, "description": "A job for the same key is already active"},
    503: {"model": ErrorResponse, "description": "Database unavailable; retry"},
}


def _accepted(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=202)


@router.post(
    "/one-post-create-session-job",
    status_code=202,
    response_model=AcceptedResponse,
    responses=_REFUSALS,
    operation_id="one_post_create_session_job",
    summary="Accept an async job to create a jef-one session",
)
async def create_session_job(body: CreateSessionJob, services: ServicesDep) -> JSONResponse:
    """Accept a job (not the final write); confirm with the session GET."""
    return _accepted(await service.accept_session(services, body))


@router.post(
    "/one-entities-post-one",
    status_code=202,
    response_model=AcceptedResponse,
    responses=_REFUSALS,
    operation_id="one_entities_post_one",
    summary="Accept an async job to create or update an entity",
)
async def post_entity(body: EntityPost, services: ServicesDep) -> JSONResponse:
    """Accept an entity upsert; confirm with the entity GET."""
    return _accepted(await service.accept_entity(services, body))


@router.post(
    "/one-employees-post-one",
    status_code=202,
    response_model=AcceptedResponse,
    responses=_REFUSALS,
    operation_id="one_employees_post_one",
    summary="Accept an async job to create or update an employee",
)
async def post_employee(body: EmployeePost, services: ServicesDep) -> JSONResponse:
    """Accept an employee upsert; confirm with the employee GET."""
    return _accepted(await service.accept_employee(services, body))


@router.get(
    "/jef-one-get-job-by-job-id",
    response_model=JobView,
    responses={400: {"model": ErrorResponse}},
    operation_id="jef_one_get_job_by_job_id",
)
async def get_job(
    services: ServicesDep, job_id: Annotated[str, Query(min_length=1, max_length=64)]
) -> dict[str, Any]:
    """A job's status, timestamps, result or error."""
    return await service.job_view(services, job_id)


@router.get(
    "/jef-one-get-session-by-session-id",
    response_model=SessionView,
    responses={400: {"model": ErrorResponse}},
    operation_id="jef_one_get_session_by_session_id",
)
async def get_session(
    services: ServicesDep, session_id: Annotated[str, Query(pattern=SESSION_ID, max_length=128)]
) -> dict[str, Any]:
    """A session's final state."""
    return await service.session_view(services, session_id)


@router.get(
    "/jef-one-get-entity-by-entity-number",
    response_model=EntityView,
    responses={400: {"model": ErrorResponse}},
    operation_id="jef_one_get_entity_by_entity_number",
)
async def get_entity(
    services: ServicesDep, entity_number: Annotated[str, Query(pattern=ENTITY_NUMBER)]
) -> dict[str, Any]:
    """An entity and whether it can take sessions."""
    return await service.entity_view(services, entity_number)


@router.get(
    "/jef-one-get-employee-by-employee-number",
    response_model=EmployeeView,
    responses={400: {"model": ErrorResponse}},
    operation_id="jef_one_get_employee_by_employee_number",
)
async def get_employee(
    services: ServicesDep,
    entity_number: Annotated[str, Query(pattern=ENTITY_NUMBER)],
    employee_number: Annotated[str, Query(pattern=EMPLOYEE_NUMBER)],
) -> dict[str, Any]:
    """An employee and whether they can start sessions."""
    return await service.employee_view(services, entity_number, employee_number)
