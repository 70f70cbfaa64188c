"""Ikonomikal endpoints: every answer is HTTP 200 with rspPrc telling success or the error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from writegate.core.http import ErrorInfo, JsonBodyRoute, ServicesDep
from writegate.modules.ikonomikal import NAME
from writegate.modules.ikonomikal.errors import ApiError, from_error_info
from writegate.modules.ikonomikal.schemas import (
    DeleteRequest,
    DeleteResponse,
    LoginRequest,
    LoginResponse,
    ReadRequest,
    ReadResponse,
    RspPair,
    RspPrc,
    SaveRequest,
    SaveResponse,
    TokenRequest,
    TokenResponse,
    Wire,
)
from writegate.modules.ikonomikal.service import Ikonomikal

SC = "/bcss_wbcl_wa_sc/api"
SS = "/bcss_wbcl_wa_ss/api"
LOGIN_PATH = f"{SC}/O1_getSCSessWBLogVer"
TOKEN_PATH = f"{SC}/O1_getSCPrgPrcCheckTkn"
SAVE_PATH = f"{SS}/ss_02_ss07_sav"
READ_PATH = f"{SS}/ss_02_ss07_dat"
DELETE_PATH = f"{SS}/ss_02_ss07_del"
#: the response shape of each path (lower case), answered blank when the call fails
SHAPES: dict[str, type[Wire]] = {
    LOGIN_PATH.lower(): LoginResponse,
    TOKEN_PATH.lower(): TokenResponse,
    SAVE_PATH.lower(): SaveResponse,
    READ_PATH.lower(): ReadResponse,
    DELETE_PATH.lower(): DeleteResponse,
}

W = TypeVar("W", bound=Wire)


async def get_ikonomikal(services: ServicesDep) -> Ikonomikal:
    """The module's service object, built at start-up (async: no thread hop)."""
    iko: Ikonomikal = services.extras[NAME]
    return iko


IkonomikalDep = Annotated[Ikonomikal, Depends(get_ikonomikal)]


router = APIRouter(tags=["ikonomikal"], route_class=JsonBodyRoute)


def rsp_prc(err: ApiError) -> RspPrc:
    """The envelope of a numbered message."""
    return RspPrc(
        rspID=err.number,
        rspMsg=err.message,
        rspChr=[
            RspPair(pid=str(i), pValue=p.value, plbl=p.label)
            for i, p in enumerate(err.params, start=1)
        ],
    )


def failure(shape: type[W], err: ApiError) -> W:
    """The endpoint's response shape, blank, carrying the error."""
    prc = rsp_prc(err)
    if shape is TokenResponse:
        return shape.model_validate(
            {"rspID": prc.rspID, "rspMsg": prc.rspMsg, "rspChr": prc.rspChr, "rspPrc": prc}
        )
    return shape.model_validate({"rspPrc": prc})


async def answer_async(shape: type[W], call: Awaitable[W]) -> JSONResponse:
    """`answer` for a service call that awaits the group commit, as the JSON FastAPI makes of
    the response model: the endpoint returns a Response, so it takes JsonBodyRoute's fast path."""
    try:
        result = await call
    except ApiError as err:
        result = failure(shape, err)
    return JSONResponse(result.model_dump(mode="json"))


def answer(shape: type[W], call: Callable[[], W]) -> W:
    """Run a service call; a numbered message becomes the blank shape with rspPrc set."""
    try:
        return call()
    except ApiError as err:
        return failure(shape, err)


def render_error(request: Request, info: ErrorInfo) -> Response:
    """Answer whatever the framework refused in the Ikonomikal envelope, with HTTP 200."""
    services = request.app.state.services
    settings = services.settings
    err = from_error_info(info, request, settings.max_body_bytes, settings.body_timeout_seconds)
    shape = SHAPES.get(request.url.path.rstrip("/").lower())
    content = (
        failure(shape, err).model_dump(mode="json")
        if shape
        else {"rspPrc": rsp_prc(err).model_dump(mode="json")}
    )
    return JSONResponse(content, status_code=200)


@router.post(LOGIN_PATH, operation_id="ikonomikal_login", response_model=LoginResponse)
def login(body: LoginRequest, iko: IkonomikalDep, request: Request) -> LoginResponse:
    """Log in with userID and userPW; answers the sessID to use in every later call."""
    address = request.client.host if request.client else ""
    return answer(LoginResponse, lambda: iko.login(body, address))


@router.post(TOKEN_PATH, operation_id="ikonomikal_process_token", response_model=TokenResponse)
async def process_token(body: TokenRequest, iko: IkonomikalDep) -> JSONResponse:
    """Acquire a single-use process token for (session, program, procID)."""
    return await answer_async(TokenResponse, iko.issue_token(body))


@router.post(SAVE_PATH, operation_id="ikonomikal_ss07_save", response_model=SaveResponse)
async def ss07_save(body: SaveRequest, iko: IkonomikalDep) -> JSONResponse:
    """Add (cmdStat 0, NEW token) or edit (cmdStat 1, SAVE token) an SS07 record."""
    return await answer_async(SaveResponse, iko.save(body))


@router.post(READ_PATH, operation_id="ikonomikal_ss07_read", response_model=ReadResponse)
async def ss07_read(body: ReadRequest, iko: IkonomikalDep) -> JSONResponse:
    """Read SS07 records by code, or list them (writegate extension, DATA token)."""
    return await answer_async(ReadResponse, iko.read(body))


@router.post(DELETE_PATH, operation_id="ikonomikal_ss07_delete", response_model=DeleteResponse)
async def ss07_delete(body: DeleteRequest, iko: IkonomikalDep) -> JSONResponse:
    """Delete SS07 records by code (writegate extension, DELETE token)."""
    return await answer_async(DeleteResponse, iko.delete(body))
