"""Values that used to get a 500 or a wrong verdict, through the REST API on SQLite and PostgreSQL:
nanosecond times, nulls in columns the training data had none in, object columns from pandas,
huge numbers, features named like telemetry's partition keys, a category named like the overflow
bucket, datetime features, and version metadata that is not UTF-8."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from starlette.testclient import TestClient
from tests.api.test_telemetry_api import ARROW, PARQUET, arrow_bytes, parquet_bytes
from tests.job_runner import monitor_run, running_jobs

from keel.config import Settings
from keel.sdk.dataset import infer_signature
from keel.sdk.telemetry import arrow_table
from keel.server import build_app
from keel.services.backend import Backend
from keel.stats.profile import OTHER, CategoricalProfile, NumericProfile

MODEL = "/api/v1/models/churn"
V1 = f"{MODEL}/versions/1"
CSV = {"Content-Type": "text/csv"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    url = None
    if request.param == "postgres":
        url = str(request.getfixturevalue("postgres_database_url"))
    opened = Backend.open(Settings.load(data_dir=tmp_path / "keel", database_url=url, env={}))
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def client(backend: Backend) -> Iterator[TestClient]:
    token = backend.identity.bootstrap_admin()
    with (
        TestClient(
            build_app(backend),
            raise_server_exceptions=False,
            headers={"Authorization": f"Bearer {token}"},
        ) as test_client,
        running_jobs(backend),
    ):
        assert test_client.post("/api/v1/teams", json={"name": "risk"}).status_code == 201
        created = test_client.post(
            "/api/v1/models", json={"name": "churn", "team": "risk", "owner": "ana"}
        )
        assert created.status_code == 201, created.text
        yield test_client


def register(client: TestClient, signature: dict[str, Any]) -> None:
    created = client.post(
        f"{MODEL}/versions",
        files={"artifact": ("m.bin", b"model bytes")},
        data={"metadata": json.dumps({"signature": signature})},
    )
    assert created.status_code == 201, created.text


def window(backend: Backend) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=2), now + timedelta(hours=1)


def stored(backend: Backend) -> list[Path]:
    root = backend.settings.telemetry_path
    return sorted(root.rglob("*.parquet")) if root.exists() else []


def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json()["error"])


def run_monitor(client: TestClient, checks: list[str]) -> list[dict[str, Any]]:
    made = client.post(f"{MODEL}/monitors", json={"checks": checks, "version": 1})
    assert made.status_code == 201, made.text
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    return list(monitor_run(client, "churn", {"at": at})["points"])


def drift_points(points: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p["column"]: p for p in points if p["check"] == "drift" and p["column"]}


# -- nanosecond times ------------------------------------------------------------------------------


def test_pandas_nanosecond_times_are_truncated_to_microseconds(
    client: TestClient, backend: Backend
) -> None:
    register(client, {"columns": [{"name": "seen", "dtype": "datetime"}]})
    now = pd.Timestamp.now(tz="UTC").floor("s")
    frame = pd.DataFrame(
        {
            "ts": [now + pd.Timedelta(nanoseconds=123_456_789)] * 3,
            "seen": [now - pd.Timedelta(days=1, nanoseconds=1)] * 3,
            "prediction": [1.0, 0.0, 1.0],
        }
    )
    # What pandas writes for ordinary times: nanoseconds.
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    body = io.BytesIO()
    frame.to_parquet(body)
    uploaded = client.post(f"{V1}/predictions/upload", content=body.getvalue(), headers=PARQUET)
    assert uploaded.status_code == 200, uploaded.text
    rows = backend.telemetry.files.read_predictions("churn", 1, *window(backend))
    assert (
        rows.column("ts")[0].as_py() == (now + pd.Timedelta(microseconds=123_456)).to_pydatetime()
    )
    assert (
        rows.column("seen")[0].as_py()
        == (now - pd.Timedelta(days=1, microseconds=1)).to_pydatetime()
    )

    first = pd.Timestamp("2024-05-01T12:00:00.123456789Z")
    csv = pd.DataFrame({"seen": [first, first + pd.Timedelta(days=1)]}).to_csv(index=False)
    assert ".123456789+00:00" in csv  # pandas writes every nanosecond
    reference = client.put(f"{V1}/reference", content=csv.encode(), headers=CSV)
    assert reference.status_code == 200, reference.text
    seen = reference.json()["profile"]["columns"]["seen"]
    expected = datetime(2024, 5, 1, 12, 0, 0, 123456, UTC).timestamp()
    text = "seen\n2024-05-01T12:00:00.123456789Z\n2024-05-01T12:00:01.5Z\n"  # as text
    assert client.put(f"{V1}/reference", content=text.encode(), headers=CSV).status_code == 200
    assert seen["kind"] == "numeric" and seen["min"] == pytest.approx(expected, abs=1e-6)


def test_times_out_of_range_are_a_422_naming_the_column(
    client: TestClient, backend: Backend
) -> None:
    register(client, {"columns": [{"name": "seen", "dtype": "datetime"}]})
    table = pa.table(
        {
            "seen": pa.array([10**17], pa.timestamp("s")),  # year ~3e9
            "prediction": [1.0],
        }
    )
    err = error(
        client.post(f"{V1}/predictions/upload", content=arrow_bytes(table), headers=ARROW), 422
    )
    assert err["details"]["column"] == "seen" and "out of range" in err["message"]
    assert stored(backend) == []


# -- nulls -----------------------------------------------------------------------------------------


def training_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows),
            "income": rng.normal(50_000, 10_000, rows),
            "plan": rng.choice(["free", "gold"], rows),
        }
    )


def test_a_null_where_training_had_none_counts_as_missing_and_feeds_quality(
    client: TestClient, backend: Backend
) -> None:
    training = training_frame()
    signature = infer_signature(training)  # what the SDK registers from training data
    register(client, signature.model_dump(mode="json"))
    client.put(f"{V1}/reference", content=parquet_bytes(arrow_table(training)), headers=PARQUET)
    production = training_frame(200, seed=1).astype({"age": "float64"})
    production.loc[:99, "age"] = np.nan
    production.loc[:49, "plan"] = None
    production["prediction"] = 1
    uploaded = client.post(
        f"{V1}/predictions/upload", content=arrow_bytes(arrow_table(production)), headers=ARROW
    )
    assert uploaded.status_code == 200, uploaded.text
    merged = backend.telemetry.merged_profile("churn", 1, *window(backend))
    assert merged is not None
    assert (merged.columns["age"].null_count, merged.columns["plan"].null_count) == (100, 50)
    points = run_monitor(client, ["drift", "quality"])
    missing = {
        p["column"]: p for p in points if p["metric"] == "missing_rate_change" and p["column"]
    }
    assert missing["age"]["value"] == pytest.approx(0.5) and missing["age"]["status"] != "ok"
    assert set(drift_points(points)) >= {"age", "income", "plan"}  # every column has a verdict


def test_a_null_where_the_signature_says_not_nullable_is_refused(
    client: TestClient, backend: Backend
) -> None:
    register(client, {"columns": [{"name": "age", "dtype": "integer", "nullable": False}]})
    table = pa.table({"age": pa.array([None, 30], pa.int64()), "prediction": [1.0, 0.0]})
    err = error(
        client.post(f"{V1}/predictions/upload", content=arrow_bytes(table), headers=ARROW), 422
    )
    assert err["details"]["column"] == "age" and "not nullable" in err["message"]
    assert stored(backend) == []


# -- pandas object columns -------------------------------------------------------------------------


def test_a_boolean_column_with_missing_values_is_stored_as_a_reference(
    client: TestClient, backend: Backend
) -> None:
    training = pd.DataFrame(
        {"member": pd.Series([True, False, None, True] * 50, dtype=object), "x": range(200)}
    )
    register(client, infer_signature(training).model_dump(mode="json"))
    reference = client.put(
        f"{V1}/reference", content=parquet_bytes(arrow_table(training)), headers=PARQUET
    )
    assert reference.status_code == 200, reference.text
    member = reference.json()["profile"]["columns"]["member"]
    assert member["counts"] == [["True", 100], ["False", 50]] and member["null_count"] == 50


def test_numbers_mixed_with_text_are_a_422_naming_the_column_and_the_type(
    client: TestClient, backend: Backend
) -> None:
    register(client, {"columns": [{"name": "income", "dtype": "float"}]})
    frame = pd.DataFrame({"income": pd.Series([1.5, "n/a", 3], dtype=object), "prediction": 1})
    err = error(
        client.post(
            f"{V1}/predictions/upload", content=arrow_bytes(arrow_table(frame)), headers=ARROW
        ),
        422,
    )
    assert err["details"]["column"] == "income" and err["details"]["expected"] == "float"
    assert "Column 'income' must hold float values" in err["message"]
    reference = client.put(f"{V1}/reference", content=b"income\n1.5\nunknown\n3\n", headers=CSV)
    assert error(reference, 422)["details"]["column"] == "income"
    assert stored(backend) == []
    assert backend.telemetry.reference_profile("churn", 1) is None


# -- huge values -----------------------------------------------------------------------------------


def test_values_near_1e200_are_stored_and_reported_as_json(
    client: TestClient, backend: Backend
) -> None:
    register(client, {"columns": [{"name": "x", "dtype": "float"}]})
    rng = np.random.default_rng(0)
    huge = rng.normal(size=2_000) * 1e200
    reference = client.put(
        f"{V1}/reference", content=parquet_bytes(pa.table({"x": huge})), headers=PARQUET
    )
    assert reference.status_code == 200, reference.text
    x = reference.json()["profile"]["columns"]["x"]
    assert x["m2"] == "Infinity"  # squares past the largest double: said so, not a 500
    assert x["max"] == pytest.approx(huge.max())
    assert client.get(f"{V1}/reference").status_code == 200
    same = pa.table({"x": huge, "prediction": np.zeros(2_000)})
    assert (
        client.post(
            f"{V1}/predictions/upload", content=arrow_bytes(same), headers=ARROW
        ).status_code
        == 200
    )
    verdicts = drift_points(run_monitor(client, ["drift", "quality"]))
    assert verdicts["x"]["value"] == pytest.approx(0.0) and verdicts["x"]["status"] == "ok"
    series = client.get(f"{MODEL}/metrics")
    assert series.status_code == 200 and series.json()
    assert client.get(f"{MODEL}/monitoring/status").status_code == 200


# -- features named like telemetry's own keys ------------------------------------------------------


def test_features_named_date_model_and_version_work_end_to_end(
    client: TestClient, backend: Backend
) -> None:
    register(
        client,
        {
            "columns": [
                {"name": "date", "dtype": "datetime"},
                {"name": "model", "dtype": "categorical"},
                {"name": "version", "dtype": "integer"},
            ]
        },
    )
    rng = np.random.default_rng(0)
    rows = 500

    def data(seed_shift: int = 0) -> dict[str, Any]:
        return {
            "date": pa.array(
                [
                    datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=int(d))
                    for d in rng.integers(0, 30, rows)
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "model": rng.choice(["a", "b"], rows),
            "version": rng.integers(1, 4, rows) + seed_shift,
        }

    reference = client.put(
        f"{V1}/reference", content=parquet_bytes(pa.table(data())), headers=PARQUET
    )
    assert reference.status_code == 200, reference.text
    assert reference.json()["columns"] == ["date", "model", "version"]
    predictions = pa.table(
        {**data(), "prediction": np.zeros(rows), "prediction_id": [f"p{i}" for i in range(rows)]}
    )
    uploaded = client.post(
        f"{V1}/predictions/upload", content=arrow_bytes(predictions), headers=ARROW
    )
    assert uploaded.status_code == 200, uploaded.text
    labels = client.post(
        f"{MODEL}/labels",
        json={"rows": [{"prediction_id": f"p{i}", "label": 0} for i in range(rows)]},
    )
    assert labels.status_code == 200, labels.text
    rows_back = backend.telemetry.files.read_predictions("churn", 1, *window(backend))
    assert rows_back.column("version").to_pylist() == predictions.column("version").to_pylist()
    assert rows_back.column("model").to_pylist() == predictions.column("model").to_pylist()
    joined = backend.telemetry.labelled_predictions(
        "churn", 1, *window(backend), ["date", "model", "version"]
    )
    assert joined.num_rows == rows
    verdicts = drift_points(run_monitor(client, ["drift", "quality", "performance"]))
    assert set(verdicts) == {"date", "model", "version"}
    # A new reference rebuilds the stored windows from the raw files, which hold a `date` column.
    again = client.put(f"{V1}/reference", content=parquet_bytes(pa.table(data())), headers=PARQUET)
    assert again.status_code == 200, again.text
    rebuilt = backend.telemetry.merged_profile("churn", 1, *window(backend))
    assert rebuilt is not None and rebuilt.columns["date"].rows == rows


# -- the overflow bucket ---------------------------------------------------------------------------


def test_a_category_named_like_the_overflow_bucket_reports_no_drift_on_unchanged_data(
    client: TestClient, backend: Backend
) -> None:
    register(client, {"columns": [{"name": "plan", "dtype": "categorical"}]})
    rng = np.random.default_rng(0)
    plans = rng.choice([OTHER, "free", "gold", "pro", "team"], 3_000, p=[0.4, 0.3, 0.1, 0.1, 0.1])
    reference = client.put(
        f"{V1}/reference",
        content=parquet_bytes(pa.table({"plan": plans})),
        headers=PARQUET,
        params={"top_k": 2},
    )
    assert reference.status_code == 200, reference.text
    column = reference.json()["profile"]["columns"]["plan"]
    assert dict(column["counts"]) == {
        OTHER: int((plans == OTHER).sum()),
        "free": int((plans == "free").sum()),
    }
    assert column["other"] == int(np.isin(plans, ["gold", "pro", "team"]).sum())
    same = pa.table({"plan": plans, "prediction": np.zeros(plans.size)})
    client.post(f"{V1}/predictions/upload", content=arrow_bytes(same), headers=ARROW)
    merged = backend.telemetry.merged_profile("churn", 1, *window(backend))
    assert merged is not None
    plan = merged.columns["plan"]
    assert isinstance(plan, CategoricalProfile) and plan.counts[OTHER] == column["counts"][0][1]
    verdicts = drift_points(run_monitor(client, ["drift"]))
    assert verdicts["plan"]["status"] == "ok" and verdicts["plan"]["value"] == pytest.approx(0.0)


# -- datetime features -----------------------------------------------------------------------------


def test_datetime_features_are_profiled_and_watched_for_drift(
    client: TestClient, backend: Backend
) -> None:
    register(
        client,
        {"columns": [{"name": "signup", "dtype": "datetime"}, {"name": "x", "dtype": "float"}]},
    )
    rng = np.random.default_rng(0)
    start = datetime(2024, 1, 1, tzinfo=UTC)

    def signups(days: int, offset: int = 0) -> pa.Array:
        picked = rng.integers(offset, offset + days, 2_000)
        return pa.array(
            [start + timedelta(days=int(d)) for d in picked], pa.timestamp("us", tz="UTC")
        )

    reference = client.put(
        f"{V1}/reference",
        content=parquet_bytes(pa.table({"signup": signups(365), "x": rng.normal(size=2_000)})),
        headers=PARQUET,
    )
    assert reference.status_code == 200, reference.text
    assert reference.json()["columns"] == ["signup", "x"]
    signup = reference.json()["profile"]["columns"]["signup"]
    assert signup["kind"] == "numeric" and signup["min"] >= start.timestamp()
    later = pa.table(
        {
            "signup": signups(30, offset=400),  # all after the reference's range
            "x": rng.normal(size=2_000),
            "prediction": np.zeros(2_000),
        }
    )
    later = later.set_column(
        0,
        "signup",
        pa.concat_arrays(
            [later["signup"].combine_chunks()[:1900], pa.nulls(100, pa.timestamp("us", tz="UTC"))]
        ),
    )
    assert (
        client.post(
            f"{V1}/predictions/upload", content=arrow_bytes(later), headers=ARROW
        ).status_code
        == 200
    )
    merged = backend.telemetry.merged_profile("churn", 1, *window(backend))
    assert merged is not None
    column = merged.columns["signup"]
    assert isinstance(column, NumericProfile) and column.null_count == 100
    points = run_monitor(client, ["drift", "quality"])
    assert drift_points(points)["signup"]["status"] != "ok"
    assert drift_points(points)["x"]["status"] == "ok"
    out_of_range = [
        p for p in points if p["column"] == "signup" and p["metric"] == "out_of_range_share"
    ]
    assert out_of_range and out_of_range[0]["value"] == pytest.approx(1.0)


# -- version metadata encoding ---------------------------------------------------------------------


def test_version_metadata_that_is_not_utf8_is_a_422_naming_the_field(
    client: TestClient, backend: Backend
) -> None:
    latin1 = json.dumps({"description": "Modèle de crédit"}, ensure_ascii=False).encode("latin-1")
    refused = client.post(
        f"{MODEL}/versions",
        files={"artifact": ("m.bin", b"model bytes"), "metadata": (None, latin1)},
    )
    err = error(refused, 422)
    assert err["details"]["field"] == "metadata" and "UTF-8" in err["message"]
    assert client.get(f"{MODEL}/versions").json()["items"] == []
    utf8 = json.dumps({"description": "Modèle de crédit"}, ensure_ascii=False).encode()
    accepted = client.post(
        f"{MODEL}/versions",
        files={"artifact": ("m.bin", b"model bytes"), "metadata": (None, utf8)},
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["description"] == "Modèle de crédit"
