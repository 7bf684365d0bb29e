"""`keel drills ...` against the in-process app (with a job runner): a live errors drill on a
staging alias, its acknowledgement and resolution, --live refused on production, the incidents
list keeping drills apart, and a schedule that queues one drill per period."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from tests.cli.conftest import Keel

from keel.domain.monitoring import Check, Monitor
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.services.backend import Backend
from keel.services.drill_jobs import DRILL, queue_scheduled

ROOT = Principal("root", grants=(Grant(Role.ADMIN),))
SIGNATURE = Signature(
    (Column("x", ColumnType.FLOAT), Column("y", ColumnType.INTEGER, ColumnRole.TARGET))
)
PLAYBOOK = """\
name: churn-errors
model: churn
match: {check: operations}
actions:
  - notify: {event: incident.page}
  - rollback
"""


def test_drill_commands(keel_cli: Keel, keel_backend: Backend) -> None:
    b = keel_backend
    b.registry.create_team(ROOT, "risk")
    b.registry.create_model(ROOT, Model(name="churn", team="risk", owner="ana"))
    draft = VersionDraft(signature=SIGNATURE)
    b.registry.register_version(ROOT, "churn", io.BytesIO(b"m"), "m.bin", draft)
    b.registry.set_alias(ROOT, "churn", "staging", 1)
    b.monitoring.create(ROOT, Monitor(model="churn", checks=(Check.OPERATIONS,)))
    b.playbooks.apply(ROOT, PLAYBOOK)

    refused = keel_cli("drills", "run", "--model", "churn", "--scenario", "errors", "--live")
    assert refused.exit_code != 0
    assert "'live' option cannot be used on the production alias" in refused.output
    assert b.drills.store.list() == [] and b.jobs.list_jobs(ROOT) == []

    ran = keel_cli(
        "drills", "run", "--model", "churn", "--scenario", "errors", "--alias", "staging",
        "--live", "--json",
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert "(drill)" in ran.stderr  # the job's progress
    drill = json.loads(ran.stdout)
    assert (drill["status"], drill["version"], drill["live"]) == ("paged", 1, True)
    steps = {s["action"]: (s["outcome"], s["would"]) for s in drill["steps"]}
    # Live on staging: the page went out for real (to nobody: no subscription); the rollback
    # stayed a dry run.
    assert steps["notify (event incident.page)"] == (
        "done",
        "emitted incident.drill.page to 0 subscription(s)",
    )
    assert steps["rollback"][0] == "dry_run"
    assert any("no webhook subscription" in f for f in drill["failures"])

    assert keel_cli("drills", "ack", str(drill["id"])).exit_code == 0
    resolved = keel_cli("drills", "resolve", str(drill["id"]), "-m", "drill over", "--json")
    assert resolved.exit_code == 0, resolved.output
    final = json.loads(resolved.stdout)
    assert final["status"] == "finished"
    assert final["time_to_acknowledge_s"] is not None and final["time_to_resolve_s"] is not None
    assert final["time_to_page_s"] is None  # nobody was paged
    shown = keel_cli("drills", "show", str(drill["id"]))
    assert "no webhook subscription" in shown.output and "dry_run" in shown.output
    assert "errors" in keel_cli("drills", "list").output

    real = json.loads(keel_cli("incidents", "list", "--json").stdout)
    drills_only = json.loads(keel_cli("incidents", "list", "--drill", "--json").stdout)
    assert real == [] and [i["id"] for i in drills_only] == [drill["incident_id"]]

    scheduled = keel_cli(
        "drills", "schedule", "--model", "churn", "--scenario", "errors", "--every-days", "30",
        "--alias", "staging",
    )  # fmt: skip
    assert scheduled.exit_code == 0, scheduled.output
    (schedule,) = json.loads(keel_cli("drills", "schedules").stdout)
    assert (schedule["scenario"], schedule["every_days"]) == ("errors", 30)
    # The worker's schedule queues one drill per schedule and period, however often it looks.
    at = datetime(2026, 6, 1, tzinfo=UTC)
    first, again = queue_scheduled(b.jobs, b.drills, at), queue_scheduled(b.jobs, b.drills, at)
    assert [j.id for j in first] == [j.id for j in again]
    assert len([j for j in b.jobs.list_jobs(ROOT, kind=DRILL) if j.payload.get("scheduled")]) == 1
    assert (
        keel_cli("drills", "unschedule", "--model", "churn", "--scenario", "errors").exit_code == 0
    )
    assert json.loads(keel_cli("drills", "schedules").stdout) == []

    bad = keel_cli(
        "drills", "schedule", "--model", "churn", "--scenario", "errors", "--every-days", "0",
        "--alias", "staging",
    )  # fmt: skip
    assert bad.exit_code != 0 and "every_days" in bad.output
