"""kill -9 in the middle of an ingest loop loses no acknowledged row and leaves no partition file
that DuckDB cannot read."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from keel.config import Settings
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnType, Signature
from keel.services.backend import Backend

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
ACKS_BEFORE_KILL = 15
ROWS_PER_BATCH = 2_000

# The child ingests through the real service until it is killed, printing each batch id only
# after log_predictions returned (the acknowledgement a client would get).
CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import pyarrow as pa
    from keel.config import Settings
    from keel.domain.permissions import Grant, Principal, Role
    from keel.services.backend import Backend

    backend = Backend.open(Settings.load(data_dir=sys.argv[1], env={}))
    admin = Principal("root", grants=(Grant(Role.ADMIN),))
    rng = np.random.default_rng(1)
    i = 0
    while True:
        n = %(rows)d
        batch = pa.table({
            "prediction_id": [f"b{i}-{j}" for j in range(n)],
            "x": rng.normal(size=n),
            "city": rng.choice(["oslo", "rome", "lima"], n),
            "prediction": rng.integers(0, 2, n),
        })
        batch_id = f"batch-{i:06d}"
        receipt = backend.telemetry.log_predictions(admin, "churn", 1, batch, batch_id=batch_id)
        print(receipt.batch_id, flush=True)
        i += 1
    """
) % {"rows": ROWS_PER_BATCH}


def _prepare(data_dir: Path) -> None:
    backend = Backend.open(Settings.load(data_dir=data_dir, env={}))
    backend.migrate()
    backend.registry.create_team(ADMIN, "risk")
    backend.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    signature = Signature((Column("x", ColumnType.FLOAT), Column("city", ColumnType.CATEGORICAL)))
    backend.registry.register_version(
        ADMIN, "churn", io.BytesIO(b"weights"), "m.bin", VersionDraft(signature=signature)
    )
    rng = np.random.default_rng(0)
    reference = pa.table(
        {"x": rng.normal(size=1_000), "city": rng.choice(["oslo", "rome", "lima"], 1_000)}
    )
    backend.telemetry.set_reference(ADMIN, "churn", 1, reference)
    backend.close()


def test_kill9_mid_ingest_loses_no_acknowledged_row(tmp_path: Path) -> None:
    data_dir = tmp_path / "keel"
    _prepare(data_dir)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acked: list[str] = []
    for line in child.stdout:
        acked.append(line.strip())
        if len(acked) == ACKS_BEFORE_KILL:
            os.kill(child.pid, signal.SIGKILL)  # mid-loop: the next batch is being written
            break
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    assert len(acked) == ACKS_BEFORE_KILL

    root = data_dir / "telemetry" / "predictions"
    files = sorted(str(p) for p in root.rglob("part-*.parquet"))
    with duckdb.connect() as con:
        for path in files:  # every file under a final name is complete and readable
            con.sql("SELECT count(*) FROM read_parquet($f)", params={"f": path}).fetchall()
        stored = {
            row[0]
            for row in con.sql(
                "SELECT prediction_id FROM read_parquet($files, hive_partitioning=true)",
                params={"files": files},
            ).fetchall()
        }
    for batch_id in acked:
        i = int(batch_id.removeprefix("batch-"))
        missing = [f"b{i}-{j}" for j in range(ROWS_PER_BATCH) if f"b{i}-{j}" not in stored]
        assert not missing, f"{batch_id} was acknowledged but {len(missing)} rows are gone"

    # The profiles hold every committed batch; a batch whose file landed without its commit is
    # at most one extra file, which a retry with the same batch id overwrites.
    backend = Backend.open(Settings.load(data_dir=data_dir, env={}))
    now = datetime.now(UTC)
    counted = sum(
        n for _, n in backend.telemetry.hourly_row_counts("churn", 1, now - timedelta(days=1), now)
    )
    assert ACKS_BEFORE_KILL * ROWS_PER_BATCH <= counted <= len(stored)
    assert len(stored) - counted in (0, ROWS_PER_BATCH)
    backend.close()
