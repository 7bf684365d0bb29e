"""The executive report as Markdown or as one self-contained HTML page.

Both are built from the same rows (`_sections`): a title, then tables. The HTML carries its
CSS inline and links nothing outside itself, so it opens offline and mails as one file; its
print rules keep tables whole and drop the screen background.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from keel.domain.delivery import DoraMetrics
from keel.services.report import MonthReport


@dataclass(frozen=True)
class _Section:
    title: str
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    note: str = ""


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"{value:,.2f}"


def _hours(hours: float | None) -> str:
    if hours is None:
        return "n/a"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"


def _dora_row(m: DoraMetrics) -> tuple[str, ...]:
    return (
        m.scope,
        f"{len(m.deployments)} ({m.frequency})",
        f"{_hours(m.lead_time_hours)} ({m.lead_time or 'n/a'})",
        f"{_rate(m.change_failure_rate)} ({m.change_failure or 'n/a'})",
        f"{_hours(m.recovery_hours)} ({m.recovery or 'n/a'})",
        _rate(m.rework_rate),
    )


def _sections(r: MonthReport) -> list[_Section]:
    times = r.incidents.times
    mttr = None if times.mttr_seconds is None else times.mttr_seconds / 3600
    mtta = None if times.mtta_seconds is None else times.mtta_seconds / 3600
    by_severity = ", ".join(f"{k}: {v}" for k, v in r.incidents.by_severity.items()) or "none"
    budgets = tuple(
        tuple(f"{k}: {v}" for k, v in b.items() if not isinstance(v, dict | list))
        for b in r.costs.budgets
    )
    return [
        _Section(
            "Models in production by risk tier",
            ("risk tier", "models"),
            tuple((tier, str(n)) for tier, n in r.production_by_tier.items()),
            ", ".join(f"{p.model} v{p.version} ({p.team})" for p in r.production)
            or "No model was in production at the end of the month.",
        ),
        _Section(
            "Incidents",
            ("opened", "by severity", "MTTA", "MTTR", "open at month end"),
            (
                (
                    str(r.incidents.opened),
                    by_severity,
                    _hours(mtta),
                    _hours(mttr),
                    str(r.incidents.open_at_month_end),
                ),
            ),
        ),
        _Section(
            "Cost, budgets and forecast",
            ("portfolio cost",),
            (("unknown" if r.costs.total is None else str(r.costs.total),),),
            r.costs.note,
        ),
        *(
            [_Section("Budget status", ("budget",), tuple((" · ".join(b),) for b in budgets))]
            if budgets
            else []
        ),
        _Section(
            "Value and ROI",
            ("model", "value", "95% interval", "cost", "ROI", "business case", "note"),
            tuple(
                (
                    v.model,
                    _money(None if v.value is None else v.value.value),
                    "" if v.value is None else f"{_money(v.value.low)} to {_money(v.value.high)}",
                    "unknown" if v.cost is None else str(v.cost),
                    _rate(v.roi),
                    _money(v.expected_monthly_value),
                    v.note,
                )
                for v in r.value
            ),
            "" if r.value else "No model has a value model yet (keel value set).",
        ),
        _Section(
            "Delivery (DORA, Four Keys buckets)",
            ("scope", "deployments", "lead time", "change failure", "recovery", "rework"),
            (_dora_row(r.dora), *(_dora_row(m) for m in r.dora_by_team)),
        ),
        _Section(
            "Maturity distribution",
            ("scale", *(f"level {n}" for n in range(5))),
            tuple(
                (
                    name,
                    *(
                        str(r.maturity_distribution(scale).get(n, 0)) if n <= top else "-"
                        for n in range(5)
                    ),
                )
                for name, scale, top in (("Google", "google", 2), ("Microsoft", "microsoft", 4))
            ),
        ),
        _Section(
            "Compliance gaps",
            ("model", "version", "gap", "fix"),
            tuple(
                (g.model, str(g.version), gap.missing, gap.fix)
                for g in r.compliance
                for gap in g.gaps
            ),
            "" if r.compliance else "No gaps in the production models' documentation.",
        ),
        _Section(
            "Top actions",
            ("#", "action"),
            tuple((str(n), a) for n, a in enumerate(r.actions, 1)),
            "" if r.actions else "Nothing urgent.",
        ),
    ]


def _md_cell(text: str) -> str:
    # Markdown passes raw HTML through: an incident title must stay text.
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: MonthReport) -> str:
    """The report as GitHub-flavoured Markdown."""
    lines = [
        f"# Keel executive report, {report.month}",
        "",
        f"Generated {report.generated_at:%Y-%m-%d %H:%M} UTC from Keel's records.",
    ]
    for section in _sections(report):
        lines += ["", f"## {section.title}", ""]
        if section.rows:
            lines.append("| " + " | ".join(section.header) + " |")
            lines.append("|" + "---|" * len(section.header))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in section.rows]
        if section.note:
            lines += ["", section.note] if section.rows else [section.note]
    return "\n".join(lines) + "\n"


_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1f24;
       max-width: 60rem; margin: 2rem auto; padding: 0 1rem; background: #f6f8fa; }
main { background: #fff; padding: 1.5rem 2rem; border-radius: 6px; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; } h2 { font-size: 1.15rem; margin: 1.6rem 0 .5rem;
     border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e5e8eb;
         vertical-align: top; }
th { background: #f0f3f6; font-weight: 600; } .note { color: #57606a; }
@media print {
  body { background: #fff; margin: 0; max-width: none; font-size: 11pt; }
  main { padding: 0; } section { break-inside: avoid; } tr { break-inside: avoid; }
  h2 { break-after: avoid; }
}
"""


def render_html(report: MonthReport) -> str:
    """The report as one HTML page with inline CSS and no external resource."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Keel executive report, {escape(report.month)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>Keel executive report, {escape(report.month)}</h1>",
        f'<p class="note">Generated {report.generated_at:%Y-%m-%d %H:%M} UTC from Keel\'s '
        "records.</p>",
    ]
    for section in _sections(report):
        parts.append(f"<section><h2>{escape(section.title)}</h2>")
        if section.rows:
            parts.append(_html_table(section.header, section.rows))
        if section.note:
            parts.append(f'<p class="note">{escape(section.note)}</p>')
        parts.append("</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
