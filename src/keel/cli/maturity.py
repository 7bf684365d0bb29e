"""`keel maturity [--model M | --team T]` and `keel maturity attest`: maturity from evidence."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from keel.cli import output
from keel.cli.registry import JsonFlag, connected
from keel.schemas.maturity import MaturityOut

maturity_app = typer.Typer(
    help="MLOps maturity (Google 0-2, Microsoft 0-4), scored from Keel's records.",
    invoke_without_command=True,
)

_MARKS = {"met": "✓", "attested": "✓ attested", "missing": "✗", "needs attestation": "?"}


def score_view(score: MaturityOut) -> Group:
    title = Text.assemble(
        (f"{score.scope} {score.subject}: ", "bold"),
        f"Google level {score.google.level}/{score.google.top}, "
        f"Microsoft level {score.microsoft.level}/{score.microsoft.top}",
    )
    table = Table("criterion", "", "evidence, or what is missing", "next step")
    for c in score.criteria:
        evidence = "; ".join(
            f"{e.kind} {e.id}" + (f" ({output.when(e.at)})" if e.at else "") for e in c.evidence
        )
        table.add_row(c.title, _MARKS.get(c.status, c.status), evidence or c.missing, c.next_step)
    return Group(title, table)


def distribution_view(scores: list[MaturityOut]) -> Table:
    table = Table("scope", "name", "Google", "Microsoft", "next level needs")
    for s in scores:
        table.add_row(
            s.scope,
            s.subject,
            str(s.google.level),
            str(s.microsoft.level),
            ", ".join(dict.fromkeys([*s.google.next_needs, *s.microsoft.next_needs])),
        )
    return table


@maturity_app.callback()
def maturity(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="One model, criterion by criterion.")] = None,
    team: Annotated[str | None, typer.Option(help="One team (held by all its models).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Score a model or team (or, with neither, every model and team) from Keel's records."""
    if ctx.invoked_subcommand is not None:
        return
    with connected(ctx) as keel:
        scores = keel.maturity(model=model, team=team)
    if model is None and team is None:
        output.show(as_json, scores, lambda: distribution_view(scores))
    else:
        output.show(as_json, scores, lambda: Group(*(score_view(s) for s in scores)))


@maturity_app.command("attest")
def attest(
    ctx: typer.Context,
    criterion: Annotated[str, typer.Argument(help="A criterion Keel cannot observe.")],
    comment: Annotated[str, typer.Option(help="What shows it holds (a link, a ticket).")],
    model: Annotated[str | None, typer.Option(help="The model it holds for.")] = None,
    team: Annotated[str | None, typer.Option(help="Or the team (all its models).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Attest a criterion Keel cannot observe (admins; audited)."""
    with connected(ctx) as keel:
        done = keel.attest_maturity(criterion, comment, model=model, team=team)
    output.show(
        as_json,
        done,
        lambda: Text(f"Attested {done.criterion} for {done.scope} {done.subject} (#{done.id})."),
    )
