"""Ikonomikal test helpers: provisioned users and a client that speaks the vendor's calls."""

from __future__ import annotations

import copy
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.harness import Server, uid

LOGIN = "/bcss_wbcl_wa_sc/api/O1_getSCSessWBLogVer"
TOKEN = "/bcss_wbcl_wa_sc/api/O1_getSCPrgPrcCheckTkn"
SAVE = "/bcss_wbcl_wa_ss/api/ss_02_ss07_sav"
READ = "/bcss_wbcl_wa_ss/api/ss_02_ss07_dat"
DELETE = "/bcss_wbcl_wa_ss/api/ss_02_ss07_del"
PASSWORD = "s3cret-Passw0rd"
USER_ROLES = ("ikonomikal", "ikonomikal:ss07")

#: the example request of the SS07 seed document, verbatim
SEED_EXAMPLE = json.loads(
    '{"prgInf":{"pMODL":"SS","pPRGM":"SS07","pPRGDSC":""},"saveData":{"modInf":{"mUser":"",'
    '"mGroup":"","mDate":0,"mTime":0},"f001":"FIN","f002":"Finance","f003":"Finance","f004":0,'
    '"l001":"Code","l002":"Description","l003":"Other Description","l004":"Expense Type",'
    '"isRead":-1,"rowId":1},"cmdStat":0,"portalID":"","portID":0,"subsID":"2000001",'
    '"intGID":"4350AABE-9008-4E5F-9121-8471DD6868C6","userID":"ikotestmail@yahoo.com",'
    '"sessID":"3945C170-0799-4241-82CC-A7DF00B32A35","timeOffSet":-180}'
)
OK = {"rspID": 0, "rspMsg": "", "rspChr": []}


def rsp(number: int, message: str, *params: tuple[str, str]) -> dict[str, Any]:
    """The expected rspPrc of a numbered message with (value, label) parameters."""
    return {
        "rspID": number,
        "rspMsg": message,
        "rspChr": [
            {"pid": str(i), "pValue": v, "plbl": lbl} for i, (v, lbl) in enumerate(params, 1)
        ],
    }


@dataclass
class User:
    """A provisioned Ikonomikal user."""

    email: str
    subs_id: str
    password: str = PASSWORD


@dataclass
class Iko:
    """A client of one user: logs in, asks for tokens and calls SS07."""

    http: httpx.Client
    user: User
    offset: int = -180
    login_answer: dict[str, Any] = field(default_factory=dict)

    def post(self, path: str, body: Any) -> dict[str, Any]:
        """POST JSON; every Ikonomikal answer is HTTP 200."""
        r = self.http.post(path, json=body)
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    def login(self) -> dict[str, Any]:
        """Log in and keep the session fields."""
        self.login_answer = self.post(
            LOGIN,
            {
                "userID": self.user.email,
                "userPW": self.user.password,
                "userCap": "",
                "sessCap": "",
                "timeOffSet": self.offset,
            },
        )
        assert self.login_answer["rspPrc"] == OK, self.login_answer
        return self.login_answer

    def session(self) -> dict[str, Any]:
        """The session fields every later call carries."""
        a = self.login_answer
        return {
            "portalID": "",
            "portID": 0,
            "subsID": a["subsID"],
            "intGID": a["intGID"],
            "userID": a["userID"],
            "sessID": a["sessID"],
            "timeOffSet": self.offset,
        }

    def token(self, proc_id: int, program: str = "SS07", module: str = "SS") -> dict[str, Any]:
        """Ask for a process token; returns the whole answer."""
        body = {
            "pgProcTkn": {
                "procID": proc_id,
                "prgInf": {"pMODL": module, "pPRGM": program, "pPRGDSC": "Department Profile"},
            },
            **self.session(),
        }
        return self.post(TOKEN, body)

    def must_token(self, proc_id: int, program: str = "SS07") -> None:
        """Ask for a process token and insist on getting it."""
        answer = self.token(proc_id, program)
        assert answer["rspID"] == 0, answer

    def save_body(self, f001: str = "FIN", f002: str = "Finance", cmd: int = 0, **data: Any):
        """An SS07 save request in the seed's shape, on this session."""
        body = copy.deepcopy(SEED_EXAMPLE)
        body.update(self.session())
        body["cmdStat"] = cmd
        body["saveData"].update({"f001": f001, "f002": f002, **data})
        return body

    def save(self, f001: str = "FIN", f002: str = "Finance", cmd: int = 0, **data: Any):
        """POST ss_02_ss07_sav."""
        return self.post(SAVE, self.save_body(f001, f002, cmd, **data))

    def read(self, codes: list[str] | None = None, **extra: Any) -> dict[str, Any]:
        """POST the read extension (needs a DATA token)."""
        body = {"prgInf": {"pMODL": "SS", "pPRGM": "SS07", "pPRGDSC": ""}, **self.session()}
        body.update({"parCode": codes or [], **extra})
        return self.post(READ, body)

    def read_all(self, codes: list[str] | None = None) -> dict[str, Any]:
        """Get a DATA token and read; insists on success."""
        self.must_token(3)
        answer = self.read(codes)
        assert answer["rspPrc"] == OK, answer
        return answer

    def delete(self, codes: list[str]) -> dict[str, Any]:
        """POST the delete extension (needs a DELETE token)."""
        body = {"prgInf": {"pMODL": "SS", "pPRGM": "SS07", "pPRGDSC": ""}, **self.session()}
        body["parCode"] = codes
        return self.post(DELETE, body)


@pytest.fixture
def new_user(make_principal: Any) -> Any:
    """Provision a user (own subscriber unless given) the way the docs describe."""

    def make(
        *,
        subs_id: str | None = None,
        roles: tuple[str, ...] = USER_ROLES,
        attrs: dict[str, Any] | None = None,
    ) -> User:
        user = User(email=f"{uid('iko')}@example.com", subs_id=subs_id or uid("2"))
        make_principal(
            name=user.email,
            tenant=user.subs_id,
            roles=list(roles),
            password=PASSWORD,
            attrs={"user_code": "API01", "group": "FORAPIACCESS01", **(attrs or {})},
        )
        return user

    return make


@pytest.fixture
def connect(client: httpx.Client, new_user: Any) -> Any:
    """A logged-in Iko for a user (a new one on a new subscriber by default)."""

    def make(user: User | None = None, **kw: Any) -> Iko:
        iko = Iko(client, user or new_user(**kw))
        iko.login()
        return iko

    return make


@pytest.fixture
def iko(connect: Any) -> Iko:
    """A logged-in user on a subscriber of its own."""
    session: Iko = connect()
    return session


def race(server: Server, path: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST every body at once from its own thread and connection; answers in body order."""
    barrier = threading.Barrier(len(bodies))

    def one(body: dict[str, Any]) -> dict[str, Any]:
        with server.client() as c:
            barrier.wait(timeout=60)
            r = c.post(path, json=body)
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(one, bodies))
