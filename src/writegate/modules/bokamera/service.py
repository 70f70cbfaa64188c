"""BokaMera business operations: start and read syncs, Axema settings, customers."""

from __future__ import annotations

import functools
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from writegate.core.auth import Principal
from writegate.core.exceptions import ExclusiveJobExists
from writegate.core.jobs import JobRow
from writegate.core.jobs import Status as JobStatus
from writegate.core.observability.context import job_origin
from writegate.core.services import Services
from writegate.modules.bokamera import crypto
from writegate.modules.bokamera.access import Company, read_company, resolve_company, visible
from writegate.modules.bokamera.errors import ApiError
from writegate.modules.bokamera.handlers import SYNC_KIND
from writegate.modules.bokamera.models import AxemaSettingsRow, CustomerRow, UserSyncRow
from writegate.modules.bokamera.schemas import (
    AxemaSettingsResponse,
    AxemaUserSyncJobResponse,
    AxemaUserSyncQueryResponse,
    CreateAxemaSettings,
    CreateAxemaUserSync,
    CustomerQueryResponse,
    CustomerResponse,
    SyncStatus,
    UpdateAxemaSettings,
)

MAX_TAKE = 1000
log = logging.getLogger("writegate.bokamera")


def exclusive_key(company_id: str) -> str:
    """One active sync per company."""
    return f"{SYNC_KIND}:{company_id}"


def utc(dt: datetime) -> datetime:
    """Stored naive UTC -> aware UTC, so the wire carries a 'Z'."""
    return dt.replace(tzinfo=UTC)


def sync_status(status: str, attempts: int) -> SyncStatus:
    """Core job status -> BokaMera sync status (a queued retry is still Processing)."""
    if status == JobStatus.QUEUED.value:
        return SyncStatus.Pending if attempts == 0 else SyncStatus.Processing
    if status == JobStatus.RUNNING.value:
        return SyncStatus.Processing
    if status == JobStatus.SUCCEEDED.value:
        return SyncStatus.Completed
    return SyncStatus.Failed


def _status_filter(status: SyncStatus) -> Any:
    queued = JobRow.status == JobStatus.QUEUED.value
    if status is SyncStatus.Pending:
        return and_(queued, JobRow.attempts == 0)
    if status is SyncStatus.Processing:
        return or_(JobRow.status == JobStatus.RUNNING.value, and_(queued, JobRow.attempts > 0))
    if status is SyncStatus.Completed:
        return JobRow.status == JobStatus.SUCCEEDED.value
    # Not IN: a read is compiled once for the driver, and an IN list is expanded per run.
    return or_(JobRow.status == JobStatus.FAILED.value, JobRow.status == JobStatus.CANCELLED.value)


#: a sync and the state of its job, one row each (`sync_view` reads it)
SYNCS = select(
    UserSyncRow.id,
    UserSyncRow.company_id,
    UserSyncRow.created_at,
    JobRow.status,
    JobRow.attempts,
    JobRow.progress,
    JobRow.error,
    JobRow.updated_at,
).join(JobRow, JobRow.id == UserSyncRow.id)

_SYNC = SYNCS.where(UserSyncRow.id == bindparam("sync_id"))
_SETTINGS = select(*AxemaSettingsRow.__table__.c).where(
    AxemaSettingsRow.company_id == bindparam("company_id")
)


def sync_view(row: Row[Any]) -> AxemaUserSyncJobResponse:
    """The wire view of one sync (a row of SYNCS)."""
    st = sync_status(row.status, row.attempts)
    progress = row.progress or {}
    error = None
    if st is SyncStatus.Failed:
        error = row.error or "Cancelled by an operator"
        if row.status == JobStatus.CANCELLED.value:
            error = "Cancelled by an operator"
    return AxemaUserSyncJobResponse(
        Id=uuid.UUID(row.id),
        CompanyId=uuid.UUID(row.company_id),
        Status=int(st),
        StatusName=st.name,
        UsersFound=progress.get("found"),
        UsersCreated=progress.get("created"),
        UsersUpdated=progress.get("updated"),
        ErrorMessage=error,
        CreatedDate=utc(row.created_at),
        UpdatedDate=utc(row.updated_at),
    )


# -- syncs --------------------------------------------------------------------


def start_sync(
    services: Services, principal: Principal, body: CreateAxemaUserSync
) -> AxemaUserSyncJobResponse:
    """Record a sync and enqueue its job in one shared commit; 409 while one is active."""
    origin = job_origin()  # the request's id and trace: the write runs on a commit thread

    def start(s: Session) -> AxemaUserSyncJobResponse:
        company = resolve_company(s, principal, body.CompanyId)
        if s.get(AxemaSettingsRow, company.id) is None:
            raise ApiError(
                400,
                "AxemaSettingsMissing",
                f"Company {company.id} has no Axema Vaka settings: "
                "POST /codelock/axema/settings first",
            )
        job_id = str(uuid.uuid4())
        try:
            job = services.jobs.enqueue(
                s,
                kind=SYNC_KIND,
                payload={"company_id": company.id},
                tenant=company.tenant,
                principal=principal.name,
                job_id=job_id,
                exclusive_key=exclusive_key(company.id),
                trace_context=origin,
            )
        except ExclusiveJobExists as exc:
            raise ApiError(
                409,
                "Conflict",
                f"A user sync is already running for company {company.id}: {exc.job_id}",
                meta={"Id": str(exc.job_id)},
            ) from None
        sync = UserSyncRow(
            id=job_id,
            company_id=company.id,
            tenant=company.tenant,
            created_by=principal.name,
            created_at=job.created_at,
        )
        s.add(sync)
        s.flush()
        return sync_view(s.execute(SYNCS.where(UserSyncRow.id == job_id)).one())

    return services.db.group.run_sync(start)


async def get_sync(
    services: Services, principal: Principal, sync_id: uuid.UUID
) -> AxemaUserSyncJobResponse:
    """One sync of the caller's company (another company's is reported as not found)."""
    row = await services.db.reads.first(_SYNC, {"sync_id": str(sync_id)})
    if row is None or not visible(principal, row.company_id):
        raise ApiError(404, "NotFound", f"No Axema user sync with Id {sync_id}")
    return sync_view(row)


@functools.cache
def _syncs_query(of_company: bool, status: SyncStatus | None) -> Any:
    """Syncs newest first, of the company `company_id` if of_company, in status if given.

    One statement per shape, built and compiled once (the read path compiles a statement the
    first time it is read).
    """
    q = SYNCS
    if of_company:
        q = q.where(UserSyncRow.company_id == bindparam("company_id"))
    if status is not None:
        q = q.where(_status_filter(status))
    return q.order_by(UserSyncRow.created_at.desc(), UserSyncRow.id)


async def list_syncs(
    services: Services,
    principal: Principal,
    company_id: uuid.UUID | None,
    status: SyncStatus | None,
    skip: int,
    take: int,
) -> AxemaUserSyncQueryResponse:
    """Syncs of one company (superadmin without CompanyId: of every company), newest first."""
    reads = services.db.reads
    params = {}
    if company_id is not None or not principal.all_tenants:
        company = await read_company(reads, principal, company_id)
        params["company_id"] = company.id
    q = _syncs_query("company_id" in params, status)
    page = await reads.page(q, take, skip, total=True, params=params)
    return AxemaUserSyncQueryResponse(
        Offset=skip, Total=page.total or 0, Results=[sync_view(r) for r in page.rows]
    )


# -- settings -----------------------------------------------------------------


def _settings_view(row: AxemaSettingsRow | Row[Any]) -> AxemaSettingsResponse:
    return AxemaSettingsResponse(
        CompanyId=uuid.UUID(row.company_id),
        ApiEndpoint=row.api_endpoint,
        ApiPort=row.api_port,
        Username=row.username,
        PasswordIsSet=bool(row.password_encrypted),
        CreatedDate=utc(row.created_at),
        UpdatedDate=utc(row.updated_at),
    )


def _no_settings(company: Company) -> ApiError:
    return ApiError(404, "NotFound", f"Company {company.id} has no Axema Vaka settings")


async def get_settings(
    services: Services, principal: Principal, company_id: uuid.UUID | None
) -> AxemaSettingsResponse:
    """The company's Axema connection, without the password."""
    company = await read_company(services.db.reads, principal, company_id)
    row = await services.db.reads.first(_SETTINGS, {"company_id": company.id})
    if row is None:
        raise _no_settings(company)
    return _settings_view(row)


def _encrypt(services: Services, password: str) -> str:
    try:
        return crypto.keyring_of(services).encrypt(password)
    except crypto.SecretError as exc:
        log.error("cannot store an Axema Vaka password: %s", exc)
        raise ApiError(
            503,
            "ServiceUnavailable",
            "This server has no usable key to encrypt the Axema Vaka password with; its "
            f"operator must set {crypto.KEY_ENV} (see the server log). Nothing was stored.",
        ) from None


def create_settings(
    services: Services, principal: Principal, body: CreateAxemaSettings
) -> AxemaSettingsResponse:
    """Store a company's Axema connection; 409 if it already has one (use PUT)."""

    def create(s: Session) -> AxemaSettingsResponse:
        company = resolve_company(s, principal, body.CompanyId)
        exists = ApiError(
            409,
            "Conflict",
            f"Company {company.id} already has Axema Vaka settings: use PUT to change them",
        )
        if s.get(AxemaSettingsRow, company.id) is not None:
            raise exists
        now = services.clock.now()
        row = AxemaSettingsRow(
            company_id=company.id,
            tenant=company.tenant,
            api_endpoint=body.ApiEndpoint,
            api_port=body.ApiPort,
            username=body.Username,
            password_encrypted=_encrypt(services, body.Password),
            created_at=now,
            updated_at=now,
        )
        s.add(row)
        try:
            s.flush()
        except IntegrityError:  # PostgreSQL: another transaction stored them after our look
            raise exists from None
        return _settings_view(row)

    return services.db.group.run_sync(create)


def update_settings(
    services: Services, principal: Principal, body: UpdateAxemaSettings
) -> AxemaSettingsResponse:
    """Change the given fields of a company's Axema connection."""

    def update(s: Session) -> AxemaSettingsResponse:
        company = resolve_company(s, principal, body.CompanyId)
        row = s.get(AxemaSettingsRow, company.id)
        if row is None:
            raise _no_settings(company)
        if body.ApiEndpoint is not None:
            row.api_endpoint = body.ApiEndpoint
        if "ApiPort" in body.model_fields_set:
            row.api_port = body.ApiPort
        if body.Username is not None:
            row.username = body.Username
        if body.Password is not None:
            row.password_encrypted = _encrypt(services, body.Password)
        row.updated_at = services.clock.now()
        s.flush()
        return _settings_view(row)

    # -- customers ----------------------------------------------------------------

    return services.db.group.run_sync(update)


def _customer_view(row: Row[Any]) -> CustomerResponse:
    return CustomerResponse(
        Id=uuid.UUID(row.id),
        CompanyId=uuid.UUID(row.company_id),
        VakaUserId=row.vaka_user_id,
        Firstname=row.firstname,
        Lastname=row.lastname,
        Email=row.email,
        Phone=row.phone,
        AccessCardNumber=row.access_card,
        CreatedDate=utc(row.created_at),
        UpdatedDate=utc(row.updated_at),
    )


@functools.cache
def _customers_query(by_vaka_user: bool, by_email: bool) -> Any:
    """A company's customers in creation order, filtered as asked: one statement per shape."""
    customers = CustomerRow.__table__
    q = select(*customers.c).where(CustomerRow.company_id == bindparam("company_id"))
    if by_vaka_user:
        q = q.where(CustomerRow.vaka_user_id == bindparam("vaka_user_id"))
    if by_email:
        q = q.where(func.lower(CustomerRow.email) == bindparam("email"))
    return q.order_by(CustomerRow.created_at, CustomerRow.id)


async def list_customers(
    services: Services,
    principal: Principal,
    company_id: uuid.UUID | None,
    vaka_user_id: str | None,
    email: str | None,
    skip: int,
    take: int,
) -> CustomerQueryResponse:
    """A page of the company's customers in creation order."""
    company = await read_company(services.db.reads, principal, company_id)
    params = {"company_id": company.id}
    if vaka_user_id is not None:
        params["vaka_user_id"] = vaka_user_id
    if email is not None:
        params["email"] = email.lower()
    q = _customers_query(vaka_user_id is not None, email is not None)
    page = await services.db.reads.page(q, take, skip, total=True, params=params)
    return CustomerQueryResponse(
        Offset=skip, Total=page.total or 0, Results=[_customer_view(r) for r in page.rows]
    )
