"""ServiceStack-style content negotiation: JSON by default; XML, CSV and JSON Lines on request."""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from xml.etree import ElementTree as ET

from fastapi import Request, Response

MEDIA = {
    "json": "application/json; charset=utf-8",
    "xml": "application/xml; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "jsonl": "text/jsonl; charset=utf-8",
}
ACCEPT = {
    "application/json": "json",
    "text/json": "json",
    "application/xml": "xml",
    "text/xml": "xml",
    "text/csv": "csv",
    "text/jsonl": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-ndjson": "jsonl",
    "application/x-jsonlines": "jsonl",
}
XML_NS = "http://schemas.servicestack.net/types"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
#: element names of list items, by the list's property name
ITEM_NAMES = {"Errors": "ResponseError"}


class UnknownFormat(ValueError):
    """A ?format= or suffix names a format this API does not speak."""


def _from_accept(header: str) -> str:
    best, best_q = "json", -1.0
    for part in header.split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        fmt = ACCEPT.get(media.strip().lower())
        if fmt is not None and q > best_q:
            best, best_q = fmt, q
    return best


def negotiate(request: Request, *, strict: bool = True) -> str:
    """The response format: path suffix, then ?format=, then Accept; JSON if none applies."""
    for explicit in (request.path_params.get("ext"), request.query_params.get("format")):
        if explicit:
            fmt = str(explicit).lower()
            if fmt in MEDIA:
                return fmt
            if strict:
                raise UnknownFormat(fmt)
            return "json"
    return _from_accept(request.headers.get("accept", ""))


def _rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(data.get("Results"), list):
        return list(data["Results"])
    if isinstance(data.get("ResponseStatus"), dict) and len(data) == 1:
        return [data["ResponseStatus"]]
    return [data]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def to_csv(data: dict[str, Any]) -> str:
    """Header row plus one row per result (or the object itself)."""
    rows = _rows(data)
    out = io.StringIO()
    if not rows:
        return ""
    writer = csv.writer(out, lineterminator="\r\n")
    columns = list(rows[0])
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def to_jsonl(data: dict[str, Any]) -> str:
    """One JSON object per line: each result, or the object itself."""
    return "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in _rows(data))


#: ServiceStack's own types, whose members carry `DataMember(Order=...)`: written in the order
#: they are given. BokaMera's DTOs are plain classes, whose members DataContractSerializer
#: writes and reads in ordinal order of their names: a .NET client's XML deserializer skips,
#: silently, an element that comes out of that order.
_ORDERED_TYPES = frozenset({"ErrorResponse", "ResponseStatus", "ResponseError"})


def _members(type_name: str, value: dict[str, Any]) -> list[tuple[str, Any]]:
    """An object's members in the order its .NET type has them on the wire."""
    if type_name in _ORDERED_TYPES or type_name.startswith("QueryResponseOf"):
        return list(value.items())
    return sorted(value.items())


def _xml_value(
    parent: ET.Element, name: str, value: Any, type_name: str, item_name: str | None
) -> None:
    el = ET.SubElement(parent, name)
    if value is None:
        el.set(f"{{{XSI_NS}}}nil", "true")
    elif isinstance(value, dict):
        for k, v in _members(type_name, value):
            _xml_value(el, k, v, k, ITEM_NAMES.get(k))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                _xml_value(el, item_name or "Item", item, item_name or "Item", None)
            else:
                ET.SubElement(el, "string").text = _cell(item)
    else:
        el.text = _cell(value)


def to_xml(data: dict[str, Any], root: str, item_name: str | None) -> str:
    """DataContract-style XML in the ServiceStack types namespace, members in wire order."""
    ET.register_namespace("", XML_NS)
    ET.register_namespace("i", XSI_NS)
    top = ET.Element(f"{{{XML_NS}}}{root}")
    for k, v in _members(root, data):
        _xml_value(top, k, v, k, item_name if k == "Results" else ITEM_NAMES.get(k))
    for el in top.iter():
        if not el.tag.startswith("{"):
            el.tag = f"{{{XML_NS}}}{el.tag}"
    return '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(top, encoding="unicode")


def render(
    request: Request,
    data: dict[str, Any],
    *,
    root: str,
    item_name: str | None = None,
    status: int = 200,
    fmt: str | None = None,
) -> Response:
    """Serialize `data` (JSON-ready, PascalCase) in the negotiated format."""
    fmt = fmt or negotiate(request)
    if fmt == "xml":
        body = to_xml(data, root, item_name)
    elif fmt == "csv":
        body = to_csv(data)
    elif fmt == "jsonl":
        body = to_jsonl(data)
    else:
        body = json.dumps(data, separators=(",", ":"))
    return Response(body, status_code=status, media_type=MEDIA[fmt])
