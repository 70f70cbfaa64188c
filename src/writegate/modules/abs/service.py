"""Package create/update/read/list/changes/delete: one committed transaction per call."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from writegate.core.audit import checksum, next_value
from writegate.core.auth import Principal
from writegate.core.services import Services
from writegate.modules.abs.errors import AbsError
from writegate.modules.abs.models import STATE_ACTIVE, STATE_DELETED, AbsClient, AbsPackage
from writegate.modules.abs.schemas import (
    PackageChanges,
    PackageDelete,
    PackageGet,
    PackageList,
    PackagePut,
    parse_date,
)

ID_COUNTER = "abs.package_id"
#: one global counter; its row lock hands versions out in commit order
VERSION_COUNTER = "abs.version"
DEFAULT_STATUS = "NEW"
DEFAULT_STEP = "NORMAL"


@dataclass(frozen=True)
class Page:
    """Rows of one page and the total the envelope reports."""

    rows: list[dict[str, Any]]
    total: int


def format_datetime(value: datetime) -> str:
    """ABS DATETIME: 2021-12-03T10:20:22.255 (milliseconds, no zone)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def to_wire(row: AbsPackage) -> dict[str, Any]:
    """A package row as the `data` object."""
    return {
        "client_code": row.client_code,
        "oauth_access_token": row.oauth_access_token,
        "processing_date": row.processing_date.isoformat() if row.processing_date else "",
        "processing_status": row.processing_status,
        "processing_step": row.processing_step,
        "error_description": "",
        "checksum": row.checksum,
        "payment_import_initiation_id": row.payment_import_initiation_id,
        "uid": row.uid,
        "id": row.id,
        "version": row.version,
        "state": row.state,
        "create_user": row.create_user,
        "create_date": format_datetime(row.create_date),
        "modify_user": row.modify_user,
        "modify_date": format_datetime(row.modify_date),
    }


def compute_checksum(row: AbsPackage) -> str:
    """Checksum over the business fields (not the stamps or the version)."""
    return checksum(
        {
            "client_code": row.client_code,
            "uid": row.uid,
            "id": row.id,
            "state": row.state,
            "oauth_access_token": row.oauth_access_token,
            "payment_import_initiation_id": row.payment_import_initiation_id,
            "processing_date": row.processing_date.isoformat() if row.processing_date else "",
            "processing_status": row.processing_status,
            "processing_step": row.processing_step,
        }
    )


def register_client(services: Services, client_code: str, name: str = "") -> bool:
    """Register a client code; False if it already was."""
    try:
        with services.db.write() as s:
            if s.get(AbsClient, client_code) is not None:
                return False
            s.add(AbsClient(client_code=client_code, name=name, created_at=services.clock.now()))
    except IntegrityError:  # registered concurrently by someone else
        return False
    return True


def list_clients(services: Services) -> list[AbsClient]:
    """Every registered client code."""
    with services.db.read() as s:
        return list(s.scalars(select(AbsClient).order_by(AbsClient.client_code)))


def _authorize(session: Session, principal: Principal, client_code: str) -> None:
    # Access first, so a caller cannot probe which other client codes exist.
    if not principal.can_access(client_code):
        raise AbsError(
            "CLIENT_ACCESS_DENIED", f"client_code {client_code!r} is not yours to access"
        )
    if session.get(AbsClient, client_code) is None:
        raise AbsError("UNKNOWN_CLIENT_CODE", f"client_code {client_code!r} is not registered")


def _now(services: Services) -> datetime:
    now = services.clock.now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _find(
    session: Session, client_code: str, pk: int | None, uid: str | None, *, lock: bool
) -> AbsPackage:
    query = select(AbsPackage).where(AbsPackage.client_code == client_code)
    if lock:
        query = query.with_for_update()
    by_id = session.scalar(query.where(AbsPackage.id == pk)) if pk else None
    by_uid = session.scalar(query.where(AbsPackage.uid == uid)) if uid else None
    if pk and by_id is None:
        raise AbsError("PACKAGE_NOT_FOUND", f"no package with id {pk}")
    if uid and by_uid is None:
        raise AbsError("PACKAGE_NOT_FOUND", f"no package with uid {uid!r}")
    if by_id is not None and by_uid is not None and by_id.id != by_uid.id:
        raise AbsError("ID_UID_MISMATCH", f"id {pk} and uid {uid!r} are different packages")
    found = by_id or by_uid
    assert found is not None
    return found


def _guard(row: AbsPackage, version: int | None, sent_checksum: str | None) -> None:
    if version and version != row.version:
        raise AbsError(
            "VERSION_CONFLICT",
            f"version {version} is stale: the package is at version {row.version}",
        )
    if sent_checksum and sent_checksum != row.checksum:
        raise AbsError("CHECKSUM_CONFLICT", "checksum is stale: the package has changed")
    if row.state == STATE_DELETED:
        raise AbsError("PACKAGE_DELETED", f"package {row.id} is deleted")


async def put_package(services: Services, principal: Principal, body: PackagePut) -> dict[str, Any]:
    """Create (no id/uid) or update a package; returns it once committed (group commit)."""
    result: dict[str, Any] = await services.db.group.run(
        lambda s: _put(s, services, principal, body)
    )
    return result


def _put(s: Session, services: Services, principal: Principal, body: PackagePut) -> dict[str, Any]:
    sent = body.model_fields_set
    _authorize(s, principal, body.client_code)
    # The version counter is taken first: it serialises package writers, so the
    # concurrency check below reads the latest committed row.
    version = next_value(s, VERSION_COUNTER)
    now = _now(services)
    if body.id or body.uid:
        row = _find(s, body.client_code, body.id, body.uid, lock=True)
        _guard(row, body.version, body.checksum)
    else:
        row = AbsPackage(
            id=next_value(s, ID_COUNTER),
            uid=str(uuid.uuid4()),
            client_code=body.client_code,
            state=STATE_ACTIVE,
            oauth_access_token="",
            payment_import_initiation_id=0,
            processing_date=None,
            processing_status=DEFAULT_STATUS,
            processing_step=DEFAULT_STEP,
            create_user=principal.name,
            create_date=now,
        )
        s.add(row)
    if "oauth_access_token" in sent:
        row.oauth_access_token = body.oauth_access_token or ""
    if "payment_import_initiation_id" in sent:
        row.payment_import_initiation_id = body.payment_import_initiation_id or 0
    if "processing_date" in sent:
        row.processing_date = parse_date(body.processing_date)
    # Blank status/step mean "leave as is" (the defaults on create), as in the seed.
    if body.processing_status:
        row.processing_status = body.processing_status
    if body.processing_step:
        row.processing_step = body.processing_step
    row.version = version
    row.modify_user = principal.name
    row.modify_date = now
    row.checksum = compute_checksum(row)
    s.flush()
    return to_wire(row)


def get_package(services: Services, principal: Principal, body: PackageGet) -> dict[str, Any]:
    """One live package by id or uid."""
    with services.db.read() as s:
        _authorize(s, principal, body.client_code)
        row = _find(s, body.client_code, body.id, body.uid, lock=False)
        if row.state == STATE_DELETED:
            raise AbsError("PACKAGE_DELETED", f"package {row.id} is deleted")
        return to_wire(row)


async def delete_package(
    services: Services, principal: Principal, body: PackageDelete
) -> dict[str, Any]:
    """Mark a package deleted (state 1) with a new version; the row stays for replicas."""
    result: dict[str, Any] = await services.db.group.run(
        lambda s: _delete(s, services, principal, body)
    )
    return result


def _delete(
    s: Session, services: Services, principal: Principal, body: PackageDelete
) -> dict[str, Any]:
    _authorize(s, principal, body.client_code)
    version = next_value(s, VERSION_COUNTER)
    row = _find(s, body.client_code, body.id, body.uid, lock=True)
    _guard(row, body.version, body.checksum)
    row.state = STATE_DELETED
    row.version = version
    row.modify_user = principal.name
    row.modify_date = _now(services)
    row.checksum = compute_checksum(row)
    s.flush()
    return to_wire(row)


def _snapshot(session: Session) -> None:
    # Rows and their count must come from one snapshot (SQLite's read transaction already is).
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _page(s: Session, query: Select[Any], limit: int, offset: int, skip_total: bool) -> Page:
    rows = [to_wire(r) for r in s.scalars(query.limit(limit).offset(offset))]
    if skip_total:
        return Page(rows, len(rows))
    total = s.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    return Page(rows, int(total or 0))


def list_packages(services: Services, principal: Principal, body: PackageList) -> Page:
    """Live packages of one client matching the search fields, by id."""
    with services.db.read() as s:
        _snapshot(s)
        _authorize(s, principal, body.client_code)
        query = select(AbsPackage).where(
            AbsPackage.client_code == body.client_code, AbsPackage.state == STATE_ACTIVE
        )
        start, end = parse_date(body.date_from), parse_date(body.date_to)
        if start:
            query = query.where(AbsPackage.create_date >= datetime.combine(start, time.min))
        if end:
            day_after = datetime.combine(end, time.min) + timedelta(days=1)
            query = query.where(AbsPackage.create_date < day_after)
        if body.processing_status:
            query = query.where(AbsPackage.processing_status == body.processing_status)
        if body.processing_step:
            query = query.where(AbsPackage.processing_step == body.processing_step)
        query = query.order_by(AbsPackage.id)
        offset = (body.page - 1) * body.limit
        return _page(s, query, body.limit, offset, body.skip_total_records)


def package_changes(services: Services, principal: Principal, body: PackageChanges) -> Page:
    """Every package (deleted ones too) changed after offset_version, oldest change first.

    `total_records` counts all changes after the offset, so a replica knows what remains.
    """
    with services.db.read() as s:
        _snapshot(s)
        _authorize(s, principal, body.client_code)
        query = (
            select(AbsPackage)
            .where(
                AbsPackage.client_code == body.client_code,
                AbsPackage.version > body.offset_version,
            )
            .order_by(AbsPackage.version)
        )
        return _page(s, query, body.limit, 0, body.skip_total_records)
