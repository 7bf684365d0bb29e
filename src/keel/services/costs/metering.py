"""Keel's own metering: what each model version used, priced at the admin's unit prices.

* predictions, counted from telemetry, at a price per 1,000 predictions (for versions served
  outside Keel, whose predictions arrive through the SDK);
* serving compute-seconds: the time Keel's gateway's model workers spent answering each
  version's batches (`keel.services.costs.compute_meter`), at the vCPU-hour price;
* evaluation runs (the sandboxed evaluation of a version, gate runs included) and retraining
  runs, from start to finish, at the vCPU-hour price (one vCPU per run); a retraining run is
  charged to the version it registered, if any;
* artifact storage (each version's artifact, from the day it was registered) and telemetry
  storage (each day's Parquet partitions, from that day on), at a price per GB-month.

Each row is what one version (or model, for labels) used on one UTC day. All prices are 0 until an
admin sets them, so metering adds nothing to a bill that already holds Keel's machines.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from keel.domain.costs import MeteredCost, UnitPrices
from keel.store.sql.compute_usage import ComputeUsage
from keel.store.sql.costs import SqlCostStore
from keel.store.telemetry import TelemetryFiles

# compute_usage kinds -> the metered cost's kind
COMPUTE_KINDS = {"serving": "serving_compute", "evaluation": "evaluation"}

_GB = Decimal(10**9)


def _micros(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days)]


def predictions_per_day(
    store: SqlCostStore, start: date, end: date
) -> dict[tuple[str, int, date], int]:
    """Predictions per (model, version, UTC day) with start <= day < end, from telemetry."""
    counts: dict[tuple[str, int, date], int] = defaultdict(int)
    for model, version, hour, rows in store.prediction_hours(midnight(start), midnight(end)):
        counts[(model, version, hour.date())] += rows
    return dict(counts)


def _gb_day_price(prices: UnitPrices, day: date) -> Decimal:
    return Decimal(prices.gb_month_micros) / calendar.monthrange(day.year, day.month)[1]


def metered_costs(
    store: SqlCostStore,
    files: TelemetryFiles,
    prices: UnitPrices,
    start: date,
    end: date,
    *,
    model_teams: Mapping[str, str],
    compute: Sequence[ComputeUsage] = (),
) -> list[MeteredCost]:
    """Keel's cost rows for start <= day < end (nothing at all while every price is 0)."""
    rows: list[MeteredCost] = []
    if prices.per_thousand_predictions_micros:
        for (model, version, day), count in sorted(predictions_per_day(store, start, end).items()):
            micros = _micros(Decimal(count) * prices.per_thousand_predictions_micros / 1000)
            rows.append(
                MeteredCost(
                    day,
                    model,
                    version,
                    model_teams.get(model, ""),
                    "predictions",
                    Decimal(count),
                    "predictions",
                    micros,
                )
            )
    if prices.gb_month_micros:
        rows.extend(_storage(store, files, prices, start, end, model_teams))
    if prices.vcpu_hour_micros:
        for run in store.retrain_runs(midnight(start), midnight(end)):
            hours = Decimal((run.finished_at - run.started_at).total_seconds()) / 3600
            rows.append(
                MeteredCost(
                    run.finished_at.date(),
                    run.model,
                    run.registered_version,
                    model_teams.get(run.model, ""),
                    "retraining",
                    hours.quantize(Decimal("0.000001")),
                    "vCPU-hours",
                    _micros(hours * prices.vcpu_hour_micros),
                )
            )
        rows.extend(_compute_rows(compute, prices, model_teams))
    return rows


def _compute_rows(
    compute: Sequence[ComputeUsage], prices: UnitPrices, model_teams: Mapping[str, str]
) -> list[MeteredCost]:
    """One row per (kind, model, version, day) of the hourly compute usage."""
    seconds: dict[tuple[str, str, int, date], float] = defaultdict(float)
    for used in compute:
        if used.kind in COMPUTE_KINDS:
            seconds[(COMPUTE_KINDS[used.kind], used.model, used.version, used.hour.date())] += (
                used.seconds
            )
    rows = []
    for (kind, model, version, day), total in sorted(seconds.items()):
        hours = (Decimal(repr(total)) / 3600).quantize(Decimal("0.000001"))
        rows.append(
            MeteredCost(
                day,
                model,
                version,
                model_teams.get(model, ""),
                kind,
                hours,
                "vCPU-hours",
                _micros(Decimal(repr(total)) / 3600 * prices.vcpu_hour_micros),
            )
        )
    return rows


def _storage(
    store: SqlCostStore,
    files: TelemetryFiles,
    prices: UnitPrices,
    start: date,
    end: date,
    model_teams: Mapping[str, str],
) -> list[MeteredCost]:
    rows: list[MeteredCost] = []
    days = _days(start, end)
    for v in store.versions():
        team = model_teams.get(v.model, "")
        for day in days:
            if v.created_at.date() <= day:
                gb = Decimal(v.artifact_size) / _GB
                rows.append(
                    MeteredCost(
                        day,
                        v.model,
                        v.version,
                        team,
                        "artifact_storage",
                        gb,
                        "GB-day",
                        _micros(gb * _gb_day_price(prices, day)),
                    )
                )
        sizes = files.partition_bytes(files.predictions_dir(v.model, v.version))
        rows.extend(_telemetry_rows(v.model, v.version, team, sizes, days, prices))
    for model, team in model_teams.items():
        sizes = files.partition_bytes(files.labels_dir(model))
        rows.extend(_telemetry_rows(model, None, team, sizes, days, prices))
    return rows


def _telemetry_rows(
    model: str,
    version: int | None,
    team: str,
    sizes: Mapping[date, int],
    days: list[date],
    prices: UnitPrices,
) -> list[MeteredCost]:
    rows = []
    for day in days:
        kept = sum(size for written, size in sizes.items() if written <= day)
        if kept:
            gb = Decimal(kept) / _GB
            rows.append(
                MeteredCost(
                    day,
                    model,
                    version,
                    team,
                    "telemetry_storage",
                    gb,
                    "GB-day",
                    _micros(gb * _gb_day_price(prices, day)),
                )
            )
    return rows
