"""Waste and idle infrastructure: what costs money and serves nobody, each finding with its
monthly cost and the command that fixes it.

* production versions with no predictions for ``idle_days``;
* models with cost in the last 30 days but no predictions;
* candidates left unreviewed for more than ``review_days``;
* raw telemetry kept with no retention policy beyond ``telemetry_days``;
* artifact blobs no version references (`keel gc`).

Monthly costs are the last 30 days' cost of the model (idle and costly models), or storage at
the GB-month price (candidates, telemetry, blobs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine

from keel.domain.costs import micros_to_decimal
from keel.services.artifact_gc import DEFAULT_RETENTION_DAYS, orphaned_blobs
from keel.services.costs.portfolio import portfolio_spend
from keel.services.costs.service import CostService
from keel.store.artifacts import ArtifactStore
from keel.store.telemetry import TelemetryFiles

_GB = Decimal(10**9)


@dataclass(frozen=True)
class WasteFinding:
    kind: str
    subject: str
    detail: str
    monthly_cost: Decimal
    fix: str


def _storage_month(costs: CostService, size: int) -> Decimal:
    price = micros_to_decimal(costs.prices().gb_month_micros)
    return (Decimal(size) / _GB * price).quantize(Decimal("0.01"))


def _old_telemetry_bytes(files: TelemetryFiles, directory: str, cutoff: datetime) -> int:
    sizes = files.partition_bytes(directory)
    return sum(n for day, n in sizes.items() if day < cutoff.date())


def find_waste(
    costs: CostService,
    engine: Engine,
    artifacts: ArtifactStore,
    retention: dict[str, int | None],
    *,
    idle_days: int = 14,
    review_days: int = 30,
    telemetry_days: int = 90,
    now: datetime | None = None,
) -> list[WasteFinding]:
    """Every finding, costliest first. ``retention`` is each model's telemetry retention."""
    now = now or datetime.now(UTC)
    last_month = (now.date() - timedelta(days=30), now.date() + timedelta(days=1))
    last_seen = costs.store.last_prediction_hours()
    findings: list[WasteFinding] = []
    # Every model's spend from one reading of the month (not a reading per model).
    spent_by_model = portfolio_spend(costs, *last_month).by_model

    def cost_of(model: str) -> Decimal:
        return micros_to_decimal(spent_by_model.get(model, 0)).quantize(Decimal("0.01"))

    versions = costs.store.versions()
    for v in versions:
        seen = last_seen.get((v.model, v.version))
        idle_since = now - timedelta(days=idle_days)
        if (
            v.status == "production"
            and v.updated_at < idle_since
            and (seen is None or seen < idle_since)
        ):
            when = "never" if seen is None else f"last on {seen.date().isoformat()}"
            findings.append(
                WasteFinding(
                    "idle_production_version",
                    f"{v.model} v{v.version}",
                    f"in production with no predictions for {idle_days} days ({when})",
                    cost_of(v.model),
                    f'python -c "import keel.sdk as k; k.Client().set_status('
                    f"'{v.model}', {v.version}, 'retired')\"",
                )
            )
        if v.status == "candidate" and v.updated_at < now - timedelta(days=review_days):
            findings.append(
                WasteFinding(
                    "unreviewed_candidate",
                    f"{v.model} v{v.version}",
                    f"a candidate since {v.updated_at.date().isoformat()}, never reviewed",
                    _storage_month(costs, v.artifact_size),
                    f"keel gates status {v.model} {v.version}  # then approve or archive it",
                )
            )
    recent = now - timedelta(days=30)
    for m in costs.store.models():
        spent = cost_of(m.name)
        used = any(seen >= recent for (model, _), seen in last_seen.items() if model == m.name)
        if spent > 0 and not used:
            findings.append(
                WasteFinding(
                    "cost_without_predictions",
                    m.name,
                    "cost in the last 30 days but no predictions",
                    spent,
                    f"keel costs show --model {m.name} --month {now.strftime('%Y-%m')}",
                )
            )
        if retention.get(m.name) is None:
            cutoff = now - timedelta(days=telemetry_days)
            kept = _old_telemetry_bytes(costs.files, costs.files.predictions_dir(m.name), cutoff)
            kept += _old_telemetry_bytes(costs.files, costs.files.labels_dir(m.name), cutoff)
            if kept:
                findings.append(
                    WasteFinding(
                        "telemetry_beyond_policy",
                        m.name,
                        f"{kept} bytes of raw telemetry older than {telemetry_days} days "
                        "and no retention set",
                        _storage_month(costs, kept),
                        f"keel telemetry retention {m.name} {telemetry_days}",
                    )
                )
    orphans, _ = orphaned_blobs(engine, artifacts, DEFAULT_RETENTION_DAYS, now)
    if orphans:
        size = sum(n for _, n in orphans)
        findings.append(
            WasteFinding(
                "orphaned_blobs",
                "artifact store",
                f"{len(orphans)} blob(s), {size} bytes, referenced by no version",
                _storage_month(costs, size),
                "keel gc --dry-run  # then keel gc",
            )
        )
    return sorted(findings, key=lambda f: (-f.monthly_cost, f.kind, f.subject))
