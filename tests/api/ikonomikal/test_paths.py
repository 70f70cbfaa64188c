"""Ikonomikal paths match in any letter case, as on the vendor's IIS servers."""

from __future__ import annotations

import httpx
import pytest

from tests.api.ikonomikal.conftest import LOGIN, SAVE, Iko, rsp
from tests.harness import Server
from tests.system.obskit import scrape, value


@pytest.mark.parametrize("spell", [str.upper, str.lower, str.swapcase])
def test_every_call_in_any_case(iko: Iko, spell: object) -> None:
    """Token and save on re-cased paths do exactly what they do on the documented ones."""
    assert callable(spell)
    token = "/bcss_wbcl_wa_sc/api/O1_getSCPrgPrcCheckTkn"
    body = {"pgProcTkn": {"procID": 1, "prgInf": {"pMODL": "SS", "pPRGM": "SS07"}}}
    answer = iko.post(spell(token), {**iko.session(), **body})
    assert answer["rspID"] == 0, answer
    answer = iko.post(spell(SAVE), iko.save_body("", "Any case"))
    assert answer["rspPrc"]["rspID"] == 0, answer
    assert answer["parCode"][0].isdigit()


def test_login_in_lower_case(iko: Iko) -> None:
    """The login path, all lower case, is the login call (not 9000006 Unknown API)."""
    user = iko.user
    answer = iko.post(LOGIN.lower(), {"userID": user.email, "userPW": user.password})
    assert answer["rspPrc"]["rspID"] == 0, answer
    assert answer["sessID"]


def test_errors_under_any_case_prefix_are_in_the_envelope(client: httpx.Client) -> None:
    """Unknown paths, wrong methods and bad bodies under an upper-case prefix still answer
    HTTP 200 in rspPrc, in the endpoint's own shape."""
    path = "/BCSS_WBCL_WA_SS/API/SS_02_SS99_SAV"
    r = client.post(path, json={})
    assert (r.status_code, r.json()) == (
        200,
        {"rspPrc": rsp(9000006, f"Unknown API {path}.", (path, ""))},
    )
    r = client.get(SAVE.upper())
    assert r.status_code == 200
    assert r.json()["rspPrc"]["rspID"] == 9000007
    assert r.json()["parCode"] == []
    r = client.post(SAVE.upper(), content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 200
    assert r.json()["rspPrc"]["rspID"] == 9000001
    assert r.json()["parCode"] == []


def test_regression_a_re_cased_call_is_counted_under_ikonomikal(
    client: httpx.Client, server: Server
) -> None:
    """Metrics label a re-cased path with its API and route, not as another module's."""
    name = "writegate_http_request_duration_seconds_count"
    labels = {"api": "ikonomikal", "route": SAVE, "method": "POST", "status": "200"}
    before = value(scrape(server.url), name, **labels)
    assert client.post(SAVE.upper(), json={}).json()["rspPrc"]["rspID"] != 0
    assert value(scrape(server.url), name, **labels) - before == 1
