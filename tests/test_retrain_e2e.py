"""A drift incident's playbook retrains the model: a real training script, defined by an admin,
runs in the sandbox on the window's logged data, Keel registers what it produced as v3 with
lineage to the incident and the data window, and the gates run on v3 at once.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from tests.services.governed_credit import (
    DANA,
    MODEL,
    ROOT,
    credit_data,
    production,
    promote_new_version,
    set_up,
    trained,
)

from keel.config import Settings
from keel.domain.governance import Gate, GateOutcome
from keel.domain.incidents import Severity
from keel.errors import InvalidInput
from keel.services.backend import Backend
from keel.worker.loop import JobRunner, Worker, scheduled_jobs

TRAIN = textwrap.dedent(
    """
    import argparse, json, pathlib
    import joblib, pandas as pd
    from sklearn.linear_model import LogisticRegression

    parser = argparse.ArgumentParser()
    parser.add_argument("--data"); parser.add_argument("--out"); parser.add_argument("--incident")
    args = parser.parse_args()
    window = pd.read_parquet(args.data)
    print(f"training on {len(window)} labelled rows for incident {args.incident}")
    model = LogisticRegression().fit(window[["income", "debt"]], window["label"].astype(int))
    out = pathlib.Path(args.out)
    joblib.dump(model, out / "model.joblib")
    meta = {"params": {"rows": len(window)}, "description": "retrained on the drift window"}
    (out / "metadata.json").write_text(json.dumps(meta))
    """
)

PLAYBOOK = """\
name: credit-retrain
team: risk
match: {severity: [P1], check: drift}
actions:
  - retrain
"""


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    opened = Backend.open(Settings.load(data_dir=tmp_path / "keel", env={}))
    opened.migrate()
    yield opened
    opened.close()


def log_window(backend: Backend, version: int, rows: int) -> None:
    """Production traffic of the last hour, and its labels (ground truth arrived)."""
    frame = credit_data(7, rows)
    model = trained(3)
    now = datetime.now(UTC) - timedelta(minutes=30)
    ids = [f"p{i}" for i in range(rows)]
    scores = model.predict_proba(frame[["income", "debt"]])[:, 1]
    batch = pa.table(
        {
            "prediction_id": ids,
            "ts": pa.array([now] * rows, pa.timestamp("us", tz="UTC")),
            "income": frame["income"],
            "debt": frame["debt"],
            "prediction": (scores > 0.5).astype(int),
            "score": scores,
        }
    )
    backend.telemetry.log_predictions(DANA, MODEL, version, batch)
    labels = pa.table({"prediction_id": ids, "label": frame["repaid"]})
    backend.telemetry.log_labels(DANA, MODEL, labels)


def training_code(tmp_path: Path, name: str, source: str) -> Path:
    """A directory of its own (outside Keel's data directory) holding one script."""
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / name).write_text(source)
    return code


def test_a_drift_incident_retrains_and_the_new_version_goes_through_the_gates(
    backend: Backend, tmp_path: Path
) -> None:
    set_up(backend)
    promote_new_version(backend, seed=1)
    promote_new_version(backend, seed=3)
    log_window(backend, 2, 800)
    code = training_code(tmp_path, "train.py", TRAIN)
    script = code / "train.py"
    backend.retraining.set_job(
        ROOT,
        MODEL,
        code_paths=[str(code)],
        command=[
            sys.executable,
            str(script),
            "--data",
            "{data}",
            "--out",
            "{output_dir}",
            "--incident",
            "{incident}",
        ],
        timeout_s=120,
        window_days=1,
    )
    backend.playbooks.apply(DANA, PLAYBOOK)

    incident, _ = backend.incidents.trigger(
        ROOT,
        key="drift:credit:2",
        model=MODEL,
        version=2,
        title="debt drifted",
        severity=Severity.P1,
        check="drift",
    )

    (run,) = backend.retraining.runs(DANA, MODEL)
    assert (run.status, run.exit_code, run.trigger) == ("succeeded", 0, "playbook"), (
        run.reason,
        run.output_tail,
    )
    assert run.reason == "registered version 3"
    assert run.incident_id == incident.id
    assert f"training on 800 labelled rows for incident {incident.id}" in run.output_tail
    assert run.registered_version == 3
    assert run.window_end - run.window_start == timedelta(days=1)
    assert Path(run.data_dir, "window.parquet").exists()

    v3 = backend.registry.get_version(MODEL, 3)
    assert v3.lineage.parent_version == 2
    assert v3.params["retrain_incident"] == incident.id
    assert v3.params["retrain_run"] == run.id
    assert v3.params["retrain_window_start"] == run.window_start.isoformat()
    assert v3.params["rows"] == 800
    assert v3.created_by == "keel-playbooks"

    # The gates ran on v3 with the production version's holdout, and passed; sign-off waits
    # for people, and production is untouched.
    results = {r.gate: r for r in backend.governance.gate_results(MODEL, 3)}
    assert results[Gate.PERFORMANCE].outcome == GateOutcome.PASSED
    assert results[Gate.SECURITY].outcome == GateOutcome.PASSED
    assert results[Gate.PERFORMANCE].evidence["dataset"]["rows"] == 1200
    status = backend.governance.status(MODEL, 3)
    assert any("signoff" in b for b in status.blockers)
    assert production(backend) == 2

    shown = backend.incidents.get(incident.id)
    (entry,) = [e for e in shown.timeline if e.kind == "action"]
    assert (entry.details["action"], entry.details["outcome"]) == ("retrain", "done")
    assert entry.message == (
        f"playbook credit-retrain: retrain run {run.id} succeeded: registered version 3"
    )
    assert entry.details["registered_version"] == 3
    (started,) = backend.audit.events(ROOT, action="retrain.start")
    (finished,) = backend.audit.events(ROOT, action="retrain.finish")
    assert started.details["incident_id"] == incident.id
    assert finished.details["registered_version"] == 3


def test_a_failing_or_slow_job_is_recorded_not_hidden(backend: Backend, tmp_path: Path) -> None:
    set_up(backend)
    promote_new_version(backend, seed=1)
    log_window(backend, 1, 50)
    code = training_code(tmp_path, "fail.py", "import sys\nprint('no data source')\nsys.exit(3)\n")
    failing = code / "fail.py"
    backend.retraining.set_job(
        ROOT, MODEL, command=[sys.executable, str(failing)], code_paths=[str(code)], timeout_s=60
    )
    run = backend.retraining.trigger(DANA, MODEL)
    assert (run.status, run.exit_code, run.registered_version) == ("failed", 3, None)
    assert run.reason == "the command exited with 3"
    assert "no data source" in run.output_tail

    slow = (
        training_code(
            tmp_path, "slow.py", "import time\nprint('starting', flush=True)\ntime.sleep(30)\n"
        )
        / "slow.py"
    )
    backend.retraining.set_job(
        ROOT, MODEL, command=[sys.executable, str(slow)], code_paths=[str(code)], timeout_s=1
    )
    run = backend.retraining.trigger(DANA, MODEL)
    assert run.status == "timed_out"
    assert run.reason == "killed after 1s (the job's timeout_s)"
    assert "starting" in run.output_tail

    # Exit 0 but no artifact: nothing was registered, so the run did not succeed.
    backend.retraining.set_job(
        ROOT, MODEL, command=[sys.executable, "-c", "print('trained, honestly')"], timeout_s=60
    )
    run = backend.retraining.trigger(DANA, MODEL)
    assert (run.status, run.exit_code, run.registered_version) == ("failed", 0, None)
    assert run.reason == f"the job wrote no artifact to {run.data_dir}/output"
    assert "trained, honestly" in run.output_tail
    assert [r.status for r in backend.retraining.runs(DANA, MODEL)] == [
        "failed",
        "timed_out",
        "failed",
    ]
    assert [v.version for v in backend.registry.list_versions(MODEL).items] == [1]

    with pytest.raises(InvalidInput, match="unknown placeholder"):
        backend.retraining.set_job(ROOT, MODEL, command=["python", "{secret}"])


def test_an_empty_window_fails_before_the_command_starts(backend: Backend, tmp_path: Path) -> None:
    set_up(backend)
    promote_new_version(backend, seed=1)  # production v1, but nothing logged for it
    backend.retraining.set_job(
        ROOT,
        MODEL,
        command=[sys.executable, "-c", "open('started', 'w').write('the command ran')"],
        timeout_s=60,
        window_days=2,
    )
    run = backend.retraining.trigger(DANA, MODEL)
    assert (run.status, run.exit_code, run.output_tail) == ("failed", None, "")
    assert run.reason == (
        f"no labelled predictions of production version 1 between "
        f"{run.window_start.isoformat()} and {run.window_end.isoformat()}: nothing to train "
        "on, so the command did not run"
    )
    assert not Path(run.data_dir, "output", "started").exists()
    assert [v.version for v in backend.registry.list_versions(MODEL).items] == [1]


def test_the_worker_runs_scheduled_retraining_when_it_is_due(
    backend: Backend, tmp_path: Path
) -> None:
    set_up(backend)
    promote_new_version(backend, seed=1)
    log_window(backend, 1, 300)
    code = training_code(tmp_path, "train.py", TRAIN)
    backend.retraining.set_job(
        ROOT,
        MODEL,
        command=[sys.executable, str(code / "train.py"), "--data", "{data}", "--out", "."],
        code_paths=[str(code)],
        timeout_s=120,
        schedule_every_s=3600,
    )
    worker = Worker(jobs=scheduled_jobs(backend))
    assert "retraining" in worker.run_once(0.0)
    # The schedule queues a retraining job (one per period: a second look queues nothing more);
    # the worker's job runner runs it.
    assert "retraining" in worker.run_once(1e9)
    (queued,) = backend.jobs.store.list_jobs(kind="retrain")
    assert queued.created_by == "keel-scheduler"
    assert JobRunner(backend.jobs).run_pending() == 1
    (run,) = backend.retraining.runs(ROOT, MODEL)
    assert (run.trigger, run.status, run.started_by) == ("schedule", "succeeded", "keel-scheduler")
    assert run.registered_version == 2
    soon = datetime.now(UTC) + timedelta(minutes=10)
    assert backend.retraining.run_due(ROOT, now=soon) == []
    later = datetime.now(UTC) + timedelta(hours=2)
    (again,) = backend.retraining.run_due(ROOT, now=later)
    assert again.window_end == later
