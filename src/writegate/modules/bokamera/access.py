"""Who may call: API-key authentication, BokaMera roles, and company (= tenant) scope."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from writegate.core.auth import Principal
from writegate.core.http import authenticate, credentials
from writegate.modules.bokamera.errors import ApiError
from writegate.modules.bokamera.models import AxemaSettingsRow

WRITE_ROLE = "bookingsupplier-administrator-write"
READ_ROLE = "bookingsupplier-administrator-read"
SUPERADMIN = "superadmin"
WRITE_ROLES = (WRITE_ROLE, SUPERADMIN)
READ_ROLES = (WRITE_ROLE, READ_ROLE, SUPERADMIN)
#: namespace of company ids derived from tenants that are not GUIDs themselves
TENANT_NAMESPACE = uuid.UUID("0c0a1e5e-7b1c-4d0e-9a51-b0ca3e7a0001")


@dataclass(frozen=True)
class Company:
    """A BokaMera company and the writegate tenant it is."""

    id: str
    tenant: str


def company_id_of(tenant: str) -> str:
    """The company id of a tenant: the tenant itself if it is a GUID, else a stable UUIDv5."""
    try:
        return str(uuid.UUID(tenant))
    except ValueError:
        return str(uuid.uuid5(TENANT_NAMESPACE, tenant))


def _require(request: Request, roles: tuple[str, ...]) -> Principal:
    principal = authenticate(request)
    if principal is None:
        if credentials(request) is None:
            raise ApiError(
                401,
                "Unauthorized",
                "Authentication required: send an API key in x-api-key or Authorization: Bearer",
            )
        raise ApiError(401, "Unauthorized", "Invalid, unknown or revoked API key")
    if not principal.has_any(*roles):
        raise ApiError(
            403,
            "Forbidden",
            f"You have too low privileges to call this service: requires any of the roles "
            f"{', '.join(roles)}",
        )
    return principal


def require_writer(request: Request) -> Principal:
    """An authenticated principal with a write role."""
    return _require(request, WRITE_ROLES)


def require_reader(request: Request) -> Principal:
    """An authenticated principal with a read or write role."""
    return _require(request, READ_ROLES)


Writer = Annotated[Principal, Depends(require_writer)]
Reader = Annotated[Principal, Depends(require_reader)]


def resolve_company(session: Session, principal: Principal, requested: uuid.UUID | None) -> Company:
    """The company a request is about; another company only for superadmin (else 403)."""
    own = company_id_of(principal.tenant)
    if requested is None or str(requested) == own:
        return Company(own, principal.tenant)
    if not principal.all_tenants:
        raise ApiError(
            403, "Forbidden", f"You may not access company {requested}: it is not your company"
        )
    row = session.get(AxemaSettingsRow, str(requested))
    return Company(str(requested), row.tenant if row is not None else str(requested))


def visible(principal: Principal, company_id: str) -> bool:
    """Whether principal may see records of company_id."""
    return principal.all_tenants or company_id == company_id_of(principal.tenant)
