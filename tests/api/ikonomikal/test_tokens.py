"""Process tokens: single use, bound to session, program and procID, expiring, race-safe."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.api.ikonomikal.conftest import DELETE, OK, SAVE, Iko, race, rsp
from tests.harness import Server, start_server

NEW_GONE = rsp(1000105, "NEW token for SS07 does not exist or has expired.", ("SS07", "pPRGM"))


def test_token_is_used_once(iko: Iko) -> None:
    """The second save with one NEW token is refused and writes nothing."""
    iko.must_token(1)
    assert iko.save("ONE", "First")["rspPrc"] == OK
    second = iko.save("TWO", "Second")
    assert second == {
        "parCode": [],
        "modInf": {"mUser": "", "mGroup": "", "mDate": 0, "mTime": 0},
        "rspPrc": NEW_GONE,
    }
    assert [r["f001"] for r in iko.read_all()["rowData"]] == ["ONE"]


def test_no_token_at_all(iko: Iko) -> None:
    """A save without ever asking for a token is refused."""
    assert iko.save("FIN", "Finance")["rspPrc"] == NEW_GONE


def test_token_of_another_proc_id(iko: Iko) -> None:
    """Each call needs the token of its own procID; the others stay unused."""
    iko.must_token(1)
    assert iko.save("FIN", "Finance", cmd=1)["rspPrc"] == rsp(
        1000103, "SAVE token for SS07 does not exist or has expired.", ("SS07", "pPRGM")
    )
    assert iko.read()["rspPrc"] == rsp(
        1000106, "DATA token for SS07 does not exist or has expired.", ("SS07", "pPRGM")
    )
    assert iko.delete(["FIN"])["rspPrc"] == rsp(
        1000104, "DELETE token for SS07 does not exist or has expired.", ("SS07", "pPRGM")
    )
    iko.must_token(0)
    iko.must_token(3)
    iko.must_token(2)
    assert iko.save("FIN", "Finance")["rspPrc"] == OK  # the NEW token was not touched
    assert iko.save("FIN", "Finance", cmd=1)["rspPrc"] == OK
    assert iko.delete(["FIN"])["rspPrc"] == OK
    assert iko.read()["rspPrc"] == OK


def test_token_of_another_program(connect: Any) -> None:
    """A NEW token for SS06 does not allow an SS07 save."""
    iko = connect(roles=("ikonomikal", "ikonomikal:admin"), attrs={"programs": "SS07,SS06"})
    iko.must_token(1, program="SS06")
    assert iko.save("FIN", "Finance")["rspPrc"] == NEW_GONE
    body = iko.save_body("FIN", "Finance")
    body["prgInf"]["pPRGM"] = "SS06"
    assert iko.post(SAVE, body)["rspPrc"] == rsp(
        9000011, "Program SS06 cannot be used with SS07.", ("SS06", "pPRGM"), ("SS07", "")
    )


def test_token_of_another_session(connect: Any) -> None:
    """A token belongs to the session that asked for it, even for the same user."""
    first = connect()
    second = connect(first.user)
    assert first.session()["sessID"] != second.session()["sessID"]
    first.must_token(1)
    assert second.save("FIN", "Finance")["rspPrc"] == NEW_GONE
    assert first.save("FIN", "Finance")["rspPrc"] == OK


def test_token_expires_after_sixty_minutes(iko: Iko, clock: Any) -> None:
    """A token is good for 60 minutes after issue and no longer."""
    iko.must_token(1)
    clock.advance(timedelta(minutes=59, seconds=59))
    assert iko.save("EARLY", "In time")["rspPrc"] == OK
    iko.must_token(1)
    clock.advance(timedelta(minutes=60))
    assert iko.save("LATE", "Too late")["rspPrc"] == NEW_GONE
    iko.must_token(1)
    assert iko.save("LATE", "New token")["rspPrc"] == OK


def test_token_lifetime_is_configurable(server: Server, new_user: Any) -> None:
    """WRITEGATE_TOKEN_TTL_SECONDS shortens the lifetime (here to two minutes)."""
    short = start_server(server.settings.database_url, token_ttl_seconds=120, embedded_worker=False)
    try:
        with short.client() as http:
            iko = Iko(http, new_user())
            iko.login()
            iko.must_token(1)
            short.services.clock.advance(timedelta(seconds=119))
            assert iko.save("IN", "In time")["rspPrc"] == OK
            iko.must_token(1)
            short.services.clock.advance(timedelta(seconds=120))
            assert iko.save("OUT", "Too late")["rspPrc"] == NEW_GONE
    finally:
        short.stop()


def test_twenty_concurrent_saves_one_token(iko: Iko, server: Server) -> None:
    """Of 20 saves racing for one token exactly one succeeds; only its record exists."""
    iko.must_token(1)
    answers = race(server, SAVE, [iko.save_body(f"R{i:02d}", f"Race {i}") for i in range(20)])
    winners = [a for a in answers if a["rspPrc"]["rspID"] == 0]
    assert len(winners) == 1
    assert all(a["rspPrc"] == NEW_GONE for a in answers if a not in winners)
    rows = iko.read_all()["rowData"]
    assert [r["f001"] for r in rows] == winners[0]["parCode"]


def test_concurrent_saves_share_two_tokens(iko: Iko, server: Server) -> None:
    """With two outstanding tokens, exactly two of ten racing saves succeed."""
    iko.must_token(1)
    iko.must_token(1)
    answers = race(server, SAVE, [iko.save_body(f"T{i}", f"Two {i}") for i in range(10)])
    assert sum(a["rspPrc"]["rspID"] == 0 for a in answers) == 2
    assert iko.read_all()["rowTotal"] == 2


def test_regression_racing_deletes_of_one_code_all_succeeded(connect: Any, server: Server) -> None:
    """Four sessions, each with a DELETE token, delete one code at once: exactly one is
    answered rspID 0, the others 9000010 as if it had never been there, and they keep their
    token. Several answered 0 (each spending its token): a plain read found the record in
    each of them before any deleted it (PostgreSQL: 3 rounds in 10 on one process)."""
    first = connect()
    sessions = [first, *(connect(first.user) for _ in range(3))]
    for n in range(12):
        code = f"RD{n:02d}"
        first.must_token(1)
        assert first.save(code, "Race me")["rspPrc"] == OK
        for iko in sessions:
            iko.must_token(2)
        bodies = [
            {**iko.session(), "prgInf": {"pMODL": "SS", "pPRGM": "SS07"}, "parCode": [code]}
            for iko in sessions
        ]
        answers = race(server, DELETE, bodies)
        ids = sorted(a["rspPrc"]["rspID"] for a in answers)
        assert ids == [0, 9000010, 9000010, 9000010], (n, answers)
        for iko, answer in zip(sessions, answers, strict=True):
            if answer["rspPrc"]["rspID"]:
                assert iko.delete([code])["rspPrc"]["rspID"] == 9000010  # the token is kept
                first.must_token(1)
                assert first.save(code, "Again")["rspPrc"] == OK
                assert iko.delete([code])["rspPrc"] == OK  # ... and spent now
