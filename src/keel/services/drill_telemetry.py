"""The telemetry a drill makes up: the real reference profile, and a window showing the
scenario's trouble, served to the real monitor checks through their `TelemetryReader` seam.

Nothing here is written anywhere: the checks read it in memory, so real telemetry, window
profiles, costs and value never see a drill's rows. The values are seeded by the drill's id,
so a drill's report can be reproduced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from keel.domain.drills import Scenario
from keel.domain.signature import ColumnRole, ColumnType, Signature
from keel.domain.telemetry import LABEL, PREDICTION, SCORE, OperationsStats
from keel.services.monitoring_checks import TelemetryReader
from keel.stats.profile import DatasetProfile, NumericProfile, profile_like

ROWS = 500
# How far the drift scenario moves each numeric feature, in the reference's standard deviations.
SHIFT_STDS = 4.0
HEALTHY = OperationsStats(
    rows=ROWS,
    latency_p50_ms=20.0,
    latency_p95_ms=45.0,
    latency_p99_ms=80.0,
    error_rate=0.0,
    throughput_per_s=5.0,
)


class DrillTelemetry:
    """A `TelemetryReader` over one model version that shows ``scenario`` in every window."""

    def __init__(
        self, real: TelemetryReader, scenario: Scenario, signature: Signature, seed: int
    ) -> None:
        self.real = real
        self.scenario = scenario
        self.signature = signature
        self.seed = seed

    def _rng(self, start: datetime) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(start.timestamp())])

    def reference_profile(self, model: str, version: int) -> DatasetProfile | None:
        return self.real.reference_profile(model, version)

    def merged_profile(
        self, model: str, version: int, start: datetime, end: datetime
    ) -> DatasetProfile | None:
        reference = self.real.reference_profile(model, version)
        if reference is None:
            return None
        if self.scenario != Scenario.DRIFT:
            return None
        rng = self._rng(start)
        columns: dict[str, Any] = {}
        for name, ref in reference.columns.items():
            if isinstance(ref, NumericProfile):
                std = ref.std if math.isfinite(ref.std) and ref.std > 0 else 1.0
                centre = ref.mean if math.isfinite(ref.mean) else 0.0
                columns[name] = rng.normal(centre + SHIFT_STDS * std, std, ROWS)
            else:
                # Every row in the reference's rarest category (or one it never saw).
                counts = ref.counts
                rare = min(counts, key=lambda c: counts[c]) if counts else "drill-unseen"
                columns[name] = np.array([rare] * ROWS, dtype=object)
        return profile_like(reference, columns)

    def hourly_row_counts(
        self, model: str, version: int, start: datetime, end: datetime
    ) -> list[tuple[datetime, int]]:
        return []

    def rejected_rows(self, model: str, version: int, start: datetime, end: datetime) -> int:
        return 0

    def labelled_predictions(
        self,
        model: str,
        version: int,
        start: datetime,
        end: datetime,
        columns: Sequence[str] = (),
        *,
        include_unlabelled: bool = False,
    ) -> pa.Table:
        if self.scenario not in (Scenario.PERFORMANCE, Scenario.BAD_DEPLOY):
            return pa.table({LABEL: pa.array([], pa.int64()), PREDICTION: pa.array([], pa.int64())})
        return self._wrong_predictions(self._rng(start))

    def _wrong_predictions(self, rng: np.random.Generator) -> pa.Table:
        """Predictions that are wrong most of the time, in the target's own type."""
        target = next(iter(self.signature.with_role(ColumnRole.TARGET)), None)
        kind = target.dtype if target is not None else ColumnType.INTEGER
        if kind == ColumnType.FLOAT:
            truth = rng.normal(0.0, 1.0, ROWS)
            return pa.table(
                {
                    LABEL: truth,
                    PREDICTION: truth + rng.normal(5.0, 1.0, ROWS),
                    SCORE: pa.nulls(ROWS, pa.float64()),
                }
            )
        labels = rng.integers(0, 2, ROWS)
        # Nine predictions in ten are the other class, with confident scores.
        wrong = np.where(rng.random(ROWS) < 0.9, 1 - labels, labels)
        score = np.where(wrong == 1, 0.95, 0.05)
        if kind == ColumnType.BOOLEAN:
            return pa.table(
                {LABEL: labels.astype(bool), PREDICTION: wrong.astype(bool), SCORE: score}
            )
        if kind in (ColumnType.STRING, ColumnType.CATEGORICAL):
            names = np.array(["drill-a", "drill-b"], dtype=object)
            return pa.table(
                {
                    LABEL: names[labels].tolist(),
                    PREDICTION: names[wrong].tolist(),
                    SCORE: pa.nulls(ROWS, pa.float64()),
                }
            )
        return pa.table({LABEL: labels, PREDICTION: wrong, SCORE: score})

    def operations(
        self, model: str, version: int, start: datetime, end: datetime
    ) -> OperationsStats:
        slow = self.scenario in (Scenario.LATENCY, Scenario.BAD_DEPLOY)
        failing = self.scenario in (Scenario.ERRORS, Scenario.BAD_DEPLOY)
        return OperationsStats(
            rows=ROWS,
            latency_p50_ms=900.0 if slow else HEALTHY.latency_p50_ms,
            latency_p95_ms=4000.0 if slow else HEALTHY.latency_p95_ms,
            latency_p99_ms=9000.0 if slow else HEALTHY.latency_p99_ms,
            error_rate=0.4 if failing else HEALTHY.error_rate,
            throughput_per_s=HEALTHY.throughput_per_s,
        )

    def labelled_span(
        self, model: str, label_files: Sequence[str], since: datetime
    ) -> tuple[datetime, datetime] | None:
        return None
