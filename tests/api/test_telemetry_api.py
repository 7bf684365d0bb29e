"""Predictions, labels, references and retention through the REST API, and bad input refused
with a 4xx that names the column and the fix, writing nothing."""

from __future__ import annotations

import functools
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient
from tests.api.conftest import open_backend

from keel.server import build_app
from keel.services.backend import Backend
from keel.worker.loop import Worker, scheduled_jobs
from keel.worker.retention import retention_job

MODEL = "/api/v1/models/churn"
V1 = f"{MODEL}/versions/1"
ARROW = {"Content-Type": "application/vnd.apache.arrow.stream"}
PARQUET = {"Content-Type": "application/vnd.apache.parquet"}
SIGNATURE = {
    "columns": [
        {"name": "age", "dtype": "integer", "nullable": False},
        {"name": "income", "dtype": "float"},
        {"name": "region", "dtype": "categorical"},
        {"name": "sex", "dtype": "string", "role": "protected_attribute"},
        {"name": "churned", "dtype": "boolean", "role": "target"},
    ]
}


def arrow_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def batch(rows: int, seed: int = 0, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "age": rng.integers(18, 90, rows),
            "income": rng.normal(50_000 + shift, 10_000, rows),
            "region": rng.choice(["north", "south", "east"], rows),
            "sex": rng.choice(["f", "m"], rows),
            "prediction": rng.integers(0, 2, rows),
            "score": rng.random(rows),
            "latency_ms": rng.gamma(2.0, 3.0, rows),
        }
    )


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    return dict(error)


def _files(backend: Backend) -> list[Path]:
    root = backend.settings.telemetry_path
    return sorted(root.rglob("*.parquet")) if root.exists() else []


def _window(backend: Backend) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=2), now + timedelta(hours=1)


@pytest.fixture
def version(client: TestClient, team_and_model: str) -> int:
    created = client.post(
        f"{MODEL}/versions",
        files={"artifact": ("m.bin", b"model bytes")},
        data={"metadata": json.dumps({"signature": SIGNATURE})},
    )
    assert created.status_code == 201, created.text
    return int(created.json()["version"])


def test_arrow_upload_is_stored_profiled_and_queryable(
    client: TestClient, backend: Backend, version: int
) -> None:
    reference = client.put(f"{V1}/reference", content=parquet_bytes(batch(5_000)), headers=PARQUET)
    assert reference.status_code == 200, reference.text
    assert reference.json()["columns"] == ["age", "income", "region", "sex"]

    first = client.post(
        f"{V1}/predictions/upload", content=arrow_bytes(batch(3_000, 1)), headers=ARROW
    )
    second = client.post(
        f"{V1}/predictions/upload", content=parquet_bytes(batch(2_000, 2)), headers=PARQUET
    )
    assert first.status_code == second.status_code == 200, first.text + second.text
    assert first.json()["rows"] == 3_000 and second.json()["rows"] == 2_000

    start, end = _window(backend)
    merged = backend.telemetry.merged_profile("churn", 1, start, end)
    assert merged is not None and merged.rows == 5_000
    assert sum(backend.telemetry.hourly_row_counts("churn", 1, start, end)[-1:][0][1:]) == 5_000
    stored = backend.telemetry.files.read_predictions("churn", 1, start, end)
    assert stored.num_rows == 5_000
    assert stored.column_names[:6] == [
        "prediction_id",
        "ts",
        "prediction",
        "score",
        "latency_ms",
        "error",
    ]
    operations = backend.telemetry.operations("churn", 1, start, end)
    expected = np.quantile(
        np.concatenate([batch(3_000, 1)["latency_ms"], batch(2_000, 2)["latency_ms"]]), 0.95
    )
    assert operations.rows == 5_000 and operations.latency_p95_ms == pytest.approx(expected)


def test_json_rows_and_labels_join_on_prediction_id(
    client: TestClient, backend: Backend, version: int
) -> None:
    rows = [
        {
            "prediction_id": f"p{i}",
            "age": 30 + i,
            "income": None,
            "region": "north",
            "sex": "f",
            "prediction": i % 2,
            "score": 0.1 * i,
        }
        for i in range(6)
    ]
    logged = client.post(f"{V1}/predictions", json={"rows": rows})
    assert logged.status_code == 200, logged.text
    labels = client.post(
        f"{MODEL}/labels",
        json={"rows": [{"prediction_id": "p1", "label": 1}, {"prediction_id": "p4", "label": 0}]},
    )
    assert labels.status_code == 200, labels.text
    joined = backend.telemetry.labelled_predictions("churn", 1, *_window(backend), columns=["sex"])
    assert joined.column("prediction_id").to_pylist() == ["p1", "p4"]
    assert joined.column("label").to_pylist() == [1.0, 0.0]
    assert joined.column("prediction").to_pylist() == [1.0, 0.0]
    assert joined.column("sex").to_pylist() == ["f", "f"]


def test_a_retried_batch_id_is_stored_once(
    client: TestClient, backend: Backend, version: int
) -> None:
    body = arrow_bytes(batch(100))
    url = f"{V1}/predictions/upload?batch_id=retry-0001"
    first = client.post(url, content=body, headers=ARROW)
    again = client.post(url, content=body, headers=ARROW)
    assert first.json()["replayed"] is False and again.json()["replayed"] is True
    assert backend.telemetry.files.read_predictions("churn", 1, *_window(backend)).num_rows == 100


def _nothing_written(backend: Backend, rejected: int) -> None:
    start, end = _window(backend)
    assert _files(backend) == []
    assert backend.telemetry.hourly_row_counts("churn", 1, start, end) == []
    assert backend.telemetry.rejected_rows("churn", 1, start, end) == rejected


def test_malformed_parquet_is_a_400_and_writes_nothing(
    client: TestClient, backend: Backend, version: int
) -> None:
    broken = parquet_bytes(batch(100))[:-40]
    err = _error(client.post(f"{V1}/predictions/upload", content=broken, headers=PARQUET), 400)
    assert err["code"] == "malformed_upload"
    assert "not readable as Parquet" in err["message"]
    _nothing_written(backend, rejected=0)


def test_wrong_dtype_names_the_column_and_both_types(
    client: TestClient, backend: Backend, version: int
) -> None:
    table = batch(50).set_column(0, "age", pa.array(["old"] * 50))
    err = _error(
        client.post(f"{V1}/predictions/upload", content=arrow_bytes(table), headers=ARROW), 422
    )
    assert err["details"] == {
        "field": "age",
        "column": "age",
        "expected": "integer",
        "got": "string",
    }
    assert "Column 'age' must hold integer values, got string" in err["message"]
    _nothing_written(backend, rejected=50)


def test_unknown_column_lists_the_expected_ones(
    client: TestClient, backend: Backend, version: int
) -> None:
    table = batch(10).append_column("shoe_size", pa.array([42] * 10))
    err = _error(
        client.post(f"{V1}/predictions/upload", content=arrow_bytes(table), headers=ARROW), 422
    )
    assert err["details"]["column"] == "shoe_size"
    assert err["details"]["expected"] == [
        "prediction_id",
        "ts",
        "prediction",
        "score",
        "latency_ms",
        "error",
        "arm",
        "age",
        "income",
        "region",
        "sex",
    ]
    _nothing_written(backend, rejected=10)


def test_missing_required_column_and_nulls_in_a_non_nullable_one(
    client: TestClient, backend: Backend, version: int
) -> None:
    err = _error(
        client.post(
            f"{V1}/predictions/upload",
            content=arrow_bytes(batch(10).drop_columns(["age"])),
            headers=ARROW,
        ),
        422,
    )
    assert "Column 'age' is required but missing" in err["message"]
    with_null = batch(10).set_column(0, "age", pa.array([None] + [30] * 9, pa.int64()))
    err = _error(
        client.post(f"{V1}/predictions/upload", content=arrow_bytes(with_null), headers=ARROW), 422
    )
    assert "Column 'age' has 1 missing value(s)" in err["message"]
    _nothing_written(backend, rejected=20)


def test_nan_in_a_nullable_feature_counts_as_missing(
    client: TestClient, backend: Backend, version: int
) -> None:
    client.put(f"{V1}/reference", content=parquet_bytes(batch(1_000)), headers=PARQUET)
    table = batch(10).set_column(1, "income", pa.array([np.nan] * 4 + [50_000.0] * 6))
    assert (
        client.post(
            f"{V1}/predictions/upload", content=arrow_bytes(table), headers=ARROW
        ).status_code
        == 200
    )
    merged = backend.telemetry.merged_profile("churn", 1, *_window(backend))
    assert merged is not None
    assert (merged.columns["income"].count, merged.columns["income"].null_count) == (6, 4)


def test_an_oversized_upload_is_a_413_naming_the_setting(tmp_path: Path) -> None:
    backend = open_backend(tmp_path / "keel", KEEL_MAX_UPLOAD_BYTES="4096")
    token = backend.identity.bootstrap_admin()
    with TestClient(
        build_app(backend),
        raise_server_exceptions=False,
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        client.post("/api/v1/teams", json={"name": "risk"})
        client.post("/api/v1/models", json={"name": "churn", "team": "risk", "owner": "ana"})
        client.post(
            f"{MODEL}/versions",
            files={"artifact": ("m.bin", b"x")},
            data={"metadata": json.dumps({"signature": SIGNATURE})},
        )
        err = _error(
            client.post(
                f"{V1}/predictions/upload", content=arrow_bytes(batch(2_000)), headers=ARROW
            ),
            413,
        )
        assert "KEEL_MAX_UPLOAD_BYTES" in err["message"]
        assert _files(backend) == []
    backend.close()


def test_an_unsupported_content_type_is_a_415(client: TestClient, version: int) -> None:
    err = _error(
        client.post(
            f"{V1}/predictions/upload", content=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"}
        ),
        415,
    )
    assert "application/vnd.apache.parquet" in err["message"]


def test_reference_from_csv_and_its_404_before(client: TestClient, version: int) -> None:
    missing = _error(client.get(f"{V1}/reference"), 404)
    assert "keel telemetry reference churn 1" in missing["message"]
    csv = "age,income,region,sex,churned\n30,1.5,north,f,true\n40,,south,m,false\n"
    put = client.put(f"{V1}/reference", content=csv.encode(), headers={"Content-Type": "text/csv"})
    assert put.status_code == 200, put.text
    got = client.get(f"{V1}/reference").json()
    assert got["rows"] == 2
    assert got["profile"]["columns"]["income"]["null_count"] == 1


def test_retention_deletes_old_partitions_and_is_audited(
    client: TestClient, backend: Backend, version: int
) -> None:
    old = batch(10).append_column(
        "ts", pa.array([datetime.now(UTC) - timedelta(days=40)] * 10, pa.timestamp("us", tz="UTC"))
    )
    client.post(f"{V1}/predictions/upload", content=arrow_bytes(old), headers=ARROW)
    client.post(f"{V1}/predictions/upload", content=arrow_bytes(batch(10)), headers=ARROW)
    assert len(_files(backend)) == 2
    answer = client.put(f"{MODEL}/telemetry-retention", json={"days": 30})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["deleted_partitions"]) == 1
    assert len(_files(backend)) == 1
    assert client.get(f"{MODEL}/telemetry-retention").json()["days"] == 30
    actions = [e["action"] for e in client.get("/api/v1/audit").json()["items"]]
    assert {"telemetry.retention.set", "telemetry.purge"} <= set(actions)
    err = _error(client.put(f"{MODEL}/telemetry-retention", json={"days": 0}), 422)
    assert err["details"]["problems"][0]["field"] == "days"


def _after(start: datetime, days: int) -> datetime:
    return start + timedelta(days=days)


def test_the_worker_applies_retention_as_days_pass(
    client: TestClient, backend: Backend, version: int
) -> None:
    assert client.put(f"{MODEL}/telemetry-retention", json={"days": 30}).status_code == 200
    client.post(f"{V1}/predictions/upload", content=arrow_bytes(batch(10)), headers=ARROW)
    assert len(_files(backend)) == 1
    assert "telemetry-retention" in [job.name for job in scheduled_jobs(backend)]

    # A worker tick 10 days on keeps today's partition; 31 days on, it is deleted and audited.
    today = datetime.now(UTC)
    for days_on, left in ((10, 1), (31, 0)):
        tick = retention_job(backend.telemetry, clock=functools.partial(_after, today, days_on))
        assert Worker(jobs=[tick]).run_once(0.0) == ["telemetry-retention"]
        assert len(_files(backend)) == left
    purges = client.get("/api/v1/audit", params={"action": "telemetry.purge"}).json()["items"]
    assert len(purges) == 1


def test_a_pandas_index_written_into_parquet_is_not_taken_for_a_column(
    client: TestClient, backend: Backend, version: int
) -> None:
    # Concatenated or filtered frames keep a non-default index, which to_parquet stores as
    # __index_level_0__; it is bookkeeping, not an unknown feature.
    frame = batch(40).to_pandas()
    kept = frame[frame["age"] > 30]
    buffer = io.BytesIO()
    kept.to_parquet(buffer)
    assert "__index_level_0__" in pq.read_schema(io.BytesIO(buffer.getvalue())).names
    answer = client.post(f"{V1}/predictions/upload", content=buffer.getvalue(), headers=PARQUET)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == len(kept)
    stored = pq.read_table(_files(backend)[0])
    assert "__index_level_0__" not in stored.column_names

    # A column of that name that pandas did not declare as its index is still refused.
    stray = pa.table({**batch(3).to_pydict(), "__index_level_0__": [1, 2, 3]})
    err = _error(
        client.post(f"{V1}/predictions/upload", content=arrow_bytes(stray), headers=ARROW), 422
    )
    assert err["details"]["column"] == "__index_level_0__"
