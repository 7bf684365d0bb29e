"""`keel playbooks apply|list|test`, `keel rollback`, `keel retrain` against the in-process app."""

from __future__ import annotations

import io
import json
import shlex
import sys
from pathlib import Path

from tests.cli.conftest import Keel

from keel.domain.incidents import Severity
from keel.domain.permissions import Grant, Principal, PrincipalKind, Role
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
    keel_backend.identity.store.create_principal("cara", PrincipalKind.USER, "root")
    keel_backend.identity.store.grant("cara", Role.CONTRIBUTOR, "risk", "root")
    cara, _ = keel_backend.identity.create_token(ROOT, principal="cara", name="cli")
    command = f"{shlex.quote(sys.executable)} -c 'print(1)' --data {{data}} --out {{output_dir}}"
    refused = keel_cli("--token", cara, "retraining", "set", "churn", "--command", command)
    assert refused.exit_code == 1
    assert "Only an admin may define a command retraining job" in refused.output
    webhook = keel_cli("--token", cara, "retraining", "set", "churn", "--webhook", "--json")
    assert webhook.exit_code == 0, webhook.output
    assert json.loads(webhook.output)["kind"] == "webhook"

    set_by_admin = keel_cli(
        "retraining", "set", "churn", "--command", command, "--timeout", "60", "--json"
    )
    assert set_by_admin.exit_code == 0, set_by_admin.output
    job = json.loads(set_by_admin.output)
    assert job["command"] == [
        sys.executable,
        "-c",
        "print(1)",
        "--data",
        "{data}",
        "--out",
        "{output_dir}",
    ]
    assert (job["kind"], job["timeout_s"], job["updated_by"]) == ("command", 60, "admin")
    shown = keel_cli("retraining", "show", "churn")
    assert shown.exit_code == 0 and "{output_dir}" in shown.output

    # Nothing was logged for version 1: the run fails before the command, and says why.
    ran = keel_cli("retrain", "churn", "--json")
    assert ran.exit_code == 1, ran.output
    run = json.loads(ran.stdout)  # job progress goes to stderr
    assert (run["status"], run["trigger"], run["registered_version"]) == ("failed", "manual", None)
    assert run["reason"].startswith("no labelled predictions of newest version 1 between")
    listed = keel_cli("retraining", "runs", "churn", "--json")
    assert [r["id"] for r in json.loads(listed.output)] == [run["id"]]
