"""Issue 5, "What it must show", end to end through the REST API.

A credit model (real scikit-learn logistic regression) is registered with a signature; its
reference is 20k seeded rows; 50k predictions arrive over one hour with two features shifted;
half of them get labels later. One monitor run must flag exactly the two shifted columns, report
accuracy and ROC AUC equal to scikit-learn's on the labelled rows, and show the selection-rate
gap between the two groups that the data was built with. The metric series and
`keel monitor status --json` then show the same verdicts.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from starlette.testclient import TestClient
from tests.api.conftest import admin_token, app, backend, client
from tests.job_runner import monitor_run
from typer.testing import CliRunner

from keel.cli import registry as cli_registry
from keel.cli.main import app as cli_app
from keel.sdk import Client

__all__ = ["admin_token", "app", "backend", "client"]

SEED = 20260305
REFERENCE_ROWS = 20_000
LIVE_ROWS = 50_000
BATCHES = 5
FEATURES = ["x1", "x2", "x3", "x4", "plan"]
SHIFTED = {"x1", "x2"}
ARROW_STREAM = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"

SIGNATURE = {
    "columns": [
        {"name": "x1", "dtype": "float", "nullable": False},
        {"name": "x2", "dtype": "float", "nullable": False},
        {"name": "x3", "dtype": "float", "nullable": False},
        {"name": "x4", "dtype": "float", "nullable": False},
        {"name": "plan", "dtype": "categorical", "nullable": False},
        {"name": "group", "dtype": "string", "role": "protected_attribute", "nullable": False},
        {"name": "approved", "dtype": "boolean", "role": "target"},
        {"name": "will_approve", "dtype": "boolean", "role": "prediction"},
    ]
}


def applicants(rng: np.random.Generator, n: int, *, shifted: bool) -> dict[str, Any]:
    """Seeded applicants. Group ``b`` has lower ``x3`` (and so lower approval odds) by design;
    ``shifted`` moves ``x1`` by one standard deviation and ``x2`` by one as well."""
    group = rng.choice(np.array(["a", "b"]), size=n)
    x1 = rng.normal(1.0 if shifted else 0.0, 1.0, n)
    x2 = rng.normal(7.0 if shifted else 5.0, 2.0, n)
    x3 = rng.normal(np.where(group == "a", 1.0, -1.0), 1.0)
    x4 = rng.exponential(1.0, n)
    plan = rng.choice(np.array(["basic", "plus", "pro"]), size=n, p=[0.5, 0.3, 0.2])
    logit = 1.5 * x3 + 0.5 * x1 - 0.3 * x4 + 0.5 * (plan == "pro")
    approved = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    return {
        "x1": x1,
        "x2": x2,
        "x3": x3,
        "x4": x4,
        "plan": plan,
        "group": group,
        "approved": approved,
    }


def design(rows: dict[str, Any]) -> npt.NDArray[np.float64]:
    plan = rows["plan"]
    return np.column_stack(
        [rows["x1"], rows["x2"], rows["x3"], rows["x4"], plan == "plus", plan == "pro"]
    ).astype(np.float64)


def arrow_stream(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


@dataclass
class Sent:
    """What the test sent, to compute the expected figures itself."""

    window: tuple[datetime, datetime]
    ids: npt.NDArray[np.str_]
    predicted: npt.NDArray[np.bool_]
    score: npt.NDArray[np.float64]
    truth: npt.NDArray[np.bool_]
    group: npt.NDArray[np.str_]
    labelled: npt.NDArray[np.bool_]
    latency: npt.NDArray[np.float64]
    errors: int


@pytest.fixture
def sent(client: TestClient) -> Sent:
    rng = np.random.default_rng(SEED)
    assert client.post("/api/v1/teams", json={"name": "credit"}).status_code == 201
    made = client.post("/api/v1/models", json={"name": "loans", "team": "credit", "owner": "ana"})
    assert made.status_code == 201, made.text

    reference = applicants(rng, REFERENCE_ROWS, shifted=False)
    model = LogisticRegression(max_iter=1000).fit(design(reference), reference["approved"])
    artifact = io.BytesIO()
    joblib.dump(model, artifact)
    version = client.post(
        "/api/v1/models/loans/versions",
        files={"artifact": ("model.joblib", artifact.getvalue())},
        data={"metadata": json.dumps({"signature": SIGNATURE})},
    )
    assert version.status_code == 201, version.text

    parquet = io.BytesIO()
    pq.write_table(pa.table({k: v for k, v in reference.items() if k != "approved"}), parquet)
    set_ref = client.put(
        "/api/v1/models/loans/versions/1/reference",
        content=parquet.getvalue(),
        headers={"Content-Type": PARQUET},
    )
    assert set_ref.status_code == 200, set_ref.text

    # The newest complete hour: every prediction lands inside it.
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=1)
    live = applicants(rng, LIVE_ROWS, shifted=True)
    score = model.predict_proba(design(live))[:, 1]
    predicted = score >= 0.5
    ids = np.array([f"p{i:06d}" for i in range(LIVE_ROWS)])
    offsets = np.sort(rng.uniform(0, 3600 * 1_000_000 - 1, LIVE_ROWS)).astype(np.int64)
    latency = rng.gamma(2.0, 10.0, LIVE_ROWS)
    error = [("timeout" if i % 100 == 0 else None) for i in range(LIVE_ROWS)]
    table = pa.table(
        {
            "prediction_id": ids,
            "ts": pa.array(
                np.datetime64(start.replace(tzinfo=None), "us") + offsets.astype("timedelta64[us]"),
                pa.timestamp("us", tz="UTC"),
            ),
            "will_approve": predicted,
            "score": score,
            "latency_ms": latency,
            "error": pa.array(error, pa.string()),
            **{name: live[name] for name in [*FEATURES, "group"]},
        }
    ).rename_columns(
        ["prediction_id", "ts", "prediction", "score", "latency_ms", "error", *FEATURES, "group"]
    )
    for batch in range(BATCHES):
        rows = table.slice(batch * LIVE_ROWS // BATCHES, LIVE_ROWS // BATCHES)
        logged = client.post(
            "/api/v1/models/loans/versions/1/predictions/upload",
            content=arrow_stream(rows),
            headers={"Content-Type": ARROW_STREAM},
        )
        assert logged.status_code == 200, logged.text
        assert logged.json()["rows"] == LIVE_ROWS // BATCHES

    # Ground truth arrives later for a random half.
    labelled = np.zeros(LIVE_ROWS, dtype=bool)
    labelled[rng.permutation(LIVE_ROWS)[: LIVE_ROWS // 2]] = True
    labels = pa.table({"prediction_id": ids[labelled], "label": live["approved"][labelled]})
    answer = client.post(
        "/api/v1/models/loans/labels/upload",
        content=arrow_stream(labels),
        headers={"Content-Type": ARROW_STREAM},
    )
    assert answer.status_code == 200, answer.text
    return Sent(
        window=(start, end),
        ids=ids,
        predicted=predicted,
        score=score,
        truth=live["approved"],
        group=live["group"],
        labelled=labelled,
        latency=latency,
        errors=sum(e is not None for e in error),
    )


def by_key(points: list[dict[str, Any]]) -> dict[tuple[str, str | None, str], dict[str, Any]]:
    return {(p["check"], p["column"], p["metric"]): p for p in points}


def test_a_monitor_run_shows_drift_performance_and_fairness(
    client: TestClient, app: FastAPI, admin_token: str, sent: Sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, end = sent.window
    made = client.post(
        "/api/v1/models/loans/monitors",
        json={"name": "live", "window": "hourly", "schedule": {"enabled": False}},
    )
    assert made.status_code == 201, made.text
    assert made.json()["checks"] == ["drift", "quality", "performance", "fairness", "operations"]

    run = monitor_run(client, "loans", {"at": (end + timedelta(minutes=1)).isoformat()})
    points = run["points"]
    assert {
        (datetime.fromisoformat(p["window_start"]), datetime.fromisoformat(p["window_end"]))
        for p in points
    } == {(start, end)}
    found = by_key(points)

    # Drift: exactly the two shifted columns, out of the six profiled ones.
    drift = [p for p in points if p["check"] == "drift" and p["column"] is not None]
    assert {p["column"] for p in drift} == {*FEATURES, "group"}
    assert {p["column"] for p in drift if p["status"] == "alert"} == SHIFTED
    share = found[("drift", None, "drift_share")]
    assert share["value"] == pytest.approx(2 / 6)
    assert share["status"] == "warning"  # some columns drifted, fewer than the 50% share

    # Live performance on the 25k labelled rows, as scikit-learn computes it.
    mask = sent.labelled
    assert found[("performance", None, "labelled_rows")]["value"] == LIVE_ROWS // 2
    accuracy = accuracy_score(sent.truth[mask], sent.predicted[mask])
    auc = roc_auc_score(sent.truth[mask], sent.score[mask])
    assert found[("performance", None, "accuracy")]["value"] == pytest.approx(accuracy, abs=1e-9)
    assert found[("performance", None, "roc_auc")]["value"] == pytest.approx(auc, abs=1e-9)

    # Fairness: group b's selection rate is far below a's, as the data was built. Selection
    # rates count every prediction of the window, labelled or not; TPR only the labelled ones.
    rate = {g: float(sent.predicted[sent.group == g].mean()) for g in ("a", "b")}
    for g in ("a", "b"):
        positives = mask & (sent.group == g) & (sent.truth == 1)
        tpr = float(sent.predicted[positives].mean())
        assert found[("fairness", "group", f"tpr[{g}]")]["value"] == pytest.approx(tpr, abs=1e-9)
    assert rate["a"] - rate["b"] > 0.3
    for g in ("a", "b"):
        got = found[("fairness", "group", f"selection_rate[{g}]")]["value"]
        assert got == pytest.approx(rate[g], abs=1e-9)
    impact = found[("fairness", "group", "disparate_impact")]
    assert impact["value"] == pytest.approx(rate["b"] / rate["a"], abs=1e-9)
    assert impact["value"] < 0.8 and impact["status"] == "alert"
    parity = found[("fairness", "group", "demographic_parity_difference")]
    assert parity["value"] == pytest.approx(rate["a"] - rate["b"], abs=1e-9)

    # Quality and operations over the same window.
    assert found[("quality", None, "rows")]["value"] == LIVE_ROWS
    assert found[("quality", None, "rejected_rows")]["value"] == 0
    assert found[("quality", "x1", "out_of_range_share")]["value"] > 0
    assert found[("operations", None, "error_rate")]["value"] == pytest.approx(
        sent.errors / LIVE_ROWS
    )
    assert found[("operations", None, "latency_p95_ms")]["value"] == pytest.approx(
        float(np.quantile(sent.latency, 0.95))
    )

    # An earlier, empty hour adds a second point to every series.
    earlier = monitor_run(client, "loans", {"at": start.isoformat()})["points"]
    assert {p["status"] for p in earlier if p["check"] == "drift"} == {"no_data"}

    series = client.get("/api/v1/models/loans/metrics", params={"check": "drift", "column": "x1"})
    assert series.status_code == 200, series.text
    x1 = series.json()
    assert [p["status"] for p in x1] == ["no_data", "alert"]  # oldest window first
    assert x1[1]["value"] == found[("drift", "x1", x1[1]["metric"])]["value"]
    assert {p["column"] for p in x1} == {"x1"}

    # `keel monitor status MODEL --json`: the newest verdicts, from the same server.
    transport = TestClient(app)._transport
    monkeypatch.setattr(
        cli_registry,
        "client_factory",
        lambda url, token: Client("http://testserver", token=admin_token, transport=transport),
    )
    result = CliRunner().invoke(cli_app, ["monitor", "status", "loans", "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["model"] == "loans" and status["status"] == "alert"
    latest = by_key(status["points"])
    assert latest[("drift", "x1", x1[1]["metric"])]["status"] == "alert"
    assert latest[("fairness", "group", "disparate_impact")]["value"] == impact["value"]
