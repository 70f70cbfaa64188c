"""ServiceStack `ResponseStatus` errors and the module's error renderer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response

from writegate.core.http import ErrorInfo
from writegate.core.problems import FieldProblem
from writegate.modules.bokamera.formats import negotiate, render

#: ErrorInfo.kind -> (HTTP status, ServiceStack ErrorCode)
KINDS = {
    "validation": (400, "ValidationException"),
    "malformed": (400, "SerializationException"),
    "content_type": (415, "UnsupportedMediaType"),
    "too_large": (413, "RequestEntityTooLarge"),
    "not_found": (404, "NotFound"),
    "method_not_allowed": (405, "MethodNotAllowed"),
    "timeout": (408, "RequestTimeout"),
    "unauthorized": (401, "Unauthorized"),
    "forbidden": (403, "Forbidden"),
    "unavailable": (503, "ServiceUnavailable"),
    "internal": (500, "InternalServerError"),
}
#: pydantic error types -> ServiceStack/FluentValidation-style field error codes
FIELD_CODES = {
    "missing": "NotNull",
    "string_too_short": "NotEmpty",
    "string_too_long": "MaximumLength",
    "uuid_parsing": "InvalidGuid",
    "uuid_type": "InvalidGuid",
    "int_parsing": "InvalidInteger",
    "int_type": "InvalidInteger",
    "int_parsing_size": "InvalidInteger",
    "less_than_equal": "InclusiveBetween",
    "greater_than_equal": "InclusiveBetween",
    "string_type": "InvalidString",
    "url_parsing": "InvalidUrl",
    "url_scheme": "InvalidUrl",
    "model_attributes_type": "InvalidObject",
    "dict_type": "InvalidObject",
    "value_error": "PredicateValidator",  # FluentValidation's code for a Must() rule
}

#: pydantic error types whose own wording is not fit for a client -> ours
FIELD_MESSAGES = {
    "int_parsing_size": "Number has too many digits to be a valid value",
}


@dataclass(frozen=True)
class FieldError:
    """One entry of ResponseStatus.Errors."""

    code: str
    field: str
    message: str


@dataclass
class ApiError(Exception):
    """An error answered with a ServiceStack ResponseStatus."""

    status: int
    code: str
    message: str
    errors: list[FieldError] = field(default_factory=list)
    meta: dict[str, str] | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def _pascal(code: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in code.split("_"))


def field_errors(problems: tuple[FieldProblem, ...] | list[FieldProblem]) -> list[FieldError]:
    """Turn core FieldProblems into ServiceStack field errors."""
    return [
        FieldError(
            FIELD_CODES.get(p.code, _pascal(p.code)),
            p.field,
            FIELD_MESSAGES.get(p.code, p.message),
        )
        for p in problems
    ]


def validation_error(problems: list[FieldError]) -> ApiError:
    """A 400 whose top-level code and message are the first field error's, as in ServiceStack."""
    first = problems[0]
    message = f"{first.field}: {first.message}" if first.field else first.message
    return ApiError(400, first.code, message, problems)


def body(err: ApiError) -> dict[str, Any]:
    """The ErrorResponse DTO."""
    status: dict[str, Any] = {
        "ErrorCode": err.code,
        "Message": err.message,
        "Errors": [
            {"ErrorCode": e.code, "FieldName": e.field, "Message": e.message} for e in err.errors
        ],
    }
    if err.meta:
        status["Meta"] = err.meta
    return {"ResponseStatus": status}


def render_api_error(request: Request, err: ApiError) -> Response:
    """Render an ApiError in the negotiated format."""
    response = render(
        request,
        body(err),
        root="ErrorResponse",
        status=err.status,
        fmt=negotiate(request, strict=False),
    )
    if err.status == 401:
        response.headers["www-authenticate"] = 'Bearer realm="writegate", ApiKey header="x-api-key"'
    return response


def render_error(request: Request, info: ErrorInfo) -> Response:
    """The module's renderer for failures the framework or core detected."""
    status, code = KINDS.get(info.kind, (info.status, "Error"))
    if info.kind == "validation" and info.fields:
        return render_api_error(request, validation_error(field_errors(info.fields)))
    return render_api_error(
        request, ApiError(status, code, info.message, field_errors(info.fields))
    )
