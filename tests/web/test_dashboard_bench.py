"""`bench/dashboard.py --small` runs, ends with its JSON line, and finds the portfolio's
statement count the same with 50 models shown as with every model: the bench cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "dashboard.py"


def test_the_dashboard_bench_runs_small() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--small", "--repeats", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["bench"] == "dashboard"
    assert figures["models"] == 60
    assert figures["statements_constant"] is True
    pages = figures["pages"]
    assert pages["portfolio_50"]["statements"] == pages["portfolio_60"]["statements"]
    assert {"model", "version", "api_portfolio_50"} <= set(pages)
