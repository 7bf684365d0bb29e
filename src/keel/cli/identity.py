"""`keel whoami|users|tokens ...`: who may do what, and the API tokens they do it with."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from keel.cli import output
from keel.cli.registry import JsonFlag, connected
from keel.domain.permissions import PrincipalKind, Role
from keel.errors import KeelError

users_app = typer.Typer(
    help="Users and service accounts, and the role each holds per team.", no_args_is_help=True
)
tokens_app = typer.Typer(
    help="API tokens: create (shown once), list (by hint only), revoke.", no_args_is_help=True
)

TeamOption = Annotated[
    str | None, typer.Option(help="The team the role applies in (none for admin, which is global).")
]


def whoami(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Who the token in use belongs to, and its roles."""
    with connected(ctx) as keel:
        me = keel.whoami()
    output.show(as_json, me, lambda: output.principal_details(me))


# -- users -------------------------------------------------------------------------------------


def _check_grant(role: Role | None, team: str | None) -> None:
    # Checked before the user is created, so a bad combination leaves nothing half done.
    if role is None:
        if team is not None:
            raise typer.BadParameter("--team needs --role.", param_hint="--team")
        return
    if role == Role.ADMIN and team is not None:
        raise typer.BadParameter("admin is global: give no --team.", param_hint="--team")
    if role != Role.ADMIN and team is None:
        raise typer.BadParameter(f"the {role} role needs a --team.", param_hint="--team")


@users_app.command("create")
def users_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User or service account name.")],
    service: Annotated[
        bool, typer.Option("--service", help="A service account (CI, pipelines), not a person.")
    ] = False,
    role: Annotated[Role | None, typer.Option(help="Also grant this role.")] = None,
    team: TeamOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a user or service account (admins only), optionally with a role in a team."""
    _check_grant(role, team)
    with connected(ctx) as keel:
        created = keel.create_user(name, PrincipalKind.SERVICE if service else PrincipalKind.USER)
        if role is not None:
            try:
                created = keel.grant(name, role, team)
            except KeelError as exc:
                raise type(exc)(
                    f"Created {name!r}, but could not grant it {role}: {exc.message}", exc.details
                ) from None
    output.show(as_json, created, lambda: output.principal_details(created))


@users_app.command("list")
def users_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List users and service accounts with their roles (admins only)."""
    with connected(ctx) as keel:
        principals = keel.list_users()
    output.show(as_json, principals, lambda: output.users_table(principals))


@users_app.command("grant")
def users_grant(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User or service account name.")],
    role: Annotated[Role, typer.Argument(help="The role to grant.")],
    team: TeamOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Grant a role in a team (admins only); admin is global and takes no team."""
    with connected(ctx) as keel:
        updated = keel.grant(name, role, team)
    output.show(as_json, updated, lambda: output.principal_details(updated))


# -- tokens ------------------------------------------------------------------------------------


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="What the token is for, e.g. ci.")] = "default",
    user: Annotated[
        str | None, typer.Option(help="Whose token (admins only; default: yours).")
    ] = None,
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, max=3650, help="Expire after this many days.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the token and its details as JSON.")
    ] = False,
) -> None:
    """Create an API token and print it once: Keel keeps only its hash.

    stdout gets the token alone (so `TOKEN=$(keel tokens create)` works); what it is goes to
    stderr. With --json, stdout gets the token with its details.
    """
    with connected(ctx) as keel:
        created = keel.create_token(name, principal=user, expires_in_days=expires_in_days)
    if as_json:
        output.emit_json(Console(), created)
        return
    info = created.info
    expires = f"expires {output.when(info.expires_at)} UTC" if info.expires_at else "no expiry"
    typer.echo(
        f"Created token {info.id} ({info.name!r}) for {info.principal}, {expires}. "
        "This is the only time it is shown; store it now:",
        err=True,
    )
    typer.echo(created.token)


@tokens_app.command("list")
def tokens_list(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Option(help="Only this principal's tokens (admins only).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List tokens by their hint (yours; an admin sees everyone's). Never the tokens themselves."""
    with connected(ctx) as keel:
        tokens = keel.list_tokens(user)
    output.show(as_json, tokens, lambda: output.tokens_table(tokens))


@tokens_app.command("revoke")
def tokens_revoke(
    ctx: typer.Context,
    token_id: Annotated[
        int, typer.Argument(metavar="ID", help="The token's id (keel tokens list).")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Revoke a token (its owner or an admin); it stops working at once."""
    with connected(ctx) as keel:
        revoked = keel.revoke_token(token_id)
    output.show(as_json, revoked, lambda: output.tokens_table([revoked]))
