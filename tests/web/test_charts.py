"""A chart carries its figure for the browser and its numbers as text for everyone else."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import plotly.graph_objects as go

from keel.web.charts import chart, chart_scripts


class _Parts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.figure: str | None = None
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "div" and "data-figure" in found:
            self.figure = found["data-figure"]
        self._in_cell = tag == "td"

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells.append(data)
            self._in_cell = False


def test_a_chart_embeds_its_figure_and_its_data_as_a_table() -> None:
    html = chart(
        go.Figure(go.Scatter(x=[1, 2], y=[0.25, 0.5])),
        label="Drift of <income>",
        columns=["hour", "score"],
        rows=[["2026-11-01T00", 0.25], ["2026-11-01T01", None]],
    )
    parts = _Parts()
    parts.feed(str(html))
    assert parts.figure is not None
    assert json.loads(parts.figure)["data"][0]["y"] == [0.25, 0.5]
    assert parts.cells == ["2026-11-01T00", "0.25", "2026-11-01T01"]
    assert "<income>" not in str(html) and "&lt;income&gt;" in str(html)


def test_the_chart_scripts_come_from_keel_itself() -> None:
    scripts = str(chart_scripts())
    assert 'src="/static/plotly/plotly.min.js?v=' in scripts
    assert "http" not in scripts
