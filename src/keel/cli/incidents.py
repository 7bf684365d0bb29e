"""`keel alerts ...` (alert rules, from flags or a YAML file) and `keel incidents ...` (list,
show, acknowledge, resolve, comment, post-mortem, response-time stats)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console, Group
from rich.markdown import Markdown
from rich.table import Table

from keel.cli import output
from keel.cli.registry import JsonFlag, connected
from keel.cli.usage import finite_float
from keel.errors import InvalidInput
from keel.schemas.incidents import AlertRuleOut, IncidentOut, IncidentStatsOut

alerts_app = typer.Typer(
    help="Alert rules: which metric points open incidents, after how many windows.",
    no_args_is_help=True,
)
incidents_app = typer.Typer(
    help="Incidents: list, show, acknowledge, resolve, comment, post-mortem, stats.",
    no_args_is_help=True,
)

_STATUS_STYLE = {"triggered": "bold red", "acknowledged": "yellow", "resolved": "green"}


def rules_table(rules: Iterable[AlertRuleOut]) -> Table:
    table = Table("id", "name", "check", "column", "metric", "condition", "windows", "severity")
    for r in rules:
        condition = (
            "status is alert"
            if r.comparison == "status"
            else f"{r.comparison} {r.threshold:g}"
            if r.threshold is not None
            else str(r.comparison)
        )
        table.add_row(
            str(r.id),
            r.name,
            str(r.check),
            r.column or "",
            r.metric or "",
            condition,
            str(r.windows),
            str(r.severity),
        )
    return table


def incidents_table(incidents: Iterable[IncidentOut]) -> Table:
    table = Table("id", "status", "severity", "model", "title", "assignee", "opened")
    for i in incidents:
        table.add_row(
            str(i.id),
            f"[{_STATUS_STYLE[str(i.status)]}]{i.status}[/]",
            str(i.severity),
            f"{i.model} v{i.version}" if i.version else i.model,
            i.title,
            i.assignee or "",
            output.when(i.opened_at),
        )
    return table


def incident_view(incident: IncidentOut) -> Group:
    timeline = Table("at", "actor", "kind", "message", title="timeline")
    for entry in incident.timeline:
        timeline.add_row(output.when(entry.at), entry.actor, entry.kind, entry.message)
    parts: list[Any] = [incidents_table([incident]), timeline]
    if incident.postmortem:
        parts.append(Markdown(incident.postmortem))
    return Group(*parts)


def _read_rules(path: Path) -> tuple[str | None, list[dict[str, Any]]]:
    """A YAML file: ``model: NAME`` and ``rules: [...]``, or just a list of rules."""
    if not path.is_file():
        raise InvalidInput(f"No rules file at {path}.", {"field": "file"})
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {exc}", {"field": "file"}) from None
    model: str | None = None
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"model", "rules"})
        if unknown:
            raise InvalidInput(
                f"{path}: the '{unknown[0]}' field is not known; a rules file has 'model' and "
                "'rules'.",
                {"field": unknown[0]},
            )
        model = data.get("model")
        data = data.get("rules")
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InvalidInput(
            f"{path}: 'rules' must be a list of rules (mappings with name, check, ...).",
            {"field": "rules"},
        )
    return model, data


# -- keel alerts -------------------------------------------------------------------------------


@alerts_app.command("list")
def alerts_list(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    as_json: JsonFlag = False,
) -> None:
    """List a model's alert rules."""
    with connected(ctx) as keel:
        rules = keel.list_alert_rules(model)
    output.show(as_json, rules, lambda: rules_table(rules))


@alerts_app.command("create")
def alerts_create(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    name: Annotated[str, typer.Option(help="Rule name, unique per model.")],
    check: Annotated[str, typer.Option(help="drift, quality, performance, fairness, operations")],
    column: Annotated[str | None, typer.Option(help="Only this column's points.")] = None,
    metric: Annotated[str | None, typer.Option(help="Only this metric (e.g. psi).")] = None,
    comparison: Annotated[str, typer.Option(help=">, >=, <, <= or status.")] = "status",
    threshold: Annotated[
        float | None, typer.Option(help="Needed unless status.", parser=finite_float)
    ] = None,
    windows: Annotated[int, typer.Option(help="Consecutive windows.")] = 2,
    severity: Annotated[str, typer.Option(help="P1 (page) .. P5.")] = "P3",
    auto_resolve: Annotated[bool, typer.Option(help="Resolve when it clears.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Add an alert rule to a model."""
    with connected(ctx) as keel:
        rule = keel.create_alert_rule(
            model,
            name=name,
            check=check,
            column=column,
            metric=metric,
            comparison=comparison,
            threshold=threshold,
            windows=windows,
            severity=severity,
            auto_resolve=auto_resolve,
        )
    output.show(as_json, rule, lambda: rules_table([rule]))


@alerts_app.command("apply")
def alerts_apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="YAML: model: NAME, rules: [...]")],
    model: Annotated[str | None, typer.Option(help="Model (if the file names none).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create or update (by name) the rules in a YAML file, all or nothing."""
    with connected(ctx) as keel:
        named, rules = _read_rules(file)
        target = model or named
        if not target:
            raise InvalidInput(
                f"{file} names no model: add 'model: NAME' or pass --model.", {"field": "model"}
            )
        applied = keel.apply_alert_rules(target, rules)
    output.show(as_json, applied, lambda: rules_table(applied))


@alerts_app.command("delete")
def alerts_delete(
    ctx: typer.Context, rule_id: Annotated[int, typer.Argument(help="Rule id.")]
) -> None:
    """Delete an alert rule (its incidents stay)."""
    with connected(ctx) as keel:
        keel.delete_alert_rule(rule_id)
    Console().print(f"Deleted alert rule {rule_id}.")


# -- keel incidents ----------------------------------------------------------------------------


@incidents_app.command("list")
def incidents_list(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="Only this model's.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's models'.")] = None,
    status: Annotated[
        str | None, typer.Option(help="triggered, acknowledged, resolved or open.")
    ] = None,
    drill: Annotated[
        bool, typer.Option("--drill", help="Only drills' incidents (left out otherwise).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """List incidents, newest first (drills' incidents only with --drill)."""
    with connected(ctx) as keel:
        found = keel.list_incidents(model=model, team=team, status=status, drill=drill)
    output.show(as_json, found, lambda: incidents_table(found))


@incidents_app.command("show")
def incidents_show(
    ctx: typer.Context,
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    as_json: JsonFlag = False,
) -> None:
    """Show an incident with its timeline and post-mortem."""
    with connected(ctx) as keel:
        incident = keel.get_incident(incident_id)
    output.show(as_json, incident, lambda: incident_view(incident))


Comment = Annotated[str, typer.Option("--comment", "-m", help="A note for the timeline.")]


@incidents_app.command("ack")
def incidents_ack(
    ctx: typer.Context,
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    comment: Comment = "",
    as_json: JsonFlag = False,
) -> None:
    """Acknowledge an incident (you are on it)."""
    with connected(ctx) as keel:
        incident = keel.acknowledge_incident(incident_id, comment)
    output.show(as_json, incident, lambda: incident_view(incident))


@incidents_app.command("resolve")
def incidents_resolve(
    ctx: typer.Context,
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    comment: Comment = "",
    as_json: JsonFlag = False,
) -> None:
    """Resolve an incident."""
    with connected(ctx) as keel:
        incident = keel.resolve_incident(incident_id, comment)
    output.show(as_json, incident, lambda: incident_view(incident))


@incidents_app.command("comment")
def incidents_comment(
    ctx: typer.Context,
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    text: Annotated[str, typer.Argument(help="The comment.")],
    as_json: JsonFlag = False,
) -> None:
    """Add a comment to an incident's timeline."""
    with connected(ctx) as keel:
        incident = keel.comment_incident(incident_id, text)
    output.show(as_json, incident, lambda: incident_view(incident))


@incidents_app.command("postmortem")
def incidents_postmortem(
    ctx: typer.Context,
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    file: Annotated[Path, typer.Argument(help="A markdown file.")],
    as_json: JsonFlag = False,
) -> None:
    """Attach a markdown post-mortem to an incident (replaces an earlier one)."""
    with connected(ctx) as keel:
        if not file.is_file():
            raise InvalidInput(f"No post-mortem file at {file}.", {"field": "file"})
        incident = keel.set_postmortem(incident_id, file.read_text(encoding="utf-8"))
    output.show(as_json, incident, lambda: incident_view(incident))


def _duration(seconds: float | None) -> str:
    """``-`` when there is nothing to average, else e.g. ``42s``, ``12m 5s``, ``3h 20m``.

    >>> _duration(None), _duration(42.4), _duration(725), _duration(12_000)
    ('-', '42s', '12m 5s', '3h 20m')
    """
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def stats_table(stats: IncidentStatsOut) -> Table:
    scope = " ".join(
        part
        for part in (
            f"model {stats.model}" if stats.model else "",
            f"team {stats.team}" if stats.team else "",
        )
        if part
    )
    table = Table(title=f"Incident response ({scope or 'all incidents'})", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    for name, value in (
        ("incidents", str(stats.incidents)),
        ("open", str(stats.open)),
        ("acknowledged", str(stats.acknowledged)),
        ("resolved", str(stats.resolved)),
        ("MTTA (mean time to acknowledge)", _duration(stats.mtta_seconds)),
        ("MTTR (mean time to resolve)", _duration(stats.mttr_seconds)),
    ):
        table.add_row(name, value)
    return table


@incidents_app.command("stats")
def incidents_stats(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="Only this model's incidents.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's models' incidents.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Incident counts and MTTA/MTTR, for a model, a team, or every incident."""
    with connected(ctx) as keel:
        stats = keel.incident_stats(model=model, team=team)
    output.show(as_json, stats, lambda: stats_table(stats))
