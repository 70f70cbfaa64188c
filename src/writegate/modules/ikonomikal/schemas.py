"""Ikonomikal wire formats, with the vendor's field names."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, JsonValue

from writegate.core.text import STORABLE, UNICODE


def _blank_if_null(value: Any) -> Any:
    # .NET clients serialise an unset String as null; the vendor treats it as blank.
    return "" if value is None else value


#: a JSON string (null reads as blank); numbers and booleans are refused, and so are lone
#: surrogates and NUL (every such field is stored or looked up in the database)
Text = Annotated[str, BeforeValidator(_blank_if_null), Field(strict=True), STORABLE]
#: a Text that is never stored nor compared in SQL (password, session id): NUL allowed
Secret = Annotated[str, BeforeValidator(_blank_if_null), Field(strict=True), UNICODE]
#: a JSON integer in the range of .NET's Int32
Int32 = Annotated[int, Field(strict=True, ge=-(2**31), le=2**31 - 1)]


class Wire(BaseModel):
    """Base of every wire model: unknown fields are ignored, as the vendor does."""

    model_config = ConfigDict(extra="ignore")


class RspPair(Wire):
    """One message parameter: placeholder number, the text that fills it, the field it is about."""

    pid: str = ""
    pValue: str = ""
    plbl: str = ""


class RspPrc(Wire):
    """Outcome of a call: rspID 0 is success, anything else a numbered message."""

    rspID: int = 0
    rspMsg: str = ""
    rspChr: list[RspPair] = Field(default_factory=list)


class SessionFields(Wire):
    """What every call after login carries to identify the session."""

    portalID: Text = ""
    portID: Int32 = 0
    subsID: Text = ""
    intGID: Text = ""
    userID: Text = ""
    sessID: Secret = ""
    #: minutes to add to the client's local time to get UTC (-180 means UTC+3)
    timeOffSet: Int32 = 0


class ProgramInfo(Wire):
    """The program a call is about."""

    pMODL: Text = ""
    pPRGM: Text = ""
    pPRGDSC: Text = ""


class ModInf(Wire):
    """Who saved last and when, in the client's local time (YYYYMMDD, HHMMSS)."""

    mUser: str = ""
    mGroup: str = ""
    mDate: int = 0
    mTime: int = 0


# -- login ------------------------------------------------------------------------------------


class LoginRequest(Wire):
    """POST O1_getSCSessWBLogVer."""

    userID: Text = ""
    userPW: Secret = ""
    #: caption of the user id field, used in messages about it
    userCap: Text = ""
    sessCap: Text = ""
    timeOffSet: Int32 = 0


class LoginResponse(Wire):
    """A new session, or blank fields and an error in rspPrc."""

    subsID: str = ""
    intGID: str = ""
    userID: str = ""
    sessID: str = ""
    userName: str = ""
    dteFmt: int = 1
    dteSpFmt: int = 1
    serverTimeOffSet: int = 0
    clientTimeZone: int = 0
    rspPrc: RspPrc = Field(default_factory=RspPrc)


# -- process token ----------------------------------------------------------------------------


class ProcessToken(Wire):
    """The process token asked for: procID and program."""

    procID: Int32
    prgInf: ProgramInfo = Field(default_factory=ProgramInfo)


class TokenRequest(SessionFields):
    """POST O1_getSCPrgPrcCheckTkn."""

    # The vendor's own request template spells it pgProgTkn; both are accepted.
    pgProcTkn: ProcessToken = Field(validation_alias=AliasChoices("pgProcTkn", "pgProgTkn"))


class TokenResponse(Wire):
    """The vendor answers this call with a flat rspID/rspMsg/rspChr; rspPrc repeats it."""

    rspID: int = 0
    rspMsg: str = ""
    rspChr: list[RspPair] = Field(default_factory=list)
    rspPrc: RspPrc = Field(default_factory=RspPrc)


# -- SS07 -------------------------------------------------------------------------------------


class SaveData(Wire):
    """An SS07 (department profile) record as sent."""

    #: ignored, whatever it holds (null too): the server stamps every save
    modInf: JsonValue = None
    f001: Text = ""
    f002: Text = ""
    f003: Text = ""
    f004: Int32 = 0
    l001: Text = ""
    l002: Text = ""
    l003: Text = ""
    l004: Text = ""
    #: ignored, whatever they hold
    isRead: JsonValue = None
    rowId: JsonValue = None


class SaveRequest(SessionFields):
    """POST ss_02_ss07_sav: cmdStat 0 adds (procID 1 token), 1 edits (procID 0 token)."""

    prgInf: ProgramInfo = Field(default_factory=ProgramInfo)
    saveData: SaveData
    cmdStat: Int32


class SaveResponse(Wire):
    """The code saved and the save stamp."""

    parCode: list[str] = Field(default_factory=list)
    modInf: ModInf = Field(default_factory=ModInf)
    rspPrc: RspPrc = Field(default_factory=RspPrc)


class RecordOut(Wire):
    """An SS07 record as read back (writegate extension)."""

    modInf: ModInf
    f001: str
    f002: str
    f003: str
    f004: int
    l001: str
    l002: str
    l003: str
    l004: str
    isRead: int = 1
    rowId: int


class ReadRequest(SessionFields):
    """POST ss_02_ss07_dat (writegate extension): some codes, or a page of all (procID 3 token)."""

    prgInf: ProgramInfo = Field(default_factory=ProgramInfo)
    #: codes to read; empty lists every record of the subscriber, by code
    parCode: list[Text] = Field(default_factory=list)
    #: rows to skip when listing
    rowStart: Int32 = 0
    #: rows to answer when listing (0: the server's maximum)
    rowCount: Int32 = 0


class ReadResponse(Wire):
    """Records read, with the number of records the subscriber has in all."""

    rowData: list[RecordOut] = Field(default_factory=list)
    rowTotal: int = 0
    rspPrc: RspPrc = Field(default_factory=RspPrc)


class DeleteRequest(SessionFields):
    """POST ss_02_ss07_del (writegate extension): delete codes, all or none (procID 2 token)."""

    prgInf: ProgramInfo = Field(default_factory=ProgramInfo)
    parCode: list[Text] = Field(default_factory=list)


class DeleteResponse(Wire):
    """The codes deleted and the delete stamp."""

    parCode: list[str] = Field(default_factory=list)
    modInf: ModInf = Field(default_factory=ModInf)
    rspPrc: RspPrc = Field(default_factory=RspPrc)
