"""A credit model with versions that pass a security-only policy, and telemetry logged per arm on
an injected clock (service level, shared by the deployment tests)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import joblib
import numpy as np
import pyarrow as pa
from tests.services.governed_credit import ENVIRONMENT, MODEL, ROOT, SIGNATURE, trained

from keel.domain.governance import GateOutcome
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.services.backend import Backend

DANA = Principal("dana", grants=(Grant(Role.CONTRIBUTOR, "risk"),))
SECURITY_ONLY = """\
tier: unassessed
checks:
  security:
    max_artifact_mb: 10
"""
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def set_up(backend: Backend, clock: Clock) -> None:
    backend.registry.create_team(ROOT, "risk")
    backend.registry.create_model(ROOT, Model(name=MODEL, team="risk", owner="ana"))
    backend.governance.apply_policy(ROOT, SECURITY_ONLY)
    backend.deployments.clock = clock


def register(backend: Backend, seed: int, *, gates: bool = True) -> int:
    buffer = io.BytesIO()
    joblib.dump(trained(seed), buffer)
    buffer.seek(0)
    draft = VersionDraft(signature=SIGNATURE, environment=ENVIRONMENT)
    version = backend.registry.register_version(DANA, MODEL, buffer, "m.joblib", draft).version
    if gates:
        status = backend.governance.run_gates(DANA, MODEL, version)
        assert all(g.outcome != GateOutcome.FAILED for g in status.gates), status.blockers
    return version


def log_rows(
    backend: Backend,
    version: int,
    start: datetime,
    rows: int,
    *,
    seed: int,
    error_share: float = 0.0,
    positive_share: float = 0.3,
    seconds: float = 50.0,
    prefix: str = "",
) -> list[str]:
    """``rows`` predictions of ``version`` spread over [start, start + seconds); returns ids."""
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0, seconds, rows))
    ids = [f"{prefix}v{version}-{seed}-{i}" for i in range(rows)]
    errors = rng.random(rows) < error_share
    table = pa.table(
        {
            "prediction_id": ids,
            "ts": pa.array(
                [start + timedelta(seconds=float(s)) for s in offsets],
                pa.timestamp("us", tz="UTC"),
            ),
            "prediction": (rng.random(rows) < positive_share).astype(np.int64),
            "latency_ms": rng.uniform(1.0, 3.0, rows),
            "error": pa.array(["boom" if e else None for e in errors], pa.string()),
            "income": rng.normal(size=rows),
            "debt": rng.normal(size=rows),
        }
    )
    backend.telemetry.log_predictions(ROOT, MODEL, version, table)
    return ids
