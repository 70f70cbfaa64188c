"""Numbered messages and the rspPrc envelope they travel in."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import Request

from writegate.core.http import ErrorInfo

# Numbers of the real Ikonomikal system.
BLANK = 1000086
DOC_EXISTS = 1000092
NOT_SUBSCRIBED = 1000097
BAD_PROCESS = 1000099
NOT_AUTHORIZED = 1000101
NO_SAVE_TOKEN = 1000103
NO_DELETE_TOKEN = 1000104
NO_NEW_TOKEN = 1000105
NO_DATA_TOKEN = 1000106
WRONG_SUBSCRIBER = 1000107
NO_SUBSCRIBER = 1000135
BAD_LOGIN = 1000141
NO_SESSION = 1000144

# writegate's own numbers, for failures the vendor's list does not cover.
MALFORMED = 9000001
INVALID_VALUE = 9000002
TOO_LONG = 9000003
CONTENT_TYPE = 9000004
TOO_LARGE = 9000005
UNKNOWN_API = 9000006
BAD_METHOD = 9000007
UNAVAILABLE = 9000008
INTERNAL = 9000009
DOC_MISSING = 9000010
WRONG_PROGRAM = 9000011
OUT_OF_RANGE = 9000012
BAD_COMMAND = 9000013
LOGIN_LIMITED = 9000014
TIMEOUT = 9000015

MESSAGES: dict[int, str] = {
    BLANK: "[1] cannot be blank.",
    DOC_EXISTS: "Document [1] already exists.",
    NOT_SUBSCRIBED: "Program [1] is not in the subscription.",
    BAD_PROCESS: "Invalid process type [1].",
    NOT_AUTHORIZED: "User [1] is not authorized for [2].",
    NO_SAVE_TOKEN: "SAVE token for [1] does not exist or has expired.",
    NO_DELETE_TOKEN: "DELETE token for [1] does not exist or has expired.",
    NO_NEW_TOKEN: "NEW token for [1] does not exist or has expired.",
    NO_DATA_TOKEN: "DATA token for [1] does not exist or has expired.",
    WRONG_SUBSCRIBER: "User must be logged in on subscriber [1].",
    NO_SUBSCRIBER: "Subscriber [1] does not exist.",
    BAD_LOGIN: "Invalid user id and password.",
    NO_SESSION: "User session does not exist.",
    MALFORMED: "The request is not valid JSON: [1]",
    INVALID_VALUE: "[1] is invalid: [2]",
    TOO_LONG: "[1] is longer than [2] characters.",
    CONTENT_TYPE: "The request must be sent as application/json, not [1].",
    TOO_LARGE: "The request is larger than [1] bytes.",
    UNKNOWN_API: "Unknown API [1].",
    BAD_METHOD: "Method [1] is not allowed; use POST.",
    UNAVAILABLE: "The service is temporarily unavailable; retry later.",
    INTERNAL: "Internal error.",
    DOC_MISSING: "Document [1] does not exist.",
    WRONG_PROGRAM: "Program [1] cannot be used with [2].",
    OUT_OF_RANGE: "[1] must be between [2] and [3].",
    BAD_COMMAND: "Invalid record command type [1].",
    LOGIN_LIMITED: "Too many login attempts; retry in [1] seconds.",
    TIMEOUT: "The request was not received within [1] seconds.",
}

#: the process token each procID stands for, and the error when it is missing
PROCESS_NAMES = {0: "SAVE", 1: "NEW", 2: "DELETE", 3: "DATA"}
TOKEN_ERRORS = {0: NO_SAVE_TOKEN, 1: NO_NEW_TOKEN, 2: NO_DELETE_TOKEN, 3: NO_DATA_TOKEN}

_PLACEHOLDER = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class Param:
    """One message parameter: the text for its placeholder and the field it is about."""

    value: str
    label: str = ""


class ApiError(Exception):
    """A numbered Ikonomikal message; its parameters fill [1], [2], ... in order."""

    def __init__(self, number: int, *params: Param | str) -> None:
        self.number = number
        self.params = tuple(p if isinstance(p, Param) else Param(p) for p in params)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The message text with its placeholders filled."""

        def fill(m: re.Match[str]) -> str:
            i = int(m.group(1)) - 1
            return self.params[i].value if 0 <= i < len(self.params) else m.group(0)

        return _PLACEHOLDER.sub(fill, MESSAGES[self.number])


def from_error_info(
    info: ErrorInfo, request: Request, max_body: int, body_timeout: float
) -> ApiError:
    """Translate a failure the framework caught into a numbered message."""
    if info.kind == "malformed":
        detail = info.message.removeprefix("malformed JSON: ")
        return ApiError(MALFORMED, detail)
    if info.kind == "validation":
        if not info.fields:  # the database refused a value: say so, not "not an object"
            return ApiError(INVALID_VALUE, Param("a value"), info.message)
        problem = info.fields[0]
        if not problem.field:
            return ApiError(INVALID_VALUE, Param("request body"), "must be a JSON object")
        return ApiError(INVALID_VALUE, Param(problem.field, problem.field), problem.message)
    if info.kind == "content_type":
        return ApiError(CONTENT_TYPE, request.headers.get("content-type", "")[:100] or "none")
    if info.kind == "too_large":
        return ApiError(TOO_LARGE, str(max_body))
    if info.kind == "timeout":
        return ApiError(TIMEOUT, f"{body_timeout:g}")
    if info.kind == "not_found":
        return ApiError(UNKNOWN_API, request.url.path[:200])
    if info.kind == "method_not_allowed":
        return ApiError(BAD_METHOD, request.method)
    if info.kind == "unavailable":
        return ApiError(UNAVAILABLE)
    return ApiError(INTERNAL)
