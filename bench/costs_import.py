"""Import and allocate a 1M-row FOCUS bill: wall time and peak memory.

Generates a FOCUS 1.0 CSV with DuckDB (fixed seed; 20 models in 4 teams; 70% of rows tagged
with a model, 10% with a team only, 20% untagged in three shared pools, one pool split by
predictions and one evenly; Usage, Purchase, Credit and Tax), then, in a fresh SQLite Keel,
times `CostService.import_focus` (hash, DuckDB validation and summing, one transaction) and the
month's allocation, each with its peak memory above the start. Ends with one JSON line.

    uv run python bench/costs_import.py                  # 1M rows
    uv run python bench/costs_import.py --rows 200000    # quicker
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))
from _common import PeakMemory, emit, timed

from keel.config import Settings
from keel.domain.costs import cents
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model
from keel.services.backend import Backend

ADMIN = Principal("bench", grants=(Grant(Role.ADMIN),))
MODELS = 20


def write_bill(path: Path, rows: int) -> None:
    with duckdb.connect() as con:
        con.execute("SELECT setseed(0.14)")
        con.execute(
            f"""
            COPY (
              SELECT
                printf('%.4f', cost) AS BilledCost,
                'USD' AS BillingCurrency,
                '2026-10-01T00:00:00Z' AS BillingPeriodStart,
                '2026-11-01T00:00:00Z' AS BillingPeriodEnd,
                CASE WHEN i % 50 = 0 THEN 'Tax' WHEN i % 97 = 0 THEN 'Credit'
                     WHEN i % 101 = 0 THEN 'Purchase' ELSE 'Usage' END AS ChargeCategory,
                strftime(TIMESTAMP '2026-10-01' + INTERVAL (i % 31) DAY, '%Y-%m-%dT%H:%M:%SZ')
                  AS ChargePeriodStart,
                strftime(TIMESTAMP '2026-10-01' + INTERVAL (i % 31 + 1) DAY, '%Y-%m-%dT%H:%M:%SZ')
                  AS ChargePeriodEnd,
                printf('%.4f', CASE WHEN i % 97 = 0 THEN -cost ELSE cost END) AS EffectiveCost,
                CASE WHEN kind < 0.7 THEN 'Compute' ELSE ['GPU cluster', 'Networking',
                     'Support'][1 + (i % 3)] END AS ServiceName,
                CASE WHEN kind < 0.7 THEN printf('{{"keel-model": "m%d"}}', i % {MODELS})
                     WHEN kind < 0.8 THEN printf('{{"keel-team": "t%d"}}', i % 4)
                     ELSE NULL END AS Tags,
                printf('cc-%d', i % 13) AS x_CostCenter
              FROM (SELECT range AS i, random() * 3 AS cost, random() AS kind
                    FROM range({rows}))
            ) TO '{path}' (HEADER, DELIMITER ',')
            """
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="keel-bench-costs-") as scratch:
        home = Path(scratch)
        bill = home / "bill.csv"
        _, generate_s = timed(lambda: write_bill(bill, args.rows))
        file_mb = bill.stat().st_size / 1e6
        print(f"generated {args.rows} rows, {file_mb:.0f} MB in {generate_s:.1f} s")
        backend = Backend.open(Settings.load(data_dir=home / "keel", env={}))
        backend.migrate()
        for t in range(4):
            backend.registry.create_team(ADMIN, f"t{t}")
        for m in range(MODELS):
            backend.registry.create_model(ADMIN, Model(name=f"m{m}", team=f"t{m % 4}", owner="o"))
        backend.costs.set_split_rule(ADMIN, "GPU cluster", "even")
        backend.costs.set_split_rule(ADMIN, "Networking", "predictions")
        with PeakMemory() as import_memory:
            imported, import_s = timed(
                lambda: backend.costs.import_focus(
                    ADMIN, bill, file_format="csv", filename="bill.csv"
                )
            )
        with PeakMemory() as allocate_memory:
            allocations, allocate_s = timed(lambda: backend.costs.month_allocations("2026-10"))
        total = sum(a.micros for a in allocations)
        assert total == imported.effective_micros, "allocations must sum to the bill"
        backend.close()
    figures = {
        "rows": args.rows,
        "import_s": round(import_s, 2),
        "allocate_s": round(allocate_s, 3),
        "import_and_allocate_s": round(import_s + allocate_s, 2),
        "import_peak_extra_mb": round(import_memory.extra_mb, 1),
        "allocate_peak_extra_mb": round(allocate_memory.extra_mb, 1),
        "file_mb": round(file_mb, 1),
        "effective_cost": str(cents(imported.effective_micros)),
        "allocations": len(allocations),
        "allocations_sum_to_the_bill": total == imported.effective_micros,
    }
    print(
        f"import {figures['import_s']} s (+{figures['import_peak_extra_mb']} MB peak), "
        f"allocate {figures['allocate_s']} s (+{figures['allocate_peak_extra_mb']} MB)"
    )
    emit(figures)


if __name__ == "__main__":
    main()
