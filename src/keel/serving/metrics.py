"""The gateway's Prometheus metrics, by model, version and arm (all bounded: registered names).

``keel_predictions_total`` counts prediction requests answered (success or not) and
``keel_prediction_errors_total`` those the model could not answer (a 503), so an error rate is one
over the other; ``keel_prediction_latency_seconds`` times each request inside the gateway.
``keel_prediction_log_failures_total`` counts prediction rows that could not be logged.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LABELS = ("model", "version", "arm")


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.predictions = Counter(
            "keel_predictions",
            "Prediction requests answered by the gateway, by model, version and arm.",
            LABELS,
            registry=registry,
        )
        self.errors = Counter(
            "keel_prediction_errors",
            "Prediction requests the model could not answer (503), by model, version and arm.",
            LABELS,
            registry=registry,
        )
        self.latency = Histogram(
            "keel_prediction_latency_seconds",
            "Time the gateway took to answer a prediction request, by model, version and arm.",
            LABELS,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.log_failures = Counter(
            "keel_prediction_log_failures",
            "Prediction rows that could not be written to telemetry, by model and reason.",
            ("model", "reason"),
            registry=registry,
        )

    def observe(self, model: str, version: int, arm: str, seconds: float, failed: bool) -> None:
        labels = (model, str(version), arm)
        self.predictions.labels(*labels).inc()
        if failed:
            self.errors.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)
