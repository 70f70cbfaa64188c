"""The per-API ceiling: bare FastAPI with each API's own request model, response and middleware.

Every route has the path, request model and response shape (and size) of the writegate API it
stands in for, and writegate's two middleware layers (body limit; request id and metrics),
but no database, no authentication and no job: what the same request costs in FastAPI alone.
The wrk scripts of bench/apis.py run unchanged against it (ABS versions move on, Ikonomikal
answers rspID 0).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from writegate.core.http import ErrorInfo
from writegate.core.observability.middleware import ObserveRequests
from writegate.modules.abs.schemas import PackageChanges, PackageGet, PackagePut
from writegate.modules.bokamera.schemas import AxemaUserSyncJobResponse
from writegate.modules.ikonomikal.schemas import (
    ModInf,
    RspPrc,
    SaveRequest,
    SaveResponse,
    TokenRequest,
    TokenResponse,
)
from writegate.modules.jef_one.schemas import CreateSessionJob

MAX_BODY_BYTES = 64 * 1024
#: writegate's default WRITEGATE_BODY_TIMEOUT_SECONDS
BODY_TIMEOUT_SECONDS = 30.0
#: packages answered by the ceiling's getChanges: the limit the bench's getChanges asks for
CHANGES_LIMIT = 100
_ids = itertools.count(1)


def body_limit() -> Any:
    """writegate's body-limit middleware class (the one place to change if it moves)."""
    from writegate.core.middleware import BodyLimit

    return BodyLimit


def _render(request: Request, info: ErrorInfo) -> Response:
    return JSONResponse({"error": info.kind, "message": info.message}, status_code=info.status)


def _api_of(path: str) -> str:
    return "ceiling"


# The same two middleware layers as writegate.app, in the same order.
app = FastAPI(title="bench per-API ceiling")
app.add_middleware(
    body_limit(), max_bytes=MAX_BODY_BYTES, timeout=BODY_TIMEOUT_SECONDS, render=_render
)
app.add_middleware(ObserveRequests, api_of=_api_of)


def _stamp() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def package(client_code: str, pid: int, version: int, status: str = "NEW") -> dict[str, Any]:
    """An ABS package as writegate answers it (same fields, same sizes)."""
    uid = str(uuid.UUID(int=pid))
    checksum = base64.b64encode(hashlib.sha256(f"{uid}{status}".encode()).digest()).decode()
    now = _stamp()
    return {
        "client_code": client_code,
        "oauth_access_token": "",
        "processing_date": "2021-10-30",
        "processing_status": status,
        "processing_step": "NORMAL",
        "error_description": "",
        "checksum": checksum,
        "payment_import_initiation_id": 0,
        "uid": uid,
        "id": pid,
        "version": version,
        "state": 0,
        "create_user": "bench-abs",
        "create_date": now,
        "modify_user": "bench-abs",
        "modify_date": now,
    }


def _envelope(data: Any, total: int) -> JSONResponse:
    return JSONResponse(
        {
            "status": "ok",
            "error_description": "",
            "error": {},
            "data_type": "system.api.package.packageModel",
            "total_records": total,
            "data": data,
        }
    )


@app.post("/one-post-create-session-job", status_code=202)
async def jef_one_accept(body: CreateSessionJob) -> JSONResponse:
    """jef-one's accept: validate and answer its 202 body."""
    return JSONResponse(
        {
            "is_accepted": True,
            "message": "Job accepted. This is not the final write: confirm the final state "
            "with GET.",
            "operation": "create_session",
            "job_id": str(uuid.uuid4()),
            "job_status": "queued",
            "target_table": "jef-one-sessions",
            "target_pk": body.session_id,
            "confirmation": "GET /jef-one-get-session-by-session-id?session_id=" + body.session_id,
            "allowed_method": "POST",
            "error_type": None,
            "error_code": None,
            "errors": [],
            "error": None,
        },
        status_code=202,
    )


@app.post("/bcss_wbcl_wa_sc/api/O1_getSCPrgPrcCheckTkn", response_model=TokenResponse)
def ikonomikal_token(body: TokenRequest) -> TokenResponse:
    """Ikonomikal's process token: the flat answer with rspPrc repeated."""
    return TokenResponse(rspPrc=RspPrc())


@app.post("/bcss_wbcl_wa_ss/api/ss_02_ss07_sav", response_model=SaveResponse)
def ikonomikal_save(body: SaveRequest) -> SaveResponse:
    """Ikonomikal's SS07 save: the code and the save stamp."""
    now = datetime.now(UTC)
    return SaveResponse(
        parCode=[body.saveData.f001 or "000001"],
        modInf=ModInf(
            mUser="API01",
            mGroup="FORAPIACCESS01",
            mDate=int(now.strftime("%Y%m%d")),
            mTime=int(now.strftime("%H%M%S")),
        ),
        rspPrc=RspPrc(),
    )


@app.post("/model/package/putDb")
def abs_put(body: PackagePut) -> JSONResponse:
    """ABS putDb: a create gets a new id, an update the next version."""
    if body.id:
        return _envelope(package(body.client_code, body.id, (body.version or 0) + 1, "S"), 1)
    pid = next(_ids)
    return _envelope(package(body.client_code, pid, pid), 1)


@app.post("/model/package/get")
def abs_get(body: PackageGet) -> JSONResponse:
    """ABS get: one package."""
    return _envelope(package(body.client_code, body.id or 1, 7), 1)


@app.post("/model/package/getChanges")
def abs_changes(body: PackageChanges) -> JSONResponse:
    """ABS getChanges: a page of packages after the offset."""
    start = body.offset_version + 1
    rows = [package(body.client_code, start + i, start + i) for i in range(CHANGES_LIMIT)]
    return _envelope(rows, 2 * CHANGES_LIMIT)


@app.get("/codelock/axema/usersync/{Id}", response_model=AxemaUserSyncJobResponse)
def bokamera_status(Id: uuid.UUID) -> JSONResponse:
    """BokaMera's sync status: a completed sync of 100,000 users."""
    now = datetime.now(UTC)
    status = AxemaUserSyncJobResponse(
        Id=Id,
        CompanyId=uuid.uuid5(uuid.NAMESPACE_URL, "bench"),
        Status=2,
        StatusName="Completed",
        UsersFound=100_000,
        UsersCreated=100_000,
        UsersUpdated=0,
        ErrorMessage=None,
        CreatedDate=now,
        UpdatedDate=now,
    )
    return JSONResponse(status.model_dump(mode="json"))
