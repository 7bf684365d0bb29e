"""Deployments at service level: what serves after each move, canary analysis from telemetry on
an injected clock, governance, and the audit story. SQLite and PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests import pg_cluster
from tests.services.deployed_credit import (
    DANA,
    SECURITY_ONLY,
    T0,
    Clock,
    log_rows,
    register,
    set_up,
)
from tests.services.governed_credit import MODEL, ROOT, holdout_bytes

from keel.config import Settings
from keel.domain.deployments import DeploymentState
from keel.domain.incidents import Severity
from keel.domain.traffic import ArmName, ServingPlan
from keel.errors import Conflict, InvalidInput
from keel.services.backend import Backend

TWO_STEPS: dict[str, Any] = {
    "steps": [
        {
            "weight": 10,
            "minDuration": "60s",
            "checks": [{"metric": "error_rate", "absolute": 0.05}],
        },
        {
            "weight": 50,
            "minDuration": "60s",
            "checks": [
                {"metric": "error_rate", "relative": 0.5},
                {"metric": "prediction_drift", "absolute": 0.3},
            ],
        },
    ],
    "analysis": {"interval": "10s", "minSamples": 20},
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        opened = Backend.open(Settings.load(data_dir=tmp_path, env={}))
        opened.migrate()
        yield opened
        opened.close()
        return
    server = request.getfixturevalue("postgres_url")
    with pg_cluster.fresh_database(server) as url:
        opened = Backend.open(Settings.load(data_dir=tmp_path, database_url=url, env={}))
        opened.migrate()
        yield opened
        opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def live(backend: Backend, clock: Clock) -> Backend:
    """v1 in production through a direct deployment; v2 registered with its gates passed."""
    set_up(backend, clock)
    register(backend, seed=1)
    backend.deployments.deploy(DANA, MODEL, 1, "direct")
    register(backend, seed=3)
    return backend


def plan(backend: Backend) -> ServingPlan:
    found = backend.deployments.serving_plan(MODEL)
    assert found is not None
    return found


def arms(found: ServingPlan) -> list[tuple[str, int, float]]:
    return [(str(a.name), a.version, round(a.weight, 6)) for a in found.live]


def production(backend: Backend) -> int | None:
    return backend.governance.production_version(MODEL)


def test_a_model_without_a_deployment_has_no_serving_plan(backend: Backend, clock: Clock) -> None:
    set_up(backend, clock)
    register(backend, seed=1)
    assert backend.deployments.serving_plan(MODEL) is None


def test_a_direct_deployment_is_the_promotion(live: Backend) -> None:
    assert production(live) == 1
    assert arms(plan(live)) == [("stable", 1, 1.0)]
    (promotion,) = live.governance.promotions(MODEL)
    assert promotion.version == 1
    assert live.deployments.latest(MODEL).state == DeploymentState.PROMOTED


def test_a_good_canary_advances_by_itself_and_its_end_is_the_promotion(
    live: Backend, clock: Clock
) -> None:
    started = live.deployments.deploy(DANA, MODEL, 2, "canary", TWO_STEPS)
    first = plan(live)
    assert arms(first) == [("stable", 1, 0.9), ("canary", 2, 0.1)]
    log_rows(live, 1, T0, 450, seed=11)
    log_rows(live, 2, T0, 50, seed=12)
    clock.advance(30)
    assert live.deployments.run_due() == []  # measured, the step lasts 60s
    assert plan(live).revision == first.revision  # a measurement changes nothing that serves
    clock.advance(31)
    assert live.deployments.run_due() == [f"{MODEL}: canary advanced to 50%"]
    second = plan(live)
    assert arms(second) == [("stable", 1, 0.5), ("canary", 2, 0.5)]
    assert second.revision > first.revision
    log_rows(live, 1, clock.now, 250, seed=13)
    log_rows(live, 2, clock.now, 250, seed=14)
    clock.advance(61)
    assert live.deployments.run_due() == [f"{MODEL}: canary promoted"]
    assert production(live) == 2
    assert arms(plan(live)) == [("stable", 2, 1.0)]
    assert plan(live).revision > second.revision
    assert [p.version for p in live.governance.promotions(MODEL)] == [1, 2]
    history = [a.version for a in live.registry.alias_history(MODEL, "production")]
    assert history[-2:] == [1, 2] or history[:2] == [2, 1]
    kinds = [e.kind for e in live.deployments.events(started.id)]
    assert kinds == ["started", "measured", "advanced", "promoted"]
    audit = live.audit.events(ROOT, subject_type="model", subject_id=MODEL, limit=1000)
    actions = [e.action for e in audit]
    assert {"deployment.start", "deployment.advanced", "deployment.promoted"} <= set(actions)


def test_a_canary_with_errors_aborts_at_its_first_step_and_opens_one_incident(
    live: Backend, clock: Clock
) -> None:
    live.notifications.subscribe(
        ROOT, url="https://hooks.example.com/keel", events=["deployment.*", "incident.*"]
    )
    live.deployments.deploy(DANA, MODEL, 2, "canary", TWO_STEPS)
    log_rows(live, 1, T0, 450, seed=21, seconds=15)
    log_rows(live, 2, T0, 50, seed=22, seconds=15, error_share=0.2)
    clock.advance(20)  # inside the first step: a failure does not wait for the step's end
    assert live.deployments.run_due() == [f"{MODEL}: canary aborted at step 1"]
    found = live.deployments.latest(MODEL)
    assert found.state == DeploymentState.ABORTED
    assert "error_rate" in found.reason
    assert arms(plan(live)) == [("stable", 1, 1.0)]
    assert production(live) == 1
    incidents = live.incidents.list(model=MODEL)
    assert [i.id for i in incidents] == [found.incident_id]
    assert incidents[0].version == 2
    queued = [d.event_type for d in reversed(live.notifications.deliveries())]
    assert queued == ["deployment.started", "incident.triggered", "deployment.aborted"]
    audit = live.audit.events(ROOT, subject_type="model", subject_id=MODEL, limit=1000)
    story = [e.action for e in audit if e.action.startswith("deployment.")]
    assert story[-2:] == ["deployment.start", "deployment.aborted"]
    aborted = next(e for e in reversed(audit) if e.action == "deployment.aborted")
    assert aborted.actor == "keel-deployments"
    assert aborted.details["verdict"] == "failed"
    assert aborted.details["checks"][0]["metric"] == "error_rate"
    clock.advance(20)
    assert live.deployments.run_due() == []  # an aborted deployment is never analysed again


def test_an_inconclusive_step_pauses_for_a_person(live: Backend, clock: Clock) -> None:
    live.deployments.deploy(DANA, MODEL, 2, "canary", TWO_STEPS)
    log_rows(live, 1, T0, 100, seed=31)
    log_rows(live, 2, T0, 5, seed=32)  # fewer than minSamples on the canary
    clock.advance(61)
    assert live.deployments.run_due() == [f"{MODEL}: canary paused, inconclusive"]
    assert live.deployments.latest(MODEL).state == DeploymentState.PAUSED
    assert plan(live).paused
    live.deployments.resume(DANA, MODEL)
    assert live.deployments.latest(MODEL).state == DeploymentState.PROGRESSING


def test_pause_resume_abort_and_promote_by_hand(live: Backend, clock: Clock) -> None:
    live.deployments.deploy(DANA, MODEL, 2, "canary", TWO_STEPS)
    before = plan(live).revision
    live.deployments.pause(DANA, MODEL, "waiting for the marketing push to end")
    assert plan(live).paused and plan(live).revision > before
    clock.advance(120)
    assert live.deployments.run_due() == []  # paused: the analysis does not move it
    with pytest.raises(Conflict, match="cannot pause"):
        live.deployments.pause(DANA, MODEL)
    live.deployments.resume(DANA, MODEL)
    live.deployments.promote(DANA, MODEL)
    assert production(live) == 2
    with pytest.raises(Conflict, match="no deployment in progress"):
        live.deployments.abort(DANA, MODEL)


def test_live_traffic_needs_the_gates_and_nothing_is_written_when_refused(
    live: Backend,
) -> None:
    version = register(live, seed=5, gates=False)
    before = live.deployments.list(MODEL)
    for strategy in ("canary", "blue-green", "direct"):
        with pytest.raises(Conflict, match="cannot be promoted") as refused:
            live.deployments.deploy(DANA, MODEL, version, strategy)
        assert refused.value.details["blockers"]
    with pytest.raises(Conflict, match="security gate"):
        live.deployments.deploy(DANA, MODEL, version, "shadow")
    assert live.deployments.list(MODEL) == before
    # break-glass: an admin, with a written justification, flagged on the promotion
    live.deployments.deploy(ROOT, MODEL, version, "direct", justification="regulator deadline")
    assert live.governance.promotions(MODEL)[-1].break_glass


def test_a_shadow_mirrors_to_a_version_whose_security_gate_passed(live: Backend) -> None:
    live.deployments.deploy(DANA, MODEL, 2, "shadow", {"mirrorPercent": 25})
    found = plan(live)
    assert arms(found) == [("stable", 1, 1.0)]
    assert found.shadow is not None
    assert (found.shadow.name, found.shadow.version, found.shadow.weight) == (
        ArmName.SHADOW,
        2,
        0.25,
    )
    with pytest.raises(Conflict, match="cannot be promoted"):
        live.deployments.promote(DANA, MODEL)
    live.deployments.abort(DANA, MODEL, "seen enough")
    assert plan(live).shadow is None


def test_a_second_deployment_waits_for_the_first(live: Backend) -> None:
    live.deployments.deploy(DANA, MODEL, 2, "canary")
    with pytest.raises(Conflict, match="in progress"):
        live.deployments.deploy(DANA, MODEL, 2, "blue-green")


def test_a_bad_plan_is_refused_naming_the_field(live: Backend) -> None:
    with pytest.raises(InvalidInput) as bad:
        live.deployments.deploy(DANA, MODEL, 2, "canary", {"steps": [{"weight": 150}]})
    assert bad.value.details == {"field": "steps[0].weight"}
    with pytest.raises(InvalidInput, match="strategy"):
        live.deployments.deploy(DANA, MODEL, 2, "rainbow")
    assert live.deployments.list(MODEL, active_only=True) == []


def test_blue_green_smoke_tests_green_then_switches_and_keeps_blue_for_a_while(
    live: Backend, clock: Clock
) -> None:
    live.evaluation.attach_dataset(DANA, MODEL, 2, io.BytesIO(holdout_bytes()), "h.parquet")
    live.deployments.deploy(DANA, MODEL, 2, "blue-green", {"keepBlueSeconds": 300})
    assert arms(plan(live)) == [("blue", 1, 1.0), ("green", 2, 0.0)]
    assert live.deployments.run_due() == [f"{MODEL}: switched to version 2"]
    switched = plan(live)
    assert arms(switched) == [("green", 2, 1.0), ("blue", 1, 0.0)]
    assert production(live) == 2
    clock.advance(301)
    released = plan(live)
    assert arms(released) == [("stable", 2, 1.0)]
    assert released.revision > switched.revision


PLAYBOOK = """\
name: hold-and-roll-back
model: credit
match:
  severity: [P1, P2]
actions:
  - pause_rollout
  - rollback
"""


def test_playbooks_pause_and_roll_back_a_rollout_but_never_punish_stable(
    live: Backend, clock: Clock
) -> None:
    live.playbooks.apply(DANA, PLAYBOOK)
    live.deployments.deploy(DANA, MODEL, 2, "canary", TWO_STEPS)
    incident, _ = live.incidents.trigger(
        ROOT, key="latency:credit", model=MODEL, version=2, title="p99 up", severity=Severity.P2
    )
    timeline = live.incidents.get(incident.id).timeline
    outcomes = [(e.details["action"], e.details["outcome"]) for e in timeline if e.kind == "action"]
    assert outcomes == [("pause_rollout", "done"), ("rollback", "done")]
    found = live.deployments.latest(MODEL)
    assert found.state == DeploymentState.ABORTED
    assert "rolled back by a playbook" in found.reason
    assert arms(plan(live)) == [("stable", 1, 1.0)]
    # The next canary fails its analysis: its own incident's rollback leaves production alone.
    live.deployments.deploy(DANA, MODEL, 2, "canary", TWO_STEPS)
    log_rows(live, 1, T0, 450, seed=41, seconds=15)
    log_rows(live, 2, T0, 50, seed=42, seconds=15, error_share=0.3)
    clock.advance(20)
    assert live.deployments.run_due() == [f"{MODEL}: canary aborted at step 1"]
    assert production(live) == 1
    aborted = live.incidents.get(live.deployments.latest(MODEL).incident_id or 0)
    messages = [e.message for e in aborted.timeline if e.kind == "action"]
    assert any("already aborted" in m for m in messages)


# The fields the resources' CRD schemas require (KServe serving.kserve.io/v1beta1
# InferenceService; Argo Rollouts argoproj.io/v1alpha1 Rollout and AnalysisTemplate). The kserve
# Python SDK is not installed, so the manifests are checked against these instead.
REQUIRED: dict[str, list[str]] = {
    "InferenceService": ["apiVersion", "kind", "metadata.name", "spec.predictor"],
    "Rollout": ["apiVersion", "kind", "metadata.name", "spec.selector", "spec.template"],
    "AnalysisTemplate": ["apiVersion", "kind", "metadata.name", "spec.metrics"],
}


def _at(document: dict[str, Any], dotted: str) -> Any:
    value: Any = document
    for part in dotted.split("."):
        assert isinstance(value, dict) and part in value, f"{document['kind']} lacks {dotted}"
        value = value[part]
    return value


def test_the_kubernetes_export_has_every_required_field(live: Backend) -> None:
    live.deployments.deploy(DANA, MODEL, 2, "canary", TWO_STEPS)
    (service,) = yaml.safe_load_all(live.deployments.export(MODEL, "kserve"))
    for dotted in REQUIRED["InferenceService"]:
        _at(service, dotted)
    predictor = service["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    assert predictor["model"]["modelFormat"]["name"] == "sklearn"
    assert predictor["model"]["storageUri"].endswith(
        live.registry.get_version(MODEL, 2).artifact.sha256
    )

    rollout, template = yaml.safe_load_all(live.deployments.export(MODEL, "argo-rollouts"))
    for document in (rollout, template):
        for dotted in REQUIRED[document["kind"]]:
            _at(document, dotted)
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    assert [s for s in steps if "setWeight" in s] == [{"setWeight": 10}, {"setWeight": 50}]
    assert all(len(s) == 1 for s in steps)  # each canary step is exactly one action
    selector = rollout["spec"]["selector"]["matchLabels"]
    assert selector.items() <= rollout["spec"]["template"]["metadata"]["labels"].items()
    for metric in template["spec"]["metrics"]:
        assert metric["name"] and metric["provider"]["prometheus"]["query"]
        assert (metric["failureLimit"], metric["consecutiveErrorLimit"]) == (0, 4)
    queries = " ".join(m["provider"]["prometheus"]["query"] for m in template["spec"]["metrics"])
    assert "keel_prediction_errors_total" in queries and "keel_predictions_total" in queries
    assert (
        "prediction_drift"
        in rollout["metadata"]["annotations"]["keel.dev/checks-judged-by-keel-only"]
    )
    with pytest.raises(InvalidInput, match="kserve, argo-rollouts"):
        live.deployments.export(MODEL, "helm")
    live.deployments.abort(DANA, MODEL)
    (after,) = yaml.safe_load_all(live.deployments.export(MODEL, "kserve"))
    assert "canaryTrafficPercent" not in after["spec"]["predictor"]


def test_a_canary_whose_promotion_is_refused_at_the_end_pauses_with_the_reasons(
    live: Backend, clock: Clock
) -> None:
    one_step = {"steps": [TWO_STEPS["steps"][0]], "analysis": TWO_STEPS["analysis"]}
    live.deployments.deploy(DANA, MODEL, 2, "canary", one_step)
    # A new policy version: v2's gate results were judged under the old one, so they are stale.
    live.governance.apply_policy(ROOT, SECURITY_ONLY.replace("10", "20"))
    log_rows(live, 1, T0, 200, seed=51)
    log_rows(live, 2, T0, 50, seed=52)
    clock.advance(61)
    assert live.deployments.run_due() == [f"{MODEL}: canary paused, its promotion was refused"]
    found = live.deployments.latest(MODEL)
    assert found.state == DeploymentState.PAUSED
    assert "security gate pending" in found.reason
    assert production(live) == 1


def test_delivery_hears_of_an_aborted_canary_but_not_of_a_finished_one(
    live: Backend, clock: Clock
) -> None:
    live.deployments.deploy(DANA, MODEL, 2, "canary", TWO_STEPS)
    log_rows(live, 1, T0, 450, seed=31, seconds=15)
    log_rows(live, 2, T0, 50, seed=32, seconds=15, error_share=0.2)
    clock.advance(20)
    assert live.deployments.run_due() == [f"{MODEL}: canary aborted at step 1"]
    aborted = live.deployments.latest(MODEL)
    # The canary's users met version 2: DORA counts it as a deployment that failed, from the
    # canary's start to its abort (the domain's tests check the arithmetic).
    (outcome,) = live.delivery.history(model=MODEL).canaries
    assert (outcome.id, outcome.version, outcome.completed) == (aborted.id, 2, False)
    assert (outcome.started_at, outcome.at) == (aborted.created_at, aborted.updated_at)
    assert [c.id for c in live.delivery.history(team="risk").canaries] == [aborted.id]
    # A rollout that finishes does so by promoting; its promotion is what counts, once.
    clock.advance(3600)
    live.deployments.deploy(DANA, MODEL, 2, "direct")
    assert [c.id for c in live.delivery.history(model=MODEL).canaries] == [aborted.id]
    assert [p.version for p in live.governance.promotions(MODEL)] == [1, 2]
