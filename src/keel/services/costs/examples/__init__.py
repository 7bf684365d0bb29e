"""A tiny FOCUS 1.0 bill for trying Keel's costs (``keel costs sample``) and for tests."""

from __future__ import annotations

from importlib.resources import files


def focus_sample() -> str:
    """October 2026 for models churn and fraud (team risk) and ranker (team growth): tagged,
    team-only, untagged and shared rows; Usage, Purchase, Credit and Tax."""
    return files(__package__).joinpath("focus-sample.csv").read_text(encoding="utf-8")
