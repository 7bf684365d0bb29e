"""Maturity from evidence, over real records (SQLite and PostgreSQL).

* "lab" is level 0: registered by hand (no lineage, no environment), promoted by break-glass
  with no gate run, no monitor.
* "credit" is built to be Google level 2: a passing security gate before each promotion, a
  scheduled monitor that judged a window (with its default alert rules), a playbook that rolls
  back and retrains, a scheduled retraining job, and a drift incident whose retraining run
  registered version 2 with lineage to version 1, promoted through the gates, and an errors
  drill a person acknowledged and resolved (incident response rehearsed). The retraining
  run is recorded through the retraining store (as the playbook's run records it) rather than
  run in the sandbox: what maturity reads is the record.
"""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime, timedelta

import joblib
import numpy as np
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression

from keel.domain.incidents import Severity
from keel.domain.maturity import CriterionStatus, evidence_share
from keel.domain.monitoring import Monitor
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import (
    DatasetFingerprint,
    Environment,
    Lineage,
    Model,
    ModelCard,
    VersionDraft,
)
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.errors import InvalidInput, PermissionDenied
from keel.services.backend import Backend

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
APPROVER = Principal("april", grants=(Grant(Role.APPROVER, "risk"),))
SIGNATURE = Signature(
    (Column("income", ColumnType.FLOAT), Column("repaid", ColumnType.INTEGER, ColumnRole.TARGET))
)
POLICY = "tier: minimal\nchecks:\n  security:\n    max_artifact_mb: 10\n"
PLAYBOOK = """\
name: credit-drift
model: credit
match: {check: drift, severity: [P1]}
actions: [rollback, retrain]
"""


def artifact(seed: int) -> io.BytesIO:
    buffer = io.BytesIO()
    x = np.array([[0.0], [1.0], [2.0], [3.0 + seed]])
    joblib.dump(LogisticRegression().fit(x, [0, 0, 1, 1]), buffer)
    buffer.seek(0)
    return buffer


def draft(parent: int | None = None) -> VersionDraft:
    return VersionDraft(
        signature=SIGNATURE,
        lineage=Lineage(
            training_data=DatasetFingerprint("a" * 64, 4, (("income", "float"),)),
            git_commit="abc1234",
            parent_version=parent,
        ),
        environment=Environment("3.11.9", {"scikit-learn": "1.6"}),
        card=ModelCard(intended_use="credit line decisions"),
    )


def predictions(start: datetime, prefix: str, rows: int) -> pa.Table:
    return pa.table(
        {
            "prediction_id": [f"{prefix}{i}" for i in range(rows)],
            "ts": pa.array(
                [start + timedelta(minutes=i) for i in range(rows)], pa.timestamp("us", tz="UTC")
            ),
            "prediction": [i % 2 for i in range(rows)],
            "income": [float(i) for i in range(rows)],
        }
    )


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    b, now = empty_backend, datetime.now(UTC)
    b.registry.create_team(ADMIN, "risk")
    b.registry.create_team(ADMIN, "lab")
    # Level 0.
    b.registry.create_model(ADMIN, Model(name="lab", team="lab", owner="li"))
    b.registry.register_version(ADMIN, "lab", io.BytesIO(b"m"), "m.bin", VersionDraft())
    b.governance.promote(ADMIN, "lab", 1, justification="demo day, no time for gates")
    # Level 2.
    b.registry.create_model(ADMIN, Model(name="credit", team="risk", owner="ana"))
    questions = b.risk.questionnaire().questions
    b.risk.assess(ADMIN, "credit", {q.id: False for q in questions if not q.follow_up})
    b.governance.apply_policy(ADMIN, POLICY)
    b.registry.register_version(ADMIN, "credit", artifact(0), "model.joblib", draft())
    assert b.governance.run_gates(ADMIN, "credit", 1).promotable
    b.governance.promote(ADMIN, "credit", 1)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    b.telemetry.log_predictions(ADMIN, "credit", 1, predictions(hour, "p", 50))
    b.monitoring.create(ADMIN, Monitor(model="credit"), now=hour)
    assert b.monitoring.run(ADMIN, "credit", now=now)
    b.playbooks.apply(ADMIN, PLAYBOOK)
    b.retraining.set_job(
        ADMIN, "credit", command=[sys.executable, "-c", "pass"], schedule_every_s=86400
    )
    incident, _ = b.incidents.trigger(
        ADMIN, key="drift", model="credit", version=1, title="income drifted",
        severity=Severity.P2, check="drift",
    )  # fmt: skip
    run = b.retraining.store.start_retrain(
        model="credit", trigger="playbook", incident_id=incident.id,
        window_start=now - timedelta(days=7), window_end=now, runs_dir="runs", actor="keel",
    )  # fmt: skip
    retrained = b.registry.register_version(
        ADMIN, "credit", artifact(1), "model.joblib", draft(parent=1)
    )
    b.retraining.store.finish_retrain(
        run.id, status="succeeded", exit_code=0, output_tail="",
        registered_version=retrained.version, actor="keel",
    )  # fmt: skip
    assert b.governance.run_gates(ADMIN, "credit", 2).promotable
    b.governance.promote(ADMIN, "credit", 2)
    b.telemetry.log_predictions(ADMIN, "credit", 2, predictions(hour, "q", 5))
    # Incident response rehearsed: an errors drill the default rule detects, then resolved.
    drill = b.drills.run(ADMIN, "credit", "errors")
    assert drill.incident_id is not None, drill.failures
    b.drills.acknowledge(ADMIN, drill.id)
    b.drills.resolve(ADMIN, drill.id)
    return b


def test_a_hand_run_model_scores_level_0_and_says_what_is_missing(backend: Backend) -> None:
    score = backend.maturity.score_model("lab")
    assert (score.google.level, score.microsoft.level) == (0, 0)
    by_id = {r.criterion.id: r for r in score.results}
    assert by_id["versions_registered"].status == CriterionStatus.MET
    assert by_id["versions_registered"].evidence[0].id == "lab/1"
    validation = by_id["automated_validation"]
    assert validation.status == CriterionStatus.MISSING and "break-glass" in validation.missing
    assert "no scheduled monitor" in by_id["monitoring"].missing
    assert "training data fingerprint" in by_id["lineage_recorded"].missing
    assert score.google.next_needs == (
        "lineage_recorded",
        "environment_pinned",
        "automated_validation",
        "production_telemetry",
        "monitoring",
        "retraining_automated",
    )
    assert all(r.criterion.next_step for r in score.results)


def test_the_automated_model_scores_level_2_with_evidence(backend: Backend) -> None:
    before = backend.maturity.score_model("credit")
    # Everything Keel can observe holds; CI cannot be observed, so Google stops at level 1.
    assert all(
        r.status == CriterionStatus.MET for r in before.results if not r.criterion.attestable
    )
    assert (before.google.level, before.google.next_needs) == (1, ("ci_tests",))
    backend.maturity.attest(
        ADMIN, "ci_tests", "pytest runs on every push: ci.example/credit", model="credit"
    )
    score = backend.maturity.score_model("credit")
    assert (score.google.level, score.microsoft.level) == (2, 3)
    assert score.microsoft.next_needs == ("training_serving_consistency",)
    by_id = {r.criterion.id: r for r in score.results}
    retrain = by_id["retraining_from_monitoring"].evidence
    assert [e.kind for e in retrain] == ["incident", "retrain run", "version"]
    assert retrain[2].id == "credit/2" and "parent version 1" in retrain[2].note
    assert [e.kind for e in by_id["automated_validation"].evidence] == ["gate result"]
    assert [e.note for e in by_id["continuous_delivery"].evidence] == ["version 1", "version 2"]
    assert by_id["ci_tests"].status == CriterionStatus.ATTESTED
    assert by_id["ci_tests"].evidence[0].note.startswith("pytest runs")
    # A team attestation counts for every model of the team.
    backend.maturity.attest(ADMIN, "training_serving_consistency", "one feature lib", team="risk")
    assert backend.maturity.score_model("credit").microsoft.level == 4
    team = backend.maturity.score_team("risk")
    assert (team.models, team.google.level, team.microsoft.level) == (("credit",), 2, 4)
    assert len(backend.audit.events(ADMIN, action="maturity.attest")) == 2
    assert evidence_share() >= 0.8


def test_a_team_scores_as_its_least_mature_model(backend: Backend) -> None:
    backend.registry.create_model(ADMIN, Model(name="scratch", team="risk", owner="ana"))
    team = backend.maturity.score_team("risk")
    assert (team.google.level, team.microsoft.level) == (0, 0)
    registered = next(r for r in team.results if r.criterion.id == "versions_registered")
    assert registered.missing == "not yet for scratch"


BAD_ATTESTATIONS = [
    (APPROVER, "ci_tests", "yes", {"model": "credit"}, PermissionDenied, None),
    (ADMIN, "monitoring", "trust me", {"model": "credit"}, InvalidInput, "criterion"),
    (ADMIN, "nonsense", "x", {"model": "credit"}, InvalidInput, "criterion"),
    (ADMIN, "ci_tests", "  ", {"model": "credit"}, InvalidInput, "comment"),
    (ADMIN, "ci_tests", "yes", {"model": "credit", "team": "risk"}, InvalidInput, "model"),
    (ADMIN, "ci_tests", "yes", {}, InvalidInput, "model"),
]


def test_bad_attestations_are_refused_and_write_nothing(backend: Backend) -> None:
    for by, criterion, comment, where, error, field in BAD_ATTESTATIONS:
        with pytest.raises(error) as refused:
            backend.maturity.attest(
                by, criterion, comment, model=where.get("model"), team=where.get("team")
            )
        if field is not None:
            assert refused.value.details["field"] == field
    assert backend.audit.events(ADMIN, action="maturity.attest") == []
