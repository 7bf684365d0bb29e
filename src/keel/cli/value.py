"""`keel value set|show|roi`: what a model earns, and its return on what it costs."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from keel.cli import output
from keel.cli.registry import JsonFlag, connected
from keel.schemas.value import MonthRoiOut, ValueModelOut

value_app = typer.Typer(
    help="Value models, realized value and ROI per model and month.", no_args_is_help=True
)

Amount = Annotated[float | None, typer.Option(help="In the currency; negative for a cost.")]


def value_model_view(value: ValueModelOut) -> Text:
    amounts = ", ".join(f"{k} {v:g}" for k, v in value.amounts.items())
    case = (
        "none recorded"
        if value.expected_monthly_value is None
        else f"{value.expected_monthly_value:,.2f} {value.currency} a month"
    )
    return Text.assemble(
        (f"{value.model}: ", "bold"),
        f"{value.kind} value model in {value.currency} ({amounts})\n",
        f"Business case: {case}\n",
        f"Set by {value.updated_by}, {output.when(value.updated_at)} UTC",
    )


def roi_table(months: list[MonthRoiOut]) -> Table:
    table = Table("month", "value", "95% interval", "cost", "ROI", "expected", "note")
    for m in months:
        value = interval = "unknown"
        if m.value is not None:
            value = f"{m.value.value:,.2f}"
            interval = f"{m.value.low:,.2f} .. {m.value.high:,.2f}"
        table.add_row(
            m.month,
            value,
            interval,
            "unknown" if m.cost is None else m.cost,
            "unknown" if m.roi is None else f"{m.roi:.1%}",
            "" if m.expected_monthly_value is None else f"{m.expected_monthly_value:,.2f}",
            m.note,
        )
    return table


@value_app.command("set")
def set_value(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    kind: Annotated[
        str, typer.Option(help="classification (value matrix), regression, or declared.")
    ],
    currency: Annotated[str, typer.Option(help="ISO 4217 code.")] = "EUR",
    tp: Amount = None,
    fp: Amount = None,
    tn: Amount = None,
    fn: Amount = None,
    per_prediction: Amount = None,
    per_unit_error: Annotated[
        float | None, typer.Option(help="Cost of one unit of absolute error (regression).")
    ] = None,
    monthly: Annotated[float | None, typer.Option(help="Declared value a month.")] = None,
    expected_monthly_value: Annotated[
        float | None, typer.Option(help="The business case: expected value a month.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Set a model's value model (replaces the one before; audited)."""
    fields: dict[str, Any] = {
        "kind": kind,
        "currency": currency,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "per_prediction": per_prediction,
        "per_unit_error": per_unit_error,
        "monthly": monthly,
        "expected_monthly_value": expected_monthly_value,
    }
    with connected(ctx) as keel:
        value = keel.set_value_model(model, **{k: v for k, v in fields.items() if v is not None})
    output.show(as_json, value, lambda: value_model_view(value))


@value_app.command("show")
def show(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    as_json: JsonFlag = False,
) -> None:
    """A model's value model and business case."""
    with connected(ctx) as keel:
        value = keel.value_model(model)
    output.show(as_json, value, lambda: value_model_view(value))


@value_app.command("roi")
def roi(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    first: Annotated[str, typer.Option("--from", help="First month, YYYY-MM.")],
    last: Annotated[str | None, typer.Option("--to", help="Last month (default: --from).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Value (with its 95% interval), cost and ROI per month, beside the business case."""
    with connected(ctx) as keel:
        months = keel.roi(model, first, last)
    output.show(
        as_json,
        months,
        lambda: Group(Text(f"{model}: value, cost and ROI", style="bold"), roi_table(months)),
    )
