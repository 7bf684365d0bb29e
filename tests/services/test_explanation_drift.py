"""Explanation drift end to end: gate 1 records a version's feature-importance ranking, then the
``explanation_drift`` monitor check explains the same model on each window's labelled rows (in
the sandbox) and alerts when the ranking turned over, staying quiet while it holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression
from tests.services.evaluation_fixtures import (
    ADMIN,
    attach,
    dataset,
    joblib_bytes,
    open_backend,
    register,
)

from keel.domain.monitoring import Check, Monitor, Status, Thresholds
from keel.errors import InvalidInput
from keel.services.backend import Backend
from keel.stats.explanation_drift import rank_correlation, top_k_overlap

POLICY = """\
tier: unassessed
checks:
  performance:
    explainability: {required: true, shap: false}
"""
HOUR = timedelta(hours=1)
# A fixed hour well inside the default 90-day telemetry retention.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
ROWS = 400


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    opened = open_backend(tmp_path_factory.mktemp("explanation-drift") / "keel")
    yield opened
    opened.close()


def log_window(
    backend: Backend, model: LogisticRegression, hour: datetime, *, drifted: bool
) -> None:
    """ROWS predictions in ``hour`` and their labels: labels follow 1.5*x1 - x2 as in training,
    or, ``drifted``, only -x2 (the feature the model leaned on most stopped mattering)."""
    rng = np.random.default_rng(int((hour - T0) / HOUR))
    x1, x2 = rng.normal(size=ROWS), rng.normal(size=ROWS)
    frame = pd.DataFrame({"x1": x1, "x2": x2})
    ids = [f"{hour:%H}-{i}" for i in range(ROWS)]
    predictions = pa.table(
        {
            "prediction_id": ids,
            "ts": pa.array(
                [hour + timedelta(seconds=5 * i) for i in range(ROWS)],
                pa.timestamp("us", tz="UTC"),
            ),
            "prediction": model.predict(frame).astype(np.int64),
            "x1": x1,
            "x2": x2,
            "sex": rng.integers(0, 2, size=ROWS),
            "region": rng.choice(["north", "south"], size=ROWS),
        }
    )
    backend.telemetry.log_predictions(ADMIN, "churn", 1, predictions)
    logit = -3.0 * x2 if drifted else 1.5 * x1 - x2
    labels = (rng.random(ROWS) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    backend.telemetry.log_labels(ADMIN, "churn", pa.table({"prediction_id": ids, "label": labels}))


def test_explanation_drift_fires_when_the_important_feature_changes(backend: Backend) -> None:
    backend.governance.apply_policy(ADMIN, POLICY)
    train = dataset(n=400, seed=1)
    model = LogisticRegression().fit(train[["x1", "x2"]], train["y"])
    version = register(backend, joblib_bytes(model)).version
    attach(backend, version, dataset(n=300, seed=2))
    backend.governance.run_gates(ADMIN, "churn", version)
    evidence = backend.monitoring.explanations
    assert evidence is not None
    approved = evidence.evidence("churn", version)
    assert approved is not None and approved.ranking == ["x1", "x2"]

    monitor = backend.monitoring.create(
        ADMIN, Monitor(model="churn", checks=(Check.EXPLANATION_DRIFT,)), now=T0
    )
    log_window(backend, model, T0, drifted=False)
    log_window(backend, model, T0 + HOUR, drifted=True)

    quiet = backend.monitoring.run(ADMIN, "churn", now=T0 + HOUR + timedelta(minutes=6))
    by_metric = {p.metric: p for p in quiet if p.column is None}
    assert by_metric["labelled_rows"].value == ROWS
    assert by_metric["importance_rank_correlation"].value == pytest.approx(1.0)
    assert by_metric["importance_rank_correlation"].status == Status.OK
    assert by_metric["top_2_overlap"].value == pytest.approx(1.0)
    assert backend.incidents.list(model="churn") == []

    drifted = backend.monitoring.run(ADMIN, "churn", now=T0 + 2 * HOUR + timedelta(minutes=6))
    by_metric = {p.metric: p for p in drifted if p.column is None}
    assert by_metric["importance_rank_correlation"].value == pytest.approx(-1.0)
    assert by_metric["importance_rank_correlation"].status == Status.ALERT
    assert by_metric["top_2_overlap"].status == Status.OK  # both features are the top 2
    importance = {p.column: p.value or 0.0 for p in drifted if p.metric == "importance"}
    assert importance["x2"] > importance["x1"]  # -x2 now decides the labels
    [incident] = backend.incidents.list(model="churn")
    assert incident.check == "explanation_drift"
    assert monitor.id is not None


def test_no_evidence_means_no_data_not_an_alert(backend: Backend) -> None:
    version = register(backend, b"\x80\x04K\x01.", "m.pkl").version  # no gate run, no evidence
    monitor = Monitor(model="churn", version=version, checks=(Check.EXPLANATION_DRIFT,))
    points = backend.monitoring.evaluate(monitor, (T0, T0 + HOUR))
    assert [(p.metric, p.status) for p in points] == [
        ("importance_rank_correlation", Status.NO_DATA)
    ]


def test_default_monitors_do_not_run_the_model_and_limits_are_checked() -> None:
    assert Check.EXPLANATION_DRIFT not in Monitor(model="churn").checks
    limits = Thresholds.from_dict({"explanation": {"min_rank_correlation": 0.8, "top_k": 5}})
    assert (limits.explanation.min_rank_correlation, limits.explanation.top_k) == (0.8, 5)
    with pytest.raises(InvalidInput, match=r"thresholds\.explanation\.top_k"):
        Thresholds.from_dict({"explanation": {"top_k": 0}})
    with pytest.raises(InvalidInput, match=r"thresholds\.explanation\.min_rank_correlation"):
        Thresholds.from_dict({"explanation": {"min_rank_correlation": -0.5}})


def test_rank_agreement_measures() -> None:
    reference = {"a": 0.5, "b": 0.3, "c": 0.1, "d": 0.0}
    assert rank_correlation(reference, dict(reference)) == pytest.approx(1.0)
    assert rank_correlation(reference, {"a": 0.0, "b": 0.1, "c": 0.3, "d": 0.5}) == -1.0
    assert rank_correlation({"a": 1.0}, {"a": 2.0}) is None  # one common feature
    assert rank_correlation(reference, {"a": 0.1, "b": 0.1, "c": 0.1}) is None  # all equal
    assert top_k_overlap(["a", "b", "c"], ["c", "a", "b"], 2) == 0.5
    assert top_k_overlap([], ["a"], 3) is None
