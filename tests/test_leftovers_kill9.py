"""A Keel killed with SIGKILL cannot clean up; the next `keel up` removes the temporary files it
left (Keel's own temporary names only, last written before the restart) and nothing else."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.running_keel import keel_up

AN_HOUR_AGO = time.time() - 3600


def plant(path: Path, size: int = 1024) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))
    return path


def dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_a_restart_removes_a_killed_keels_temporary_files_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_file = tmp_path / "model.bin"
    model_file.write_bytes(b"weights " * 1000)
    tag = uuid.uuid4().hex[:8]
    # Both `keel up`s get a temporary directory of their own (TMPDIR): the machine's /tmp is
    # shared with every other Keel running now (other tests, other CI runs), whose start-up
    # cleans it too and would make this test's count a race.
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(system_tmp))
    with keel_up(tmp_path) as first:
        first.ok("teams", "create", "risk")
        first.ok("models", "create", "churn", "--team", "risk", "--owner", "ana")
        first.ok("versions", "register", "churn", str(model_file))
        artifacts = first.data_dir / "artifacts"
        stored = sorted(p for p in (artifacts / "sha256").rglob("*") if p.is_file())
        partition = first.data_dir / "telemetry" / "predictions" / "model=churn" / "version=1"
        day = partition / "date=2026-11-01"
        # What a kill -9 mid-upload, mid-ingest and mid-evaluation leaves behind.
        leftovers = [
            plant(artifacts / "incoming" / "tmpk1ll3d.part", 40 * 1024 * 1024),
            plant(artifacts / "incoming" / f"ready-{tag}"),
            plant(day / f".part-{tag}.tmp"),
        ]
        workdir = system_tmp / f"keel-eval-{dead_pid()}-{tag}"
        plant(workdir / "model.bin")
        os.utime(workdir, (AN_HOUR_AGO, AN_HOUR_AGO))
        # What must survive: data, a file that is not Keel's temporary name, the work
        # directory of a live process (this test's own pid stands in for another Keel).
        real_part = day / "part-batch0001.parquet"
        real_part.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"x": [1.0]}), real_part)
        os.utime(real_part, (AN_HOUR_AGO, AN_HOUR_AGO))
        kept = [
            plant(artifacts / "incoming" / "notes.txt"),
            plant(first.data_dir / "export.part"),
            real_part,
        ]
        live = system_tmp / f"keel-eval-{os.getpid()}-{tag}"
        plant(live / "model.bin")
        os.utime(live, (AN_HOUR_AGO, AN_HOUR_AGO))
        assert first.process is not None
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=30)

    try:
        with keel_up(tmp_path) as second:
            for path in [*leftovers, workdir]:
                assert not path.exists(), f"{path} was left behind"
            for path in [*kept, *stored, live]:
                assert path.exists(), f"{path} was removed"
            assert any("Removed 4 temporary files" in line for line in second.log), second.log
            assert "churn" in second.ok("versions", "list", "churn", "--json")
    finally:
        for path in (workdir, live):
            shutil.rmtree(path, ignore_errors=True)
