"""`keel jobs list|show|wait|cancel`, and `--no-wait` on the commands that queue a job."""

from __future__ import annotations

import json

from tests.cli.conftest import Keel

from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model
from keel.services.backend import Backend

ROOT = Principal("root", grants=(Grant(Role.ADMIN),))


def test_following_a_queued_retraining_run(keel_cli: Keel, keel_backend: Backend) -> None:
    keel_backend.registry.create_team(ROOT, "risk")
    keel_backend.registry.create_model(ROOT, Model(name="churn", team="risk", owner="ana"))
    assert keel_cli("retraining", "set", "churn", "--webhook").exit_code == 0

    queued = keel_cli("retrain", "churn", "--no-wait", "--json")
    assert queued.exit_code == 0, queued.output
    job = json.loads(queued.output)
    assert (job["kind"], job["payload"]["model"]) == ("retrain", "churn")

    waited = keel_cli("jobs", "wait", str(job["id"]), "--json")
    assert waited.exit_code == 0, waited.output
    done = json.loads(waited.output[waited.output.index("{") :])
    assert (done["state"], done["attempts"]) == ("succeeded", 1)
    shown = json.loads(keel_cli("jobs", "show", str(job["id"]), "--json").output)
    assert shown["result"]["retrain_run"] == done["result"]["retrain_run"]
    listed = json.loads(keel_cli("jobs", "list", "--kind", "retrain", "--json").output)
    assert [j["id"] for j in listed] == [job["id"]]
    assert json.loads(keel_cli("jobs", "list", "--state", "queued", "--json").output) == []

    refused = keel_cli("jobs", "cancel", str(job["id"]))
    assert refused.exit_code == 1
    assert "already succeeded" in refused.output
    missing = keel_cli("jobs", "show", "999999")
    assert missing.exit_code == 1
    assert "No job 999999" in missing.output
    bad = keel_cli("jobs", "list", "--state", "stuck")
    assert bad.exit_code == 1
    assert "'state' must be one of" in bad.output
