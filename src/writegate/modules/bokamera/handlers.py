"""The sync job: page through Vaka users and upsert customers, one committed page at a time."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from writegate.core.exceptions import PermanentJobError
from writegate.core.services import Services
from writegate.core.worker import JobContext
from writegate.modules.bokamera import crypto
from writegate.modules.bokamera.connector import (
    ConnectorFactory,
    VakaAuthError,
    VakaConnection,
    VakaDataError,
    VakaUser,
)
from writegate.modules.bokamera.models import AxemaSettingsRow, CustomerRow

PAGE_SIZE_ENV = "WRITEGATE_BOKAMERA_PAGE_SIZE"
DEFAULT_PAGE_SIZE = 200
#: customer column -> Vaka user attribute
FIELDS = {
    "firstname": "firstName",
    "lastname": "lastName",
    "email": "email",
    "phone": "phone",
    "access_card": "cardNumber",
}


def page_size() -> int:
    """Users requested per Vaka page (the Vaka side may cap it)."""
    try:
        return max(1, int(os.environ.get(PAGE_SIZE_ENV, DEFAULT_PAGE_SIZE)))
    except ValueError:
        return DEFAULT_PAGE_SIZE


def _values(user: VakaUser) -> dict[str, Any]:
    return {col: getattr(user, attr) for col, attr in FIELDS.items()}


def upsert_users(
    session: Session, company_id: str, users: list[VakaUser], now: datetime
) -> tuple[int, int]:
    """Create or update one page of customers; return (created, updated). Unchanged is neither."""
    seen: set[str] = set()
    for u in users:
        if u.id in seen:
            raise VakaDataError(f"Vaka user id {u.id!r} appears twice on one page")
        seen.add(u.id)
    existing = {
        row.vaka_user_id: row
        for row in session.scalars(
            select(CustomerRow).where(
                CustomerRow.company_id == company_id, CustomerRow.vaka_user_id.in_(list(seen))
            )
        )
    }
    emails = {u.email.lower() for u in users if u.id not in existing and u.email}
    by_email: dict[str, CustomerRow] = {}
    if emails:
        for manual in session.scalars(
            select(CustomerRow)
            .where(
                CustomerRow.company_id == company_id,
                CustomerRow.vaka_user_id.is_(None),
                func.lower(CustomerRow.email).in_(sorted(emails)),
            )
            .order_by(CustomerRow.created_at, CustomerRow.id)
        ):
            by_email.setdefault((manual.email or "").lower(), manual)
    created = updated = 0
    for user in users:
        values = _values(user)
        row: CustomerRow | None = existing.get(user.id)
        if row is None and user.email:
            # A customer entered by hand before the sync is linked to its Vaka user, not doubled.
            row = by_email.pop(user.email.lower(), None)
            if row is not None:
                row.vaka_user_id = user.id
                for col, value in values.items():
                    setattr(row, col, value)
                row.updated_at = now
                updated += 1
                continue
        if row is None:
            session.add(
                CustomerRow(
                    id=str(uuid.uuid4()),
                    company_id=company_id,
                    vaka_user_id=user.id,
                    created_at=now,
                    updated_at=now,
                    **values,
                )
            )
            created += 1
        elif any(getattr(row, col) != value for col, value in values.items()):
            for col, value in values.items():
                setattr(row, col, value)
            row.updated_at = now
            updated += 1
    return created, updated


def _connection(services: Services, company_id: str) -> VakaConnection:
    with services.db.read() as s:
        row = s.get(AxemaSettingsRow, company_id)
        if row is None:
            raise PermanentJobError(f"Company {company_id} has no Axema Vaka settings any more")
        try:
            password = crypto.keyring_of(services).decrypt(row.password_encrypted)
        except crypto.SecretError as exc:
            raise PermanentJobError(
                f"Cannot read the stored Axema Vaka password: {exc}. Give the server the key "
                f"it was stored with (in {crypto.KEY_ENV}, after the current one), "
                "or PUT the password again"
            ) from None
        return VakaConnection(row.api_endpoint, row.api_port, row.username, password)


def make_sync_handler(services: Services) -> Callable[[JobContext], Any]:
    """The handler of `bokamera.axema_user_sync` jobs."""

    def handler(ctx: JobContext) -> Any:
        company_id = str(ctx.payload["company_id"])
        factory: ConnectorFactory = services.extras["bokamera"]["connector_factory"]
        connector = factory(_connection(services, company_id))
        # Resume after the last committed page if an earlier attempt died mid-sync.
        state = dict(ctx.job.checkpoint or {"page": 1, "found": 0, "created": 0, "updated": 0})
        try:
            while True:
                try:
                    page = connector.list_users(state["page"], page_size())
                    if page.has_more and not page.users:
                        raise VakaDataError(f"page {state['page']} is empty but hasMore is true")
                    with ctx.checkpoint() as s:
                        created, updated = upsert_users(s, company_id, page.users, ctx.clock.now())
                        state = {
                            "page": state["page"] + 1,
                            "found": state["found"] + len(page.users),
                            "created": state["created"] + created,
                            "updated": state["updated"] + updated,
                        }
                        progress = {k: state[k] for k in ("found", "created", "updated")}
                        ctx.save(s, progress=progress, checkpoint=state)
                except VakaAuthError as exc:
                    raise PermanentJobError(str(exc)) from None
                except VakaDataError as exc:
                    raise PermanentJobError(f"Axema Vaka returned unusable data: {exc}") from None
                if not page.has_more:
                    return {k: state[k] for k in ("found", "created", "updated")}
        finally:
            connector.close()

    return handler
