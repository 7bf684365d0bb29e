"""The model page's charts over time, each from records the API also serves: monitor points
(drift per column, live performance, fairness per group, traffic, errors and p99) and the
month's cost and value."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import plotly.graph_objects as go
from markupsafe import Markup

from keel.domain.monitoring import Check, MetricPoint
from keel.services.value import MonthRoi
from keel.web.charts import chart

# What each check's chart is called, and how its lines are named.
TITLES = {
    Check.DRIFT: "Drift per column",
    Check.PERFORMANCE: "Live performance",
    Check.FAIRNESS: "Fairness per group",
    Check.OPERATIONS: "Traffic, errors and p99 latency",
    Check.QUALITY: "Data quality",
}
ORDER = (Check.DRIFT, Check.PERFORMANCE, Check.FAIRNESS, Check.OPERATIONS, Check.QUALITY)


def _line(point: MetricPoint) -> str:
    return f"{point.column} ({point.metric})" if point.column else point.metric


def monitoring_charts(model: str, points: Sequence[MetricPoint]) -> list[tuple[str, Markup]]:
    """One chart per check that has points: a line per column and metric over window ends."""
    by_check: dict[Check, dict[str, list[MetricPoint]]] = defaultdict(lambda: defaultdict(list))
    for p in points:
        by_check[p.check][_line(p)].append(p)
    found = []
    for check in ORDER:
        lines = by_check.get(check)
        if not lines:
            continue
        figure = go.Figure(
            [
                go.Scatter(
                    x=[p.window_end.isoformat() for p in series],
                    y=[p.value for p in series],
                    mode="lines+markers",
                    name=name,
                )
                for name, series in sorted(lines.items())
            ]
        )
        label = f"{TITLES[check]} of {model}"
        rows = [
            [p.window_end.strftime("%Y-%m-%d %H:%M"), name, p.value, p.threshold, str(p.status)]
            for name, series in sorted(lines.items())
            for p in series
        ]
        found.append(
            (
                TITLES[check],
                chart(
                    figure,
                    label=label,
                    columns=["window end", "series", "value", "threshold", "status"],
                    rows=rows,
                ),
            )
        )
    return found


def money_chart(model: str, months: Sequence[MonthRoi]) -> Markup:
    """Cost and value per month (value's 95% interval in the table)."""
    x = [m.month for m in months]
    figure = go.Figure(
        [
            go.Bar(
                x=x, y=[float(m.cost) if m.cost is not None else None for m in months], name="cost"
            ),
            go.Bar(x=x, y=[m.value.value if m.value else None for m in months], name="value"),
        ]
    )
    rows = [
        [
            m.month,
            None if m.cost is None else float(m.cost),
            None if m.value is None else m.value.value,
            None if m.value is None else f"{m.value.low:,.2f} to {m.value.high:,.2f}",
            None if m.roi is None else f"{m.roi:.0%}",
            m.note,
        ]
        for m in months
    ]
    return chart(
        figure,
        label=f"Cost and value of {model} per month",
        columns=["month", "cost", "value", "value 95% interval", "ROI", "note"],
        rows=rows,
    )


def cost_chart(model: str, months: Sequence[tuple[str, float]]) -> Markup:
    """Cost per month, for a model without a value model."""
    figure = go.Figure([go.Bar(x=[m for m, _ in months], y=[c for _, c in months], name="cost")])
    return chart(
        figure,
        label=f"Cost of {model} per month",
        columns=["month", "cost"],
        rows=[[m, c] for m, c in months],
    )
