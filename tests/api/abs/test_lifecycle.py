"""The seed example end to end: create, update, read, list, delete, changes feed."""

from __future__ import annotations

import re
import uuid

import httpx

from tests.api.abs.conftest import Client, assert_ok, call

SEED_REQUEST = {
    "client_code": "EN0000FRM",
    "oauth_access_token": "",
    "processing_date": "2021-10-30",
    "processing_status": "",
    "processing_step": "",
}
SEED_FIELDS = {
    "client_code",
    "oauth_access_token",
    "processing_date",
    "processing_status",
    "processing_step",
    "error_description",
    "checksum",
    "payment_import_initiation_id",
    "uid",
    "id",
    "version",
    "state",
    "create_user",
    "create_date",
    "modify_user",
    "modify_date",
}
ABS_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}$")


def test_seed_example_lifecycle(client: httpx.Client, abs_client: Client) -> None:
    """create -> update -> read -> list -> delete -> changes feed, as the seed describes."""
    h = abs_client.headers
    created_env = call(client, "putDb", {**SEED_REQUEST, "client_code": abs_client.code}, h)
    assert created_env["total_records"] == 1
    created = assert_ok(created_env)
    assert set(created) == SEED_FIELDS
    assert created["client_code"] == abs_client.code
    assert created["oauth_access_token"] == ""
    assert created["processing_date"] == "2021-10-30"
    assert created["processing_status"] == "NEW"
    assert created["processing_step"] == "NORMAL"
    assert created["error_description"] == ""
    assert created["payment_import_initiation_id"] == 0
    assert created["state"] == 0
    assert isinstance(created["id"], int)
    assert created["id"] > 0
    assert isinstance(created["version"], int)
    assert created["version"] > 0
    assert str(uuid.UUID(created["uid"])) == created["uid"]
    assert created["create_user"] == created["modify_user"] == abs_client.user
    assert ABS_DATETIME.match(created["create_date"])
    assert ABS_DATETIME.match(created["modify_date"])
    assert created["checksum"]

    update = {
        "client_code": abs_client.code,
        "uid": created["uid"],
        "version": created["version"],
        "processing_status": "PROCESSED",
        "processing_step": "FINAL",
        "payment_import_initiation_id": 77,
    }
    updated = assert_ok(call(client, "putDb", update, h))
    assert updated["id"] == created["id"]
    assert updated["uid"] == created["uid"]
    assert updated["version"] > created["version"]
    assert updated["processing_status"] == "PROCESSED"
    assert updated["processing_step"] == "FINAL"
    assert updated["payment_import_initiation_id"] == 77
    assert updated["processing_date"] == "2021-10-30"  # not sent: kept
    assert updated["checksum"] != created["checksum"]
    assert updated["create_date"] == created["create_date"]
    assert updated["create_user"] == created["create_user"]
    assert updated["modify_date"] >= created["modify_date"]

    by_id = assert_ok(call(client, "get", {"client_code": abs_client.code, "id": created["id"]}, h))
    by_uid = assert_ok(
        call(client, "get", {"client_code": abs_client.code, "uid": created["uid"]}, h)
    )
    assert by_id == by_uid == updated

    listed = call(client, "getList", {"client_code": abs_client.code}, h)
    assert listed["total_records"] == 1
    assert assert_ok(listed) == [updated]

    deleted = assert_ok(
        call(
            client,
            "delete",
            {"client_code": abs_client.code, "uid": created["uid"], "version": updated["version"]},
            h,
        )
    )
    assert deleted["state"] == 1
    assert deleted["version"] > updated["version"]
    empty = call(client, "getList", {"client_code": abs_client.code}, h)
    assert assert_ok(empty) == []
    assert empty["total_records"] == 0

    feed = call(client, "getChanges", {"client_code": abs_client.code, "offset_version": 0}, h)
    assert feed["total_records"] == 1
    assert assert_ok(feed) == [deleted]
    after = call(
        client,
        "getChanges",
        {"client_code": abs_client.code, "offset_version": created["version"]},
        h,
    )
    assert assert_ok(after) == [deleted]
    caught_up = call(
        client,
        "getChanges",
        {"client_code": abs_client.code, "offset_version": deleted["version"]},
        h,
    )
    assert assert_ok(caught_up) == []
    assert caught_up["total_records"] == 0


def test_update_by_id_with_checksum_and_bearer(client: httpx.Client, abs_client: Client) -> None:
    """Updates find the record by id alone, accept the current checksum, and Bearer auth works."""
    h = {"Authorization": f"Bearer {abs_client.key}"}
    created = assert_ok(call(client, "putDb", {"client_code": abs_client.code}, h))
    assert created["processing_date"] == ""
    updated = assert_ok(
        call(
            client,
            "putDb",
            {
                "client_code": abs_client.code,
                "id": created["id"],
                "checksum": created["checksum"],
                "oauth_access_token": "tok-1",
                "processing_date": "2022-01-31",
            },
            h,
        )
    )
    assert updated["uid"] == created["uid"]
    assert updated["oauth_access_token"] == "tok-1"
    assert updated["processing_date"] == "2022-01-31"
    assert updated["processing_status"] == "NEW"  # not sent: kept


def test_read_record_can_be_sent_back(client: httpx.Client, abs_client: Client) -> None:
    """A record as read (stamps and service fields included) is a valid putDb body."""
    h = abs_client.headers
    created = assert_ok(call(client, "putDb", {"client_code": abs_client.code}, h))
    sent_back = {**created, "processing_step": "RETRY", "action": "", "form_title": ""}
    updated = assert_ok(call(client, "putDb", sent_back, h))
    assert updated["processing_step"] == "RETRY"
    assert updated["version"] > created["version"]
    assert updated["create_date"] == created["create_date"]


def test_white_space_status_and_step_count_as_blank(
    client: httpx.Client, abs_client: Client
) -> None:
    """Regression (found by the property test): a status or step of white space alone was
    stored as sent; like "", it means the default on create and "unchanged" on update."""
    h = abs_client.headers
    blank = {"client_code": abs_client.code, "processing_status": "\r", "processing_step": " \t"}
    created = assert_ok(call(client, "putDb", blank, h))
    assert (created["processing_status"], created["processing_step"]) == ("NEW", "NORMAL")
    moved = {"client_code": abs_client.code, "id": created["id"], "processing_status": "SENT"}
    assert assert_ok(call(client, "putDb", moved, h))["processing_status"] == "SENT"
    again = {**blank, "id": created["id"]}
    updated = assert_ok(call(client, "putDb", again, h))
    assert (updated["processing_status"], updated["processing_step"]) == ("SENT", "NORMAL")
    assert updated["version"] > created["version"]


def test_regression_null_erased_some_fields_and_not_others(
    client: httpx.Client, abs_client: Client
) -> None:
    """`null` is a field left out, for every field (it turned the token and the date into
    "" and the initiation id into 0, but left the status): only "" and 0 clear."""
    h, code = abs_client.headers, abs_client.code
    values = {
        "oauth_access_token": "tok",
        "payment_import_initiation_id": 7,
        "processing_date": "2022-01-01",
        "processing_status": "DONE",
        "processing_step": "LAST",
    }
    made = assert_ok(call(client, "putDb", {"client_code": code, **values}, h))
    nulls = dict.fromkeys(values)
    kept = assert_ok(call(client, "putDb", {"client_code": code, "id": made["id"], **nulls}, h))
    assert {field: kept[field] for field in values} == values
    assert kept["version"] > made["version"]
    cleared = assert_ok(
        call(
            client,
            "putDb",
            {
                "client_code": code,
                "id": made["id"],
                "oauth_access_token": "",
                "payment_import_initiation_id": 0,
                "processing_date": "",
            },
            h,
        )
    )
    assert (
        cleared["oauth_access_token"],
        cleared["payment_import_initiation_id"],
        cleared["processing_date"],
    ) == ("", 0, "")
    fresh = assert_ok(call(client, "putDb", {"client_code": code, **nulls}, h))
    assert (fresh["processing_status"], fresh["processing_date"], fresh["oauth_access_token"]) == (
        "NEW",
        "",
        "",
    )


def test_regression_an_upper_case_uid_found_no_package(
    client: httpx.Client, abs_client: Client
) -> None:
    """A uid is a UUID, whose digits are case-insensitive (RFC 9562): in upper case it was
    PACKAGE_NOT_FOUND; it finds its package for get, update and delete."""
    h, code = abs_client.headers, abs_client.code
    made = assert_ok(call(client, "putDb", {"client_code": code}, h))
    upper = made["uid"].upper()
    got = assert_ok(call(client, "get", {"client_code": code, "uid": upper}, h))
    assert (got["id"], got["uid"]) == (made["id"], made["uid"])
    put = {"client_code": code, "uid": upper, "processing_step": "NEXT"}
    updated = assert_ok(call(client, "putDb", put, h))
    assert (updated["id"], updated["uid"], updated["processing_step"]) == (
        made["id"],
        made["uid"],
        "NEXT",
    )
    assert_ok(call(client, "delete", {"client_code": code, "uid": upper}, h))
