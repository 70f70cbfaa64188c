"""The `writegate` command line against a real database, as separate processes."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from tests.harness import Server, uid
from tests.system.clirun import writegate
from writegate.core.auth import PrincipalRow
from writegate.core.jobs import Status


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `writegate ARGS` against the server's database, 200 columns (rich tables whole)."""
    return writegate(server, *args, columns=200)


def test_principals_create_list_revoke(server: Server) -> None:
    """A principal's key is printed once, stored only as a hash, and revocable."""
    name = uid("cli-")
    out = cli(
        server,
        "principals",
        "create",
        "--name",
        name,
        "--tenant",
        "acme",
        "--roles",
        "reader,writer",
        "--password",
        "s3cret!",
        "--attr",
        "group=G1",
        "--attr",
        "code=API01",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    assert made["name"] == name
    assert made["tenant"] == "acme"
    assert made["roles"] == ["reader", "writer"]
    assert made["attrs"] == {"group": "G1", "code": "API01"}
    key = made["api_key"]
    assert len(key) >= 40
    with server.services.db.read() as s:
        row = s.scalar(select(PrincipalRow).where(PrincipalRow.name == name))
        assert row is not None
        assert row.api_key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert key not in json.dumps([row.api_key_hash, row.api_key_hint, row.password_hash])
        assert row.password_hash is not None
        assert PasswordHasher().verify(row.password_hash, "s3cret!")
        assert server.services.auth.by_api_key(s, key) is not None

    listing = cli(server, "principals", "list")
    assert listing.returncode == 0
    assert name in listing.stdout
    assert key not in listing.stdout

    dup = cli(server, "principals", "create", "--name", name, "--tenant", "x")
    assert dup.returncode == 1
    assert "already exists" in dup.stderr  # an error: stderr, so `--json | jq` stays clean

    assert cli(server, "principals", "revoke", name).returncode == 0
    with server.services.db.read() as s:
        assert server.services.auth.by_api_key(s, key) is None
        assert server.services.auth.verify_password(s, name, "s3cret!") is None
    again = cli(server, "principals", "revoke", name)
    assert again.returncode == 1


def test_regression_principals_list_cut_names_through_a_pipe(server: Server) -> None:
    """Through a pipe (80 columns for rich) every column was cut to a few characters
    (`acme-adm…`): names and tenants are printed whole, and `--json` gives every field."""
    name = f"a-rather-long-principal-name-{uid()}"
    tenant = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    made = cli(server, "principals", "create", "--name", name, "--tenant", tenant, "--roles",
               "abs:read,abs:write")  # fmt: skip
    assert made.returncode == 0, made.stderr
    listed = cli(server, "principals", "list")
    (line,) = [row for row in listed.stdout.splitlines() if row.startswith(name + " ")]
    assert tenant in line.split()
    assert "abs:read,abs:write" in line.split()
    data = json.loads(cli(server, "principals", "list", "--json").stdout)
    (mine,) = [p for p in data["principals"] if p["name"] == name]
    assert (mine["tenant"], mine["roles"], mine["revoked_at"]) == (
        tenant,
        ["abs:read", "abs:write"],
        None,
    )
    assert set(mine) == {"name", "tenant", "roles", "attrs", "key_hint", "created_at",
                         "revoked_at"}  # fmt: skip


@pytest.mark.parametrize("name", ["svc[/x]", "bob[red]", "[bold]x"])
def test_regression_a_name_with_brackets_broke_the_principals_commands(
    server: Server, name: str
) -> None:
    """Names were printed as rich markup: `svc[/x]` made `create` fail after committing (its
    API key, shown once, was lost) and every later `list` crash; `bob[red]` printed as `bob`.
    Names are printed as they are."""
    name = f"{name}{uid()}"
    made = cli(server, "principals", "create", "--name", name, "--tenant", "acme[/]")
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"created principal {name} in tenant acme[/]" in made.stdout
    assert "API key (shown once): " in made.stdout
    listed = cli(server, "principals", "list")
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stdout + listed.stderr
    assert name in listed.stdout
    revoked = cli(server, "principals", "revoke", name)
    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked {name}" in revoked.stdout


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--name", " ", "--tenant", "t"], "--name"),
        (["--name", "n", "--tenant", ""], "--tenant"),
        (["--name", "n", "--tenant", "t", "--password", ""], "--password"),
    ],
)
def test_regression_blank_names_and_an_empty_password_were_accepted(
    server: Server, args: list[str], option: str
) -> None:
    """A blank name or tenant made a principal no one could name; `--password ''` silently
    meant no password. Each is a usage error and nothing is created."""
    before = cli(server, "principals", "list").stdout
    out = cli(server, "principals", "create", *args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert option in out.stderr
    assert cli(server, "principals", "list").stdout == before


def test_a_password_can_be_read_from_stdin(server: Server) -> None:
    """`--password -` reads it from stdin: the command line (`ps`, shell history) never
    holds it."""
    name = uid("stdin-")
    out = writegate(
        server,
        "principals",
        "create",
        "--name",
        name,
        "--tenant",
        "t",
        "--password",
        "-",
        stdin="from stdin!\n",
    )
    assert out.returncode == 0, out.stderr
    with server.services.db.read() as s:
        assert server.services.auth.verify_password(s, name, "from stdin!") is not None


def test_rotate_key_and_set_password(server: Server) -> None:
    """`rotate-key` gives a new API key and the old one stops working; `set-password` changes
    (or removes) the password; both refuse an unknown or revoked name."""
    name = uid("rotate-")
    made = cli(server, "principals", "create", "--name", name, "--tenant", "t", "--json")
    assert made.returncode == 0, made.stderr
    old = json.loads(made.stdout)["api_key"]
    rotated = cli(server, "principals", "rotate-key", name, "--json")
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)["api_key"]
    assert new != old
    auth = server.services.auth
    with server.services.db.read() as s:
        assert auth.by_api_key(s, old) is None
        found = auth.by_api_key(s, new)
        assert found is not None
        assert found.name == name
        assert auth.verify_password(s, name, "pw") is None

    changed = writegate(server, "principals", "set-password", name, "--password", "-", stdin="pw\n")
    assert changed.returncode == 0, changed.stderr
    with server.services.db.read() as s:
        assert auth.verify_password(s, name, "pw") is not None
    removed = cli(server, "principals", "set-password", name)
    assert removed.returncode == 0, removed.stderr
    with server.services.db.read() as s:
        assert auth.verify_password(s, name, "pw") is None

    assert cli(server, "principals", "revoke", name).returncode == 0
    for args in (["rotate-key", name], ["set-password", name, "--password", "x"]):
        refused = cli(server, "principals", *args)
        assert refused.returncode == 1, refused.stdout
        assert f"no active principal named {name!r}" in refused.stderr


def test_bad_attr_is_refused(server: Server) -> None:
    """--attr without '=' is a usage error."""
    out = cli(server, "principals", "create", "--name", uid(), "--tenant", "t", "--attr", "oops")
    assert out.returncode == 2
    assert "KEY=VALUE" in out.stdout + out.stderr


def test_jobs_list_show_cancel_retry(server: Server) -> None:
    """Operators can find a job, look at it, cancel it and queue it again."""
    far = server.services.clock.now().replace(year=2999)
    kind = uid("cli.kind.")
    with server.services.db.write() as s:
        job = server.services.jobs.enqueue(
            s, kind=kind, payload={"x": 1}, tenant="t", run_after=far
        )
    listing = cli(server, "jobs", "list", "--kind", kind)
    assert listing.returncode == 0
    assert job.id in listing.stdout
    assert "queued" in listing.stdout

    shown = cli(server, "jobs", "show", job.id)
    assert shown.returncode == 0
    assert kind in shown.stdout
    assert '{"x": 1}' in shown.stdout

    assert cli(server, "jobs", "cancel", job.id).returncode == 0
    with server.services.db.read() as s:
        got = server.services.jobs.get(s, job.id)
        assert got is not None
        assert got.status == Status.CANCELLED
    assert "cancelled" in cli(server, "jobs", "list", "--status", "cancelled").stdout

    assert cli(server, "jobs", "retry", job.id).returncode == 0
    with server.services.db.read() as s:
        got = server.services.jobs.get(s, job.id)
        assert got is not None
        assert got.status == Status.QUEUED
    server.services.jobs.cancel(job.id)

    assert cli(server, "jobs", "show", "no-such-job").returncode == 1
    bad = cli(server, "jobs", "list", "--status", "bogus")
    assert bad.returncode == 2


def test_abs_add_client_and_clients(server: Server) -> None:
    """`abs add-client` registers a code on the migrated database once; `abs clients` lists it."""
    code = uid("C")[:20]
    first = cli(server, "abs", "add-client", code, "--name", "Acme bank")
    assert first.returncode == 0, first.stderr
    assert f"registered client code {code}" in first.stdout
    again = cli(server, "abs", "add-client", code)
    assert again.returncode == 0, again.stderr
    assert f"client code {code} was already registered" in again.stdout
    listed = cli(server, "abs", "clients")
    assert listed.returncode == 0, listed.stderr
    assert code in listed.stdout
    assert "Acme bank" in listed.stdout
