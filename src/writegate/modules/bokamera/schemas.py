"""BokaMera wire DTOs, with ServiceStack's PascalCase field names."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from writegate.core.text import check_storable, check_unicode


class SyncStatus(enum.IntEnum):
    """AxemaUserSyncJobResponse.Status."""

    Pending = 0
    Processing = 1
    Completed = 2
    Failed = 3


def empty_guid(value: Any) -> Any:
    """ServiceStack clients send "" or Guid.Empty for "no company": both mean the caller's own."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, str | uuid.UUID) and str(value).strip() == str(uuid.UUID(int=0)):
        return None
    return value


#: a JSON integer: true is not 1, "5" is not 5 (ServiceStack's JSON types, strictly)
Port = Annotated[int, Field(strict=True, ge=1, le=65535)]


class Dto(BaseModel):
    """Request DTOs ignore unknown properties, as ServiceStack does."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @field_validator("CompanyId", mode="before", check_fields=False)
    @classmethod
    def _empty_company(cls, v: Any) -> Any:
        return empty_guid(v)


class CreateAxemaUserSync(Dto):
    """POST /codelock/axema/usersync."""

    CompanyId: uuid.UUID | None = Field(
        default=None,
        description="The company id, if empty will use the company id for the user you are "
        "logged in with.",
    )


class AxemaUserSyncJobResponse(BaseModel):
    """One sync job."""

    Id: uuid.UUID
    CompanyId: uuid.UUID
    Status: int = Field(description="0 Pending, 1 Processing, 2 Completed, 3 Failed")
    StatusName: str
    UsersFound: int | None = None
    UsersCreated: int | None = None
    UsersUpdated: int | None = None
    ErrorMessage: str | None = None
    CreatedDate: datetime
    UpdatedDate: datetime


class AxemaUserSyncQueryResponse(BaseModel):
    """GET /codelock/axema/usersync."""

    Offset: int
    Total: int
    Results: list[AxemaUserSyncJobResponse]


class AxemaSettingsBase(Dto):
    """Shared validation of the settings request fields."""

    CompanyId: uuid.UUID | None = None

    @field_validator("ApiEndpoint", check_fields=False)
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        if v is not None and "@" in urlsplit(v).netloc:
            # The endpoint is shown by GET and in every sync error: credentials go in
            # Username and Password, which are kept encrypted and never shown.
            raise ValueError(
                "must not carry a user or password: give them as Username and Password"
            )
        return v

    @field_validator("ApiEndpoint", "Username", mode="before", check_fields=False)
    @classmethod
    def _storable(cls, v: Any) -> Any:
        return check_storable(v)

    @field_validator("Password", mode="before", check_fields=False)
    @classmethod
    def _unicode(cls, v: Any) -> Any:
        # Kept encrypted, so NUL can be stored; a lone surrogate cannot even be encrypted.
        return check_unicode(v)


class CreateAxemaSettings(AxemaSettingsBase):
    """POST /codelock/axema/settings: every field but ApiPort is required."""

    ApiEndpoint: str = Field(min_length=1, max_length=500)
    ApiPort: Port | None = None
    Username: str = Field(min_length=1, max_length=200)
    Password: str = Field(min_length=1, max_length=200)


class UpdateAxemaSettings(AxemaSettingsBase):
    """PUT /codelock/axema/settings: omitted fields keep their value."""

    ApiEndpoint: str | None = Field(default=None, min_length=1, max_length=500)
    ApiPort: Port | None = None
    Username: str | None = Field(default=None, min_length=1, max_length=200)
    Password: str | None = Field(default=None, min_length=1, max_length=200)


class AxemaSettingsResponse(BaseModel):
    """A company's Axema Vaka connection; the password is never returned."""

    CompanyId: uuid.UUID
    ApiEndpoint: str
    ApiPort: int | None
    Username: str
    PasswordIsSet: bool
    CreatedDate: datetime
    UpdatedDate: datetime


class CustomerResponse(BaseModel):
    """One customer of a company."""

    Id: uuid.UUID
    CompanyId: uuid.UUID
    VakaUserId: str | None
    Firstname: str | None
    Lastname: str | None
    Email: str | None
    Phone: str | None
    AccessCardNumber: str | None
    CreatedDate: datetime
    UpdatedDate: datetime


class CustomerQueryResponse(BaseModel):
    """GET /customers."""

    Offset: int
    Total: int
    Results: list[CustomerResponse]
