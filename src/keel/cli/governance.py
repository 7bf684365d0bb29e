"""`keel policy|gates|approve|reject|promote|promotions`: governance from a terminal, through
`keel.sdk`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from keel.cli import output
from keel.cli.jobs import NoWait, jobs_table, progress_printer
from keel.cli.registry import JsonFlag, connected
from keel.schemas.governance import ApprovalOut, PipelineStatusOut, PolicyOut, PromotionOut

policy_app = typer.Typer(
    help="Policies as code: what each risk tier requires.", no_args_is_help=True
)
gates_app = typer.Typer(
    help="The gates: performance, security, fairness, sign-off.", no_args_is_help=True
)
promotions_app = typer.Typer(
    help="Who put which version in production, when, and under which policy.",
    no_args_is_help=True,
)

_STYLE = {
    "passed": "green",
    "failed": "bold red",
    "error": "bold red",
    "pending": "yellow",
    "not_required": "dim",
}

Model = Annotated[str, typer.Argument(help="Model name.")]
Version = Annotated[int, typer.Argument(help="Version number.")]
Comment = Annotated[str, typer.Option("--message", "-m", help="Why (required).")]


def pipeline(status: PipelineStatusOut) -> RenderableType:
    """The pipeline as a table, then the decisions and what blocks promotion."""
    table = Table(
        title=f"{status.model} v{status.version} - {status.tier} policy v{status.policy_version}"
    )
    for column in ("gate", "outcome", "evidence", "to pass"):
        table.add_column(column, overflow="fold")
    for state in status.gates:
        summary = "" if state.result is None else str(state.result.evidence.get("summary", ""))
        outcome = Text(state.outcome.value, style=_STYLE.get(state.outcome.value, ""))
        table.add_row(state.gate.value, outcome, summary, state.to_pass)
    parts: list[RenderableType] = [table]
    if status.approvals:
        parts.append(decisions(status.approvals))
    if status.promotable:
        parts.append(Text("Promotable: every required gate passed.", style="green"))
    else:
        parts.append(Text("Blocked:", style="bold red"))
        parts.extend(Text(f"  - {b}") for b in status.blockers)
    return Group(*parts)


def decisions(approvals: list[ApprovalOut]) -> Table:
    table = Table(title="Sign-off")
    for column in ("when", "who", "teams", "decision", "comment"):
        table.add_column(column, overflow="fold")
    for a in approvals:
        decision = a.decision.value + (f" (void: {a.void_reason})" if a.void else "")
        table.add_row(output.when(a.decided_at), a.actor, ", ".join(a.teams), decision, a.comment)
    return table


def policy_view(policy: PolicyOut) -> RenderableType:
    made = (
        "Keel's built-in default"
        if policy.version == 0
        else (f"applied by {policy.created_by} on {output.when(policy.created_at)}")
    )
    header = Text(f"{policy.tier} policy v{policy.version} ({made}), sha256 {policy.sha256[:12]}")
    return Group(header, Text(policy.source))


def promotion_view(p: PromotionOut) -> Text:
    text = f"{p.model} v{p.version} is in production"
    text += f" (previous: v{p.previous_version})" if p.previous_version else ""
    if p.break_glass:
        return Text(f"{text} - BREAK-GLASS by {p.promoted_by}: {p.justification}", style="bold red")
    return Text(text, style="green")


@policy_app.command("apply")
def policy_apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The policy YAML file.")],
    as_json: JsonFlag = False,
) -> None:
    """Apply a policy file (admins); it becomes its tier's next version."""
    with connected(ctx) as keel:
        applied = keel.apply_policy(file)
    output.show(as_json, applied, lambda: policy_view(applied))


@policy_app.command("show")
def policy_show(
    ctx: typer.Context,
    tier: Annotated[str, typer.Argument(help="unassessed, minimal, limited, high or prohibited.")],
    version: Annotated[int | None, typer.Option(help="A past version (0: the default).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the policy in force for a risk tier."""
    with connected(ctx) as keel:
        found = keel.policy(tier, version)
    output.show(as_json, found, lambda: policy_view(found))


@gates_app.command("run")
def gates_run(
    ctx: typer.Context,
    model: Model,
    version: Version,
    no_wait: NoWait = False,
    as_json: JsonFlag = False,
) -> None:
    """Run gates 1-3: Keel evaluates the model, scans the artifact, checks fairness.

    A worker runs them; this waits, showing progress, unless --no-wait."""
    with connected(ctx) as keel:
        if no_wait:
            job = keel.start_gate_run(model, version)
            output.show(as_json, job, lambda: jobs_table([job]))
            return
        status = keel.run_gates(model, version, on_progress=progress_printer())
    output.show(as_json, status, lambda: pipeline(status))


@gates_app.command("status")
def gates_status(
    ctx: typer.Context, model: Model, version: Version, as_json: JsonFlag = False
) -> None:
    """Show the pipeline: each gate's outcome and evidence, sign-off, and what blocks it."""
    with connected(ctx) as keel:
        status = keel.gate_status(model, version)
    output.show(as_json, status, lambda: pipeline(status))


def approve(
    ctx: typer.Context, model: Model, version: Version, message: Comment, as_json: JsonFlag = False
) -> None:
    """Approve a version (needs the approver role; not a version you registered)."""
    with connected(ctx) as keel:
        decision = keel.approve(model, version, message)
    output.show(as_json, decision, lambda: decisions([decision]))


def reject(
    ctx: typer.Context, model: Model, version: Version, message: Comment, as_json: JsonFlag = False
) -> None:
    """Reject a version: its candidacy ends for good."""
    with connected(ctx) as keel:
        decision = keel.reject(model, version, message)
    output.show(as_json, decision, lambda: decisions([decision]))


def promote(
    ctx: typer.Context,
    model: Model,
    version: Version,
    break_glass: Annotated[
        str | None,
        typer.Option(
            "--break-glass",
            help="Admins: override failing gates, with this written justification (audited).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Promote a version to production once every required gate passed."""
    with connected(ctx) as keel:
        promoted = keel.promote(model, version, break_glass=break_glass)
    output.show(as_json, promoted, lambda: promotion_view(promoted))


def promotions_table(model: str, promotions: list[PromotionOut]) -> RenderableType:
    """Every promotion, oldest first; break-glass ones in red with their justification."""
    if not promotions:
        return Text(f"{model} has never been promoted.")
    table = Table(title=f"{model}: promotions, oldest first")
    for column in ("when", "version", "previous", "by", "policy", "break-glass"):
        table.add_column(column, overflow="fold")
    for p in promotions:
        policy = f"{p.policy_tier} v{p.policy_version}" if p.policy_tier else ""
        glass = Text(f"yes: {p.justification}", style="bold red") if p.break_glass else Text("")
        table.add_row(
            output.when(p.promoted_at),
            f"v{p.version}",
            "" if p.previous_version is None else f"v{p.previous_version}",
            p.promoted_by,
            policy,
            glass,
        )
    return table


@promotions_app.command("list")
def promotions_list(ctx: typer.Context, model: Model, as_json: JsonFlag = False) -> None:
    """List a model's promotions and rollbacks, oldest first, break-glass ones flagged."""
    with connected(ctx) as keel:
        found = keel.promotions(model)
    output.show(as_json, found, lambda: promotions_table(model, found))
