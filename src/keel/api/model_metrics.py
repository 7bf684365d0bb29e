"""Per-model series on ``/metrics``, read at scrape time by a custom collector.

A collector (not gauges set from the worker) because every API replica then reports the store's
current state without running the worker, and a scrape costs one bounded read (see
`keel.store.sql.model_metrics`). Labels are bounded: model, version, check, severity, and the
names of SLOs someone defined. Store-derived gauges are the same on every replica (aggregate them
with ``max``); the ``_total`` counters are this process's own (aggregate them with ``sum``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from keel.domain.incidents import Severity
from keel.domain.model_metrics import STATUS_CODES, ModelMetrics
from keel.services.model_metrics import ModelMetricsSource
from keel.services.telemetry_counts import IngestTotals

log = logging.getLogger("keel.metrics")


class ModelMetricsCollector(Collector):
    def __init__(self, source: ModelMetricsSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "keel_metadata_scrape_success",
            "1 when this scrape could read model metrics from the metadata store, else 0.",
        )
        try:
            snapshot = self.source.read()
        except Exception:  # the store is down: report that, and still serve the other series
            log.exception("/metrics could not read the metadata store")
            snapshot = None
        up.add_metric([], 0.0 if snapshot is None else 1.0)
        yield up
        if snapshot is not None:
            yield from _store_series(snapshot)
        yield from _ingest_series(self.source.ingest_totals())


def _store_series(found: ModelMetrics) -> Iterator[Metric]:
    info = GaugeMetricFamily(
        "keel_model_info", "A registered model (value 1), with its team.", labels=["model", "team"]
    )
    for model, team in found.models:
        info.add_metric([model, team], 1.0)
    yield info

    status = GaugeMetricFamily(
        "keel_monitor_check_status",
        "Worst verdict of a check's newest judged window: 0 ok, 1 no data, 2 warning, 3 alert.",
        labels=["model", "version", "check"],
    )
    judged = GaugeMetricFamily(
        "keel_monitor_window_end_timestamp_seconds",
        "End of the newest window a monitor judged for this check (Unix time).",
        labels=["model", "version", "check"],
    )
    for verdict in found.verdicts:
        labels = [verdict.model, str(verdict.version), verdict.check]
        status.add_metric(labels, float(STATUS_CODES[verdict.status]))
        judged.add_metric(labels, verdict.window_end.timestamp())
    yield status
    yield judged

    drift = GaugeMetricFamily(
        "keel_drift_share_ratio",
        "Share of a version's columns that drifted in its newest drift window (0 to 1).",
        labels=["model", "version"],
    )
    for share in found.drift:
        drift.add_metric([share.model, str(share.version)], share.share)
    yield drift

    # Every model gets every severity, 0 included: a panel or alert sees "none open" as a value.
    incidents = GaugeMetricFamily(
        "keel_incidents_open",
        "Incidents triggered or acknowledged, not yet resolved.",
        labels=["model", "severity"],
    )
    for model, _ in found.models:
        for severity in Severity:
            incidents.add_metric(
                [model, str(severity)], found.open_incidents.get((model, severity), 0)
            )
    yield incidents

    budget = GaugeMetricFamily(
        "keel_slo_error_budget_remaining_ratio",
        "Share of an SLO window's error budget left at its last evaluation (below 0: overspent).",
        labels=["model", "slo", "kind"],
    )
    objective = GaugeMetricFamily(
        "keel_slo_objective_ratio",
        "An SLO's objective: the share of requests that must be good.",
        labels=["model", "slo", "kind"],
    )
    evaluated = GaugeMetricFamily(
        "keel_slo_evaluated_timestamp_seconds",
        "When an SLO was last evaluated (Unix time).",
        labels=["model", "slo", "kind"],
    )
    for slo in found.slo_budgets:
        labels = [slo.model, slo.slo, slo.kind]
        budget.add_metric(labels, slo.budget_remaining)
        objective.add_metric(labels, slo.objective)
        evaluated.add_metric(labels, slo.evaluated_at.timestamp())
    yield budget
    yield objective
    yield evaluated


def _ingest_series(totals: IngestTotals) -> Iterator[Metric]:
    rows = CounterMetricFamily(
        "keel_telemetry_predictions",
        "Prediction rows this process acknowledged through telemetry ingest.",
        labels=["model", "version"],
    )
    errors = CounterMetricFamily(
        "keel_telemetry_prediction_errors",
        "Acknowledged prediction rows that carry an error.",
        labels=["model", "version"],
    )
    labels = CounterMetricFamily(
        "keel_telemetry_labels",
        "Label rows (ground truth) this process acknowledged.",
        labels=["model"],
    )
    for (model, version, kind), n in sorted(totals.rows.items()):
        if kind == "predictions":
            rows.add_metric([model, version], float(n))
        else:
            labels.add_metric([model], float(n))
    for (model, version), n in sorted(totals.errors.items()):
        errors.add_metric([model, version], float(n))
    failures = CounterMetricFamily(
        "keel_telemetry_write_failures",
        "Telemetry batches the telemetry storage did not take (answered 503, not acknowledged).",
        labels=["model"],
    )
    per_model: Counter[str] = Counter()
    for (model, _), n in totals.write_failures.items():
        per_model[model] += n
    for model, n in sorted(per_model.items()):
        failures.add_metric([model], float(n))
    yield rows
    yield errors
    yield labels
    yield failures
