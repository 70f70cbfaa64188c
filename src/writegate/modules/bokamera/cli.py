"""`writegate vaka-sim` and `writegate bokamera ...`: the Vaka simulator and the secret keys."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

app = typer.Typer(help="BokaMera module tools.", no_args_is_help=True)


def vaka_sim(
    users: Annotated[int, typer.Option(min=0, help="Number of simulated Vaka users.")] = 1000,
    latency: Annotated[
        float, typer.Option(min=0.0, help="Seconds added to every users request.")
    ] = 0.0,
    fail_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of users requests answered 503.")
    ] = 0.0,
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free).")] = 8900,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    username: Annotated[str, typer.Option(help="Basic-auth user Vaka accepts.")] = "vaka",
    password: Annotated[str, typer.Option(help="Basic-auth password Vaka accepts.")] = "vaka",  # noqa: S107  # noqa: S107
    max_page_size: Annotated[int, typer.Option(min=1, help="Largest page served.")] = 500,
    seed: Annotated[int, typer.Option(help="Seed of the generated users.")] = 0,
) -> None:
    """Run a local Axema Vaka simulator (HTTP) until interrupted."""
    from writegate.modules.bokamera.simulator import VakaServer, build_state

    state = build_state(
        users,
        seed=seed,
        username=username,
        password=password,
        latency=latency,
        fail_rate=fail_rate,
        max_page_size=max_page_size,
    )
    server = VakaServer(state, host, port)
    typer.echo(f"Axema Vaka simulator with {users} users on {server.url} (user {username!r})")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@app.command("generate-key")
def generate_key() -> None:
    """Print a new random secret key for WRITEGATE_BOKAMERA_SECRET_KEY."""
    from writegate.modules.bokamera.crypto import new_key

    typer.echo(new_key())


@app.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every stored Axema Vaka password under the first key (new key first, then old)."""
    from writegate.commands.common import USAGE, existing_services, fail, load_settings
    from writegate.modules.bokamera.crypto import KeyConfigError, SecretError
    from writegate.modules.bokamera.rotation import rotate_all
    from writegate.startup import load_modules

    services = existing_services(load_settings())
    try:
        load_modules(services)
        report = rotate_all(services)
    except (KeyConfigError, SecretError) as exc:
        fail(str(exc), USAGE)
    finally:
        services.close()
    typer.echo(
        f"re-encrypted {report.rotated} stored password(s) under the first key of {report.source}"
    )
    if report.changed:
        typer.echo(f"{report.changed} password(s) were changed meanwhile and are already current")
    for company_id, reason in report.unreadable:
        typer.echo(f"company {company_id}: cannot read its password: {reason}", err=True)
    if report.unreadable:
        raise typer.Exit(1)


app.command("vaka-sim")(vaka_sim)
TOP_LEVEL = {"vaka-sim": vaka_sim}
