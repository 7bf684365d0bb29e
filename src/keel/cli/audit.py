"""`keel audit log|head|checkpoint|verify`: read the audit trail, anchor and checkpoint it, prove
nobody rewrote it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from keel.cli import output
from keel.cli.registry import JsonFlag, connected

audit_app = typer.Typer(
    help="The audit trail: every change, by whom, in a hash chain.", no_args_is_help=True
)

_MAX_PAGE = 1000  # the API's largest page


def _moment(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise typer.BadParameter(
            f"expected an ISO 8601 date or time such as 2026-01-31 or 2026-01-31T14:05Z, "
            f"got {raw!r}.",
            param_hint="--since",
        ) from None


@audit_app.command("log")
def audit_log(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option(help="Only what this principal did.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. model.create.")] = None,
    subject: Annotated[
        str | None,
        typer.Option(metavar="TYPE[:ID]", help="Only events about this, e.g. model:churn."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(metavar="ISO", help="Only events at or after this moment (UTC unless given)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many events.")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """Audit events, oldest first (admins only)."""
    subject_type, _, subject_id = (subject or "").partition(":")
    with connected(ctx) as keel:
        matching = keel.audit_log(
            actor=actor,
            action=action,
            subject_type=subject_type or None,
            subject_id=subject_id or None,
            since=_moment(since),
            limit=min(limit + 1, _MAX_PAGE),
        )
        # One more than shown, to say whether there are more.
        events = list(itertools.islice(matching, limit + 1))
    shown = events[:limit]
    output.show(as_json, shown, lambda: output.audit_table(shown))
    if len(events) > limit:
        Console(stderr=True, highlight=False).print(
            f"Showing the first {limit} matching events; narrow with --since or raise --limit.",
            markup=False,
            soft_wrap=True,
        )


@audit_app.command("head")
def audit_head(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print seq, hash and anchor as JSON.")
    ] = False,
) -> None:
    """Print the newest event's SEQ:HASH: an anchor to keep elsewhere and verify against later."""
    with connected(ctx) as keel:
        head = keel.audit_head()
    if as_json:
        output.emit_json(Console(), head)
    else:
        typer.echo(head.anchor)


@audit_app.command("checkpoint")
def audit_checkpoint(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checkpoint as JSON.")] = False,
) -> None:
    """Sign the current head with the server's audit key and export it (admins only).

    The worker also does this every KEEL_AUDIT_CHECKPOINT_MINUTES. `keel audit verify` then
    catches events deleted up to the newest checkpoint, and any rewritten before it.
    """
    with connected(ctx) as keel:
        checkpoint = keel.audit_checkpoint()
    if as_json:
        output.emit_json(Console(), checkpoint)
    else:
        at = checkpoint.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"checkpoint at event {checkpoint.seq}:{checkpoint.hash} ({at} UTC), signed")


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    anchor: Annotated[
        str | None,
        typer.Option(
            metavar="SEQ:HASH",
            help="An earlier `keel audit head`: also catches the whole chain rewritten since.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check the audit chain, its signatures and the signed checkpoints: exit 0 when intact,
    1 naming the first broken event and the kind of tampering."""
    with connected(ctx) as keel:
        result = keel.audit_verify(anchor)
    console = Console(highlight=False, soft_wrap=True)
    if as_json:
        output.emit_json(console, result)
    else:
        console.print(output.verification_line(result))
    if not result.intact:
        raise typer.Exit(1)
