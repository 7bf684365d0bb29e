"""Performance estimated before labels arrive, end to end over the API: set a reference with the
model's predictions, scores and labels -> the estimation-fit job fits CBPE -> predictions are
logged (no labels) -> the estimated_performance check judges each window and its default alert
rule opens an incident on an estimated drop -> labels arrive -> the realized value and the
estimation error are stored next to the estimate. Bad input is a clear error that writes
nothing."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient
from tests.job_runner import finished_job, monitor_run
from tests.stats import estimation_data as data

from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import VersionDraft
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.domain.telemetry import PARQUET_MEDIA_TYPE
from keel.services.backend import Backend

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
SIGNATURE = Signature(
    (
        Column("x1", ColumnType.FLOAT),
        Column("churned", ColumnType.INTEGER, ColumnRole.TARGET),
    )
)
MODEL = "/api/v1/models/churn"
HOUR = timedelta(hours=1)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
ROWS = 400


@pytest.fixture
def churn(client: TestClient, team_and_model: str, backend: Backend) -> str:
    backend.registry.register_version(
        ADMIN, "churn", io.BytesIO(b"m"), "m.bin", VersionDraft(signature=SIGNATURE)
    )
    return team_and_model


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def reference_body(rows: int = 4000, *, with_score: bool = True) -> bytes:
    labels, score = data.binary(np.random.default_rng(1), rows, 0.0)
    columns: dict[str, Any] = {
        "x1": score,
        "prediction": (score > 0.5).astype(np.int64),
        "churned": labels,
    }
    if with_score:
        columns["score"] = score
    return parquet(pa.table(columns))


def set_reference(client: TestClient, body: bytes) -> Any:
    return client.put(
        f"{MODEL}/versions/1/reference",
        content=body,
        headers={"Content-Type": PARQUET_MEDIA_TYPE},
    )


def log_window(
    client: TestClient, hour: datetime, prefix: str, *, hard: bool, scores: bool = True
) -> np.ndarray:
    """ROWS predictions in ``hour``; ``hard`` ones sit near the decision boundary (the model is
    right about half the time there). Returns their true labels."""
    rng = np.random.default_rng(len(prefix) + int(hard))
    labels, score = data.binary(rng, 20 * ROWS, 0.0)
    pick = np.flatnonzero(np.abs(score - 0.5) < 0.08 if hard else np.ones_like(score, bool))
    pick = pick[:ROWS]
    rows = [
        {
            "prediction_id": f"{prefix}{i}",
            "ts": (hour + timedelta(seconds=5 * i)).isoformat(),
            "prediction": int(score[j] > 0.5),
            "x1": float(score[j]),
            **({"score": float(score[j])} if scores else {}),
        }
        for i, j in enumerate(pick)
    ]
    logged = client.post(f"{MODEL}/versions/1/predictions", json={"rows": rows})
    assert logged.status_code == 200, logged.text
    return labels[pick]


def log_labels(client: TestClient, prefix: str, labels: np.ndarray) -> None:
    rows = [{"prediction_id": f"{prefix}{i}", "label": int(v)} for i, v in enumerate(labels)]
    assert client.post(f"{MODEL}/labels", json={"rows": rows}).status_code == 200


def points(client: TestClient, start: datetime) -> dict[tuple[str | None, str], Any]:
    series = client.get(f"{MODEL}/metrics", params={"check": "estimated_performance"}).json()
    return {
        (p["column"], p["metric"]): p
        for p in series
        if datetime.fromisoformat(p["window_start"]) == start
    }


def test_estimates_before_labels_alert_and_meet_the_realized_values(
    client: TestClient, churn: str
) -> None:
    made = set_reference(client, reference_body())
    assert made.status_code == 200, made.text
    job = finished_job(client, made.json()["estimation_job"])
    assert job["state"] == "succeeded", job
    estimator = client.get(f"{MODEL}/versions/1/estimator").json()
    assert (estimator["state"], estimator["method"]) == ("fitted", "cbpe")
    assert estimator["summary"]["calibrated"] == [True]

    monitor = client.post(
        f"{MODEL}/monitors",
        json={
            "name": "early",
            "checks": ["estimated_performance"],
            "thresholds": {"performance": {"accuracy": 0.65}},
        },
    )
    assert monitor.status_code == 201, monitor.text
    easy = log_window(client, T0, "e", hard=False)
    hard = log_window(client, T0 + HOUR, "h", hard=True)
    for end in (T0 + HOUR, T0 + 2 * HOUR):
        monitor_run(client, "churn", {"at": end.isoformat()})

    first, second = points(client, T0), points(client, T0 + HOUR)
    assert first[("accuracy", "estimate")]["status"] == "ok"
    assert second[("accuracy", "estimate")]["status"] == "alert"
    assert second[("accuracy", "estimate")]["value"] < 0.6
    assert second[(None, "rows")]["value"] == ROWS
    assert ("accuracy", "realized") not in second  # no labels yet
    incidents = client.get("/api/v1/incidents", params={"model": "churn"}).json()
    assert len(incidents) == 1 and "estimated_performance" in incidents[0]["title"]

    # Labels arrive: judged again, the realized value sits beside the estimate.
    log_labels(client, "e", easy)
    log_labels(client, "h", hard)
    monitor_run(client, "churn", {"at": (T0 + 2 * HOUR).isoformat()})
    second = points(client, T0 + HOUR)
    realized = second[("accuracy", "realized")]["value"]
    estimate = second[("accuracy", "estimate")]["value"]
    assert second[("accuracy", "estimation_error")]["value"] == pytest.approx(estimate - realized)
    assert (
        second[("accuracy", "lower")]["value"] <= realized <= second[("accuracy", "upper")]["value"]
    )

    window = client.get(
        f"{MODEL}/versions/1/estimated-performance",
        params={
            "start": T0.isoformat(),
            "end": (T0 + HOUR).isoformat(),
            "metrics": ["accuracy", "roc_auc"],
        },
    )
    assert window.status_code == 200, window.text
    body = window.json()
    assert [m["metric"] for m in body["metrics"]] == ["accuracy", "roc_auc"]
    assert body["labelled_rows"] == ROWS
    for metric in body["metrics"]:
        assert metric["lower"] <= metric["realized"] <= metric["upper"], metric
        assert metric["estimation_error"] == pytest.approx(metric["estimate"] - metric["realized"])
    assert set(body["flags"]) == {
        "calibration_not_improved",
        "outside_support_share",
        "outside_support",
        "window_too_small",
    }


def test_bad_input_is_a_clear_error_that_writes_nothing(client: TestClient, churn: str) -> None:
    # A reference with predictions and labels but no score: refused, no reference profile set.
    refused = set_reference(client, reference_body(with_score=False))
    assert refused.status_code == 422
    assert "'score'" in refused.json()["error"]["message"]
    assert client.get(f"{MODEL}/versions/1/reference").status_code == 404
    assert client.get(f"{MODEL}/versions/1/estimator").status_code == 404

    # A reference whose labels hold one class only: the fit job fails and says why.
    labels_one_class = pa.table(
        {
            "x1": [0.2, 0.7] * 50,
            "prediction": [0, 1] * 50,
            "score": [0.2, 0.7] * 50,
            "churned": [1] * 100,
        }
    )
    made = set_reference(client, parquet(labels_one_class))
    job = finished_job(client, made.json()["estimation_job"])
    assert job["state"] == "failed" and "one class only" in job["error"]
    estimator = client.get(f"{MODEL}/versions/1/estimator").json()
    assert estimator["state"] == "failed" and "one class only" in estimator["error"]

    made = set_reference(client, reference_body())
    assert finished_job(client, made.json()["estimation_job"])["state"] == "succeeded"
    window = {"start": T0.isoformat(), "end": (T0 + HOUR).isoformat()}
    # No predictions in the window.
    empty = client.get(f"{MODEL}/versions/1/estimated-performance", params=window)
    assert empty.status_code == 422 and "No predictions" in empty.json()["error"]["message"]
    # Predictions logged without scores.
    log_window(client, T0, "n", hard=False, scores=False)
    unscored = client.get(f"{MODEL}/versions/1/estimated-performance", params=window)
    assert unscored.status_code == 422
    assert "No scores were logged" in unscored.json()["error"]["message"]
    # An unknown metric name.
    unknown = client.get(
        f"{MODEL}/versions/1/estimated-performance", params={**window, "metrics": ["auc"]}
    )
    assert unknown.status_code == 422
    error = unknown.json()["error"]
    assert "'auc'" in error["message"] and error["details"]["field"] == "metrics"
