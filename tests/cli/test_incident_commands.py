"""`keel alerts list|create|apply|delete` and `keel incidents list|show|ack|resolve|comment|
postmortem` as a person or a script runs them."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import Result

from keel.cli.incidents import stats_table
from keel.domain.incidents import Severity
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model
from keel.schemas.incidents import IncidentStatsOut
from keel.services.backend import Backend

Keel = Callable[..., Result]
ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def churn(keel_cli: Keel, keel_backend: Backend) -> str:
    ok(keel_cli("teams", "create", "risk"))
    keel_backend.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    return "churn"


def test_alert_rules_from_yaml_flags_and_errors_naming_the_field(
    keel_cli: Keel, churn: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "model: churn\n"
        "rules:\n"
        "  - name: income-psi\n"
        "    check: drift\n"
        "    column: income\n"
        "    metric: psi\n"
        "    comparison: '>'\n"
        "    threshold: 0.2\n"
        "    severity: P2\n"
        "    labels: {page: risk-oncall}\n",
        encoding="utf-8",
    )
    applied = json.loads(ok(keel_cli("alerts", "apply", str(rules), "--json")).stdout)
    assert [(r["name"], r["threshold"], r["windows"]) for r in applied] == [("income-psi", 0.2, 2)]
    again = json.loads(ok(keel_cli("alerts", "apply", str(rules), "--json")).stdout)
    assert again[0]["id"] == applied[0]["id"]  # applied by name: updated, not duplicated

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "model: churn\nrules:\n  - name: x\n    check: drift\n    comparison: '>'\n"
        "    treshold: 0.2\n",
        encoding="utf-8",
    )
    refused = keel_cli("alerts", "apply", str(bad))
    assert refused.exit_code == 1
    assert "rules[0].treshold" in refused.output

    ok(keel_cli("alerts", "create", "churn", "--name", "rows", "--check", "quality"))
    listed = json.loads(ok(keel_cli("alerts", "list", "churn", "--json")).stdout)
    assert [r["name"] for r in listed] == ["income-psi", "rows"]
    ok(keel_cli("alerts", "delete", str(listed[1]["id"])))
    assert "rows" not in ok(keel_cli("alerts", "list", "churn")).stdout


def test_incident_lifecycle_from_the_terminal(
    keel_cli: Keel, keel_backend: Backend, churn: str, tmp_path: Path
) -> None:
    incident, _ = keel_backend.incidents.trigger(
        ADMIN, key="r:churn:1", model="churn", version=1, title="AUC fell", severity=Severity.P2
    )
    listed = json.loads(ok(keel_cli("incidents", "list", "--status", "open", "--json")).stdout)
    assert [(i["id"], i["status"], i["assignee"]) for i in listed] == [
        (incident.id, "triggered", "ana")
    ]
    assert "AUC fell" in ok(keel_cli("incidents", "list", "--model", "churn")).stdout
    ok(keel_cli("incidents", "ack", str(incident.id), "-m", "looking"))
    ok(keel_cli("incidents", "comment", str(incident.id), "rolled back by hand"))
    resolved = json.loads(ok(keel_cli("incidents", "resolve", str(incident.id), "--json")).stdout)
    assert resolved["status"] == "resolved"
    refused = keel_cli("incidents", "ack", str(incident.id))
    assert refused.exit_code == 1 and "cannot become acknowledged" in refused.output

    postmortem = tmp_path / "pm.md"
    postmortem.write_text("# Post-mortem\n\nA feed sent incomes in cents.\n", encoding="utf-8")
    ok(keel_cli("incidents", "postmortem", str(incident.id), str(postmortem)))
    shown = ok(keel_cli("incidents", "show", str(incident.id))).stdout
    assert "incomes in cents" in shown and "rolled back by hand" in shown
    data = json.loads(ok(keel_cli("incidents", "show", str(incident.id), "--json")).stdout)
    assert [e["kind"] for e in data["timeline"]] == [
        "alert",
        "status",
        "status",
        "comment",
        "status",
        "postmortem",
    ]


def test_incident_stats_for_a_model_a_team_and_everything(
    keel_cli: Keel, keel_backend: Backend, churn: str
) -> None:
    empty = json.loads(ok(keel_cli("incidents", "stats", "--model", "churn", "--json")).stdout)
    assert (empty["incidents"], empty["mtta_seconds"], empty["mttr_seconds"]) == (0, None, None)

    first, _ = keel_backend.incidents.trigger(
        ADMIN, key="r:churn:1", model="churn", version=1, title="AUC fell", severity=Severity.P2
    )
    keel_backend.incidents.trigger(
        ADMIN, key="r:churn:2", model="churn", version=1, title="Drift", severity=Severity.P3
    )
    keel_backend.incidents.acknowledge(ADMIN, first.id)
    keel_backend.incidents.resolve(ADMIN, first.id)

    stats = json.loads(ok(keel_cli("incidents", "stats", "--team", "risk", "--json")).stdout)
    assert (stats["team"], stats["model"]) == ("risk", None)
    assert (stats["incidents"], stats["open"], stats["acknowledged"], stats["resolved"]) == (
        2,
        1,
        1,
        1,
    )
    assert stats["mtta_seconds"] is not None and stats["mttr_seconds"] is not None
    everything = json.loads(ok(keel_cli("incidents", "stats")).stdout)  # a pipe gets JSON
    assert everything["incidents"] == 2

    seen = Console(file=io.StringIO(), width=100)
    seen.print(stats_table(IncidentStatsOut.model_validate(stats)))
    table = seen.file.getvalue()  # type: ignore[attr-defined]
    assert "team risk" in table and "MTTR (mean time to resolve)" in table
    assert "0s" in table  # seconds in the table, as a person reads them

    unknown = keel_cli("incidents", "stats", "--model", "nope")
    assert unknown.exit_code == 1 and "nope" in unknown.output
