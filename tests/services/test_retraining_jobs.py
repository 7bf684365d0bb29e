"""Defining a retraining job: who may define which kind, every bad input refused with the field
named and nothing written, and a command job from before admins alone could define one does not
run until an admin defines it again."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from keel.services.backend import Backend
from keel.store.sql.playbooks import RetrainingJob

ROOT = Principal("root", grants=(Grant(Role.ADMIN),))
DANA = Principal("dana", grants=(Grant(Role.CONTRIBUTOR, "risk"),))
OTTO = Principal("otto", grants=(Grant(Role.CONTRIBUTOR, "growth"),))
COMMAND = [sys.executable, "/srv/train.py", "--data", "{data}", "--out", "{output_dir}"]


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    empty_backend.registry.create_team(ROOT, "risk")
    empty_backend.registry.create_model(ROOT, Model(name="credit", team="risk", owner="ana"))
    return empty_backend


def test_only_admins_define_command_jobs_and_team_writers_define_webhooks(
    backend: Backend,
) -> None:
    with pytest.raises(PermissionDenied, match="Only an admin may define a command") as refused:
        backend.retraining.set_job(DANA, "credit", command=COMMAND)
    assert refused.value.details["needs"] == "admin"
    with pytest.raises(NotFound):
        backend.retraining.job("credit")  # the refusal wrote nothing
    with pytest.raises(PermissionDenied):
        backend.retraining.set_job(OTTO, "credit", webhook=True)

    assert backend.retraining.set_job(DANA, "credit", webhook=True).kind == "webhook"
    job = backend.retraining.set_job(ROOT, "credit", command=COMMAND, memory_mb=1024)
    assert (job.kind, job.command, job.memory_mb, job.updated_by) == (
        "command",
        tuple(COMMAND),
        1024,
        "root",
    )
    (audited,) = backend.audit.events(ROOT, action="retraining.job.set")[-1:]
    assert audited.details["command"] == COMMAND


@pytest.mark.parametrize(
    ("arguments", "field", "message"),
    [
        ({}, "command", "exactly one of 'command'"),
        ({"command": COMMAND, "webhook": True}, "command", "exactly one of 'command'"),
        ({"command": []}, "command", "non-empty list"),
        ({"command": ["python", "{data_dir}"]}, "command[1]", "unknown placeholder {data_dir}"),
        ({"command": ["python", "{"]}, "command[1]", "not a valid template"),
        ({"command": COMMAND, "code_paths": ["code"]}, "code_paths[0]", "absolute path"),
        ({"command": COMMAND, "code_paths": ["/no/such/dir"]}, "code_paths[0]", "nothing at"),
        ({"command": COMMAND, "code_paths": ["/"]}, "code_paths[0]", "overlaps Keel's data"),
        ({"webhook": True, "code_paths": ["/usr"]}, "code_paths", "belong to a command job"),
        ({"command": COMMAND, "memory_mb": 10}, "memory_mb", "256-"),
        ({"command": COMMAND, "timeout_s": 0}, "timeout_s", "1-86400"),
        ({"command": COMMAND, "window_days": 0}, "window_days", "1-366"),
        ({"command": COMMAND, "schedule_every_s": 5}, "schedule_every_s", "at least 60"),
    ],
)
def test_bad_job_definitions_name_the_field_and_write_nothing(
    backend: Backend, arguments: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message.replace("{", r"\{")) as refused:
        backend.retraining.set_job(ROOT, "credit", **arguments)
    assert refused.value.details["field"] == field
    with pytest.raises(NotFound):
        backend.retraining.job("credit")


def test_code_inside_the_data_directory_is_refused(backend: Backend) -> None:
    inside = backend.settings.data_dir / "code"
    inside.mkdir(parents=True)
    with pytest.raises(InvalidInput, match="overlaps Keel's data directory"):
        backend.retraining.set_job(ROOT, "credit", command=COMMAND, code_paths=[str(inside)])


def test_a_command_job_from_before_does_not_run_until_an_admin_defines_it(
    backend: Backend,
) -> None:
    # What migration 0012 makes of a command job a contributor had defined.
    backend.retraining.store.put_job(
        RetrainingJob(
            model="credit",
            kind="unreviewed",
            command=("sh", "-c", "env"),
            timeout_s=60,
            window_days=7,
            schedule_every_s=3600,
            updated_by="dana",
            updated_at=datetime.now(UTC),
        )
    )
    with pytest.raises(Conflict, match="An admin must set it again") as refused:
        backend.retraining.trigger(DANA, "credit")
    assert refused.value.details["kind"] == "unreviewed"
    assert backend.retraining.run_due(ROOT) == []  # the schedule skips it too
    assert backend.retraining.runs(DANA, "credit") == []


def test_a_webhook_job_set_by_a_writer_emits_retrain_requested(backend: Backend) -> None:
    backend.registry.register_version(
        ROOT, "credit", io.BytesIO(b"model bytes"), "m.bin", VersionDraft()
    )
    backend.notifications.subscribe(
        ROOT, url="http://127.0.0.1:9/hook", events=["retrain.requested"]
    )
    backend.retraining.set_job(DANA, "credit", webhook=True, window_days=3)
    run = backend.retraining.trigger(DANA, "credit", incident_id=None)
    assert (run.status, run.reason, run.exit_code) == ("sent", "retrain.requested emitted", None)
    (queued,) = backend.notifications.deliveries()
    assert queued.event_type == "retrain.requested"
    payload = queued.payload
    assert (payload["model"], payload["run_id"], payload["rows"]) == ("credit", run.id, 0)
    assert payload["window_start"] == run.window_start.isoformat()
