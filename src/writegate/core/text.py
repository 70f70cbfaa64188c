"""Text as every API accepts it: real Unicode, and no NUL where the value is stored."""

from __future__ import annotations

import re
import uuid
from typing import Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

#: the pydantic error type of a refused string; each module maps it to its own error code
ERROR_TYPE = "invalid_characters"
SURROGATE_MESSAGE = "must be Unicode text: a lone surrogate (U+D800 to U+DFFF) is not a character"
NUL_MESSAGE = "must not contain NUL (U+0000) characters"

# JSON's "\ud800" escape decodes to a lone surrogate, which no encoder (UTF-8 for the
# database, argon2, the response) can write: refused at the door, not deep inside a call.
_SURROGATE = re.compile("[\ud800-\udfff]")


def problem(value: str, *, nul: bool = True) -> str | None:
    """Why `value` is not acceptable text (`nul`: NUL refused too), or None."""
    if _SURROGATE.search(value):
        return SURROGATE_MESSAGE
    if nul and "\x00" in value:
        return NUL_MESSAGE
    return None


def _check(value: Any, nul: bool) -> Any:
    if isinstance(value, str):
        reason = problem(value, nul=nul)
        if reason is not None:
            raise PydanticCustomError(ERROR_TYPE, reason)
    return value


def check_unicode(value: Any) -> Any:
    """Validator: refuse a string holding a lone surrogate; anything else passes as is."""
    return _check(value, nul=False)


def check_storable(value: Any) -> Any:
    """Validator: refuse a string holding a lone surrogate or NUL; anything else passes."""
    return _check(value, nul=True)


# Before-validators, so they run ahead of the field's other checks and no later message
# echoes the bad value. Put them last in an Annotated (before-validators run last-first).
# On an optional field with length limits (`X | None = Field(max_length=...)`) use the
# functions in a `field_validator(..., mode="before")` instead: a marker inside the union
# would turn pydantic's string_too_long into a generic too_long.
#: validator marker: refuse lone surrogates
UNICODE = BeforeValidator(check_unicode)
#: validator marker: refuse lone surrogates and NUL (PostgreSQL text cannot hold NUL)
STORABLE = BeforeValidator(check_storable)


def whole_number(text: str, max_digits: int) -> int | None:
    """`text` as an int if it is 1 to `max_digits` ASCII digits, else None."""
    # str.isdigit() is true of "²" and "٣" too, which int() refuses or reads as 3.
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None


def canonical_uuid(value: str) -> str:
    """A UUID in the form writegate stores ids in (lower case, hyphens); other text as it is.

    RFC 9562: a UUID's hexadecimal digits are case-insensitive on input.
    """
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value
