"""`keel deploy MODEL VERSION` and `keel deployments list|show|pause|resume|abort|promote|shadow|
export`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Group
from rich.table import Table

from keel.cli import output
from keel.cli.registry import JsonFlag, connected
from keel.errors import InvalidInput
from keel.schemas.deployments import DeploymentDetailOut, DeploymentOut, ShadowReportOut

deployments_app = typer.Typer(
    help="Deployments: canaries, blue/green switches and shadows, and their Kubernetes export.",
    no_args_is_help=True,
)

Model = Annotated[str, typer.Argument(help="Model name.")]
Reason = Annotated[str, typer.Option(help="Why (recorded on the timeline and in the audit).")]


def read_plan(path: Path) -> dict[str, Any]:
    """A plan file's content (YAML, or JSON, which YAML reads too)."""
    if not path.is_file():
        raise InvalidInput(f"No plan file at {path}.", {"field": "plan"})
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"The plan file {path} is not YAML or JSON: {exc}", {"field": "plan"}
        ) from None
    if not isinstance(document, dict):
        raise InvalidInput(
            f"The plan file {path} must hold a mapping (steps:, analysis:, ...).",
            {"field": "plan"},
        )
    return document


def _weight(d: DeploymentOut) -> str:
    if d.strategy == "canary" and d.state in ("progressing", "paused"):
        return f"{d.weight:.0%} (step {d.step + 1}/{d.steps})"
    return f"{d.weight:.0%}"


def deployments_table(found: Iterable[DeploymentOut]) -> Table:
    table = Table("id", "model", "strategy", "version", "stable", "state", "on candidate", "why")
    for d in found:
        table.add_row(
            str(d.id),
            d.model,
            d.strategy,
            str(d.version),
            "" if d.stable_version is None else str(d.stable_version),
            d.state,
            _weight(d),
            d.reason,
        )
    return table


def detail(found: DeploymentDetailOut) -> Group:
    timeline = Table("at", "event", "by", "details", title="timeline")
    for e in found.events:
        note = e.details.get("reason") or e.details.get("verdict") or ""
        timeline.add_row(output.when(e.at), e.kind, e.actor, str(note))
    serving = Table("arm", "version", "weight", title="serving now")
    if found.serving is not None:
        for arm in found.serving.live:
            serving.add_row(arm.name, str(arm.version), f"{arm.weight:.0%}")
        if found.serving.shadow is not None:
            shadow = found.serving.shadow
            serving.add_row("shadow", str(shadow.version), f"{shadow.weight:.0%} mirrored")
    return Group(deployments_table([found]), serving, timeline)


def shadow_table(report: ShadowReportOut) -> Table:
    table = Table(
        "pairs", "agreement", "score diff", "latency diff (ms)", "labelled", "stable", "shadow"
    )

    def fmt(value: float | None) -> str:
        return "" if value is None else f"{value:.4g}"

    metric = report.performance_metric or ""
    table.add_row(
        str(report.pairs),
        fmt(report.agreement),
        fmt(report.score_difference),
        fmt(report.latency_difference_ms),
        str(report.labelled_pairs),
        f"{metric} {fmt(report.stable_performance)}".strip(),
        f"{metric} {fmt(report.shadow_performance)}".strip(),
    )
    return table


def deploy(
    ctx: typer.Context,
    model: Model,
    version: Annotated[int, typer.Argument(help="The version to deploy.")],
    strategy: Annotated[str, typer.Option(help="direct, canary, blue-green or shadow.")] = "canary",
    plan: Annotated[
        Path | None, typer.Option(help="Plan file (YAML or JSON): steps, analysis, routeKey...")
    ] = None,
    justification: Annotated[
        str | None,
        typer.Option(help="Break glass (admins): serve live despite failing gates, and why."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Deploy a version. Live traffic needs its gates passed (or break-glass); a shadow needs
    its security gate. A canary advances by its analysis and promotes itself at the end."""
    document = None if plan is None else read_plan(plan)
    with connected(ctx) as keel:
        found = keel.deploy(
            model, version, strategy=strategy, plan=document, justification=justification
        )
    output.show(as_json, found, lambda: deployments_table([found]))


@deployments_app.command("list")
def deployments_list(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Argument(help="Only this model's.")] = None,
    active: Annotated[bool, typer.Option(help="Only those in progress.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Deployments, newest first."""
    with connected(ctx) as keel:
        found = keel.deployments(model, active=active)
    output.show(as_json, found, lambda: deployments_table(found))


@deployments_app.command("show")
def deployments_show(ctx: typer.Context, model: Model, as_json: JsonFlag = False) -> None:
    """The model's newest deployment: its state, what serves now and its timeline."""
    with connected(ctx) as keel:
        found = keel.deployment(model)
    output.show(as_json, found, lambda: detail(found))


@deployments_app.command("pause")
def deployments_pause(
    ctx: typer.Context, model: Model, reason: Reason = "", as_json: JsonFlag = False
) -> None:
    """Hold the rollout where it is."""
    with connected(ctx) as keel:
        found = keel.pause_deployment(model, reason=reason)
    output.show(as_json, found, lambda: deployments_table([found]))


@deployments_app.command("resume")
def deployments_resume(ctx: typer.Context, model: Model, as_json: JsonFlag = False) -> None:
    """Carry on with a paused rollout."""
    with connected(ctx) as keel:
        found = keel.resume_deployment(model)
    output.show(as_json, found, lambda: deployments_table([found]))


@deployments_app.command("abort")
def deployments_abort(
    ctx: typer.Context, model: Model, reason: Reason = "", as_json: JsonFlag = False
) -> None:
    """Abort the rollout: all traffic back to the stable version."""
    with connected(ctx) as keel:
        found = keel.abort_deployment(model, reason=reason)
    output.show(as_json, found, lambda: deployments_table([found]))


@deployments_app.command("promote")
def deployments_promote(ctx: typer.Context, model: Model, as_json: JsonFlag = False) -> None:
    """Promote the candidate now, through the gates (skips the remaining steps)."""
    with connected(ctx) as keel:
        found = keel.promote_deployment(model)
    output.show(as_json, found, lambda: deployments_table([found]))


@deployments_app.command("shadow")
def deployments_shadow(ctx: typer.Context, model: Model, as_json: JsonFlag = False) -> None:
    """The newest shadow's pairs: agreement, score, latency and performance differences."""
    with connected(ctx) as keel:
        report = keel.shadow_report(model)
    output.show(as_json, report, lambda: shadow_table(report))


@deployments_app.command("export")
def deployments_export(
    ctx: typer.Context,
    model: Model,
    format: Annotated[str, typer.Option("--format", help="kserve or argo-rollouts.")] = "kserve",
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
) -> None:
    """Kubernetes manifests of the newest deployment: a KServe InferenceService, or an Argo
    Rollout with its AnalysisTemplate reading Keel's Prometheus metrics."""
    with connected(ctx) as keel:
        manifests = keel.export_deployment(model, format=format)
    if out is None:
        typer.echo(manifests, nl=False)
    else:
        out.write_text(manifests, encoding="utf-8")
        typer.echo(f"Wrote {out}")
