"""ABS error codes and the `status`/`error`/`data` envelope every /model/ answer uses."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from writegate.core.http import ErrorInfo, credentials
from writegate.core.problems import FieldProblem

DATA_TYPE = "system.api.package.packageModel"

#: every error code this module answers with, and what it means (docs/abs.md mirrors this)
CODES: dict[str, str] = {
    "AUTH_REQUIRED": "no API key was sent",
    "INVALID_API_KEY": "the API key is unknown or revoked",
    "ROLE_REQUIRED": "the caller lacks the ABS role the method needs (abs:read or abs:write)",
    "CLIENT_ACCESS_DENIED": "the client_code belongs to another tenant",
    "UNKNOWN_CLIENT_CODE": "the client_code is not a registered client",
    "MALFORMED_JSON": (
        "the body is not valid JSON (or not UTF-8), or has an integer of more than 4,300 digits"
    ),
    "UNSUPPORTED_CONTENT_TYPE": "the body is not sent as application/json (or application/*+json)",
    "BODY_TOO_LARGE": "the body is larger than the configured limit",
    "REQUEST_TIMEOUT": "the body did not arrive within the configured time",
    "INVALID_REQUEST": "the body is missing or is not a JSON object",
    "REQUIRED_FIELD": "a mandatory field is missing",
    "UNKNOWN_FIELD": "the body has a field this method does not know",
    "INVALID_FIELD": "a field has the wrong type or an out-of-range value",
    "FIELD_TOO_LONG": "a string field is longer than allowed",
    "INVALID_DATE": "a date is not a real date in YYYY-MM-DD form",
    "INVALID_DATE_RANGE": "date_from is after date_to",
    "PACKAGE_NOT_FOUND": "no package of this client has that id/uid",
    "ID_UID_MISMATCH": "id and uid name two different packages",
    "VERSION_CONFLICT": "the version sent is not the package's current version",
    "CHECKSUM_CONFLICT": "the checksum sent is not the package's current checksum",
    "PACKAGE_DELETED": "the package is deleted; it can no longer be changed",
    "UNKNOWN_METHOD": "no such method under /model/",
    "METHOD_NOT_ALLOWED": "the method exists but not with this HTTP verb (use POST)",
    "SERVICE_UNAVAILABLE": "the database is unreachable; retry later",
    "INTERNAL_ERROR": "an unexpected server error; nothing was written",
}

_KIND_CODES = {
    "malformed": "MALFORMED_JSON",
    "content_type": "UNSUPPORTED_CONTENT_TYPE",
    "too_large": "BODY_TOO_LARGE",
    "timeout": "REQUEST_TIMEOUT",
    "not_found": "UNKNOWN_METHOD",
    "method_not_allowed": "METHOD_NOT_ALLOWED",
    "forbidden": "CLIENT_ACCESS_DENIED",
    "unavailable": "SERVICE_UNAVAILABLE",
    "internal": "INTERNAL_ERROR",
}

_PYDANTIC_CODES = {
    "missing": "REQUIRED_FIELD",
    "extra_forbidden": "UNKNOWN_FIELD",
    "string_too_long": "FIELD_TOO_LONG",
    "json_invalid": "MALFORMED_JSON",
}


class AbsError(Exception):
    """A refusal in ABS terms: an error code and a description."""

    def __init__(self, code: str, description: str) -> None:
        assert code in CODES, code
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


def ok(data: Any, total_records: int) -> JSONResponse:
    """The positive envelope."""
    return JSONResponse(
        {
            "status": "ok",
            "error_description": "",
            "error": {},
            "data_type": DATA_TYPE,
            "total_records": total_records,
            "data": data,
        }
    )


def failure(code: str, description: str) -> JSONResponse:
    """The negative envelope: HTTP 200, `status` ERROR, empty `data`."""
    return JSONResponse(
        {
            "status": "ERROR",
            "error_description": description,
            "error": code,
            "data_type": DATA_TYPE,
            "total_records": 0,
            "data": {},
        }
    )


def render_abs_error(request: Request, exc: AbsError) -> Response:
    """An AbsError raised outside a handler (a dependency), in the ABS envelope."""
    return failure(exc.code, exc.description)


def _field_code(problem: FieldProblem) -> str:
    if problem.code in CODES:  # our own validators raise with the ABS code as their type
        return problem.code
    if problem.field == "":
        return "INVALID_REQUEST"
    return _PYDANTIC_CODES.get(problem.code, "INVALID_FIELD")


def _describe(problem: FieldProblem) -> str:
    if problem.field == "":
        return "a JSON object body is required" if problem.code == "missing" else problem.message
    return f"{problem.field}: {problem.message}"


def render_error(request: Request, info: ErrorInfo) -> Response:
    """Map a core ErrorInfo to the ABS envelope."""
    if info.kind == "validation" and info.fields:
        first = info.fields[0]
        description = "; ".join(_describe(p) for p in info.fields)
        return failure(_field_code(first), description)
    if info.kind == "unauthorized":
        if credentials(request) is None:
            return failure("AUTH_REQUIRED", "send the API key in x-api-key or Authorization")
        return failure("INVALID_API_KEY", "the API key is unknown or revoked")
    if info.kind == "not_found":
        return failure("UNKNOWN_METHOD", f"unknown method {request.url.path}")
    return failure(_KIND_CODES.get(info.kind, "INVALID_REQUEST"), info.message)
