"""`keel webhooks ...` and `keel slo ...`: signed notifications and service level objectives."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from keel.cli import output
from keel.cli.registry import JsonFlag, connected
from keel.cli.usage import finite_float
from keel.schemas.notifications import DeliveryOut, SloOut, SloStatusOut, SubscriptionOut

webhooks_app = typer.Typer(
    help="Webhooks: signed event notifications, their deliveries and dead letters (admin).",
    no_args_is_help=True,
)
slo_app = typer.Typer(
    help="SLOs: availability and latency objectives, error budgets, burn rates.",
    no_args_is_help=True,
)


def subscriptions_table(subs: list[SubscriptionOut]) -> Table:
    table = Table("id", "url", "events", "slack", "created by", "created")
    for s in subs:
        table.add_row(
            str(s.id), s.url, ", ".join(s.events), "yes" if s.slack else "", s.created_by,
            output.when(s.created_at),
        )  # fmt: skip
    return table


def deliveries_table(rows: list[DeliveryOut]) -> Table:
    table = Table("id", "event", "subscription", "status", "attempts", "next attempt", "error")
    style = {"delivered": "green", "pending": "yellow", "dead": "bold red"}
    for d in rows:
        table.add_row(
            str(d.id), d.event_type, str(d.subscription_id),
            f"[{style.get(d.status, '')}]{d.status}[/]", str(d.attempts),
            output.when(d.next_attempt_at), d.last_error or "",
        )  # fmt: skip
    return table


@webhooks_app.command("add")
def webhooks_add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="Where to POST events (http:// or https://).")],
    events: Annotated[
        list[str],
        typer.Option("--events", help="Event pattern, e.g. incident.* (repeat for several)."),
    ],
    slack: Annotated[bool, typer.Option(help="Send a Slack-compatible {text} body.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Subscribe a URL; prints the signing secret ONCE (it is never shown again)."""
    with connected(ctx) as keel:
        sub = keel.add_webhook(url, events=events, slack=slack)
    console = Console()
    if output.wants_json(as_json, console):
        output.emit_json(console, sub)
        return
    console.print(f"Subscription {sub.id}: {sub.url} <- {', '.join(sub.events)}")
    console.print(f"Signing secret (shown once, store it now): {sub.secret}", soft_wrap=True)


@webhooks_app.command("list")
def webhooks_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List webhook subscriptions (without their secrets)."""
    with connected(ctx) as keel:
        subs = keel.list_webhooks()
    output.show(as_json, subs, lambda: subscriptions_table(subs))


@webhooks_app.command("remove")
def webhooks_remove(
    ctx: typer.Context, subscription_id: Annotated[int, typer.Argument(help="Subscription id.")]
) -> None:
    """Remove a subscription; its pending deliveries become dead letters."""
    with connected(ctx) as keel:
        keel.remove_webhook(subscription_id)
    Console().print(f"Removed subscription {subscription_id}.")


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="Only pending, delivered or dead deliveries.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """Webhook deliveries, newest first (dead letters with --status dead)."""
    with connected(ctx) as keel:
        rows = keel.webhook_deliveries(status=status, limit=limit)
    output.show(as_json, rows, lambda: deliveries_table(rows))


@webhooks_app.command("retry")
def webhooks_retry(
    ctx: typer.Context,
    delivery_id: Annotated[int, typer.Argument(help="Delivery id.")],
    as_json: JsonFlag = False,
) -> None:
    """Send a dead-lettered delivery again (the worker sends it on its next pass)."""
    with connected(ctx) as keel:
        row = keel.retry_delivery(delivery_id)
    output.show(as_json, row, lambda: f"Delivery {row.id} is {row.status} again.")


def slos_table(rows: list[SloOut]) -> Table:
    table = Table("id", "name", "kind", "objective", "window", "latency bound")
    for s in rows:
        bound = f"{s.latency_threshold_ms:g} ms" if s.latency_threshold_ms else ""
        table.add_row(str(s.id), s.name, s.kind, f"{s.objective:.4%}", f"{s.window_days}d", bound)
    return table


def status_table(status: SloStatusOut) -> Table:
    slo = status.slo
    table = Table(
        "rule", "long window", "short window", "long burn", "short burn", "threshold", "firing",
        title=(
            f"{slo.model} / {slo.name}: {slo.kind} {slo.objective:.4%} over {slo.window_days}d, "
            f"{status.bad_requests}/{status.requests} bad, error budget remaining "
            f"{status.error_budget_remaining:.1%}"
        ),
    )  # fmt: skip
    for r in status.burn_rates:
        table.add_row(
            f"{r.action} ({r.severity})", r.long_window, r.short_window,
            f"{r.long_burn_rate:.2f}", f"{r.short_burn_rate:.2f}", f"{r.threshold:g}",
            "[bold red]yes[/]" if r.firing else "no",
        )  # fmt: skip
    return table


@slo_app.command("create")
def slo_create(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    objective: Annotated[
        float, typer.Option(help="Share of good requests, e.g. 0.999.", parser=finite_float)
    ],
    kind: Annotated[str, typer.Option(help="availability or latency.")] = "availability",
    name: Annotated[str | None, typer.Option(help="Unique per model (default: the kind).")] = None,
    window_days: Annotated[int, typer.Option(help="28 or 30.")] = 30,
    latency_ms: Annotated[
        float | None,
        typer.Option(help="Latency SLOs: the bound a good request is within.", parser=finite_float),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Define an SLO on a model."""
    with connected(ctx) as keel:
        slo = keel.create_slo(
            model, name=name or kind, kind=kind, objective=objective,
            window_days=window_days, latency_threshold_ms=latency_ms,
        )  # fmt: skip
    output.show(as_json, slo, lambda: slos_table([slo]))


@slo_app.command("status")
def slo_status(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    as_json: JsonFlag = False,
) -> None:
    """Error budget remaining and burn rates of each of a model's SLOs."""
    with connected(ctx) as keel:
        statuses = [keel.slo_status(s.id) for s in keel.list_slos(model)]
    console = Console()
    if output.wants_json(as_json, console):
        output.emit_json(console, statuses)
        return
    if not statuses:
        console.print(f"{model} has no SLOs. Define one with `keel slo create {model}`.")
    for status in statuses:
        console.print(status_table(status))
