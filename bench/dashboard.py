"""The dashboard's server time and SQL statements per page, on a big portfolio.

Seeds a fresh SQLite Keel straight through its tables (fixed seed): 1,000 models in 10 teams,
20,000 versions (20 a model; 70% of models with one in production, a newer candidate with gate
results for half of them), 200 open incidents, a month of daily monitor windows (drift of two
columns and accuracy, every model: 90,000 metric points), a portfolio budget and 50 model
budgets. Then, in process (Starlette's TestClient over the real app, an admin's token), asks each
page `--repeats` times after one warm-up and reports p50 and p95 server time and the SQL
statements it issued (counted with SQLAlchemy's ``before_cursor_execute``), with the portfolio
at 50 and at 1,000 models shown: the statement count must not grow with the rows. The first
portfolio view after start also computes the slow tiles (forecast, DORA, maturity): reported
apart as ``portfolio_cold_ms``. Ends with one JSON line.

    uv run python bench/dashboard.py            # 1,000 models, 20,000 versions
    uv run python bench/dashboard.py --small    # 60 models: the test's quick run
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit

from keel.config import Settings
from keel.domain.permissions import Grant, Principal, Role
from keel.server import build_app
from keel.services.backend import Backend
from keel.store.sql.engine import write_transaction
from keel.store.sql.tables import alias_assignments, model_versions, models, teams
from keel.store.sql.tables_governance import gate_results
from keel.store.sql.tables_incidents import incidents
from keel.store.sql.tables_monitoring import metric_points

ADMIN = Principal("bench", grants=(Grant(Role.ADMIN),))
TIERS = ("minimal", "limited", "high", "unassessed")
P95_TARGET_MS = 200.0
TOKEN_TOUCH = ("UPDATE api_tokens SET last_used_at", "BEGIN IMMEDIATE")


def seed(
    backend: Backend, n_models: int, per_model: int, n_incidents: int, days: int
) -> dict[str, int]:
    rng = random.Random(17)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=days)
    counts = {"models": n_models, "versions": 0, "incidents": 0, "metric_points": 0}
    with write_transaction(backend.engine) as conn:
        conn.execute(
            teams.insert(),
            [{"name": f"team-{t}", "description": "", "created_at": start} for t in range(10)],
        )
        team_ids = [r.id for r in conn.execute(teams.select().order_by(teams.c.id))]
        conn.execute(
            models.insert(),
            [
                {
                    "name": f"model-{m:04d}",
                    "team_id": team_ids[m % len(team_ids)],
                    "owner": f"owner-{m % 37}",
                    "description": "",
                    "use_case": "",
                    "risk_tier": TIERS[m % len(TIERS)],
                    "latest_version": per_model,
                    "created_at": start,
                    "updated_at": start,
                }
                for m in range(n_models)
            ],
        )
        model_ids = [r.id for r in conn.execute(models.select().order_by(models.c.id))]
        versions = []
        for index, model_id in enumerate(model_ids):
            in_production = index % 10 < 7
            for v in range(1, per_model + 1):
                if v == per_model and index % 2 == 0:
                    status = "candidate"
                elif in_production and v == per_model - 1:
                    status = "production"
                else:
                    status = "retired" if in_production else "registered"
                versions.append(
                    {
                        "model_id": model_id,
                        "version": v,
                        "status": status,
                        "description": "",
                        "artifact_sha256": f"{index:032x}{v:032x}",
                        "artifact_size": 1024,
                        "artifact_flavor": "skops",
                        "artifact_filename": "model.skops",
                        "signature": [],
                        "params": {},
                        "metrics": {"auc": 0.8},
                        "lineage": {"parent_version": v - 1 or None},
                        "environment": {"python_version": "3.11", "packages": {}},
                        "card": {},
                        "parent_version": v - 1 or None,
                        "created_by": "bench",
                        "created_at": start + timedelta(minutes=v),
                        "updated_at": start + timedelta(minutes=v),
                    }
                )
        conn.execute(model_versions.insert(), versions)
        counts["versions"] = len(versions)
        rows = conn.execute(
            model_versions.select().with_only_columns(
                model_versions.c.id,
                model_versions.c.model_id,
                model_versions.c.status,
            )
        ).all()
        aliases, gates = [], []
        for r in rows:
            if r.status == "production":
                aliases.append(
                    {
                        "model_id": r.model_id,
                        "alias": "production",
                        "version_id": r.id,
                        "set_by": "bench",
                        "set_at": start,
                    }
                )
            if r.status == "candidate":
                for gate in ("performance", "security", "fairness"):
                    gates.append(
                        {
                            "version_id": r.id,
                            "gate": gate,
                            "outcome": rng.choice(("passed", "passed", "failed")),
                            "evidence": {"summary": "bench"},
                            "evidence_digest": "0" * 64,
                            "policy_tier": "minimal",
                            "policy_version": 1,
                            "evaluated_by": "bench",
                            "evaluated_at": start,
                        }
                    )
        if aliases:
            conn.execute(alias_assignments.insert(), aliases)
        if gates:
            conn.execute(gate_results.insert(), gates)
        conn.execute(
            incidents.insert(),
            [
                {
                    "key": f"bench:{i}",
                    "open_key": f"bench:{i}",
                    "model_id": model_ids[(i * 7) % len(model_ids)],
                    "version": 1,
                    "title": f"drift on income ({i})",
                    "severity": f"P{1 + i % 5}",
                    "status": "triggered",
                    "labels": {},
                    "opened_at": now - timedelta(hours=i),
                    "postmortem": "",
                }
                for i in range(n_incidents)
            ],
        )
        counts["incidents"] = n_incidents
        points = []
        for index, model_id in enumerate(model_ids):
            for day in range(days):
                end = start + timedelta(days=day + 1)
                for check, column, metric in (
                    ("drift", "income", "psi"),
                    ("drift", "age", "psi"),
                    ("performance", None, "accuracy"),
                ):
                    alert = check == "drift" and index % 9 == 0 and day == days - 1
                    points.append(
                        {
                            "monitor_id": index + 1,
                            "model_id": model_id,
                            "version": per_model - 1,
                            "window_start": end - timedelta(days=1),
                            "window_end": end,
                            "check": check,
                            "column_name": column,
                            "metric": metric,
                            "value": rng.random(),
                            "threshold": 0.2,
                            "status": "alert" if alert else "ok",
                            "recorded_at": end,
                        }
                    )
        conn.execute(metric_points.insert(), points)
        counts["metric_points"] = len(points)
    backend.costs.set_budget(ADMIN, "portfolio", None, "50000")
    for m in range(0, n_models, max(1, n_models // 50)):
        backend.costs.set_budget(ADMIN, "model", f"model-{m:04d}", "300")
    return counts


def measure(client: Any, backend: Backend, url: str, repeats: int) -> dict[str, float]:
    statements: list[int] = []

    def count(*args: Any) -> None:
        # Signing the request in records the token's last use now and then (once a minute at
        # most): that write is the token's, not the page's.
        if not str(args[2]).startswith(TOKEN_TOUCH):
            statements[-1] += 1

    event.listen(backend.engine, "before_cursor_execute", count)
    try:
        times = []
        for _ in range(repeats + 1):  # the first one warms up
            statements.append(0)
            began = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - began) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{url}: {response.status_code} {response.text[:300]}")
    finally:
        event.remove(backend.engine, "before_cursor_execute", count)
    measured = sorted(times[1:])
    return {
        "p50_ms": round(statistics.median(measured), 1),
        "p95_ms": round(measured[max(0, round(0.95 * len(measured)) - 1)], 1),
        "statements": max(statements[1:]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="60 models: a quick check")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    n_models, per_model, n_incidents, days = (60, 3, 10, 7) if args.small else (1000, 20, 200, 30)
    repeats = args.repeats or (5 if args.small else 30)
    from starlette.testclient import TestClient

    with tempfile.TemporaryDirectory() as tmp:
        backend = Backend.open(Settings.load(data_dir=Path(tmp) / "keel", env={}))
        backend.migrate()
        token = backend.identity.bootstrap_admin()
        began = time.perf_counter()
        seeded = seed(backend, n_models, per_model, n_incidents, days)
        print(f"seeded {seeded} in {time.perf_counter() - began:.1f}s", file=sys.stderr)
        client = TestClient(build_app(backend), headers={"Authorization": f"Bearer {token}"})
        began = time.perf_counter()
        client.get("/")
        cold_ms = (time.perf_counter() - began) * 1000
        shown = min(1000, n_models)
        pages = {
            "portfolio_50": "/?per_page=50",
            f"portfolio_{shown}": f"/?per_page={shown}",
            "portfolio_50_sorted_by_incidents": "/?sort=incidents&order=desc",
            "api_portfolio_50": "/api/v1/portfolio?per_page=50",
            f"api_portfolio_{shown}": f"/api/v1/portfolio?per_page={shown}",
            "model": "/models/model-0000",
            "version": f"/models/model-0000/versions/{per_model}",
        }
        figures = {name: measure(client, backend, url, repeats) for name, url in pages.items()}
        backend.close()
    constant = (
        figures["portfolio_50"]["statements"] == figures[f"portfolio_{shown}"]["statements"]
        and figures["api_portfolio_50"]["statements"]
        == figures[f"api_portfolio_{shown}"]["statements"]
    )
    for name, f in figures.items():
        print(
            f"{name:36s} p50 {f['p50_ms']:8.1f} ms  p95 {f['p95_ms']:8.1f} ms  "
            f"{f['statements']:3d} statements",
            file=sys.stderr,
        )
    emit(
        {
            "bench": "dashboard",
            **seeded,
            "repeats": repeats,
            "portfolio_cold_ms": round(cold_ms, 1),
            "pages": figures,
            "statements_constant": constant,
            "portfolio_p95_ms": figures["portfolio_50"]["p95_ms"],
            "portfolio_p95_target_ms": P95_TARGET_MS,
            "portfolio_p95_ok": figures["portfolio_50"]["p95_ms"] <= P95_TARGET_MS,
        }
    )


if __name__ == "__main__":
    main()
