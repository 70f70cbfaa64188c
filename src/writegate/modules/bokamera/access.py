"""Who may call: API-key authentication, BokaMera roles, and company (= tenant) scope."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from writegate.core.auth import Principal
from writegate.core.db import Reads
from writegate.core.http import authenticate, credentials
from writegate.modules.bokamera.errors import ApiError, FieldError
from writegate.modules.bokamera.models import AxemaSettingsRow

WRITE_ROLE = "bookingsupplier-administrator-write"
READ_ROLE = "bookingsupplier-administrator-read"
SUPERADMIN = "superadmin"
WRITE_ROLES = (WRITE_ROLE, SUPERADMIN)
READ_ROLES = (WRITE_ROLE, READ_ROLE, SUPERADMIN)


@dataclass(frozen=True)
class Company:
    """A BokaMera company and the writegate tenant it is."""

    id: str
    tenant: str


def company_id_of(tenant: str) -> str | None:
    """The company a tenant is: the tenant itself if it is a canonical GUID, else none."""
    # Only the one spelling uuid.UUID prints (lowercase, dashes) counts: no two tenants
    # (`3F2504E0...`, `{3f2504e0-...}`) can ever name the same company.
    try:
        canonical = str(uuid.UUID(tenant))
    except ValueError:
        return None
    return canonical if canonical == tenant else None


def _no_company(principal: Principal) -> ApiError:
    return ApiError(
        403,
        "Forbidden",
        f"Your tenant {principal.tenant!r} is not a BokaMera company: a company's principals "
        "have its CompanyId as their tenant, as a lowercase GUID with dashes "
        "(e.g. 3f2504e0-4f89-11d3-9a0c-0305e82c3301)",
    )


async def _require(request: Request, roles: tuple[str, ...]) -> Principal:
    principal = await authenticate(request)
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
    if not principal.all_tenants and company_id_of(principal.tenant) is None:
        raise _no_company(principal)
    return principal


async def require_writer(request: Request) -> Principal:
    """An authenticated principal with a write role (async: no thread hop)."""
    return await _require(request, WRITE_ROLES)


async def require_reader(request: Request) -> Principal:
    """An authenticated principal with a read or write role (async: no thread hop)."""
    return await _require(request, READ_ROLES)


Writer = Annotated[Principal, Depends(require_writer)]
Reader = Annotated[Principal, Depends(require_reader)]


def resolve_company(session: Session, principal: Principal, requested: uuid.UUID | None) -> Company:
    """The company a request is about; another company only for superadmin (else 403)."""
    company = _company(principal, requested)
    if company is not None:
        return company
    row = session.get(AxemaSettingsRow, str(requested))
    return Company(str(requested), row.tenant if row is not None else str(requested))


_TENANT = select(AxemaSettingsRow.tenant).where(
    AxemaSettingsRow.company_id == bindparam("company_id")
)


async def read_company(reads: Reads, principal: Principal, requested: uuid.UUID | None) -> Company:
    """`resolve_company` on the async read path."""
    company = _company(principal, requested)
    if company is not None:
        return company
    tenant = await reads.scalar(_TENANT, {"company_id": str(requested)})
    return Company(str(requested), tenant if tenant is not None else str(requested))


def _company(principal: Principal, requested: uuid.UUID | None) -> Company | None:
    """The company without a look-up; None when a superadmin names another company."""
    own = company_id_of(principal.tenant)
    if requested is None and own is None:
        # Only a superadmin gets here (see _require): its tenant need not be a company.
        raise ApiError(
            400,
            "NotNull",
            f"CompanyId: required, as your tenant {principal.tenant!r} is not a company",
            [FieldError("NotNull", "CompanyId", "Name the company to act on")],
        )
    if own is not None and (requested is None or str(requested) == own):
        return Company(own, principal.tenant)
    if not principal.all_tenants:
        raise ApiError(
            403, "Forbidden", f"You may not access company {requested}: it is not your company"
        )
    return None


def visible(principal: Principal, company_id: str) -> bool:
    """Whether principal may see records of company_id."""
    return principal.all_tenants or company_id == company_id_of(principal.tenant)
