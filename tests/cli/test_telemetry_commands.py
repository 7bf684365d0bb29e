"""`keel telemetry import` and `keel telemetry reference` against the real app."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tests.cli.conftest import Keel

from keel.services.backend import Backend


def _data(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"x": rng.normal(size=rows), "city": rng.choice(["oslo", "rome"], rows)})


def test_import_a_parquet_file_in_batches_then_rerun_stores_nothing_twice(
    keel_cli: Keel, keel_backend: Backend, tmp_path: Path
) -> None:
    assert keel_cli("teams", "create", "risk").exit_code == 0
    assert keel_cli("models", "create", "churn", "--team", "risk", "--owner", "ana").exit_code == 0
    (tmp_path / "m.bin").write_bytes(b"weights")
    signature = {
        "signature": {
            "columns": [{"name": "x", "dtype": "float"}, {"name": "city", "dtype": "categorical"}]
        }
    }
    (tmp_path / "meta.json").write_text(json.dumps(signature))
    registered = keel_cli(
        "versions",
        "register",
        "churn",
        str(tmp_path / "m.bin"),
        "--metadata",
        str(tmp_path / "meta.json"),
    )
    assert registered.exit_code == 0, registered.output

    pq.write_table(_data(1_000, 1), tmp_path / "train.parquet")
    reference = keel_cli("telemetry", "reference", "churn", "1", str(tmp_path / "train.parquet"))
    assert reference.exit_code == 0, reference.output
    assert "1,000 rows, columns x, city" in reference.output

    predictions = _data(2_500, 2).append_column("prediction", pa.array(np.zeros(2_500)))
    pq.write_table(predictions, tmp_path / "preds.parquet")
    args = (
        "telemetry",
        "import",
        str(tmp_path / "preds.parquet"),
        "--model",
        "churn",
        "--version",
        "1",
        "--batch-rows",
        "1000",
    )
    first = keel_cli(*args)
    assert first.exit_code == 0, first.output
    assert "Imported 2,500 predictions into churn v1" in first.output
    assert keel_cli(*args).exit_code == 0  # the same batches again: answered, not stored

    now = datetime.now(UTC)
    counts = keel_backend.telemetry.hourly_row_counts(
        "churn", 1, now - timedelta(hours=1), now + timedelta(hours=1)
    )
    assert sum(n for _, n in counts) == 2_500
    merged = keel_backend.telemetry.merged_profile(
        "churn", 1, now - timedelta(hours=1), now + timedelta(hours=1)
    )
    assert merged is not None and merged.rows == 2_500


def test_import_names_a_bad_column(keel_cli: Keel, tmp_path: Path) -> None:
    keel_cli("teams", "create", "risk")
    keel_cli("models", "create", "churn", "--team", "risk", "--owner", "ana")
    (tmp_path / "m.bin").write_bytes(b"weights")
    keel_cli("versions", "register", "churn", str(tmp_path / "m.bin"))
    pq.write_table(pa.table({"prediction": [1.0], "mystery": [2]}), tmp_path / "p.parquet")
    result = keel_cli("telemetry", "import", str(tmp_path / "p.parquet"), "-m", "churn", "-v", "1")
    assert result.exit_code == 1
    assert "'mystery' is not in this version's signature" in result.output


def test_a_missing_or_broken_file_is_one_error_line(keel_cli: Keel, tmp_path: Path) -> None:
    missing = keel_cli(
        "telemetry", "import", str(tmp_path / "nowhere.parquet"), "-m", "churn", "-v", "1"
    )
    assert missing.exit_code == 1
    assert "No file at" in missing.output
    assert "Traceback" not in missing.output
    broken = tmp_path / "cut.parquet"
    broken.write_bytes(b"PAR1 this is not a parquet file")
    result = keel_cli("telemetry", "import", str(broken), "-m", "churn", "-v", "1")
    assert result.exit_code == 1
    assert "Cannot read 'cut.parquet' as parquet" in result.output
    assert "Traceback" not in result.output


def test_labels_file_joins_its_predictions_and_a_rerun_stores_nothing_twice(
    keel_cli: Keel, keel_backend: Backend, tmp_path: Path
) -> None:
    assert keel_cli("teams", "create", "risk").exit_code == 0
    assert keel_cli("models", "create", "churn", "--team", "risk", "--owner", "ana").exit_code == 0
    (tmp_path / "m.bin").write_bytes(b"weights")
    signature = {"signature": {"columns": [{"name": "x", "dtype": "float"}]}}
    (tmp_path / "meta.json").write_text(json.dumps(signature))
    registered = keel_cli(
        "versions",
        "register",
        "churn",
        str(tmp_path / "m.bin"),
        "--metadata",
        str(tmp_path / "meta.json"),
    )
    assert registered.exit_code == 0, registered.output
    ids = [f"p{i}" for i in range(300)]
    predictions = pa.table(
        {"prediction_id": ids, "x": np.linspace(0, 1, 300), "prediction": np.ones(300)}
    )
    pq.write_table(predictions, tmp_path / "preds.parquet")
    imported = keel_cli(
        "telemetry", "import", str(tmp_path / "preds.parquet"), "-m", "churn", "-v", "1"
    )
    assert imported.exit_code == 0, imported.output
    # Labels for two thirds of them, as a CSV, in batches of 100.
    labelled = ids[:200]
    (tmp_path / "labels.csv").write_text(
        "prediction_id,label\n" + "".join(f"{i},{n % 2}\n" for n, i in enumerate(labelled))
    )
    args = (
        "telemetry",
        "labels",
        str(tmp_path / "labels.csv"),
        "--model",
        "churn",
        "--batch-rows",
        "100",
    )
    first = keel_cli(*args)
    assert first.exit_code == 0, first.output
    assert "Imported 200 labels into churn" in first.output
    assert keel_cli(*args).exit_code == 0  # the same batches again: stored once

    now = datetime.now(UTC)
    joined = keel_backend.telemetry.labelled_predictions(
        "churn", 1, now - timedelta(hours=1), now + timedelta(hours=1)
    )
    assert joined.num_rows == 200
    assert sorted(joined.column("prediction_id").to_pylist()) == sorted(labelled)

    pq.write_table(pa.table({"label": [1]}), tmp_path / "bad.parquet")
    refused = keel_cli("telemetry", "labels", str(tmp_path / "bad.parquet"), "-m", "churn")
    assert refused.exit_code == 1
    assert "prediction_id" in refused.output
    assert "Traceback" not in refused.output


def test_import_pandas_parquet_and_csv_with_nanosecond_times(
    keel_cli: Keel, keel_backend: Backend, tmp_path: Path
) -> None:
    import pandas as pd

    keel_cli("teams", "create", "risk")
    keel_cli("models", "create", "churn", "--team", "risk", "--owner", "ana")
    (tmp_path / "m.bin").write_bytes(b"weights")
    signature = {"signature": {"columns": [{"name": "seen", "dtype": "datetime"}]}}
    (tmp_path / "meta.json").write_text(json.dumps(signature))
    keel_cli(
        "versions",
        "register",
        "churn",
        str(tmp_path / "m.bin"),
        "--metadata",
        str(tmp_path / "meta.json"),
    )
    now = pd.Timestamp.now(tz="UTC").floor("s")
    frame = pd.DataFrame(
        {
            "ts": [now + pd.Timedelta(nanoseconds=999)] * 4,
            "seen": [now - pd.Timedelta(hours=5, nanoseconds=1)] * 4,
            "prediction": [1.0, 0.0, 1.0, 0.0],
        }
    )
    frame.to_parquet(tmp_path / "preds.parquet")
    frame.to_csv(tmp_path / "preds.csv", index=False)
    for name in ("preds.parquet", "preds.csv"):
        done = keel_cli("telemetry", "import", str(tmp_path / name), "-m", "churn", "-v", "1")
        assert done.exit_code == 0, done.output
        assert "Imported 4 predictions" in done.output
    stored = keel_backend.telemetry.files.read_predictions(
        "churn", 1, now - timedelta(hours=1), now + timedelta(hours=1)
    )
    assert stored.num_rows == 8
    assert set(stored.column("ts").to_pylist()) == {now.to_pydatetime()}  # truncated to the µs
