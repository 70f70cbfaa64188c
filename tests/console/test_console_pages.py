"""The console's pages over real HTTP: sign-in, the session cookie, CSRF, roles, offline docs."""

from __future__ import annotations

import html
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx

from tests.console.conftest import sign_in, status_of
from tests.harness import Server, start_server, uid

PASSWORD = "correct horse battery staple"


def test_pages_need_sign_in(client: httpx.Client) -> None:
    """Signed out, every page sends the browser to the sign-in page."""
    for path in ("/console", "/console/jobs", "/console/audit", "/console/jobs/x"):
        r = client.get(path)
        assert r.status_code == 303, (path, r.status_code)
        assert r.headers["location"].startswith("/console/login?next=")


def test_sign_in_refusals(client: httpx.Client, make_principal: Any) -> None:
    """Wrong password, a principal without an operator role, a missing CSRF token: no session."""
    plain, _ = make_principal(roles=["bookingsupplier-administrator-write"], password=PASSWORD)
    op, _ = make_principal(roles=["operator"], password=PASSWORD)
    page = client.get("/console/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    refused = "wrong name or password, or no operator role"  # one answer: no password oracle
    for name, password, csrf, words in (
        (op.name, "wrong", token.group(1), refused),
        ("nobody-" + uid(), PASSWORD, token.group(1), refused),
        (plain.name, PASSWORD, token.group(1), refused),
        (op.name, PASSWORD, "forged", "expired"),
    ):
        r = client.post("/console/login", data={"name": name, "password": password, "csrf": csrf})
        assert r.status_code == 303
        assert r.headers["location"].startswith("/console/login?note=")
        assert words in client.get(r.headers["location"]).text
        assert client.get("/console/jobs").status_code == 303


def test_session_cookie_is_httponly_samesite_and_signed(
    server: Server, make_principal: Any
) -> None:
    """The cookie is HttpOnly and SameSite=Strict; a tampered one counts as signed out."""
    op, _ = make_principal(roles=["operator"], password=PASSWORD)
    with server.client() as c:
        c.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/console/login").text)
        assert token is not None
        r = c.post(
            "/console/login", data={"name": op.name, "password": PASSWORD, "csrf": token.group(1)}
        )
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert c.get("/console").status_code == 200
        value = c.cookies["wg_console"]
        c.cookies.set("wg_console", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
        assert c.get("/console").status_code == 303


def test_cookie_actions_need_the_csrf_token(
    server: Server, make_principal: Any, make_job: Any
) -> None:
    """With the console cookie, a retry without the CSRF token is refused (form and API)."""
    admin, _ = make_principal(roles=["superadmin"], password=PASSWORD)
    tenant = uid("tenant-")
    job = make_job(tenant, "failed")
    with server.client() as c:
        csrf = sign_in(c, admin.name, PASSWORD)
        r = c.post(f"/admin/api/jobs/{job}/retry")
        assert r.status_code == 403, r.text
        assert r.json()["error"] == "csrf"
        r = c.post(f"/admin/api/jobs/{job}/retry", headers={"x-csrf-token": "wrong"})
        assert r.json()["error"] == "csrf"
        r = c.post(f"/console/jobs/{job}/retry", data={"csrf": "wrong"})
        assert r.status_code == 403
        assert "CSRF" in r.text
        assert status_of(server, job) == "failed"
        r = c.post(f"/console/jobs/{job}/retry", data={"csrf": csrf})
        assert r.status_code == 303
        assert "queued again" in c.get(r.headers["location"]).text
        assert status_of(server, job) == "queued"
        r = c.post(f"/admin/api/jobs/{job}/cancel", headers={"x-csrf-token": csrf})
        assert r.status_code == 200, r.text
        # signing out needs the token too
        assert c.post("/console/logout", data={"csrf": "wrong"}).status_code == 403
        assert c.post("/console/logout", data={"csrf": csrf}).status_code == 303
        assert c.get("/console").status_code == 303


def test_operator_pages_show_no_actions(server: Server, make_principal: Any, make_job: Any) -> None:
    """An operator sees the job but no Retry button, and a forged POST is a 403."""
    tenant = uid("tenant-")
    op, _ = make_principal(tenant=tenant, roles=["operator"], password=PASSWORD)
    job = make_job(tenant, "failed")
    with server.client() as c:
        csrf = sign_in(c, op.name, PASSWORD)
        page = c.get(f"/console/jobs/{job}")
        assert page.status_code == 200
        assert 'id="retry"' not in page.text
        assert "operator (read only)" in page.text
        assert c.post(f"/console/jobs/{job}/retry", data={"csrf": csrf}).status_code == 403
        assert c.get("/console/bulk?action=retry&status=failed").status_code == 403
        assert status_of(server, job) == "failed"


def test_the_overview_answers_with_and_without_a_trailing_slash(
    server: Server, make_principal: Any
) -> None:
    """/console/ is the overview too: the app redirects no trailing slash (each API's paths are
    exact), and a browser's address bar often adds one."""
    op, _ = make_principal(roles=["operator"], password=PASSWORD)
    with server.client() as c:
        sign_in(c, op.name, PASSWORD)
        bare, slashed = c.get("/console"), c.get("/console/")
        assert (bare.status_code, slashed.status_code) == (200, 200)
        assert "Overview" in slashed.text
        assert c.get("/console/jobs/").status_code == 404


def test_revoked_principal_is_signed_out(server: Server, make_principal: Any) -> None:
    """Revoking a principal ends its console session at the next request."""
    op, _ = make_principal(roles=["operator"], password=PASSWORD)
    with server.client() as c:
        sign_in(c, op.name, PASSWORD)
        with server.services.db.write() as s:
            assert server.services.auth.revoke(s, op.name)
        assert c.get("/console").status_code == 303


def test_bulk_confirmation_then_action(server: Server, make_principal: Any, make_job: Any) -> None:
    """A bulk retry shows what matches and acts only after the confirming POST."""
    admin, _ = make_principal(roles=["superadmin"], password=PASSWORD)
    tenant = uid("tenant-")
    jobs = [make_job(tenant, "failed") for _ in range(2)]
    with server.client() as c:
        csrf = sign_in(c, admin.name, PASSWORD)
        page = c.get(f"/console/bulk?action=retry&status=failed&tenant={tenant}")
        assert page.status_code == 200
        assert "Retry 2 matching jobs?" in page.text
        assert all(status_of(server, j) == "failed" for j in jobs)
        r = c.post(
            "/console/bulk",
            data={"csrf": csrf, "action": "retry", "status": "failed", "tenant": tenant},
        )
        assert r.status_code == 303
        assert "2 done, 0 refused" in c.get(r.headers["location"]).text
        assert all(status_of(server, j) == "queued" for j in jobs)
        assert "bulk_retry" in c.get("/console/audit").text


def test_bad_filter_on_the_page(server: Server, make_principal: Any) -> None:
    """A bad filter on the jobs page is a 400 page that says what is wrong."""
    op, _ = make_principal(roles=["operator"], password=PASSWORD)
    with server.client() as c:
        sign_in(c, op.name, PASSWORD)
        r = c.get("/console/jobs?status=nope")
        assert r.status_code == 400
        assert "unknown status" in r.text


def test_docs_use_only_bundled_assets(client: httpx.Client) -> None:
    """/docs and /redoc load their scripts from the package, never from a CDN."""
    for path, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        page = client.get(path)
        assert page.status_code == 200
        assert f"/console/static/{asset}" in page.text
        assert "cdn." not in page.text
        assert "fonts.googleapis" not in page.text
        asset_r = client.get(f"/console/static/{asset}")
        assert asset_r.status_code == 200
        assert len(asset_r.content) > 100_000
    assert client.get("/console/static/swagger-ui.css").status_code == 200
    assert client.get("/console/static/htmx-2.0.11.min.js").status_code == 200


def test_regression_a_signed_out_cookie_stays_signed_out(
    server: Server, make_principal: Any
) -> None:
    """Signing out ends the session on the server: a copy of the cookie taken before is
    refused, by the pages and the admin API (it stayed valid for its 8 hours)."""
    op, _ = make_principal(roles=["operator"], password=PASSWORD)
    with server.client() as c:
        csrf = sign_in(c, op.name, PASSWORD)
        kept = c.cookies["wg_console"]
        assert c.get("/admin/api/me").status_code == 200
        r = c.post("/console/logout", data={"csrf": csrf})
        assert (r.status_code, r.headers["location"]) == (303, "/console/login")
    with server.client() as thief:
        thief.cookies.set("wg_console", kept)
        assert thief.get("/admin/api/me").status_code == 401
        assert thief.get("/console/jobs").status_code == 303
    with server.client() as c:  # a new sign-in is a new session
        sign_in(c, op.name, PASSWORD)
        assert c.get("/admin/api/me").status_code == 200


def test_regression_odd_numbers_in_page_parameters_are_not_500s(
    server: Server, make_principal: Any
) -> None:
    """'²' passes str.isdigit() and an age of 999999 weeks reaches before year 1: each was a
    500 on the pages; now a bad filter is a 400 page, and a bad audit cursor or view is
    ignored or not found."""
    op, _ = make_principal(roles=["operator"], password=PASSWORD)
    with server.client() as c:
        sign_in(c, op.name, PASSWORD)
        for query in ("limit=%C2%B2", "since=999999w", "until=9999-12-31T23:59:59-01:00"):
            r = c.get(f"/console/jobs?{query}")
            assert r.status_code == 400, (query, r.status_code)
            assert "text/html" in r.headers["content-type"]
        for before in ("%C2%B2", "99999999999999999999999999"):
            assert c.get(f"/console/audit?before={before}").status_code == 200
        assert c.get("/console/views/abs/%C2%B2").status_code == 404


def test_pages_are_never_framed(server: Server, make_principal: Any) -> None:
    """Every console page, the sign-in page and its refusals included, forbids framing
    (clickjacking), MIME sniffing and sending its URL elsewhere."""
    op, _ = make_principal(roles=["operator"], password=PASSWORD)
    with server.client() as c:
        answers = [c.get("/console/login"), c.get("/console/jobs")]  # a page; a sign-in redirect
        sign_in(c, op.name, PASSWORD)
        answers += [c.get("/console"), c.get("/console/jobs?status=bogus")]
    assert [r.status_code for r in answers] == [200, 303, 200, 400]
    for r in answers:
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["content-security-policy"] == "frame-ancestors 'none'"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"


def _try_sign_in(c: httpx.Client, name: str, password: str) -> str:
    """POST the sign-in form; the message of the page it sends the browser back to."""
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/console/login").text)
    assert token is not None
    r = c.post("/console/login", data={"name": name, "password": password, "csrf": token[1]})
    assert r.status_code == 303
    return "" if r.headers["location"] == "/console" else c.get(r.headers["location"]).text


def test_regression_sign_in_guesses_lock_the_name(
    server: Server, make_principal: Any, clock: Any
) -> None:
    """Five wrong passwords lock the name for 60 s: even the right one is refused meanwhile
    (every guess was checked before, without limit); after the lock it is taken."""
    op, _ = make_principal(roles=["operator"], password=PASSWORD)
    with server.client() as c:
        for _ in range(5):
            assert "wrong name or password" in _try_sign_in(c, op.name, "guess")
        assert "too many failed sign-ins: try again in 60 s" in _try_sign_in(c, op.name, PASSWORD)
        assert c.get("/console/jobs").status_code == 303
        clock.advance(timedelta(seconds=61))
        assert _try_sign_in(c, op.name, PASSWORD) == ""
        assert c.get("/console/jobs").status_code == 200


def test_sign_outs_of_one_session_at_once_all_succeed(server: Server, make_principal: Any) -> None:
    """Ten sign-outs of one session sent together (a double click, many tabs) all end at the
    sign-in page; on PostgreSQL the later ones could meet the first one's record."""
    op, _ = make_principal(roles=["operator"], password=PASSWORD)
    with server.client() as c:
        csrf = sign_in(c, op.name, PASSWORD)
        cookie = c.cookies["wg_console"]

    def sign_out(_: int) -> int:
        with server.client() as each:
            each.cookies.set("wg_console", cookie)
            return each.post("/console/logout", data={"csrf": csrf}).status_code

    with ThreadPoolExecutor(10) as pool:
        assert list(pool.map(sign_out, range(10))) == [303] * 10
    with server.client() as c:
        c.cookies.set("wg_console", cookie)
        assert c.get("/admin/api/me").status_code == 401


def test_regression_a_link_cannot_put_its_own_words_on_a_page(client: httpx.Client) -> None:
    """A page showed any ?msg= as its status banner (escaped, but a phishing line in the
    console's own look); only a note the console signed for its own redirect is shown."""
    lure = "Session expired. Sign in again at https://evil.example"
    for query in (
        {"msg": lure, "error": "1"},
        {"note": lure},
        {"note": "WyJTZXNzaW9uIGV4cGlyZWQiLCB0cnVlXQ.forged.sig"},
    ):
        page = client.get("/console/login", params=query).text
        assert "evil.example" not in page
        assert 'id="msg"' not in page


def test_a_value_the_database_refuses_is_a_page(server: Server, make_principal: Any) -> None:
    """A job id with a NUL, which PostgreSQL cannot compare, answers a console page (it was
    the API's JSON error); SQLite finds no such job."""
    op, _ = make_principal(roles=["operator"], password=PASSWORD)
    with server.client() as c:
        sign_in(c, op.name, PASSWORD)
        r = c.get("/console/jobs/a%00b")
    assert r.status_code == (400 if server.services.db.is_postgres else 404)
    assert r.headers["content-type"].startswith("text/html")


def test_regression_bidi_controls_showed_text_in_another_order(
    server: Server, make_principal: Any, make_job: Any
) -> None:
    """A right-to-left override in a job's key or payload (any API client writes them) made
    the page show its text reversed: `job-\u202egnp.exe` read as `job-exe.png`. Each
    bidirectional control is shown as a visible marker instead."""
    tenant = uid("tenant-")
    op, _ = make_principal(tenant=tenant, roles=["operator"], password=PASSWORD)
    job = make_job(
        tenant, "failed", exclusive_key="job-\u202egnp.exe", payload={"note": "a\u2067b\u2069"}
    )
    with server.client() as c:
        sign_in(c, op.name, PASSWORD)
        page = c.get(f"/console/jobs/{job}")
        listing = c.get("/console/jobs", params={"tenant": tenant})
    assert page.status_code == 200, page.text
    for text in (page.text, listing.text):
        assert not re.search("[\u202a-\u202e\u2066-\u2069]", text)
    assert "job-[U+202E]gnp.exe" in page.text
    assert "a\\u2067b\\u2069" in page.text  # the payload is shown as JSON, escaped


def test_regression_the_console_secret_setting_was_read_from_the_environment_only(
    server: Server, make_principal: Any
) -> None:
    """`WRITEGATE_CONSOLE_SECRET` was read from `os.environ`, not the settings: in `.env` it was
    ignored, and `serve --workers N` processes each signed cookies with their own secret (a
    sign-in then bounced to the login page on 2 requests in 5). It is a setting: processes
    given one secret accept each other's cookies, and only they."""
    op, _ = make_principal(roles=["operator"], password=PASSWORD)
    url = server.settings.database_url
    one, two, other = (
        start_server(url, embedded_worker=False, console_secret=secret)
        for secret in ("shared-secret", "shared-secret", "another-secret")
    )
    try:
        with one.client() as c:
            sign_in(c, op.name, PASSWORD)
            cookie = c.cookies["wg_console"]
        with two.client() as c:
            c.cookies.set("wg_console", cookie)
            assert c.get("/admin/api/me").status_code == 200
        with other.client() as c:
            c.cookies.set("wg_console", cookie)
            assert c.get("/admin/api/me").status_code == 401
    finally:
        for srv in (one, two, other):
            srv.stop()


def test_regression_a_bulk_action_with_no_filter_acted_on_every_tenant(
    server: Server, make_principal: Any, make_job: Any
) -> None:
    """ "Retry all matching…" on the unfiltered jobs page retried the newest 1,000 jobs of
    every tenant (the admin API refused an empty filter, the console did not): both refuse,
    nothing changes, and the unfiltered page offers no bulk action."""
    admin, _ = make_principal(roles=["superadmin"], password=PASSWORD)
    failed = make_job(uid("tenant-"), "failed")
    with server.client() as c:
        csrf = sign_in(c, admin.name, PASSWORD)
        assert "Retry all matching" not in c.get("/console/jobs").text
        page = c.get("/console/bulk?action=retry&")
        assert page.status_code == 400
        assert "a filter needs at least one field" in page.text
        r = c.post("/console/bulk", data={"csrf": csrf, "action": "cancel"})
        assert r.status_code == 400, r.text
        r = c.post("/console/bulk", data={"csrf": csrf, "action": "retry", "status": ""})
        assert r.status_code == 400, r.text
    assert status_of(server, failed) == "failed"


def test_regression_a_bad_filter_page_refreshed_into_every_job(
    server: Server, make_principal: Any
) -> None:
    """With one bad field the page kept the URL's filter but emptied its form, offered bulk
    actions on every job and refreshed itself into the unfiltered list: the form keeps what
    was sent, and nothing refreshes or acts."""
    admin, _ = make_principal(roles=["superadmin"], password=PASSWORD)
    with server.client() as c:
        sign_in(c, admin.name, PASSWORD)
        r = c.get("/console/jobs?status=bogus&q=abc&since=2h")
        assert r.status_code == 400
        assert 'name="q" value="abc"' in r.text
        assert 'name="since" value="2h"' in r.text
        assert "hx-get" not in r.text
        assert "/console/bulk" not in r.text
        good = c.get("/console/jobs?q=abc")
        assert 'hx-get="/console/jobs?q=abc"' in good.text
        assert "/console/bulk?action=retry&q=abc" in good.text


def test_regression_an_over_long_job_id_acted_on_its_first_36_characters(
    server: Server, make_principal: Any, make_job: Any
) -> None:
    admin, _ = make_principal(roles=["superadmin"], password=PASSWORD)
    job = make_job(uid("tenant-"), "queued")
    with server.client() as c:
        csrf = sign_in(c, admin.name, PASSWORD)
        r = c.post(f"/console/jobs/{job}EXTRA/cancel", data={"csrf": csrf})
        assert r.status_code == 404
    assert status_of(server, job) == "queued"


def test_regression_refusals_were_undercounted_and_missing_from_the_jobs_page(
    server: Server, make_principal: Any, make_job: Any
) -> None:
    """An action's entry kept the first 100 refusals and the page counted those; a refused
    job's page did not list the entry that refused it. The count is whole, and the refused
    job's page lists it."""
    admin, _ = make_principal(roles=["superadmin"], password=PASSWORD)
    tenant = uid("tenant-")
    queued = [make_job(tenant, "queued") for _ in range(103)]
    with server.client() as c:
        csrf = sign_in(c, admin.name, PASSWORD)
        r = c.post(
            "/console/bulk",
            data={"csrf": csrf, "action": "retry", "status": "queued", "tenant": tenant},
        )
        assert r.status_code == 303
        assert "103 asked, 103 refused" in c.get("/console/audit").text
        page = c.get(f"/console/jobs/{queued[-1]}").text
        assert "bulk_retry" in page
    assert all(status_of(server, j) == "queued" for j in queued)


def _post_login(c: httpx.Client, login: str, name: str, password: str) -> httpx.Response:
    """Fill in the sign-in form at `login` as a browser would, its hidden fields as given."""
    form = c.get(login).text
    fields = dict(re.findall(r'name="(csrf|next)" value="([^"]*)"', form))
    assert set(fields) == {"csrf", "next"}, form
    data = {k: html.unescape(v) for k, v in fields.items()}
    return c.post("/console/login", data={**data, "name": name, "password": password})


def test_regression_sign_in_lost_the_page_and_its_filter(
    server: Server, make_principal: Any
) -> None:
    """Signed out, a filtered page sent the operator to sign in and back to `/console/jobs`
    without its filter, and a wrong password lost even that: both are kept."""
    op, _ = make_principal(roles=["operator"], password=PASSWORD)
    with server.client() as c:
        r = c.get("/console/jobs?status=failed&kind=x")
        assert r.status_code == 303
        login = r.headers["location"]
        assert login == "/console/login?next=%2Fconsole%2Fjobs%3Fstatus%3Dfailed%26kind%3Dx"
        again = _post_login(c, login, op.name, "no").headers["location"]
        assert again.startswith("/console/login?next=%2Fconsole%2Fjobs%3Fstatus%3Dfailed")
        right = _post_login(c, again, op.name, PASSWORD)
        assert right.headers["location"] == "/console/jobs?status=failed&kind=x"


def test_regression_error_pages_were_dead_ends(server: Server, make_principal: Any) -> None:
    """A 404 or 400 page had no way back into the console: it links the main pages."""
    op, _ = make_principal(roles=["operator"], password=PASSWORD)
    with server.client() as c:
        sign_in(c, op.name, PASSWORD)
        for path, status in (
            ("/console/jobs/00000000-0000-0000-0000-000000000000", 404),
            ("/console/views/nosuch/0", 404),
        ):
            r = c.get(path)
            assert r.status_code == status, path
            for link in ('href="/console"', 'href="/console/jobs"', 'href="/console/audit"'):
                assert link in r.text, (path, link)


def test_regression_a_final_job_showed_when_it_would_run_next(
    server: Server, make_principal: Any, make_job: Any
) -> None:
    """ "next run after" is a queued job's; a final one showed it as if it would run again."""
    op, _ = make_principal(roles=["superadmin"], password=PASSWORD)
    tenant = uid("tenant-")
    queued, failed = make_job(tenant, "queued"), make_job(tenant, "failed")
    with server.client() as c:
        sign_in(c, op.name, PASSWORD)
        assert "next run after" in c.get(f"/console/jobs/{queued}").text
        assert "next run after" not in c.get(f"/console/jobs/{failed}").text
