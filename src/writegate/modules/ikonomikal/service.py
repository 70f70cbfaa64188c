"""Ikonomikal operations: login, process tokens and SS07 save, read and delete."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Dialect, Table, bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from writegate.core import login_limits as limits
from writegate.core.audit import next_value
from writegate.core.auth import PasswordCheckBusy, Principal
from writegate.core.db import BatchInsert, InValues, prepared
from writegate.core.services import Services
from writegate.modules.ikonomikal import errors as e
from writegate.modules.ikonomikal import proctokens, sessions
from writegate.modules.ikonomikal.errors import ApiError, Param
from writegate.modules.ikonomikal.logins import SCOPE, login_limits
from writegate.modules.ikonomikal.models import SS07Row
from writegate.modules.ikonomikal.schemas import (
    DeleteRequest,
    DeleteResponse,
    LoginRequest,
    LoginResponse,
    ModInf,
    ReadRequest,
    ReadResponse,
    RecordOut,
    SaveData,
    SaveRequest,
    SaveResponse,
    TokenRequest,
    TokenResponse,
)
from writegate.modules.ikonomikal.settings import IkonomikalSettings

PROGRAM = "SS07"
#: procIDs: 0 save (edit), 1 add, 2 delete, 3 data (read); 4..26 exist but SS07 has none
SAVE, ADD, DELETE, DATA = 0, 1, 2, 3
#: cmdStat of ss_02_ss07_sav and the process token each one uses
COMMANDS = {0: ADD, 1: SAVE}
MAX_OFFSET = 1440
CODE_LEN, TEXT_LEN, LABEL_LEN = 20, 200, 100
#: attempts of an auto-coded save that met a code created concurrently by hand
AUTO_CODE_ATTEMPTS = 3


def stamp(user: str, group: str, at: datetime, offset_minutes: int) -> ModInf:
    """modInf in the client's local time: UTC minus timeOffSet minutes."""
    local = at - timedelta(minutes=offset_minutes)
    return ModInf(
        mUser=user,
        mGroup=group,
        mDate=int(local.strftime("%Y%m%d")),
        mTime=int(local.strftime("%H%M%S")),
    )


def check_offset(offset: int) -> None:
    """timeOffSet is a time-zone shift: at most a day either way."""
    if not -MAX_OFFSET <= offset <= MAX_OFFSET:
        raise ApiError(
            e.OUT_OF_RANGE, Param("timeOffSet", "timeOffSet"), str(-MAX_OFFSET), str(MAX_OFFSET)
        )


def _limit(value: str, label: str, field: str, size: int) -> str:
    if len(value) > size:
        raise ApiError(e.TOO_LONG, Param(label, field), str(size))
    return value


@dataclass(frozen=True)
class Record:
    """SS07 fields after validation; code is "" when an auto code is wanted."""

    code: str
    f002: str
    f003: str
    f004: int
    labels: tuple[str, str, str, str]


def clean(data: SaveData, *, new: bool) -> Record:
    """Validate saveData, naming fields by the client's own labels (l001..l004)."""
    labels = tuple(
        _limit(lbl.strip(), name, name, LABEL_LEN)
        for lbl, name in (
            (data.l001, "l001"),
            (data.l002, "l002"),
            (data.l003, "l003"),
            (data.l004, "l004"),
        )
    )
    l001 = labels[0] or "Code"
    l002 = labels[1] or "Description"
    l003 = labels[2] or "Other Description"
    l004 = labels[3] or "Expense Type"
    code = _limit(data.f001.strip(), l001, "f001", CODE_LEN)
    if not code and not new:
        raise ApiError(e.BLANK, Param(l001, "f001"))
    if not code.isprintable():
        raise ApiError(e.INVALID_VALUE, Param(l001, "f001"), "control characters are not allowed")
    f002 = _limit(data.f002.strip(), l002, "f002", TEXT_LEN)
    if not f002:
        raise ApiError(e.BLANK, Param(l002, "f002"))
    f003 = _limit(data.f003.strip(), l003, "f003", TEXT_LEN)
    if data.f004 < 0:
        raise ApiError(e.OUT_OF_RANGE, Param(l004, "f004"), "0", str(2**31 - 1))
    return Record(code, f002, f003, data.f004, (labels[0], labels[1], labels[2], labels[3]))


def _codes(raw: list[str], limit: int) -> list[str]:
    codes: list[str] = []
    for value in raw:
        code = value.strip()
        if not code:
            raise ApiError(e.BLANK, Param("Code", "parCode"))
        _limit(code, "Code", "parCode", CODE_LEN)
        if code.upper() not in (c.upper() for c in codes):
            codes.append(code)
    if len(codes) > limit:
        raise ApiError(e.OUT_OF_RANGE, Param("parCode", "parCode"), "1", str(limit))
    return codes


class Ikonomikal:
    """The module's operations, on the core's services."""

    def __init__(self, services: Services, cfg: IkonomikalSettings) -> None:
        self.services = services
        self.cfg = cfg
        self.limits = login_limits(services, cfg)

    # -- login and tokens ---------------------------------------------------------------------

    def login(self, req: LoginRequest, address: str) -> LoginResponse:
        """Verify user id and password and open a session; `address` is the client's."""
        user_id = req.userID.strip()
        if not user_id:
            raise ApiError(e.BLANK, Param(req.userCap.strip() or "User ID", "userID"))
        if not req.userPW:
            raise ApiError(e.BLANK, Param("Password", "userPW"))
        check_offset(req.timeOffSet)
        if len(user_id) > 200 or len(req.userPW) > 1024:
            raise ApiError(e.BAD_LOGIN)
        keys = limits.keys(SCOPE, user_id, address)
        check = functools.partial(self._check_password, user_id, req.userPW)
        try:
            # A user without the login role gets the same answer as a wrong password.
            principal = self.limits.checked(keys, check, [sessions.LOGIN_ROLE])
        except limits.Limited as err:
            raise ApiError(e.LOGIN_LIMITED, str(err.seconds)) from None
        except PasswordCheckBusy:
            raise ApiError(e.LOGIN_LIMITED, "1") from None
        if principal is None:
            raise ApiError(e.BAD_LOGIN)

        def open_session(s: Session) -> str:
            self.limits.succeeded(s, keys)
            return sessions.open_session(self.services, self.cfg, s, principal)

        sess_id = self.services.db.group.run_sync(open_session)
        return LoginResponse(
            subsID=principal.tenant,
            intGID=sessions.int_gid(principal),
            userID=principal.name,
            sessID=sess_id,
            userName=sessions.user_name(principal),
            clientTimeZone=req.timeOffSet,
        )

    def _check_password(self, user_id: str, password: str) -> Principal | None:
        """The principal of user id and password; outside any transaction (the hash is slow)."""
        # E-mail addresses are case-insensitive: a mixed-case userID also tries its lower case.
        for name in dict.fromkeys((user_id, user_id.lower())):
            principal = self.services.auth.check_password(name, password)
            if principal is not None:
                return principal
        return None

    async def issue_token(self, req: TokenRequest) -> TokenResponse:
        """Issue a process token for the session, program and procID asked for."""
        check_offset(req.timeOffSet)
        answer: TokenResponse = await self.services.db.group.run_many(self._issue_many, req)
        return answer

    def _issue_many(self, s: Session, reqs: list[TokenRequest]) -> list[TokenResponse | ApiError]:
        """The token write of a group-commit batch: a few statements for the whole batch."""
        conn = s.connection()
        callers = sessions.authenticate_many(self.services, self.cfg, conn, reqs)
        outcomes: list[TokenResponse | ApiError] = []
        grants = []
        for req, caller in zip(reqs, callers, strict=True):
            try:
                if isinstance(caller, ApiError):
                    raise caller
                program = caller.program(req.pgProcTkn.prgInf)
                proc_id = req.pgProcTkn.procID
                if proc_id not in sessions.PROC_ROLES:
                    raise ApiError(e.BAD_PROCESS, Param(str(proc_id), "procID"))
                caller.authorize(program, proc_id)
            except ApiError as exc:
                outcomes.append(exc)
                continue
            grants.append(proctokens.Grant(caller, program, proc_id))
            outcomes.append(TokenResponse())
        proctokens.issue_many(self.services, conn, grants)
        return outcomes

    # -- SS07 ---------------------------------------------------------------------------------

    async def save(self, req: SaveRequest) -> SaveResponse:
        """Add (cmdStat 0) or edit (cmdStat 1) one record; committed before answering."""
        check_offset(req.timeOffSet)
        if req.cmdStat not in COMMANDS:
            raise ApiError(e.BAD_COMMAND, Param(str(req.cmdStat), "cmdStat"))
        proc_id = COMMANDS[req.cmdStat]
        save = Save(req, proc_id)
        for attempt in range(1, AUTO_CODE_ATTEMPTS + 1):
            try:
                answer: SaveResponse = await self.services.db.group.run_many(self._save_many, save)
                return answer
            except IntegrityError:
                # A concurrent save committed the same code first; nothing of ours is kept.
                if save.auto and attempt < AUTO_CODE_ATTEMPTS:
                    continue
                raise ApiError(e.DOC_EXISTS, Param(save.record.code, "f001")) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _save_many(self, s: Session, saves: list[Save]) -> list[SaveResponse | ApiError]:
        """The SS07 write of a group-commit batch: a few statements for the whole batch.

        The adds take their auto codes from their subscriber's counter once per batch and
        are written with one INSERT; an edit changes its own record.
        """
        conn = s.connection()
        callers = sessions.authenticate_many(self.services, self.cfg, conn, [x.req for x in saves])
        outcomes: list[SaveResponse | ApiError | None] = [None] * len(saves)
        grants: dict[int, proctokens.Grant] = {}
        for i, (save, caller) in enumerate(zip(saves, callers, strict=True)):
            try:
                if isinstance(caller, ApiError):
                    raise caller
                program = caller.program(save.req.prgInf, only=PROGRAM)
                caller.authorize(program, save.proc_id)
                grants[i] = proctokens.Grant(caller, program, save.proc_id)
            except ApiError as exc:
                outcomes[i] = exc
        refused = proctokens.consume_many(self.services, conn, list(grants.values()))
        for i, error in zip(list(grants), refused, strict=True):
            if error is not None:
                outcomes[i] = error
                del grants[i]
        for i in list(grants):  # the record last, as the vendor checks it (its token given back)
            try:
                saves[i].record  # noqa: B018 - cleaned here, refused with its message
            except ApiError as exc:
                outcomes[i] = exc
                del grants[i]
        now = self.services.clock.now()
        adds = {i: g.caller for i, g in grants.items() if saves[i].proc_id == ADD}
        codes = self._add_codes(s, {i: (saves[i].record.code, c.subs_id) for i, c in adds.items()})
        rows = []
        for i, caller in adds.items():
            code = codes[i]
            if isinstance(code, ApiError):
                outcomes[i] = code
                continue
            rows.append(_row(caller, saves[i].record, code, now))
            outcomes[i] = _saved(saves[i], caller, code, now)
        if rows:
            _insert(conn.dialect).execute(conn, rows)
        for i, grant in grants.items():
            if i not in adds:
                try:
                    code = self._edit(s, grant.caller, saves[i].record, now)
                    outcomes[i] = _saved(saves[i], grant.caller, code, now)
                except ApiError as exc:
                    outcomes[i] = exc
        s.flush()
        return [o for o in outcomes if o is not None]  # every save has its outcome by now

    async def read(self, req: ReadRequest) -> ReadResponse:
        """Read some codes, or list a page of every record (procID 3 token)."""
        check_offset(req.timeOffSet)
        if req.rowStart < 0:
            raise ApiError(e.OUT_OF_RANGE, Param("rowStart", "rowStart"), "0", str(2**31 - 1))
        if not 0 <= req.rowCount <= self.cfg.max_rows:
            raise ApiError(
                e.OUT_OF_RANGE, Param("rowCount", "rowCount"), "0", str(self.cfg.max_rows)
            )
        codes = _codes(req.parCode, self.cfg.max_rows)

        def read(s: Session) -> tuple[list[SS07Row], int]:
            caller = sessions.authenticate(self.services, self.cfg, s, req)
            program = caller.program(req.prgInf, only=PROGRAM)
            caller.authorize(program, DATA)
            proctokens.consume(self.services, s, caller, program, DATA)
            if codes:
                rows = self._find(s, caller.subs_id, codes)
            else:
                rows = list(
                    s.scalars(
                        select(SS07Row)
                        .where(SS07Row.subs_id == caller.subs_id)
                        .order_by(SS07Row.code_key)
                        .offset(req.rowStart)
                        .limit(req.rowCount or self.cfg.max_rows)
                    )
                )
            total = s.scalar(
                select(func.count()).select_from(SS07Row).where(SS07Row.subs_id == caller.subs_id)
            )
            return rows, int(total or 0)

        # A read consumes its process token: a write, so it shares the group commit too.
        rows, total = await self.services.db.group.run(read)
        first = req.rowStart + 1 if not codes else 1
        return ReadResponse(
            rowData=[self._out(row, first + i, req.timeOffSet) for i, row in enumerate(rows)],
            rowTotal=total,
        )

    async def delete(self, req: DeleteRequest) -> DeleteResponse:
        """Delete the codes given, all or none (procID 2 token)."""
        check_offset(req.timeOffSet)
        codes = _codes(req.parCode, self.cfg.max_rows)
        if not codes:
            raise ApiError(e.BLANK, Param("Code", "parCode"))

        def remove(s: Session) -> DeleteResponse:
            caller = sessions.authenticate(self.services, self.cfg, s, req)
            program = caller.program(req.prgInf, only=PROGRAM)
            caller.authorize(program, DELETE)
            proctokens.consume(self.services, s, caller, program, DELETE)
            rows = self._find(s, caller.subs_id, codes, lock=True)
            s.execute(delete(SS07Row).where(SS07Row.id.in_([r.id for r in rows])))
            now = self.services.clock.now()
            return DeleteResponse(
                parCode=[r.code for r in rows],
                modInf=stamp(caller.user_code, caller.group, now, req.timeOffSet),
            )

        return await self.services.db.group.run(remove)

    # -- helpers ------------------------------------------------------------------------------

    def _add_codes(self, s: Session, adds: dict[int, tuple[str, str]]) -> dict[int, str | ApiError]:
        """The code of each add (code asked for, subscriber): its own, or the next auto code.

        A subscriber's counter is bumped once for the batch's auto codes, and its row lock
        serialises racing saves. A code already taken (by a record made by hand, or by an
        earlier add of the batch) is refused, or skipped by the auto codes.
        """
        conn = s.connection()
        codes: dict[int, str | ApiError] = {}
        by_subs: dict[str, list[int]] = {}
        for i, (_, subs_id) in adds.items():
            by_subs.setdefault(subs_id, []).append(i)
        for subs_id, todo in sorted(by_subs.items()):  # counters locked in one order
            counter = f"ikonomikal.ss07.code.{subs_id}"
            autos = sum(1 for i in todo if not adds[i][0])
            last = next_value(s, counter, step=autos) if autos else 0
            fresh = [f"{n:06d}" for n in range(last - autos + 1, last + 1)]
            asked = [adds[i][0].upper() for i in todo if adds[i][0]]
            keys = {"t_subs": subs_id, "t_keys": asked + fresh}
            taken = set(prepared(conn.dialect, _TAKEN).scalars(conn, keys))
            for i in todo:
                code = adds[i][0]
                if code and code.upper() in taken:
                    codes[i] = ApiError(e.DOC_EXISTS, Param(code, "f001"))
                    continue
                while not code:  # past the batch's values: a code is checked on its own
                    if fresh:
                        code = "" if fresh[0] in taken else fresh[0]
                        del fresh[0]
                    else:
                        code = f"{next_value(s, counter):06d}"
                        if code in taken or _taken(conn, subs_id, code):
                            code = ""
                taken.add(code.upper())
                codes[i] = code
        return codes

    def _edit(self, s: Session, caller: sessions.Caller, rec: Record, now: datetime) -> str:
        row = s.scalar(
            select(SS07Row)
            .where(SS07Row.subs_id == caller.subs_id, SS07Row.code_key == rec.code.upper())
            .with_for_update()
        )
        if row is None:
            raise ApiError(e.DOC_MISSING, Param(rec.code, "f001"))
        row.f002, row.f003, row.f004 = rec.f002, rec.f003, rec.f004
        row.l001, row.l002, row.l003, row.l004 = rec.labels
        row.version += 1
        row.m_user, row.m_group = caller.user_code, caller.group
        row.modified_by, row.modified_at = caller.principal.name, now
        return row.code

    def _find(
        self, s: Session, subs_id: str, codes: list[str], *, lock: bool = False
    ) -> list[SS07Row]:
        """The records of these codes, in the order asked; 9000010 names the first missing.

        `lock`: locked until the transaction ends (in code order), so that of two racing
        deletes of one code the second finds it gone, as it would have after the first.
        """
        keys = [c.upper() for c in codes]
        query = select(SS07Row).where(SS07Row.subs_id == subs_id, SS07Row.code_key.in_(keys))
        if lock:
            query = query.order_by(SS07Row.code_key).with_for_update()
        found = {r.code_key: r for r in s.scalars(query)}
        for code, key in zip(codes, keys, strict=True):
            if key not in found:
                raise ApiError(e.DOC_MISSING, Param(code, "parCode"))
        return [found[k] for k in keys]

    @staticmethod
    def _out(row: SS07Row, row_id: int, offset: int) -> RecordOut:
        return RecordOut(
            modInf=stamp(row.m_user, row.m_group, row.modified_at, offset),
            f001=row.code,
            f002=row.f002,
            f003=row.f003,
            f004=row.f004,
            l001=row.l001,
            l002=row.l002,
            l003=row.l003,
            l004=row.l004,
            rowId=row_id,
        )


@dataclass(frozen=True)
class Save:
    """One ss_02_ss07_sav call: the request and the procID it needs."""

    req: SaveRequest
    proc_id: int

    @functools.cached_property
    def record(self) -> Record:
        """The cleaned record; ApiError if it is refused (checked after the token)."""
        return clean(self.req.saveData, new=self.proc_id == ADD)

    @property
    def auto(self) -> bool:
        """An add with a blank code: the code comes from the subscriber's counter."""
        return self.proc_id == ADD and not self.record.code


def _row(caller: sessions.Caller, rec: Record, code: str, now: datetime) -> tuple[object, ...]:
    """A new SS07 record's columns, in the order of `_NEW`."""
    name = caller.principal.name
    return (
        caller.subs_id,
        code,
        code.upper(),
        rec.f002,
        rec.f003,
        rec.f004,
        *rec.labels,
        1,
        name,
        now,
        caller.user_code,
        caller.group,
        name,
        now,
    )


#: the columns of a new SS07 record, as `_row` gives them (`id`: the database's)
_NEW = (
    "subs_id",
    "code",
    "code_key",
    "f002",
    "f003",
    "f004",
    "l001",
    "l002",
    "l003",
    "l004",
    "version",
    "created_by",
    "created_at",
    "m_user",
    "m_group",
    "modified_by",
    "modified_at",
)


@functools.cache
def _insert(dialect: Dialect) -> BatchInsert:
    """A batch's new SS07 records: one statement on the driver."""
    return BatchInsert(dialect, _SS07, _NEW, "")


def _saved(save: Save, caller: sessions.Caller, code: str, now: datetime) -> SaveResponse:
    return SaveResponse(
        parCode=[code], modInf=stamp(caller.user_code, caller.group, now, save.req.timeOffSet)
    )


_SS07: Table = SS07Row.__table__  # type: ignore[assignment]
#: which of the codes `t_keys` (case-folded as stored) subscriber `t_subs` has records of
_TAKEN = select(_SS07.c.code_key).where(
    _SS07.c.subs_id == bindparam("t_subs"), InValues(_SS07.c.code_key, "t_keys")
)


def _taken(conn: Connection, subs_id: str, code: str) -> bool:
    """Whether the subscriber already has a record of this code."""
    params = {"t_subs": subs_id, "t_keys": [code.upper()]}
    return bool(prepared(conn.dialect, _TAKEN).fetch(conn, params))
