"""ServiceStack content negotiation: Accept, ?format= and suffixes; errors follow the format."""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from xml.etree import ElementTree as ET

import httpx

from tests.api.bokamera.conftest import SETTINGS, SYNC, start_sync, wait_done

NS = "{http://schemas.servicestack.net/types}"


def parse_xml(text: str) -> ET.Element:
    """Parse XML our own server produced."""
    return ET.fromstring(text)  # noqa: S314 - trusted: the server under test wrote it


def test_sync_in_every_format(client: httpx.Client, vaka: Any, company: Any) -> None:
    """One finished sync as JSON, XML, CSV and JSON Lines, chosen three ways."""
    co = company(vaka(7))
    sync_id = start_sync(client, co)["Id"]
    done = wait_done(client, co, sync_id)
    path = f"{SYNC}/{sync_id}"

    r = client.get(path, headers={**co.headers, "accept": "application/xml"})
    assert r.headers["content-type"].startswith("application/xml")
    root = parse_xml(r.text)
    assert root.tag == f"{NS}AxemaUserSyncJobResponse"
    assert root.findtext(f"{NS}Id") == sync_id
    assert root.findtext(f"{NS}UsersCreated") == "7"

    r = client.get(path, params={"format": "csv"}, headers=co.headers)
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 1
    assert rows[0]["Id"] == sync_id
    assert rows[0]["StatusName"] == "Completed"

    r = client.get(f"{path}.jsonl", headers=co.headers)
    assert r.headers["content-type"].startswith("text/jsonl")
    lines = r.text.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == done

    r = client.get(f"{path}.json", headers={**co.headers, "accept": "application/xml"})
    assert r.json() == done

    r = client.get(f"{SYNC}.xml", headers=co.headers)
    root = parse_xml(r.text)
    items = root.findall(f"{NS}Results/{NS}AxemaUserSyncJobResponse")
    assert [i.findtext(f"{NS}Id") for i in items] == [sync_id]

    r = client.get("/customers.csv", headers=co.headers)
    assert len(list(csv.DictReader(io.StringIO(r.text)))) == 7


def test_jsonl_request_like_the_vendor_sample(
    client: httpx.Client, vaka: Any, company: Any
) -> None:
    """The seed's sample: text/jsonl both ways, Guid.Empty meaning the caller's own company."""
    co = company(vaka(2))
    r = client.post(
        SYNC,
        content=b'{"CompanyId":"00000000-0000-0000-0000-000000000000"}',
        headers={**co.headers, "content-type": "text/jsonl", "accept": "text/jsonl"},
    )
    assert r.status_code == 200
    body = json.loads(r.text.strip())
    assert body["Status"] == 0
    assert body["CompanyId"] == co.id
    wait_done(client, co, body["Id"])


def test_errors_follow_the_format(client: httpx.Client, company: Any) -> None:
    """A 404 asked for as XML is XML; an unknown format is a 400."""
    co = company(None)
    r = client.get(f"{SYNC}/00000000-0000-0000-0000-000000000001.xml", headers=co.headers)
    assert r.status_code == 404
    root = parse_xml(r.text)
    assert root.tag == f"{NS}ErrorResponse"
    assert root.findtext(f"{NS}ResponseStatus/{NS}ErrorCode") == "NotFound"
    r = client.get(SYNC, params={"format": "yaml"}, headers=co.headers)
    assert r.status_code == 400
    assert r.json()["ResponseStatus"]["ErrorCode"] == "UnsupportedFormat"
    r = client.get(f"{SYNC}.csv")
    assert r.status_code == 401
    assert r.text.splitlines()[0].startswith("ErrorCode,Message")


def _order(element: ET.Element) -> list[str]:
    return [child.tag.removeprefix(NS) for child in element]


def test_regression_xml_members_came_in_the_json_order(
    client: httpx.Client, vaka: Any, company: Any
) -> None:
    """.NET's DataContractSerializer (ServiceStack's XML clients) reads a plain class's
    members in ordinal order of their names and silently skips one out of that order: the
    JSON order (Id, CompanyId, Status, ...) lost CompanyId, the counters and the dates.
    ServiceStack's own types keep their DataMember order."""
    co = company(vaka(3))
    sync_id = start_sync(client, co)["Id"]
    wait_done(client, co, sync_id)
    one = parse_xml(client.get(f"{SYNC}/{sync_id}.xml", headers=co.headers).text)
    names = _order(one)
    assert names == sorted(names)
    assert names[:4] == ["CompanyId", "CreatedDate", "ErrorMessage", "Id"]
    assert one.findtext(f"{NS}UsersCreated") == "3"
    page = parse_xml(client.get(f"{SYNC}.xml", headers=co.headers).text)
    assert _order(page) == ["Offset", "Total", "Results"]  # QueryResponse<T>: Order 1-3
    (item,) = page.findall(f"{NS}Results/{NS}AxemaUserSyncJobResponse")
    assert _order(item) == names
    people = parse_xml(client.get("/customers.xml", headers=co.headers).text)
    assert _order(people) == ["Offset", "Total", "Results"]
    persons = people.findall(f"{NS}Results/{NS}CustomerQueryResponse")
    assert len(persons) == 3
    for person in persons:
        assert _order(person) == sorted(_order(person))
    settings = parse_xml(client.get(f"{SETTINGS}.xml", headers=co.headers).text)
    assert _order(settings) == sorted(_order(settings))
    refused = client.post(f"{SYNC}.xml", json={"CompanyId": "not-a-guid"}, headers=co.headers)
    status = parse_xml(refused.text).find(f"{NS}ResponseStatus")
    assert status is not None
    assert _order(status) == ["ErrorCode", "Message", "Errors"]  # ResponseStatus: Order 1, 2, 4
    errors = status.find(f"{NS}Errors")
    assert errors is not None
    (error,) = list(errors)
    assert _order(error) == ["ErrorCode", "FieldName", "Message"]  # ResponseError: Order 1-3
