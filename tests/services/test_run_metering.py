"""Evaluation and retraining runs are metered at the vCPU-hour price, per model version: a gate run
(a queued job, run by a real worker) evaluates the version in the sandbox and its duration
becomes an ``evaluation`` cost row of that version; a retraining run is charged to the version it
registered. Both show in the month's cost and in the FOCUS export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.services.governed_credit import MODEL, ROOT, register, set_up

from keel.services.backend import Backend
from keel.services.costs.export import focus_csv
from keel.services.job_kinds import queue_gate_run
from keel.worker.loop import JobRunner


def test_gate_run_and_retraining_durations_are_priced_per_version(
    empty_backend: Backend,
) -> None:
    backend = empty_backend
    set_up(backend)
    version = register(backend, seed=1)
    backend.costs.configure(ROOT, {"vcpu_hour": "3600"})  # one unit per vCPU-second
    job = queue_gate_run(backend.jobs, backend.governance, ROOT, MODEL, version)
    assert JobRunner(backend.jobs).run_pending() == 1
    assert backend.jobs.store.get(job.id).state == "succeeded"

    now = datetime.now(UTC)
    today = now.date()
    start, end = today - timedelta(days=1), today + timedelta(days=2)
    usage = backend.costs.compute_usage
    assert usage is not None
    evaluated = usage.usage(now - timedelta(days=2), now + timedelta(days=2), kind="evaluation")
    assert {(u.model, u.version) for u in evaluated} == {(MODEL, version)}
    seconds = sum(u.seconds for u in evaluated)
    assert seconds > 0 and sum(u.events for u in evaluated) >= 1

    # A retraining run that registered a version is charged to that version.
    playbooks = backend.retraining.store
    run = playbooks.start_retrain(
        model=MODEL,
        trigger="manual",
        incident_id=None,
        window_start=now - timedelta(days=1),
        window_end=now,
        runs_dir="/nowhere",
        actor="root",
    )
    playbooks.finish_retrain(
        run.id,
        status="succeeded",
        exit_code=0,
        output_tail="",
        registered_version=version,
        actor="root",
        reason="registered version 1",
    )

    rows = backend.costs.metered(start, end)
    by_kind = {(r.kind, r.model, r.version) for r in rows}
    assert ("evaluation", MODEL, version) in by_kind
    assert ("retraining", MODEL, version) in by_kind
    [evaluation] = [r for r in rows if r.kind == "evaluation"]
    assert evaluation.unit == "vCPU-hours"
    assert abs(Decimal(evaluation.micros) / 1_000_000 - Decimal(repr(seconds))) < Decimal(
        "0.000002"
    )
    month = today.strftime("%Y-%m")
    assert backend.costs.month_cost(month, model=MODEL) >= Decimal(evaluation.micros) / 10**6

    exported = focus_csv(rows, month, "USD", "keel-model", "keel-team").decode()
    services = {
        (r["ServiceName"], r["x_KeelVersion"]) for r in csv.DictReader(io.StringIO(exported))
    }
    assert ("Keel evaluation", str(version)) in services
    assert ("Keel retraining", str(version)) in services
