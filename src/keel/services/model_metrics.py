"""What ``/metrics`` says about models: read from the store at scrape time (see
`keel.store.sql.model_metrics` for how each read's cost is bounded) and from this process's
telemetry ingest counters."""

from __future__ import annotations

from keel.domain.model_metrics import ModelMetrics
from keel.services.telemetry import Telemetry
from keel.services.telemetry_counts import IngestTotals
from keel.store.sql.model_metrics import DEFAULT_LIMIT, SqlModelMetricsStore


class ModelMetricsSource:
    """Backend field ``model_metrics``: one call per scrape."""

    def __init__(
        self, store: SqlModelMetricsStore, telemetry: Telemetry, *, limit: int = DEFAULT_LIMIT
    ) -> None:
        self.store = store
        self.telemetry = telemetry
        self.limit = limit

    def read(self) -> ModelMetrics:
        """Models, newest monitor verdicts, drift shares, open incidents and SLO budgets."""
        return self.store.read(self.limit)

    def ingest_totals(self) -> IngestTotals:
        """Rows this process acknowledged, errors among them, and failed telemetry writes."""
        return self.telemetry.counters.totals()
