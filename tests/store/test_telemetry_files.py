"""Telemetry partitions behave the same on a local directory and on S3 (moto on loopback):
a stored batch reads back whole through DuckDB and pyarrow, a replayed batch replaces its file,
retention deletes whole date partitions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from tests.s3_server import moto_s3

from keel.config import Settings
from keel.errors import InvalidInput
from keel.store.telemetry import TelemetryFiles

BUCKET = "keel-telemetry"
DAY = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3(BUCKET) as endpoint:
        yield endpoint


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> TelemetryFiles:
    if request.param == "local":
        return TelemetryFiles(tmp_path / "telemetry")
    endpoint = request.getfixturevalue("s3_endpoint")
    prefix = f"run-{uuid.uuid4().hex}"  # one bucket, a fresh prefix per test
    return TelemetryFiles(f"s3://{BUCKET}/{prefix}", {"client_kwargs": {"endpoint_url": endpoint}})


def batch(first: int, n: int, start: datetime = DAY) -> pa.Table:
    return pa.table(
        {
            "prediction_id": [f"p{i}" for i in range(first, first + n)],
            "ts": pa.array(
                [start + timedelta(minutes=i) for i in range(n)], pa.timestamp("us", "UTC")
            ),
            "x": [float(i) for i in range(first, first + n)],
        }
    )


def test_a_stored_batch_reads_back_whole_through_duckdb(files: TelemetryFiles) -> None:
    written = files.write_predictions("churn", 1, batch(0, 50), "batch-0001")
    assert [day for day, _ in written] == [DAY.date()]
    rows = files.read_predictions("churn", 1, DAY - timedelta(hours=1), DAY + timedelta(days=1))
    assert rows.column("prediction_id").to_pylist() == [f"p{i}" for i in range(50)]
    assert files.versions("churn") == [1]
    assert files.prediction_files("churn", 1) == [path for _, path in written]


def test_pyarrow_datasets_read_the_same_files(files: TelemetryFiles) -> None:
    files.write_predictions("churn", 1, batch(0, 30), "batch-0001")
    files.write_predictions("churn", 1, batch(30, 20), "batch-0002")
    paths = [p.removeprefix("s3://") for p in files.prediction_files("churn", 1)]
    table = ds.dataset(paths, format="parquet", filesystem=files.filesystem).to_table()
    assert sorted(table.column("x").to_pylist()) == [float(i) for i in range(50)]


def test_a_replayed_batch_replaces_its_file_instead_of_adding_rows(files: TelemetryFiles) -> None:
    files.write_predictions("churn", 1, batch(0, 10), "batch-0001")
    files.write_predictions("churn", 1, batch(0, 10), "batch-0001")
    assert len(files.prediction_files("churn", 1)) == 1
    assert files.read_predictions("churn", 1, DAY, DAY + timedelta(days=1)).num_rows == 10


def test_a_batch_over_two_days_lands_in_two_partitions(files: TelemetryFiles) -> None:
    late = DAY.replace(hour=23, minute=50)
    written = files.write_predictions("churn", 2, batch(0, 20, start=late), "batch-0001")
    assert [day for day, _ in written] == [date(2026, 3, 1), date(2026, 3, 2)]
    second_day = datetime(2026, 3, 2, tzinfo=UTC)
    assert len(files.prediction_files("churn", 2, second_day, second_day + timedelta(hours=1))) == 1


def test_retention_deletes_expired_partitions_of_every_version_and_labels(
    files: TelemetryFiles,
) -> None:
    old, new = DAY - timedelta(days=10), DAY
    for version in (1, 2):
        files.write_predictions("churn", version, batch(0, 5, start=old), "batch-old1")
        files.write_predictions("churn", version, batch(5, 5, start=new), "batch-new1")
    labels = pa.table(
        {"prediction_id": ["p0"], "label": [1], "ts": pa.array([old], pa.timestamp("us", "UTC"))}
    )
    files.write_labels("churn", labels, "labels-01")
    removed = files.delete_before("churn", DAY.date() - timedelta(days=1))
    assert sorted(removed) == [
        "labels/model=churn/date=2026-02-19",
        "predictions/model=churn/version=1/date=2026-02-19",
        "predictions/model=churn/version=2/date=2026-02-19",
    ]
    assert files.label_files("churn") == []
    for version in (1, 2):
        kept = files.read_predictions("churn", version, old, new + timedelta(days=1))
        assert kept.column("x").to_pylist() == [5.0, 6.0, 7.0, 8.0, 9.0]
    assert files.delete_before("churn", DAY.date() - timedelta(days=1)) == []


def test_a_usable_store_is_ready_and_the_probe_leaves_nothing(files: TelemetryFiles) -> None:
    files.check()
    if files.remote:
        assert files.filesystem.glob(f"{files.url.removeprefix('s3://')}/**") == []


def test_an_unknown_model_has_no_files(files: TelemetryFiles) -> None:
    assert files.versions("ghost") == []
    assert files.all_prediction_files("ghost") == []
    assert files.label_files("ghost") == []
    assert files.delete_before("ghost", DAY.date()) == []


def test_repr_names_the_root_but_never_the_credentials(s3_endpoint: str) -> None:
    secret = "wJalrXUtnFEMI-do-not-show"
    files = TelemetryFiles(
        f"s3://{BUCKET}/x", {"key": "AKIA-fake", "secret": secret, "client_kwargs": {}}
    )
    assert repr(files) == f"TelemetryFiles(root='s3://{BUCKET}/x')"
    assert secret not in repr(files)


@pytest.mark.parametrize(
    "bad", ["/var/keel/telemetry", "file:///var/keel", "gs://bucket/x", "s3://", "s3:///"]
)
def test_keel_telemetry_url_must_be_an_s3_url(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Settings.load(data_dir=tmp_path, env={"KEEL_TELEMETRY_URL": bad})
    assert "KEEL_TELEMETRY_URL" in caught.value.message
    assert "KEEL_TELEMETRY_DIR" in caught.value.message  # the fix for a local directory


def test_keel_telemetry_url_wins_over_the_data_directory(tmp_path: Path) -> None:
    env = {"KEEL_TELEMETRY_URL": "s3://bucket/prefix/", "KEEL_S3_ENDPOINT_URL": "http://s3:9000"}
    settings = Settings.load(data_dir=tmp_path, env=env)
    assert settings.telemetry_location == "s3://bucket/prefix"
    assert settings.telemetry_storage_options == {
        "client_kwargs": {"endpoint_url": "http://s3:9000"}
    }
    assert Settings.load(data_dir=tmp_path, env={}).telemetry_location == str(
        tmp_path.resolve() / "telemetry"
    )
