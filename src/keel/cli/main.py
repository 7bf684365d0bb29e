"""`keel`: the command line. Every command but `keel up`/`keel db` talks to a server through
`keel.sdk`, with the SDK's token discovery (``--token``, ``$KEEL_TOKEN``, then on this machine
``<data dir>/admin-token``)."""

from __future__ import annotations

from typing import Annotated

import typer

from keel.cli import (
    audit,
    costs,
    delivery,
    demo,
    deployments,
    documents,
    drills,
    estimation,
    evaluation,
    governance,
    grafana,
    identity,
    imports,
    incidents,
    jobs,
    maturity,
    monitoring,
    notifications,
    playbooks,
    profiles,
    registry,
    report,
    retraining,
    risk,
    server,
    telemetry,
    value,
)
from keel.cli.usage import KeelGroup

app = typer.Typer(
    name="keel",
    cls=KeelGroup,
    help="Keel, the MLOps control plane: run a server, and manage its models from the terminal.",
    no_args_is_help=True,
    # Locals in a traceback could hold the token.
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            envvar="KEEL_URL",
            help="Keel server to talk to (default http://127.0.0.1:8420).",
            show_envvar=True,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="KEEL_TOKEN",
            help="API token (default: for a server on this machine, <data dir>/admin-token).",
            show_envvar=True,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Keel, the MLOps control plane."""
    ctx.obj = registry.Connection(url=url, token=token)


app.command("up")(server.up)
app.command("worker")(server.worker)
app.command("serve")(server.serve)
app.add_typer(server.db_app, name="db")
app.add_typer(registry.teams_app, name="teams")
app.add_typer(registry.models_app, name="models")
app.add_typer(registry.versions_app, name="versions")
app.add_typer(registry.alias_app, name="alias")
app.command("whoami")(identity.whoami)
app.add_typer(identity.users_app, name="users")
app.add_typer(identity.tokens_app, name="tokens")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(evaluation.eval_data_app, name="eval-data")
app.add_typer(evaluation.scan_app, name="scan")
app.add_typer(governance.policy_app, name="policy")
app.add_typer(governance.gates_app, name="gates")
app.command("approve")(governance.approve)
app.command("reject")(governance.reject)
app.command("promote")(governance.promote)
app.add_typer(governance.promotions_app, name="promotions")
app.add_typer(risk.risk_app, name="risk")
app.add_typer(documents.docs_app, name="docs")
app.add_typer(monitoring.monitor_app, name="monitor")
app.add_typer(telemetry.telemetry_app, name="telemetry")
app.add_typer(profiles.profiles_app, name="profiles")
app.add_typer(notifications.webhooks_app, name="webhooks")
app.add_typer(notifications.slo_app, name="slo")
app.add_typer(incidents.alerts_app, name="alerts")
app.add_typer(incidents.incidents_app, name="incidents")
app.add_typer(playbooks.playbooks_app, name="playbooks")
app.command("rollback")(playbooks.rollback)
app.command("retrain")(playbooks.retrain)
app.add_typer(retraining.retraining_app, name="retraining")
app.add_typer(costs.costs_app, name="costs")
app.add_typer(costs.budgets_app, name="budgets")
app.command("gc")(costs.gc)
app.add_typer(grafana.grafana_app, name="grafana")
app.add_typer(value.value_app, name="value")
app.add_typer(estimation.estimation_app, name="estimation")
app.command("dora")(delivery.dora)
app.add_typer(maturity.maturity_app, name="maturity")
app.command("report")(report.report)
app.add_typer(imports.import_app, name="import")
app.add_typer(jobs.jobs_app, name="jobs")
app.command("deploy")(deployments.deploy)
app.add_typer(deployments.deployments_app, name="deployments")
app.command("demo")(demo.demo)
app.add_typer(drills.drills_app, name="drills")
