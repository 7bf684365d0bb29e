"""Telemetry on S3: kill -9 a real `keel up` while clients upload prediction batches, then count
what S3 holds. Every acknowledged batch must be there, whole; no object is unreadable. And a
batch the storage refuses is answered 503, counted, and not acknowledged."""

from __future__ import annotations

import io
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from tests.running_keel import keel_up
from tests.s3_server import moto_s3

from keel.config import Settings
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnType, Signature
from keel.errors import KeelError, NotReady
from keel.sdk import Client
from keel.services.backend import Backend
from keel.store.telemetry import PREDICTIONS_SOURCE, TelemetryFiles

pytestmark = pytest.mark.s3
BUCKET = "keel-telemetry"
ROWS_PER_BATCH = 2_000
ACKS_BEFORE_KILL = 12
UPLOADERS = 2


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3(BUCKET) as endpoint:
        yield endpoint


def _training_data(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows),
            "income": rng.normal(50_000, 10_000, rows),
            "churned": rng.integers(0, 2, rows).astype(bool),
        }
    )


def _batch(uploader: int, i: int) -> pa.Table:
    rng = np.random.default_rng(i)
    n = ROWS_PER_BATCH
    return pa.table(
        {
            "prediction_id": [f"u{uploader}-b{i}-{j}" for j in range(n)],
            "age": rng.integers(18, 90, n),
            "income": rng.normal(50_000, 10_000, n),
            "prediction": rng.integers(0, 2, n),
        }
    )


def test_kill9_during_s3_uploads_loses_no_acknowledged_batch(
    tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{BUCKET}/run-{uuid.uuid4().hex}"
    monkeypatch.setenv("KEEL_TELEMETRY_URL", url)
    monkeypatch.setenv("KEEL_S3_ENDPOINT_URL", s3_endpoint)
    acked: list[str] = []
    enough = threading.Event()
    with keel_up(tmp_path) as server:
        token = (server.data_dir / "admin-token").read_text().strip()
        with Client(url=server.url, token=token) as keel:
            keel.create_team("risk")
            keel.create_model("churn", team="risk", owner="ana")
            frame = _training_data()
            model = LogisticRegression().fit(frame[["age", "income"]], frame["churned"])
            keel.register_version(
                "churn", model, training_data=frame, target="churned", capture_git=False
            )

        def upload(uploader: int) -> None:
            # Each uploader sends batches back to back until the server dies under it.
            with Client(url=server.url, token=token) as client:
                for i in range(10_000):
                    batch_id = f"u{uploader}-batch-{i:05d}"
                    try:
                        client.upload_predictions(
                            "churn", 1, _batch(uploader, i), batch_id=batch_id
                        )
                    except KeelError:
                        return
                    acked.append(batch_id)
                    if len(acked) >= ACKS_BEFORE_KILL:
                        enough.set()

        threads = [threading.Thread(target=upload, args=(u,)) for u in range(UPLOADERS)]
        for thread in threads:
            thread.start()
        assert enough.wait(timeout=120), "the uploads never got going:\n" + "".join(server.log)
        os.kill(server.pid, signal.SIGKILL)  # both uploaders have a batch in flight
        assert server.process is not None
        server.process.wait(timeout=30)
        for thread in threads:
            thread.join(timeout=60)
            assert not thread.is_alive()
    assert server.process.returncode == -signal.SIGKILL

    files = TelemetryFiles(url, {"client_kwargs": {"endpoint_url": s3_endpoint}})
    stored_files = files.prediction_files("churn", 1)
    for path in stored_files:  # every object under a final name is a complete Parquet file
        with files.filesystem.open(path, "rb") as handle:
            assert pq.read_metadata(handle).num_rows > 0
    stored = set(
        files.query(f"SELECT prediction_id FROM {PREDICTIONS_SOURCE}", {"files": stored_files})
        .column("prediction_id")
        .to_pylist()
    )
    missing = {
        batch_id: sum(
            f"u{batch_id[1]}-b{int(batch_id.rsplit('-', 1)[1])}-{j}" not in stored
            for j in range(ROWS_PER_BATCH)
        )
        for batch_id in acked
    }
    assert len(acked) >= ACKS_BEFORE_KILL
    assert sum(missing.values()) == 0, f"acknowledged rows missing per batch: {missing}"
    # Only acknowledged batches, plus at most the one each uploader had in flight, are stored.
    assert len(acked) * ROWS_PER_BATCH <= len(stored) <= (len(acked) + UPLOADERS) * ROWS_PER_BATCH


ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))


def test_a_batch_the_storage_refuses_is_503_counted_and_not_acknowledged(
    tmp_path: Path, s3_endpoint: str
) -> None:
    env = {
        "KEEL_TELEMETRY_URL": "s3://no-such-bucket/telemetry",
        "KEEL_S3_ENDPOINT_URL": s3_endpoint,
    }
    backend = Backend.open(Settings.load(data_dir=tmp_path / "keel", env=env))
    backend.migrate()
    try:
        backend.registry.create_team(ADMIN, "risk")
        backend.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
        signature = Signature((Column("x", ColumnType.FLOAT),))
        backend.registry.register_version(
            ADMIN, "churn", io.BytesIO(b"weights"), "m.bin", VersionDraft(signature=signature)
        )
        now = datetime.now(UTC)
        table = pa.table({"prediction_id": ["a", "b"], "x": [0.5, 1.5], "prediction": [1, 0]})
        with pytest.raises(NotReady) as caught:
            backend.telemetry.log_predictions(ADMIN, "churn", 1, table, batch_id="batch-0001")
        assert "s3://no-such-bucket/telemetry" in caught.value.message
        assert "Retry with the same batch id" in caught.value.message
        totals = backend.telemetry.counters.totals()
        assert totals.write_failures == {("churn", "predictions"): 1}
        assert totals.rows == {}
        assert backend.telemetry.store.batch("batch-0001") is None  # nothing acknowledged
        counts = backend.telemetry.hourly_row_counts(
            "churn", 1, now - timedelta(hours=1), now + timedelta(hours=1)
        )
        assert sum(n for _, n in counts) == 0
        with pytest.raises(NotReady) as unready:  # and /readyz says which store, and the fix
            backend.check_ready()
        assert unready.value.details == {
            "component": "telemetry",
            "url": "s3://no-such-bucket/telemetry",
        }
        assert "KEEL_S3_ENDPOINT_URL" in unready.value.message
    finally:
        backend.close()
