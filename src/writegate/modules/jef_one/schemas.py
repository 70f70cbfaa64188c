"""jef-one wire schemas, with the backend's own field names."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from writegate.core.text import UNICODE

ENTITY_NUMBER = r"^[0-9]{4}$"
EMPLOYEE_NUMBER = r"^[0-9]{5}$"
SESSION_ID = r"^[A-Za-z0-9._:\-]{1,128}$"
APP_NUMBER = r"^[0-9]{3}$"
#: free text, not blank: anything but NUL, which PostgreSQL text cannot store (the job would
#: fail later), with at least one character that is not white space
TEXT = r"^[^\x00]*[^\x00\s][^\x00]*$"
#: free text, refusing lone surrogates (not Unicode: no database could store them) first;
#: the other fields' patterns admit ASCII only
Name = Annotated[str, UNICODE]

#: what each field must look like, for error messages
FORMATS = {
    "entity_number": "exactly 4 digits, e.g. 1001",
    "employee_number": "exactly 5 digits, e.g. 00001",
    "session_id": "1 to 128 characters from A-Z a-z 0-9 . _ : -",
    "app_type": "one of 'mobile', 'desktop'",
    "app_number": "exactly 3 digits, e.g. 001",
    "entity_name": "1 to 200 characters, not all white space, no NUL or lone surrogate",
    "employee_name": "1 to 200 characters, not all white space, no NUL or lone surrogate",
    "is_active": "true or false",
    "job_id": "a job id as returned by a POST",
}


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=False)


class CreateSessionJob(_Strict):
    """Body of POST /one-post-create-session-job."""

    entity_number: str = Field(pattern=ENTITY_NUMBER, examples=["1001"])
    employee_number: str = Field(pattern=EMPLOYEE_NUMBER, examples=["00001"])
    session_id: str = Field(
        min_length=1, max_length=128, pattern=SESSION_ID, examples=["session-00001"]
    )
    app_type: Literal["mobile", "desktop"]
    app_number: str = Field(pattern=APP_NUMBER, examples=["001"])


class EntityPost(_Strict):
    """Body of POST /one-entities-post-one."""

    entity_number: str = Field(pattern=ENTITY_NUMBER, examples=["1001"])
    entity_name: Name = Field(min_length=1, max_length=200, pattern=TEXT, examples=["Head office"])
    is_active: bool = True


class EmployeePost(_Strict):
    """Body of POST /one-employees-post-one."""

    entity_number: str = Field(pattern=ENTITY_NUMBER, examples=["1001"])
    employee_number: str = Field(pattern=EMPLOYEE_NUMBER, examples=["00001"])
    employee_name: Name = Field(min_length=1, max_length=200, pattern=TEXT, examples=["Ana Santos"])
    is_active: bool = True


class FieldError(BaseModel):
    """One problem with one field."""

    field: str
    code: str
    message: str


class AcceptedResponse(BaseModel):
    """The async POST response: every field of the documented response schema."""

    is_accepted: bool
    message: str
    operation: str | None = None
    job_id: str | None = None
    job_status: str | None = None
    target_table: str | None = None
    target_pk: str | None = None
    confirmation: str | None = None
    allowed_method: str | None = "POST"
    error_type: str | None = None
    error_code: str | None = None
    errors: list[FieldError] = Field(default_factory=list)
    error: str | None = None


class JobView(BaseModel):
    """GET /jef-one-get-job-by-job-id."""

    is_found: bool
    job_id: str
    operation: str | None = None
    job_status: str | None = None
    attempts: int | None = None
    target_table: str | None = None
    target_pk: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    updated_at: str | None = None
    result: Any = None
    error: str | None = None
    message: str


class SessionView(BaseModel):
    """GET /jef-one-get-session-by-session-id."""

    is_found: bool
    session_id: str
    entity_number: str | None = None
    employee_number: str | None = None
    application_type: str | None = None
    application_number: str | None = None
    #: "pending" from the 202 until its job is final, then "verified" or "failed"
    status: str | None = None
    failure_reason: str | None = None
    job_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    verified_at: str | None = None
    message: str


class EntityView(BaseModel):
    """GET /jef-one-get-entity-by-entity-number."""

    is_found: bool
    can_continue: bool
    entity_number: str
    entity_name: str | None = None
    entity_active: bool | None = None
    employee_count: int | None = None
    #: an accepted upsert of this record whose job is not final yet
    pending_job_id: str | None = None
    pending_job_status: str | None = None
    message: str


class EmployeeView(BaseModel):
    """GET /jef-one-get-employee-by-employee-number."""

    is_found: bool
    can_continue: bool
    entity_number: str
    employee_number: str
    employee_name: str | None = None
    employee_active: bool | None = None
    entity_active: bool | None = None
    #: an accepted upsert of this record whose job is not final yet
    pending_job_id: str | None = None
    pending_job_status: str | None = None
    message: str


class ErrorResponse(AcceptedResponse):
    """Any refusal, in the same envelope as an accepted POST."""

    is_accepted: Literal[False] = False
    allowed_method: str | None = None
    error_type: str
    error_code: str
    error: str
