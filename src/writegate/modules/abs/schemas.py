"""Wire schemas of the ABS package methods (the seed's field names, exactly)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from writegate.core.text import canonical_uuid, check_storable

INT64_MAX = 2**63 - 1
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_date(value: str | None) -> date | None:
    """An ABS DATE ("2021-10-30"); None for empty."""
    if value is None or value == "":
        return None
    try:
        if not _DATE.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError(
            "INVALID_DATE", "{value} is not a date in YYYY-MM-DD form", {"value": repr(value)}
        ) from None


def _date_field(value: Any) -> Any:
    if isinstance(value, str):
        parse_date(value)
    return value


def _yes_no(value: Any) -> Any:
    # ABS booleans arrive as JSON booleans or as "yes"/"no" strings.
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("yes", "true", "1"):
            return True
        if lowered in ("no", "false", "0", ""):
            return False
    return value


DateStr = Annotated[str, BeforeValidator(_date_field), Field(max_length=10)]
#: a JSON boolean or a yes/no string; a number is not a boolean
YesNo = Annotated[bool, Field(strict=True), BeforeValidator(_yes_no)]
Id = Annotated[int, Field(ge=0, le=INT64_MAX, strict=True)]
ClientCode = Annotated[str, Field(min_length=1, max_length=64)]


def _uid(value: str | None) -> str | None:
    """A uid as stored: a UUID in any letter case finds its package."""
    return canonical_uuid(value) if value else value


Uid = Annotated[str | None, Field(max_length=36), AfterValidator(_uid)]
#: page sizes and page numbers: JSON integers only
Count = Annotated[int, Field(strict=True)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # Before every other check of the field, so no later message (a date's, say) echoes
        # a lone surrogate it could not encode; NUL too: PostgreSQL text cannot hold it.
        return check_storable(value)

    @field_validator("state", mode="before", check_fields=False)
    @classmethod
    def _integer_state(cls, value: Any) -> Any:
        # Literal[0] alone takes false and 0.0 for 0; the seed says INT64, a JSON integer.
        if isinstance(value, bool | float):
            raise PydanticCustomError("int_type", "Input should be a valid integer")
        return value


class PackagePut(_Request):
    """putDb body: the package schema. Server-owned fields are accepted and ignored."""

    client_code: ClientCode
    id: Id | None = Field(default=None, description="Set (with uid or alone) to update.")
    uid: Uid = Field(default=None, description="Set to update.")
    version: Id | None = Field(default=None, description="If set, must be the current one.")
    checksum: str | None = Field(
        default=None, max_length=128, description="If set, must be the current one."
    )
    state: Literal[0] | None = Field(default=None, description="0; use delete to delete.")
    oauth_access_token: str | None = Field(default=None, max_length=4096)
    payment_import_initiation_id: Id | None = None
    processing_date: DateStr | None = None
    processing_status: str | None = Field(default=None, max_length=100)
    processing_step: str | None = Field(default=None, max_length=100)
    # service fields and server stamps: accepted so a read record can be sent back as is
    action: str | None = Field(default=None, max_length=100)
    form_title: str | None = Field(default=None, max_length=200)
    error_description: str | None = Field(default=None, max_length=1000)
    create_user: str | None = Field(default=None, max_length=200)
    create_date: str | None = Field(default=None, max_length=40)
    modify_user: str | None = Field(default=None, max_length=200)
    modify_date: str | None = Field(default=None, max_length=40)


class _OneRequest(_Request):
    client_code: ClientCode
    id: Id | None = None
    uid: Uid = None

    @model_validator(mode="after")
    def _needs_key(self) -> _OneRequest:
        if not self.id and not self.uid:
            raise PydanticCustomError("REQUIRED_FIELD", "id or uid is required")
        return self


class PackageGet(_OneRequest):
    """get body: one package by id or uid."""


class PackageDelete(_OneRequest):
    """delete body: one package by id or uid, with optional concurrency guards."""

    version: Id | None = None
    checksum: str | None = Field(default=None, max_length=128)


class PackageList(_Request):
    """getList body: the documented search fields."""

    client_code: ClientCode
    date_from: DateStr | None = Field(default=None, description="create_date on or after")
    date_to: DateStr | None = Field(default=None, description="create_date on or before")
    processing_status: str | None = Field(default=None, max_length=100)
    processing_step: str | None = Field(default=None, max_length=100)
    limit: Count = Field(default=100, ge=1, le=1000)
    page: Count = Field(default=1, ge=1, le=1_000_000)
    skip_total_records: YesNo = False

    @model_validator(mode="after")
    def _range(self) -> PackageList:
        start, end = parse_date(self.date_from), parse_date(self.date_to)
        if start and end and start > end:
            raise PydanticCustomError("INVALID_DATE_RANGE", "date_from is after date_to")
        return self


class PackageChanges(_Request):
    """getChanges body: every change after offset_version, oldest first."""

    client_code: ClientCode
    offset_version: Id = 0
    limit: Count = Field(default=100, ge=1, le=1000)
    skip_total_records: YesNo = False


class PackageData(BaseModel):
    """One package as returned in `data`."""

    client_code: str
    oauth_access_token: str
    processing_date: str
    processing_status: str
    processing_step: str
    error_description: str
    checksum: str
    payment_import_initiation_id: int
    uid: str
    id: int
    version: int
    state: int
    create_user: str
    create_date: str
    modify_user: str
    modify_date: str


class _Envelope(BaseModel):
    status: Literal["ok", "ERROR"]
    error_description: str
    error: dict[str, Any] | str
    data_type: str
    total_records: int


class PackageEnvelope(_Envelope):
    """Envelope with one package (or `{}` on ERROR)."""

    data: PackageData | dict[str, Any]


class PackageListEnvelope(_Envelope):
    """Envelope with a page of packages (or `{}` on ERROR)."""

    data: list[PackageData] | dict[str, Any]
