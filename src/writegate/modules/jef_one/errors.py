"""jef-one's error envelope: `is_accepted: false` with error_type, error_code and errors."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from writegate.core.http import ErrorInfo
from writegate.core.problems import FieldProblem
from writegate.modules.jef_one.schemas import FORMATS

#: pydantic error type -> jef-one error code
_FIELD_CODES = {
    "missing": "MISSING_FIELD",
    "extra_forbidden": "UNKNOWN_FIELD",
    "string_type": "INVALID_TYPE",
    "bool_type": "INVALID_TYPE",
    "string_pattern_mismatch": "INVALID_FORMAT",
    "string_too_short": "INVALID_LENGTH",
    "string_too_long": "INVALID_LENGTH",
    "literal_error": "INVALID_VALUE",
    "model_attributes_type": "INVALID_BODY",
    "model_type": "INVALID_BODY",
    "dict_type": "INVALID_BODY",
    "json_invalid": "MALFORMED_JSON",
}

#: ErrorInfo.kind -> (HTTP status, error_type, error_code)
_KINDS = {
    "malformed": (400, "invalid_json", "MALFORMED_JSON"),
    "content_type": (400, "invalid_content_type", "UNSUPPORTED_CONTENT_TYPE"),
    "too_large": (400, "payload_too_large", "PAYLOAD_TOO_LARGE"),
    "not_found": (404, "not_found", "ROUTE_NOT_FOUND"),
    "method_not_allowed": (405, "method_not_allowed", "METHOD_NOT_ALLOWED"),
    "unauthorized": (401, "unauthorized", "UNAUTHORIZED"),
    "forbidden": (403, "forbidden", "FORBIDDEN"),
    "unavailable": (503, "service_unavailable", "DATABASE_UNAVAILABLE"),
    "internal": (500, "internal_error", "INTERNAL_ERROR"),
}


class JefOneError(Exception):
    """A refusal in jef-one's envelope."""

    def __init__(
        self,
        status: int,
        error_type: str,
        error_code: str,
        message: str,
        errors: list[dict[str, str]] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.error_code = error_code
        self.message = message
        self.errors = errors or []
        self.extra = extra


def _field_message(p: FieldProblem) -> str:
    name = p.field or "body"
    if p.code == "missing":
        return f"{name} is required"
    if p.code == "extra_forbidden":
        return f"{name} is not a field of this API"
    if p.code in ("model_attributes_type", "model_type", "dict_type"):
        return "the body must be a JSON object"
    expected = FORMATS.get(p.field.split(".")[-1])
    if p.code.endswith("_type"):
        kind = "a string" if p.code == "string_type" else "a boolean"
        return f"{name} must be {kind}" + (f" ({expected})" if expected else "")
    if expected:
        return f"{name} must be {expected}"
    return f"{name}: {p.message}"


def field_errors(problems: tuple[FieldProblem, ...]) -> list[dict[str, str]]:
    """Per-field errors in jef-one's shape."""
    return [
        {
            "field": p.field,
            "code": _FIELD_CODES.get(p.code, "INVALID_VALUE"),
            "message": _field_message(p),
        }
        for p in problems
    ]


def envelope(
    error_type: str,
    error_code: str,
    message: str,
    errors: list[dict[str, str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The refusal body: every response-schema field present."""
    body: dict[str, Any] = {
        "is_accepted": False,
        "message": message,
        "operation": None,
        "job_id": None,
        "job_status": None,
        "target_table": None,
        "target_pk": None,
        "confirmation": None,
        "allowed_method": None,
        "error_type": error_type,
        "error_code": error_code,
        "errors": errors or [],
        "error": message,
    }
    body.update(extra)
    return body


def render_error(request: Request, info: ErrorInfo) -> Response:
    """Map any core/framework refusal to jef-one's envelope."""
    allowed = "POST" if request.url.path.startswith("/one-") else "GET"
    status, error_type, code = _KINDS.get(info.kind, (400, "bad_request", "BAD_REQUEST"))
    errors = field_errors(info.fields) if info.fields else []
    message = info.message
    if info.kind == "validation":
        error_type = "validation_error"
        code = errors[0]["code"] if errors else "INVALID_PAYLOAD"
        message = "invalid request: " + ("; ".join(e["message"] for e in errors) or message)
    elif info.kind == "method_not_allowed":
        message = f"method {request.method} is not allowed on {request.url.path}; use {allowed}"
    elif info.kind == "not_found":
        message = f"no jef-one API at {request.url.path}"
    elif info.kind == "malformed" and not errors:  # each malformed body names its problem
        errors = [{"field": "", "code": code, "message": message}]
    body = envelope(error_type, code, message, errors)
    if info.kind != "not_found":
        body["allowed_method"] = allowed
    headers = {"retry-after": "1"} if status == 503 else None
    return JSONResponse(body, status_code=status, headers=headers)


def render_jef_one_error(exc: JefOneError) -> Response:
    """Render a JefOneError raised by the service layer."""
    body = envelope(exc.error_type, exc.error_code, exc.message, exc.errors, **exc.extra)
    return JSONResponse(body, status_code=exc.status)
