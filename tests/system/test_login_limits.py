"""Ikonomikal login limits: per user id and per client address, with backoff, in the database.

A server of its own, so the failures counted here never lock the shared test server's
loopback address; two servers on one database stand for several `serve` processes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select

from tests.harness import Server, fresh_database, start_server
from tests.system.apis import present_modules
from writegate.core import auth as core_auth
from writegate.core import login_limits as limits
from writegate.core.login_limits import LoginFailureRow
from writegate.modules.ikonomikal.logins import SCOPE

pytestmark = pytest.mark.skipif(
    "ikonomikal" not in present_modules(), reason="ikonomikal not present"
)

LOGIN = "/bcss_wbcl_wa_sc/api/O1_getSCSessWBLogVer"
PASSWORD = "right-" + uuid.uuid4().hex
BAD_LOGIN = 1000141
LIMITED = 9000014


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    """Two servers (two `serve` processes' worth of state) on one fresh database."""
    with fresh_database(str(tmp_path_factory.mktemp("limits"))) as url:
        a = start_server(url, modules=["ikonomikal"])
        b = start_server(url, modules=["ikonomikal"], auto_migrate=False, embedded_worker=False)
        yield a, b
        b.stop()
        a.stop()


@pytest.fixture
def srv(pair: tuple[Server, Server]) -> Iterator[Server]:
    """The first server, with no failures counted and its clock (both clocks) reset after."""
    a, b = pair
    with a.services.db.write() as s:
        s.execute(delete(LoginFailureRow))
    yield a
    a.services.clock.reset()
    b.services.clock.reset()


def user(server: Server) -> str:
    """A new Ikonomikal user with PASSWORD; returns the login name."""
    email = f"limit{uuid.uuid4().hex[:10]}@example.com"
    with server.services.db.write() as s:
        server.services.auth.create(
            s,
            name=email,
            tenant="2" + uuid.uuid4().hex[:6],
            roles=["ikonomikal"],
            password=PASSWORD,
        )
    return email


def login(c: httpx.Client, email: str, password: str) -> dict[str, Any]:
    """The login answer's rspPrc."""
    r = c.post(LOGIN, json={"userID": email, "userPW": password})
    assert r.status_code == 200, r.text
    prc: dict[str, Any] = r.json()["rspPrc"]
    return prc


def limited(seconds: int) -> dict[str, Any]:
    """rspPrc of a locked login."""
    return {
        "rspID": LIMITED,
        "rspMsg": f"Too many login attempts; retry in {seconds} seconds.",
        "rspChr": [{"pid": "1", "pValue": str(seconds), "plbl": ""}],
    }


def locked_for(prc: dict[str, Any], seconds: int) -> bool:
    """prc is a locked login with about `seconds` left (the calls before it took a moment)."""
    if prc["rspID"] != LIMITED:
        return False
    left = int(prc["rspChr"][0]["pValue"])
    return seconds - 5 <= left <= seconds and prc == limited(left)


class CountingHasher:
    """The real hasher, counting verifications."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.verified = 0

    def verify(self, stored: str, password: str) -> bool:
        with self.lock:
            self.verified += 1
        return bool(self.inner.verify(stored, password))

    def hash(self, password: str) -> str:
        return str(self.inner.hash(password))


@pytest.fixture
def spy(srv: Server) -> Iterator[CountingHasher]:
    """Count the password checks the server makes."""
    auth = srv.services.auth
    counting = CountingHasher(auth._hasher)
    auth._hasher = counting
    yield counting
    auth._hasher = counting.inner


def test_five_failures_lock_the_user_with_doubling_backoff(
    srv: Server, spy: CountingHasher
) -> None:
    """5 wrong passwords lock the user id for 60 s, during which even the right password
    is refused without a password check; the next failure locks for 120 s; a success
    clears the count."""
    email = user(srv)
    clock = srv.services.clock
    with srv.client() as c:
        for _ in range(5):
            assert login(c, email, "wrong")["rspID"] == BAD_LOGIN
        checked = spy.verified
        assert locked_for(login(c, email, PASSWORD), 60)
        assert locked_for(login(c, email.upper(), PASSWORD), 60)  # user ids ignore case
        assert spy.verified == checked  # a locked login costs no argon2 hash
        clock.advance(timedelta(seconds=61))
        assert login(c, email, "wrong")["rspID"] == BAD_LOGIN
        assert locked_for(login(c, email, PASSWORD), 120)
        clock.advance(timedelta(seconds=121))
        assert login(c, email, PASSWORD)["rspID"] == 0
        for _ in range(4):  # the success cleared the count: four more mistakes are allowed
            assert login(c, email, "wrong")["rspID"] == BAD_LOGIN
        assert login(c, email, PASSWORD)["rspID"] == 0


def test_the_lock_is_capped_and_forgotten(srv: Server) -> None:
    """The backoff stops doubling at 15 minutes; 15 minutes after a lock ends without a
    new failure the count starts again from zero."""
    email = user(srv)
    clock = srv.services.clock
    with srv.client() as c:
        for _ in range(5):
            login(c, email, "wrong")
        for seconds in (60, 120, 240, 480, 900, 900):
            assert locked_for(login(c, email, PASSWORD), seconds)
            clock.advance(timedelta(seconds=seconds + 1))
            assert login(c, email, "wrong")["rspID"] == BAD_LOGIN
        clock.advance(timedelta(seconds=900 + 900 + 1))
        for _ in range(4):
            assert login(c, email, "wrong")["rspID"] == BAD_LOGIN
        assert login(c, email, PASSWORD)["rspID"] == 0


def test_concurrent_guesses_get_at_most_five_password_checks(
    srv: Server, spy: CountingHasher
) -> None:
    """40 guesses at once for one user id: five are checked, the rest are refused as
    limited, because each attempt is counted before its password is checked."""
    email = user(srv)
    barrier = threading.Barrier(40)

    def guess(i: int) -> int:
        with srv.client() as c:
            barrier.wait(30)
            return int(login(c, email, f"guess-{i}")["rspID"])

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(guess, range(40)))
    assert sorted(set(answers)) == [BAD_LOGIN, LIMITED]
    assert answers.count(BAD_LOGIN) == 5
    assert spy.verified == 5


def test_thirty_failures_from_one_address_lock_it(srv: Server) -> None:
    """Failures for many user ids from one address: the 30th locks the address for 60 s,
    for every user id; a minute without failures after the lock forgets them."""
    email = user(srv)
    clock = srv.services.clock
    with srv.client() as c:
        for i in range(30):
            assert login(c, f"nobody{i}-{uuid.uuid4().hex[:6]}@example.com", "x")["rspID"] == (
                BAD_LOGIN
            )
        assert locked_for(login(c, email, PASSWORD), 60)
        clock.advance(timedelta(seconds=61))
        assert login(c, email, PASSWORD)["rspID"] == 0  # the lock is over
        clock.advance(timedelta(seconds=61))
        # a minute without failures after the lock: the address starts again from zero
        assert login(c, f"again-{uuid.uuid4().hex[:6]}@example.com", "x")["rspID"] == BAD_LOGIN
    with srv.services.db.read() as s:
        counts = set(s.scalars(select(LoginFailureRow.failures)))
    assert counts == {1}  # the address's and every user id's


def test_the_count_is_shared_by_every_server_on_the_database(
    pair: tuple[Server, Server], srv: Server
) -> None:
    """Failures made through one server lock the user id on another: the counts live in
    the database, not in a process."""
    a, b = pair
    email = user(a)
    with a.client() as ca, b.client() as cb:
        for i in range(5):
            assert login(ca if i % 2 else cb, email, "wrong")["rspID"] == BAD_LOGIN
        assert locked_for(login(ca, email, PASSWORD), 60)
        assert locked_for(login(cb, email, PASSWORD), 60)
    with a.services.db.read() as s:
        assert s.scalar(select(func.count()).select_from(LoginFailureRow)) == 2  # user, address


def test_no_free_hash_slot_answers_limited_and_costs_no_attempt(srv: Server) -> None:
    """When every argon2 slot stays taken, a login is refused at once with 9000014
    (retry in 1 s) instead of queueing, and the attempt is not counted against the user."""
    email = user(srv)
    with srv.client() as c:  # the first check also makes the dummy hash, which needs a slot
        assert login(c, email, PASSWORD)["rspID"] == 0
    auth = srv.services.auth
    slots = core_auth._HASH_SLOTS_N
    auth.hash_wait_seconds = 0.05
    taken = 0
    try:
        while core_auth._HASH_SLOTS.acquire(timeout=30):
            taken += 1
            if taken == slots:
                break
        with srv.client() as c:
            for _ in range(6):
                assert login(c, email, PASSWORD) == limited(1)
    finally:
        for _ in range(taken):
            core_auth._HASH_SLOTS.release()
        auth.hash_wait_seconds = core_auth.HASH_WAIT_SECONDS
    with srv.client() as c:
        assert login(c, email, PASSWORD)["rspID"] == 0


def test_a_success_waits_for_an_attempt_being_counted_on_its_user(srv: Server) -> None:
    """A right password forgets the user's failures under the key's lock: an attempt counted
    meanwhile (another login of the same user) finishes first, instead of failing to update
    the row the success deleted (a 500 under concurrent logins on PostgreSQL)."""
    if not srv.services.db.is_postgres:
        pytest.skip("SQLite has one writer: the two never overlap")
    iko = srv.services.extras["ikonomikal"]
    k = limits.keys(SCOPE, f"racer-{uuid.uuid4().hex[:6]}@example.com", "192.0.2.7")
    iko.limits.admit(k)  # the user's row exists
    with srv.services.db.write() as s:  # another attempt of the same user, being counted
        rows = iko.limits._rows(s, k)
        forget = srv.services.db.group.submit(lambda s2: iko.limits.succeeded(s2, k))
        with pytest.raises(TimeoutError):
            forget.result(timeout=0.5)  # waits for the count's lock
        iko.limits._count(s, rows.get(k.user), k.user, iko.limits.user, srv.services.clock.now())
    forget.result(timeout=30)
    with srv.services.db.read() as s:
        assert s.scalar(select(LoginFailureRow).where(LoginFailureRow.key == k.user)) is None
