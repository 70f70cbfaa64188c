"""Login sessions: the answer's fields and the eight-hour idle expiry."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from tests.api.ikonomikal.conftest import OK, Iko, User, rsp

GONE = rsp(1000144, "User session does not exist.")


def test_login_answer(connect: Any) -> None:
    """Login answers the documented fields; intGID is stable per user, sessID new each time."""
    first = connect()
    second = connect(first.user)
    a, b = first.login_answer, second.login_answer
    assert set(a) == {
        "subsID",
        "intGID",
        "userID",
        "sessID",
        "userName",
        "dteFmt",
        "dteSpFmt",
        "serverTimeOffSet",
        "clientTimeZone",
        "rspPrc",
    }
    assert a["rspPrc"] == OK
    assert (a["subsID"], a["userID"], a["userName"]) == (
        first.user.subs_id,
        first.user.email,
        "API01",
    )
    assert a["clientTimeZone"] == -180
    uuid_shape = re.compile(r"^[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}$")
    assert uuid_shape.match(a["sessID"])
    assert uuid_shape.match(a["intGID"])
    assert a["intGID"] == b["intGID"]
    assert a["sessID"] != b["sessID"]


def test_session_expires_after_eight_idle_hours(iko: Iko, clock: Any) -> None:
    """Eight hours without use end the session; its tokens go with it."""
    iko.must_token(1)
    clock.advance(timedelta(hours=8))
    assert iko.token(1)["rspPrc"] == GONE
    assert iko.save()["rspPrc"] == GONE
    iko.login()
    assert iko.save()["rspPrc"]["rspID"] == 1000105


def test_use_keeps_the_session_alive(iko: Iko, clock: Any) -> None:
    """Each use restarts the idle timer: three 7-hour gaps in a row are fine."""
    for _ in range(3):
        clock.advance(timedelta(hours=7, minutes=59))
        iko.must_token(3)
    assert iko.read()["rspPrc"] == OK
    clock.advance(timedelta(hours=8, seconds=1))
    assert iko.read()["rspPrc"] == GONE


def test_login_ignores_the_case_of_the_email(connect: Any) -> None:
    """Users provisioned with a lower-case e-mail may type it in any case."""
    first = connect()
    shouted = connect(User(email=first.user.email.upper(), subs_id=first.user.subs_id))
    assert shouted.login_answer["userID"] == first.user.email
    assert shouted.login_answer["intGID"] == first.login_answer["intGID"]
    shouted.must_token(1)
    assert shouted.save()["rspPrc"] == OK
