"""Charts on dashboard pages: a Plotly figure drawn in the browser, with its data as a table.

The server builds the figure (`plotly.graph_objects`) and embeds its JSON in a ``data-figure``
attribute; ``static/charts.js`` draws it with the Plotly bundle Keel serves from the installed
`plotly` package (no CDN, no inline script: the page's Content-Security-Policy forbids both).
Every chart also carries its numbers as a table in a ``<details>``, so the page reads the same
without JavaScript and to a screen reader.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

import plotly.graph_objects as go
from markupsafe import Markup

from keel.web.assets import ASSETS, asset_url

# The ids of the stylesheets Plotly's bundle injects when it loads (map styles, for one): it
# skips each one whose id is already on the page.
_INJECTED_STYLE_ID = re.compile(rb'getElementById\("([0-9a-f]{64})"\)')


@cache
def _style_markers() -> Markup:
    ids = sorted(set(_INJECTED_STYLE_ID.findall(ASSETS["plotly/plotly.min.js"].read_bytes())))
    markers = ["plotly.js-style-global", *(found.decode() for found in ids)]
    return Markup("").join(
        Markup('<span hidden id="{}" class="no-inline-styles"></span>').format(marker)
        for marker in markers
    )


def chart_scripts() -> Markup:
    """The two script tags a page with charts puts at its end (once).

    Plotly adds its own stylesheets with inline ``<style>`` elements, which the page's CSP
    refuses (and logs as errors). Marker elements with their ids tell it not to (plotly.js skips
    a stylesheet whose id is on the page, and its global one when that marker has the class
    ``no-inline-styles``); the charts are drawn without Plotly's mode bar, which needs them.
    """
    return _style_markers() + Markup('<script src="{}"></script><script src="{}"></script>').format(
        asset_url("plotly/plotly.min.js"), asset_url("keel/charts.js")
    )


def chart(
    figure: go.Figure,
    *,
    label: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    height: int = 280,
) -> Markup:
    """A chart named ``label`` (its accessible name and the table's caption), with ``rows`` under
    ``columns`` as the same data in text."""
    figure.update_layout(height=height, template="plotly_white")
    cell = Markup("<td>{}</td>")
    head = Markup("").join(Markup("<th scope='col'>{}</th>").format(c) for c in columns)
    body = Markup("").join(
        Markup("<tr>{}</tr>").format(Markup("").join(cell.format(_cell(v)) for v in row))
        for row in rows
    )
    return Markup(
        '<figure class="chart-box"><div class="chart" role="img" aria-label="{label}" '
        'data-figure="{figure}"></div>'
        "<details><summary>{label}: the data</summary>"
        "<table><caption>{label}</caption><thead><tr>{head}</tr></thead>"
        "<tbody>{body}</tbody></table></details></figure>"
    ).format(label=label, figure=figure.to_json(), head=head, body=body)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    return "" if value is None else str(value)
