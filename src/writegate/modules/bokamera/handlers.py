"""The sync job: page through Vaka users and upsert customers, one committed page at a time."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import String, Table, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from writegate.core.db import BatchInsert, InValues
from writegate.core.exceptions import PermanentJobError
from writegate.core.services import Services
from writegate.core.worker import JobContext
from writegate.modules.bokamera import crypto
from writegate.modules.bokamera.connector import (
    ConnectorFactory,
    VakaAuthError,
    VakaConnection,
    VakaDataError,
    VakaNotAllowed,
    VakaPage,
    VakaUser,
)
from writegate.modules.bokamera.models import AxemaSettingsRow, CustomerRow
from writegate.modules.bokamera.pages import PageReader
from writegate.modules.bokamera.settings import BokaMeraSettings

#: the sync job's kind; one active per company (exclusive key)
SYNC_KIND = "bokamera.axema_user_sync"
_log = logging.getLogger("writegate.bokamera")

#: customer column -> Vaka user attribute
FIELDS = {
    "firstname": "firstName",
    "lastname": "lastName",
    "email": "email",
    "phone": "phone",
    "access_card": "cardNumber",
}


def _values(user: VakaUser) -> dict[str, Any]:
    return {col: getattr(user, attr) for col, attr in FIELDS.items()}


def _row(user: VakaUser) -> tuple[Any, ...]:
    return (user.firstName, user.lastName, user.email, user.phone, user.cardNumber)


_customers = cast(Table, CustomerRow.__table__)
#: hand-entered customers (no Vaka id) with one of the page's emails, oldest first; found
#: through the unique index (company_id, vaka_user_id IS NULL), so a company's synced rows
#: are never scanned
_MANUAL = (
    select(_customers.c.id, func.lower(_customers.c.email))
    .where(
        _customers.c.company_id == bindparam("company"),
        _customers.c.vaka_user_id.is_(None),
        InValues(func.lower(_customers.c.email, type_=String()), "emails"),
    )
    .order_by(_customers.c.created_at, _customers.c.id)
)
#: which of a few Vaka ids the company already has
_KNOWN = select(_customers.c.vaka_user_id).where(
    _customers.c.company_id == bindparam("company"),
    InValues(_customers.c.vaka_user_id, "ids"),
)
_LINK = (
    update(_customers)
    .where(_customers.c.id == bindparam("row_id"))
    .values(
        vaka_user_id=bindparam("vaka_user_id"),
        updated_at=bindparam("updated_at"),
        **{col: bindparam(col) for col in FIELDS},
    )
)


#: the upsert's columns, in the order of its rows
_COLUMNS = ("id", "company_id", "vaka_user_id", *FIELDS, "created_at", "updated_at")


@functools.cache
def _upsert(dialect: Dialect) -> BatchInsert:
    """Insert new users; update existing ones only where a field differs; return touched ids.

    The conflict on (company_id, vaka_user_id) is found through its unique index whatever the
    table's statistics say, so no lookup of existing users runs first. A returned id that is
    not the one offered is an existing customer that changed. One statement per page, run on
    the driver: on PostgreSQL the page travels as one JSON document (a 200-row VALUES list
    with 2,000 parameters costs psycopg more to parse than the server to run).
    """
    ins = (pg_insert if dialect.name == "postgresql" else sqlite_insert)(_customers)
    upsert = ins.on_conflict_do_update(
        index_elements=[_customers.c.company_id, _customers.c.vaka_user_id],
        set_={**{col: ins.excluded[col] for col in FIELDS}, "updated_at": ins.excluded.updated_at},
        where=or_(*(_customers.c[col].is_distinct_from(ins.excluded[col]) for col in FIELDS)),
    ).returning(_customers.c.id)
    # The ON CONFLICT clause has no parameters: the dialect's own text of it is the tail.
    sql = str(upsert.values(dict.fromkeys(_COLUMNS)).compile(dialect=dialect))
    return BatchInsert(dialect, _customers, _COLUMNS, sql[sql.index("ON CONFLICT") :])


def upsert_users(
    session: Session, company_id: str, users: list[VakaUser], now: datetime
) -> tuple[int, int]:
    """Create or update one page of customers; return (created, updated). Unchanged is neither."""
    seen: set[str] = set()
    for u in users:
        if u.id in seen:
            raise VakaDataError(f"Vaka user id {u.id!r} appears twice on one page")
        seen.add(u.id)
    if not users:
        return 0, 0
    linked = _link_by_email(session, company_id, users, now)
    rows = [
        (str(uuid.uuid4()), company_id, u.id, *_row(u), now, now)
        for u in users
        if u.id not in linked
    ]
    if not rows:
        return 0, len(linked)
    offered = {r[0] for r in rows}
    touched = _upsert(session.get_bind().dialect).execute(session, rows)
    created = sum(1 for (row_id,) in touched if row_id in offered)
    return created, len(linked) + len(touched) - created


def _link_by_email(
    session: Session, company_id: str, users: list[VakaUser], now: datetime
) -> set[str]:
    """Link new users to hand-entered customers of the same email; the Vaka ids linked.

    A customer entered by hand before the sync is linked to its Vaka user, not doubled: the
    oldest such customer of an email goes to the page's first new user of that email.
    """
    emails = sorted({u.email.lower() for u in users if u.email})
    if not emails:
        return set()
    by_email: dict[str, str] = {}
    for row_id, email in session.execute(_MANUAL, {"company": company_id, "emails": emails}):
        by_email.setdefault(email, row_id)
    if not by_email:
        return set()
    wanted = [u for u in users if u.email and u.email.lower() in by_email]
    known = set(session.scalars(_KNOWN, {"company": company_id, "ids": [u.id for u in wanted]}))
    links = []
    for user in wanted:
        row_id = by_email.pop((user.email or "").lower(), None) if user.id not in known else None
        if row_id is not None:
            links.append(
                {"row_id": row_id, "vaka_user_id": user.id, "updated_at": now, **_values(user)}
            )
    if links:
        session.execute(_LINK, links)
    return {link["vaka_user_id"] for link in links}


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


def _resume(ctx: JobContext, company_id: str, source: str) -> dict[str, Any]:
    """Where this attempt starts: after the last committed page of an earlier attempt, if it
    read the same Vaka system as the settings name now; else at page 1."""
    state = dict(ctx.job.checkpoint or {})
    if state.get("source", source) != source:
        # The settings changed since: resumed at its page, another system's users would be
        # skipped, and the sync reported Completed.
        _log.warning(
            "company %s: the Axema Vaka settings changed during its sync; syncing again from "
            "page 1 of %s",
            company_id,
            source,
        )
        state = {}
    return {"page": 1, "found": 0, "created": 0, "updated": 0, **state, "source": source}


def _write_page(
    ctx: JobContext, company_id: str, page: VakaPage, state: dict[str, Any], s: Session
) -> dict[str, Any]:
    """One committed step of a sync: a page of users, and the state to resume after it."""
    created, updated = upsert_users(s, company_id, page.users, ctx.clock.now())
    after = {
        "source": state["source"],
        "page": state["page"] + 1,
        "found": state["found"] + len(page.users),
        "created": state["created"] + created,
        "updated": state["updated"] + updated,
    }
    ctx.save(s, progress={k: after[k] for k in ("found", "created", "updated")}, checkpoint=after)
    return after


def make_sync_handler(services: Services) -> Callable[[JobContext], Any]:
    """The handler of `bokamera.axema_user_sync` jobs."""

    def handler(ctx: JobContext) -> Any:
        company_id = str(ctx.payload["company_id"])
        factory: ConnectorFactory = services.extras["bokamera"]["connector_factory"]
        conn = _connection(services, company_id)
        connector = factory(conn)
        state = _resume(ctx, company_id, f"{conn.username}@{conn.base_url}")
        cfg = BokaMeraSettings()
        pages = PageReader(connector, state["page"], cfg.page_size)
        most = cfg.max_users
        try:
            while True:
                try:
                    page = pages.next()
                    if page.has_more and not page.users:
                        raise VakaDataError(f"page {state['page']} is empty but hasMore is true")
                    if state["found"] + len(page.users) > most:
                        raise VakaDataError(
                            f"page {state['page']} takes the sync past {most} users "
                            "(WRITEGATE_BOKAMERA_MAX_USERS)"
                        )
                    state = ctx.step(functools.partial(_write_page, ctx, company_id, page, state))
                except (VakaAuthError, VakaNotAllowed) as exc:
                    raise PermanentJobError(str(exc)) from None
                except VakaDataError as exc:
                    raise PermanentJobError(f"Axema Vaka returned unusable data: {exc}") from None
                if not page.has_more:
                    return {k: state[k] for k in ("found", "created", "updated")}
        finally:
            pages.close()
            connector.close()

    return handler
