"""`writegate principals ...`: manage principals (API users).

Every command checks the database, then works on that one plain connection with SQLAlchemy
Core (`core/principals.py`): no ORM, no services, and argon2 only to hash a --password.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from writegate.commands.common import (
    columns,
    console,
    fail,
    load_settings,
    migrated_connection,
    shown,
)

#: the --password value that reads the password from stdin
STDIN = "-"

app = typer.Typer(
    help="Manage principals (API users).",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)


def _password(given: str | None) -> str | None:
    """The --password value: `-` reads it from stdin, off the command line (where `ps` and
    shell history show it); an empty one is refused."""
    if given == STDIN:
        given = sys.stdin.readline().rstrip("\n")
    if given is not None and not given:
        raise typer.BadParameter(
            "must not be empty (leave it out for no password)", param_hint="--password"
        )
    return given


def _parse_attrs(attrs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in attrs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--attr must be KEY=VALUE, got {item!r}")
        out[key] = value
    return out


@app.command("create")
def principals_create(
    name: Annotated[str, typer.Option(help="Unique name (login id for password users).")],
    tenant: Annotated[str, typer.Option(help="Tenant the principal belongs to.")],
    roles: Annotated[str, typer.Option(help="Comma-separated roles.")] = "",
    password: Annotated[
        str | None,
        typer.Option(help="Password (stored as an argon2 hash); `-` reads it from stdin."),
    ] = None,
    attr: Annotated[
        list[str] | None, typer.Option(help="Extra attribute KEY=VALUE (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a principal and print its API key (shown once)."""
    for option, value in (("--name", name), ("--tenant", tenant)):
        if not value.strip():
            raise typer.BadParameter("must not be blank", param_hint=option)
    password = _password(password)
    role_list = [r.strip() for r in roles.split(",") if r.strip()]
    attrs = _parse_attrs(attr or [])
    settings = load_settings()
    from sqlalchemy.exc import IntegrityError

    from writegate.core import principals
    from writegate.core.clock import Clock

    try:
        with migrated_connection(settings, write=True) as conn:
            # Hashed before the transaction: the writer's lock is not held for argon2's time.
            hashed = principals.password_hasher().hash(password) if password else None
            with conn.begin():
                principal, key = principals.create(
                    conn,
                    name=name,
                    tenant=tenant,
                    roles=role_list,
                    attrs=attrs,
                    password_hash=hashed,
                    now=Clock().now(),
                )
    except IntegrityError:
        fail(f"a principal named {name!r} already exists")
    if as_json:
        made = {
            "name": principal.name,
            "tenant": principal.tenant,
            "roles": principal.roles,
            "attrs": principal.attrs,
            "api_key": key,
        }
        sys.stdout.write(json.dumps(made) + "\n")
        return
    name, tenant = shown(principal.name), shown(principal.tenant)
    console().print(f"created principal [bold]{name}[/bold] in tenant {tenant}")
    console().print(f"API key (shown once): [bold]{key}[/bold]")


@app.command("list")
def principals_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List principals, whole names and tenants (never their secrets)."""
    settings = load_settings()
    from writegate.core.principals import every_principal

    # One Core query on a plain connection: no ORM, no services, no argon2.
    with migrated_connection(settings) as conn:
        rows = every_principal(conn)
    found = [
        {
            "name": row.name,
            "tenant": row.tenant,
            "roles": list(row.roles),
            "attrs": row.attrs,
            "key_hint": row.api_key_hint,
            "created_at": str(row.created_at)[:19],
            "revoked_at": str(row.revoked_at)[:19] if row.revoked_at else None,
        }
        for row in rows
    ]
    if as_json:
        sys.stdout.write(json.dumps({"principals": found}) + "\n")
        return
    header = ("name", "tenant", "roles", "attrs", "key", "created", "revoked")
    columns(
        header,
        [
            (
                p["name"],
                p["tenant"],
                ",".join(p["roles"]),
                json.dumps(p["attrs"]),
                f"{p['key_hint']}…",
                p["created_at"],
                p["revoked_at"] or "",
            )
            for p in found
        ],
    )


@app.command("revoke")
def principals_revoke(name: str) -> None:
    """Revoke a principal: its key and password stop working, in running servers too.

    A running server trusts a key that authenticated for WRITEGATE_AUTH_CACHE_SECONDS (5 s by
    default): the revocation reaches it within that time.
    """
    settings = load_settings()
    from writegate.core import principals
    from writegate.core.clock import Clock

    with migrated_connection(settings, write=True) as conn, conn.begin():
        ok = principals.revoke(conn, name, Clock().now())
    if not ok:
        fail(f"no active principal named {name!r}")
    console().print(f"revoked {shown(name)}")


@app.command("rotate-key")
def principals_rotate_key(
    name: str, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Give a principal a new API key (shown once); the old one stops working.

    Running servers trust a key that authenticated for WRITEGATE_AUTH_CACHE_SECONDS (5 s by
    default): the old key stops there within that time.
    """
    settings = load_settings()
    from writegate.core import principals

    with migrated_connection(settings, write=True) as conn, conn.begin():
        key = principals.rotate_key(conn, name)
    if key is None:
        fail(f"no active principal named {name!r}")
    if as_json:
        sys.stdout.write(json.dumps({"name": name, "api_key": key}) + "\n")
        return
    console().print(f"new API key of {shown(name)} (shown once): [bold]{key}[/bold]")


@app.command("set-password")
def principals_set_password(
    name: str,
    password: Annotated[
        str | None,
        typer.Option(help="The new password (`-` reads it from stdin); leave out to remove it."),
    ] = None,
) -> None:
    """Set, or remove, a principal's password (stored as an argon2 hash)."""
    password = _password(password)
    settings = load_settings()
    from writegate.core import principals

    hashed = principals.password_hasher().hash(password) if password else None
    with migrated_connection(settings, write=True) as conn, conn.begin():
        ok = principals.set_password(conn, name, hashed)
    if not ok:
        fail(f"no active principal named {name!r}")
    console().print(f"{'set' if hashed else 'removed'} the password of {shown(name)}")
