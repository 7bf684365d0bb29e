"""`keel playbooks apply|list|test`, `keel rollback`, `keel retrain` against the in-process app."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from tests.cli.conftest import Keel

from keel.domain.incidents import Severity
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.services.backend import Backend

ROOT = Principal("root", grants=(Grant(Role.ADMIN),))
PLAYBOOK = """\
name: churn-latency
model: churn
match: {severity: [P4]}
actions: [require_ack, rollback, pause_rollout]
"""


def test_playbook_commands(keel_cli: Keel, keel_backend: Backend, tmp_path: Path) -> None:
    keel_backend.registry.create_team(ROOT, "risk")
    keel_backend.registry.create_model(ROOT, Model(name="churn", team="risk", owner="ana"))
    file = tmp_path / "churn.yaml"
    file.write_text(PLAYBOOK)
    applied = keel_cli("playbooks", "apply", str(file), "--json")
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.output)["version"] == 1
    listed = keel_cli("playbooks", "list")
    assert "churn-latency" in listed.output and "require_ack" in listed.output

    incident, _ = keel_backend.incidents.trigger(
        ROOT, key="k", model="churn", version=None, title="slow", severity=Severity.P3
    )
    tested = keel_cli("playbooks", "test", str(file), "--incident", str(incident.id), "--json")
    assert tested.exit_code == 0, tested.output
    plan = json.loads(tested.output)
    assert (plan["matches"], plan["actions"]) == (False, [])
    assert "severity P3" in plan["reason"]

    refused = keel_cli("rollback", "churn", "--reason", "slow")
    assert refused.exit_code == 1
    assert "no production version" in refused.output

    bad = tmp_path / "bad.yaml"
    bad.write_text(PLAYBOOK.replace("pause_rollout", "reboot"))
    rejected = keel_cli("playbooks", "apply", str(bad))
    assert rejected.exit_code == 1 and "actions[2]" in rejected.output

    keel_backend.registry.register_version(ROOT, "churn", io.BytesIO(b"m"), "m.bin", VersionDraft())
    keel_backend.retraining.set_job(
        ROOT, "churn", command=[sys.executable, "-c", "print('trained')"], timeout_s=60
    )
    ran = keel_cli("retrain", "churn", "--json")
    assert ran.exit_code == 0, ran.output
    run = json.loads(ran.output)
    assert (run["status"], run["trigger"], run["registered_version"]) == (
        "succeeded",
        "manual",
        None,
    )
    assert "trained" in run["output_tail"]
