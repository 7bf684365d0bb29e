"""`keel profiles build --engine spark` against a real `keel up`: the reference it uploads equals
the one the server computes from the same Parquet file, and a window lands in its hour."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.running_keel import KEEL, Server, keel_up
from tests.spark.test_profile import assert_same_profile

from keel.sdk import Client
from keel.stats.drift import dataset_drift
from keel.stats.profile import DatasetProfile

SIGNATURE = {
    "columns": [
        {"name": "age", "dtype": "integer", "nullable": False},
        {"name": "income", "dtype": "float"},
        {"name": "region", "dtype": "categorical"},
        {"name": "churned", "dtype": "boolean", "role": "target"},
    ]
}


def _data(rows: int, seed: int, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000 + shift, 10_000, rows)
    income[::11] = np.nan
    return pa.table(
        {
            "age": rng.integers(18, 90, rows),
            "income": income,
            "region": rng.choice(["north", "south", "east"], rows),
            "churned": rng.random(rows) < 0.2,
        }
    )


def _keel(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it; Spark's JVM start needs more than Server.keel's 60 s."""
    env = {k: v for k, v in os.environ.items() if k not in ("KEEL_TOKEN", "NO_COLOR")}
    env.update(KEEL_URL=server.url, KEEL_HOME=str(server.data_dir))
    return subprocess.run(
        [str(KEEL), *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.timeout(900)  # two JVM starts: ~30 s on an idle machine, minutes on a loaded one
def test_profiles_build_uploads_what_the_server_would_compute(
    spark_ready: None, tmp_path: Path
) -> None:
    training, scored = tmp_path / "training.parquet", tmp_path / "scored.parquet"
    pq.write_table(_data(5_000, seed=1), training)
    pq.write_table(_data(2_000, seed=2, shift=8_000.0), scored)
    (tmp_path / "model.bin").write_bytes(b"model bytes")
    with keel_up(tmp_path) as server:
        token = (server.data_dir / "admin-token").read_text().strip()
        with Client(server.url, token=token) as keel:
            keel.create_team("risk")
            keel.create_model("churn", team="risk", owner="ana")
            for _ in range(2):
                keel.register_version("churn", tmp_path / "model.bin", signature=SIGNATURE)
            keel.set_reference("churn", 2, pq.read_table(training))  # the server's own profile

        common = ["--model", "churn", "--version", "1", "--master", "local[2]"]
        built = _keel(server, "profiles", "build", "--input", str(training), *common)
        assert built.returncode == 0, built.stdout + built.stderr
        assert "Set the reference of churn v1: 5,000 rows, 3 columns" in built.stdout

        hour = "2026-05-01T13:00Z"
        window = _keel(server, "profiles", "build", "--input", str(scored), *common,
                       "--as", "window", "--at", hour, "--json")  # fmt: skip
        assert window.returncode == 0, window.stdout + window.stderr
        assert json.loads(window.stdout)["rows"] == 2_000

        no_hour = _keel(server, "profiles", "build", "--input", str(scored), *common,
                        "--as", "window")  # fmt: skip
        assert (
            no_hour.returncode == 1 and "--as window needs the window's UTC hour" in no_hour.stderr
        )

        with Client(server.url, token=token) as keel:
            on_spark = keel.reference_profile("churn", 1)
            on_server = keel.reference_profile("churn", 2)
    assert_same_profile(on_spark, on_server)
    assert on_spark.columns["region"].to_dict()["counts"][0][0] in ("north", "south", "east")
    windows = _stored_window(server)
    assert windows.rows == 2_000
    assert dataset_drift(on_server, windows).drifted_columns == ["income"]


def _stored_window(server: Server) -> DatasetProfile:
    """The one window profile, read from the stopped server's database."""
    import sqlite3

    with sqlite3.connect(server.database) as db:
        ((hour, text),) = db.execute("SELECT hour, profile FROM window_profiles").fetchall()
    assert str(hour).startswith("2026-05-01 13:00")
    return DatasetProfile.from_json(text)
