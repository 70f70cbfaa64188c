"""Request DTO fields from a JSON, JSON Lines or form body plus the query string."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from fastapi import Request

from writegate.modules.bokamera.errors import ApiError

JSON_TYPES = (
    "application/json",
    "text/json",
    "text/jsonl",
    "application/jsonl",
    "application/x-ndjson",
    "",
)
#: longest integer literal accepted in a JSON body; every numeric field of this API is far shorter
MAX_DIGITS = 100


class _NumberTooLong(ValueError):
    def __init__(self, digits: int) -> None:
        super().__init__(digits)
        self.digits = digits


def _int(literal: str) -> int:
    digits = len(literal.lstrip("-"))
    if digits > MAX_DIGITS:
        raise _NumberTooLong(digits)
    return int(literal)


def _malformed(message: str) -> ApiError:
    return ApiError(400, "SerializationException", message)


def parse_json(text: str) -> Any:
    """json.loads, with a client-facing message for every way it can fail."""
    try:
        return json.loads(text, parse_int=_int)
    except _NumberTooLong as exc:
        raise _malformed(
            f"Malformed JSON body: a number has {exc.digits} digits; "
            f"numbers may have at most {MAX_DIGITS}"
        ) from None
    except RecursionError:
        # Python's own words ("maximum recursion depth exceeded") mean nothing to a client.
        raise _malformed("Malformed JSON body: objects and arrays are nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise _malformed(f"Malformed JSON body: {exc}") from None
    except ValueError:
        raise _malformed("Malformed JSON body: it is not valid JSON") from None


def canonical(fields: Iterable[tuple[str, Any]], names: Iterable[str]) -> dict[str, Any]:
    """The fields, each key that names one of `names` in another letter case spelled as that
    name (ServiceStack binds DTO fields case-insensitively); the last of a name wins."""
    spelled = {name.lower(): name for name in names}
    return {spelled.get(key.lower(), key): value for key, value in fields}


def respell_query(raw: bytes, names: Iterable[str]) -> bytes:
    """A raw query string whose keys naming one of `names` in another letter case are spelled
    as that name; every other byte as sent."""
    spelled = {name.lower(): name for name in names}
    parts = raw.split(b"&")
    for i, part in enumerate(parts):
        key, eq, value = part.partition(b"=")
        name = spelled.get(unquote_plus(key.decode("latin-1")).lower())
        if name is not None:
            parts[i] = name.encode() + eq + value
    return b"&".join(parts)


async def read_fields(request: Request, names: Iterable[str]) -> dict[str, Any]:
    """The request's fields named as the DTO's `names`: query string, overlaid by a form, JSON
    or JSON Lines body."""
    names = list(names)
    raw = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    query = ((k, v) for k, v in request.query_params.multi_items() if k.lower() != "format")
    fields = canonical(query, names)
    if not raw.strip():
        return fields
    if ctype == "application/x-www-form-urlencoded":
        try:
            form = parse_qsl(raw.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            raise _malformed("Body is not valid UTF-8") from None
        return {**fields, **canonical(form, names)}
    if ctype not in JSON_TYPES and not ctype.endswith("+json"):
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"Content-Type {ctype!r} is not supported: send application/json or text/jsonl",
        )
    text = raw.decode("utf-8-sig", errors="replace")  # a byte order mark, as .NET reads it
    if "jsonl" in ctype or "ndjson" in ctype:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) != 1:
            raise _malformed("A JSON Lines body must hold exactly one request")
        text = lines[0]
    data = parse_json(text)
    if not isinstance(data, dict):
        raise _malformed("The request body must be a JSON object")
    return {**fields, **canonical(data.items(), names)}
