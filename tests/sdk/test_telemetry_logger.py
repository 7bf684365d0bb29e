"""The SDK's prediction logger: buffered, bounded, flushed on demand and at exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from tests.running_keel import keel_up

from keel.errors import NotFound
from keel.sdk import Client
from keel.sdk.telemetry import PredictionLogger
from keel.services.backend import Backend


def _window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=2), now + timedelta(hours=1)


def _training_data(rows: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows),
            "income": rng.normal(50_000, 10_000, rows),
            "region": rng.choice(["north", "south"], rows),
            "churned": rng.integers(0, 2, rows).astype(bool),
        }
    )


@pytest.fixture
def registered(keel: Client) -> pd.DataFrame:
    keel.create_team("risk")
    keel.create_model("churn", team="risk", owner="ana")
    frame = _training_data()
    estimator = LogisticRegression().fit(frame[["age", "income"]], frame["churned"])
    keel.register_version(
        "churn", estimator, training_data=frame, target="churned", capture_git=False
    )
    return frame


def test_registering_with_training_data_stores_the_reference(
    keel: Client, registered: pd.DataFrame
) -> None:
    reference = keel.get_reference("churn", 1)
    assert reference.rows == len(registered)
    assert reference.columns == ["age", "income", "region"]  # the target is not a feature
    with pytest.raises(NotFound, match="No model named 'ghost'"):
        keel.get_reference("ghost", 1)


def test_logged_rows_reach_the_server_after_flush(
    keel: Client, keel_backend: Backend, registered: pd.DataFrame
) -> None:
    single = keel.log_predictions(
        "churn", 1, {"age": 40, "income": 61_000.5, "region": "north"}, 1, scores=0.8
    )
    frame = registered.drop(columns=["churned"]).head(200)
    many = keel.log_predictions("churn", 1, frame, np.zeros(200), latencies_ms=np.full(200, 3.0))
    assert len(single) == 1 and len(many) == 200 and len(set(single + many)) == 201
    assert keel.flush(timeout=30)
    stats = keel.telemetry_stats()
    assert (stats.sent_rows, stats.pending_rows, stats.dropped_rows) == (201, 0, 0)

    stored = keel_backend.telemetry.files.read_predictions("churn", 1, *_window())
    assert sorted(stored.column("prediction_id").to_pylist()) == sorted(single + many)
    keel.log_labels("churn", ids=single, labels=[0])
    joined = keel_backend.telemetry.labelled_predictions("churn", 1, *_window())
    assert joined.column("prediction_id").to_pylist() == single
    assert joined.column("score").to_pylist() == [0.8]


def test_a_refused_batch_is_counted_not_retried(keel: Client, registered: pd.DataFrame) -> None:
    keel.log_predictions("churn", 1, {"age": 40, "shoe_size": 44}, 1)
    assert keel.flush(timeout=30)
    stats = keel.telemetry_stats()
    assert stats.failed_rows == 1
    assert stats.last_error is not None and "shoe_size" in stats.last_error


def test_memory_stays_bounded_when_the_server_is_slow() -> None:
    released = threading.Event()
    sent: list[int] = []

    def slow_send(model: str, version: int, body: bytes, batch_id: str) -> None:
        released.wait(30)  # a server that does not answer until the test says so
        sent.append(len(body))

    logger = PredictionLogger(slow_send, batch_rows=10, max_pending_rows=50, flush_interval_s=0.01)
    for i in range(300):
        logger.log("churn", 1, {"x": float(i)}, 0)
        assert logger.stats().pending_rows <= 50
    dropped = logger.stats().dropped_rows
    assert dropped >= 300 - 50 - 10  # at most the buffer plus one batch in flight were kept
    released.set()
    assert logger.flush(timeout=30)
    final = logger.stats()
    assert final.sent_rows + final.dropped_rows == 300
    logger.close()


def test_blocking_mode_waits_for_room_instead_of_dropping() -> None:
    def send(model: str, version: int, body: bytes, batch_id: str) -> None:
        return None

    logger = PredictionLogger(
        send, batch_rows=5, max_pending_rows=10, on_full="block", block_timeout_s=10.0
    )
    for i in range(200):
        logger.log("churn", 1, {"x": float(i)}, 0)
    assert logger.flush(timeout=30)
    assert (logger.stats().sent_rows, logger.stats().dropped_rows) == (200, 0)
    logger.close()


def test_buffered_rows_are_sent_when_the_program_exits(tmp_path: Path) -> None:
    with keel_up(tmp_path) as server:
        server.ok("teams", "create", "risk")
        server.ok("models", "create", "churn", "--team", "risk", "--owner", "ana")
        script = textwrap.dedent(
            f"""
            from keel.sdk import Client
            keel = Client({server.url!r})
            keel.register_version("churn", {str(tmp_path / "m.bin")!r}, capture_git=False)
            ids = keel.log_predictions("churn", 1, [{{}}] * 25, [1] * 25)
            print(len(ids))
            """
        )
        (tmp_path / "m.bin").write_bytes(b"weights")
        env_home = {"KEEL_HOME": str(server.data_dir)}
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env_home},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "25"
        files = list((server.data_dir / "telemetry" / "predictions").rglob("part-*.parquet"))
        assert sum(pq.read_metadata(f).num_rows for f in files) == 25
