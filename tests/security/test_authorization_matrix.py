"""Every route x every kind of caller, on SQLite and on a real PostgreSQL.

401 without a token or with a bad, expired or revoked one; 403 for the wrong role or team;
success for the right one. The table below is the contract; a new route fails
`test_the_matrix_covers_every_route` until it is added here.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.testclient import TestClient
from tests import pg_cluster
from tests.serving import serving_fixtures

from keel.config import Settings
from keel.domain.deployments import Strategy
from keel.domain.drills import Scenario
from keel.domain.incidents import Severity
from keel.domain.monitoring import Monitor, Schedule
from keel.domain.permissions import Grant, Principal, PrincipalKind, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.domain.tokens import hint, new_token
from keel.server import build_app
from keel.services.backend import Backend
from keel.services.estimation import reference as estimation_reference
from keel.serving.plans import FixedPlans
from keel.stats.profile import build_reference, profile_like
from keel.store.sql.deployments import NewDeployment
from keel.web.csrf import form_token

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
CALLERS = [
    "no_token",
    "garbage",
    "expired",
    "revoked",
    "no_role",
    "viewer",
    "contributor_other_team",
    "contributor",
    "approver",
    "admin",
    "predictor",
]


@dataclass
class World:
    client: TestClient
    backend: Backend
    tokens: dict[str, str | None] = field(default_factory=dict)
    counter: int = 0

    def unique(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}-{self.counter}"

    def new_version(self) -> int:
        version = self.backend.registry.register_version(
            ADMIN, "churn", io.BytesIO(b"model bytes"), "m.bin", VersionDraft()
        )
        return version.version


def _user(backend: Backend, name: str, *grants: tuple[Role, str | None]) -> str:
    identity = backend.identity
    identity.store.create_principal(name, PrincipalKind.USER, "root")
    for role, team in grants:
        identity.store.grant(name, role, team, "root")
    token, _ = identity.create_token(ADMIN, principal=name, name="matrix")
    return token


def _world(backend: Backend) -> World:
    backend.migrate()
    identity, registry = backend.identity, backend.registry
    identity.store.create_principal("root", PrincipalKind.USER, "test")
    identity.store.grant("root", Role.ADMIN, None, "test")
    registry.create_team(ADMIN, "risk")
    registry.create_team(ADMIN, "growth")
    registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    tokens: dict[str, str | None] = {
        "no_token": None,
        "garbage": "keel_" + "x" * 43,
        "no_role": _user(backend, "nobody"),
        "viewer": _user(backend, "vera", (Role.VIEWER, "risk")),
        "contributor_other_team": _user(backend, "otto", (Role.CONTRIBUTOR, "growth")),
        "contributor": _user(backend, "cara", (Role.CONTRIBUTOR, "risk")),
        "approver": _user(backend, "april", (Role.APPROVER, "risk")),
        "admin": _user(backend, "ada", (Role.ADMIN, None)),
        "predictor": _user(backend, "churn-app", (Role.PREDICTOR, "risk")),
    }
    expired, digest = new_token()
    identity.store.create_token(
        "cara", "old", digest, hint(expired), datetime.now(UTC) - timedelta(seconds=1), "root"
    )
    tokens["expired"] = expired
    revoked, info = identity.create_token(ADMIN, principal="cara", name="gone")
    identity.revoke_token(ADMIN, info.id)
    tokens["revoked"] = revoked
    # No gate required for unassessed models here, so promotion succeeds for whoever may promote
    # (the gates themselves are tested in tests/test_governance_e2e.py).
    backend.governance.apply_policy(ADMIN, "tier: unassessed\nchecks: {}\n")
    app = build_app(backend)
    # A served version of churn for the prediction routes (a direct plan until deployments exist
    # on this branch).
    served = registry.register_version(
        ADMIN,
        "churn",
        io.BytesIO(serving_fixtures.joblib_bytes(serving_fixtures.fitted_model())),
        "m.joblib",
        VersionDraft(signature=serving_fixtures.SIGNATURE),
    )
    app.state.gateway.use_plans(
        FixedPlans({"churn": serving_fixtures.direct("churn", served.version)})
    )
    return World(TestClient(app, raise_server_exceptions=False), backend, tokens)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("keel")
    if request.param == "sqlite":
        backend = Backend.open(Settings.load(data_dir=data_dir, env={}))
        built = _world(backend)
        yield built
        built.client.app.state.gateway.close()  # type: ignore[attr-defined]
        backend.close()
        return
    server = request.getfixturevalue("postgres_url")
    with pg_cluster.fresh_database(server) as url:
        backend = Backend.open(Settings.load(data_dir=data_dir, database_url=url, env={}))
        built = _world(backend)
        yield built
        backend.close()


Request = Callable[[World], tuple[str, str, dict[str, Any]]]


def _json(method: str, path: str, body: Callable[[World], Any] | None = None) -> Request:
    return lambda w: (method, path, {"json": body(w)} if body else {})


def _version_path(suffix: str, method: str = "GET", body: Any = None) -> Request:
    def build(w: World) -> tuple[str, str, dict[str, Any]]:
        kwargs = {"json": body} if body is not None else {}
        return method, f"/api/v1/models/churn/versions/{w.new_version()}{suffix}", kwargs

    return build


def _delete_alias(w: World) -> tuple[str, str, dict[str, Any]]:
    w.backend.registry.set_alias(ADMIN, "churn", "doomed", w.new_version())
    return "DELETE", "/api/v1/models/churn/aliases/doomed", {}


def _upload(w: World) -> tuple[str, str, dict[str, Any]]:
    return "POST", "/api/v1/models/churn/versions", {"files": {"artifact": ("m.bin", b"abc")}}


def _arrow(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


_ARROW = {"Content-Type": "application/vnd.apache.arrow.stream"}


def _telemetry_upload(suffix: str, table: pa.Table) -> Request:
    def build(w: World) -> tuple[str, str, dict[str, Any]]:
        version = w.new_version()
        path = suffix.replace("{v}", str(version))
        return "POST", f"/api/v1/models/churn{path}", {"content": _arrow(table), "headers": _ARROW}

    return build


def _set_reference(w: World) -> tuple[str, str, dict[str, Any]]:
    body = {"content": b"x,c\n1.5,a\n2.5,b\n", "headers": {"Content-Type": "text/csv"}}
    return "PUT", f"/api/v1/models/churn/versions/{w.new_version()}/reference", body


def _get_reference(w: World) -> tuple[str, str, dict[str, Any]]:
    version = w.new_version()
    w.backend.telemetry.set_reference(ADMIN, "churn", version, pa.table({"x": [1.0, 2.0]}))
    return "GET", f"/api/v1/models/churn/versions/{version}/reference", {}


_FOCUS_CSV = (
    b"BilledCost,BillingCurrency,BillingPeriodStart,BillingPeriodEnd,ChargeCategory,"
    b"ChargePeriodStart,ChargePeriodEnd,EffectiveCost,ServiceName\n"
    b"1.00,USD,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,Usage,"
    b"2026-10-01T00:00:00Z,2026-10-02T00:00:00Z,1.00,Compute\n"
)


def _import_bill(w: World) -> tuple[str, str, dict[str, Any]]:
    body = {"content": _FOCUS_CSV, "headers": {"Content-Type": "text/csv"}}
    return "POST", "/api/v1/costs/imports", body


def _delete_budget(w: World) -> tuple[str, str, dict[str, Any]]:
    name = w.unique("budgeted")
    w.backend.registry.create_model(ADMIN, Model(name=name, team="risk", owner="ana"))
    budget = w.backend.costs.set_budget(ADMIN, "model", name, "100")
    return "DELETE", f"/api/v1/budgets/{budget.id}", {}


def _put_reference_profile(w: World) -> tuple[str, str, dict[str, Any]]:
    profile = build_reference({"x": np.array([1.0, 2.0])}, {"x": "numeric"}).to_dict()
    path = f"/api/v1/models/churn/versions/{w.new_version()}/reference/profile"
    return "PUT", path, {"json": {"profile": profile}}


def _post_window_profile(w: World) -> tuple[str, str, dict[str, Any]]:
    version = w.new_version()
    reference = w.backend.telemetry.set_reference(
        ADMIN, "churn", version, pa.table({"x": [1.0, 2.0]})
    )
    window = profile_like(reference, {"x": np.array([1.5])}).to_dict()
    body = {"hour": "2026-05-01T13:00:00Z", "profile": window}
    return "POST", f"/api/v1/models/churn/versions/{version}/window-profiles", {"json": body}


def _revoke_own(w: World) -> tuple[str, str, dict[str, Any]]:
    return "DELETE", "/api/v1/tokens/{own}", {}


def _confirm_risk_tier(w: World) -> tuple[str, str, dict[str, Any]]:
    # A fresh model already assessed minimal: answers that confirm the tier need only write
    # access (changing a tier needs an approver, which tests/api/test_risk_api.py covers).
    name = w.unique("assessed")
    w.backend.registry.create_model(ADMIN, Model(name=name, team="risk", owner="ana"))
    questions = w.backend.risk.questionnaire().questions
    minimal = {q.id: False for q in questions if not q.follow_up}
    w.backend.risk.assess(ADMIN, name, minimal)
    return "POST", f"/api/v1/models/{name}/risk-assessments", {"json": {"answers": minimal}}


EVAL_CSV = b"x,y\n0.5,1\n0.1,0\n"


def _evaluable_version(w: World) -> int:
    signature = Signature(
        (Column("x", ColumnType.FLOAT), Column("y", ColumnType.INTEGER, ColumnRole.TARGET))
    )
    version = w.backend.registry.register_version(
        ADMIN, "churn", io.BytesIO(b"model bytes"), "m.bin", VersionDraft(signature=signature)
    )
    return version.version


def _attach_eval_data(w: World) -> tuple[str, str, dict[str, Any]]:
    path = f"/api/v1/models/churn/versions/{_evaluable_version(w)}/evaluation-data"
    return "PUT", path, {"files": {"file": ("eval.csv", EVAL_CSV)}}


def _get_eval_data(w: World) -> tuple[str, str, dict[str, Any]]:
    version = _evaluable_version(w)
    w.backend.evaluation.attach_dataset(ADMIN, "churn", version, io.BytesIO(EVAL_CSV), "e.csv")
    return "GET", f"/api/v1/models/churn/versions/{version}/evaluation-data", {}


# (route as the app names it, who may call it, how to build one request)
def _monitor_id(w: World) -> int:
    made = w.backend.monitoring.create(
        ADMIN, Monitor(model="churn", name=w.unique("mon"), schedule=Schedule(enabled=False))
    )
    assert made.id is not None
    return made.id


def _on_monitor(method: str, body: Any = None) -> Request:
    def build(w: World) -> tuple[str, str, dict[str, Any]]:
        kwargs = {"json": body} if body is not None else {}
        return method, f"/api/v1/monitors/{_monitor_id(w)}", kwargs

    return build


def _run_monitor(w: World) -> tuple[str, str, dict[str, Any]]:
    return "POST", "/api/v1/models/churn/monitors/run", {"json": {"monitor": _monitor_id(w)}}


def _incident_id(w: World) -> int:
    made, _ = w.backend.incidents.trigger(
        ADMIN, key=w.unique("key"), model="churn", version=None, title="t", severity=Severity.P3
    )
    return made.id


def _on_incident(method: str, suffix: str = "", body: Any = None) -> Request:
    def build(w: World) -> tuple[str, str, dict[str, Any]]:
        kwargs = {"json": body} if body is not None else {}
        return method, f"/api/v1/incidents/{_incident_id(w)}{suffix}", kwargs

    return build


def _drill_alias(w: World) -> str:
    alias = w.unique("drill-target")
    w.backend.registry.set_alias(ADMIN, "churn", alias, w.new_version())
    return alias


def _drill_id(w: World) -> int:
    """A drill whose incident is open (the drill service marks it when it opens)."""
    drill = w.backend.drills.store.start(
        model="churn",
        scenario=Scenario.DRIFT,
        alias="production",
        version=None,
        live=False,
        requested_by="root",
        scheduled=False,
        job_id=None,
        started_at=datetime.now(UTC),
    )
    w.backend.incidents.trigger(
        ADMIN,
        key=w.unique("drill"),
        model="churn",
        version=None,
        title="drill",
        severity=Severity.P3,
        drill_id=drill.id,
    )
    return drill.id


def _on_drill(method: str, suffix: str = "") -> Request:
    return lambda w: (method, f"/api/v1/drills/{_drill_id(w)}{suffix}", {})


def _run_drill(w: World) -> tuple[str, str, dict[str, Any]]:
    body = {"scenario": "drift", "alias": _drill_alias(w)}
    return "POST", "/api/v1/models/churn/drills", {"json": body}


def _schedule_drill(w: World) -> tuple[str, str, dict[str, Any]]:
    body = {"every_days": 30, "alias": _drill_alias(w)}
    return "PUT", "/api/v1/models/churn/drill-schedules/drift", {"json": body}


def _unschedule_drill(w: World) -> tuple[str, str, dict[str, Any]]:
    w.backend.drills.schedule(ADMIN, "churn", "errors", 30, _drill_alias(w))
    return "DELETE", "/api/v1/models/churn/drill-schedules/errors", {}


def _on_rule(method: str) -> Request:
    def build(w: World) -> tuple[str, str, dict[str, Any]]:
        (rule,) = w.backend.alerts.apply(
            ADMIN, "churn", [{"name": w.unique("rule"), "check": "drift"}]
        )
        return method, f"/api/v1/alert-rules/{rule.id}", {}

    return build


def _subscription_id(w: World) -> int:
    return w.backend.notifications.subscribe(
        ADMIN, url="http://127.0.0.1:9/hook", events=["incident.*"]
    ).id


def _delivery_id(w: World) -> int:
    _subscription_id(w)
    return w.backend.notifications.emit("incident.triggered", {"model": "churn"})[0]


def _slo_id(w: World) -> int:
    return w.backend.slos.create(
        ADMIN, "churn", name=w.unique("slo"), kind="availability", objective=0.99
    ).id


def _playbook_yaml(w: World) -> dict[str, Any]:
    return {"source": f"name: {w.unique('pb')}\nmodel: churn\nactions: [pause_rollout]\n"}


def _playbook_test(w: World) -> tuple[str, str, dict[str, Any]]:
    body = {"source": "name: t\nteam: risk\nactions: [notify]\n", "incident_id": _incident_id(w)}
    return "POST", "/api/v1/playbooks/test", {"json": body}


def _rollback(w: World) -> tuple[str, str, dict[str, Any]]:
    for _ in range(2):
        w.backend.governance.promote(ADMIN, "churn", w.new_version())
    return "POST", "/api/v1/models/churn/rollback", {"json": {"reason": "bad release"}}


def _job_id(w: World) -> int:
    """A queued gate run of churn (team risk), asked for by root; no worker runs it here."""
    job = w.backend.jobs.submit(ADMIN, "gate-run", {"model": "churn", "version": 1}, team="risk")
    return job.id


def _no_rollout(w: World) -> int:
    """Abort churn's rollout in progress, if any; return the production version (made so)."""
    if w.backend.deployments.in_progress("churn"):
        w.backend.deployments.abort(ADMIN, "churn", "the next matrix row")
    production = w.backend.governance.production_version("churn")
    if production is None:
        production = w.new_version()
        w.backend.governance.promote(ADMIN, "churn", production)
    return production


def _on_rollout(
    suffix: str, method: str = "POST", body: Any = None, *, paused: bool = False
) -> Request:
    def build(w: World) -> tuple[str, str, dict[str, Any]]:
        _no_rollout(w)
        w.backend.deployments.deploy(ADMIN, "churn", w.new_version(), "canary")
        if paused:
            w.backend.deployments.pause(ADMIN, "churn")
        kwargs = {"json": body} if body is not None else {}
        return method, f"/api/v1/models/churn/deployment{suffix}", kwargs

    return build


def _deploy(w: World) -> tuple[str, str, dict[str, Any]]:
    _no_rollout(w)
    body = {"version": w.new_version(), "strategy": "direct"}
    return "POST", "/api/v1/models/churn/deployments", {"json": body}


def _shadow_report(w: World) -> tuple[str, str, dict[str, Any]]:
    production = _no_rollout(w)
    # This world's versions are not real models (no security gate to pass): record the shadow
    # in the store directly; the report's access is what is tested here.
    shadow = NewDeployment(Strategy.SHADOW, w.new_version(), production, {}, False, "")
    w.backend.deployments.store.create("churn", shadow, "root")
    return "GET", "/api/v1/models/churn/deployment/shadow", {}


_COMMAND = [sys.executable, "-c", "pass"]
_JOB = {"command": _COMMAND, "timeout_s": 60}


def _with_job(method: str, suffix: str, body: Any = None) -> Request:
    def build(w: World) -> tuple[str, str, dict[str, Any]]:
        w.backend.retraining.set_job(ADMIN, "churn", command=_COMMAND, timeout_s=60)
        kwargs = {"json": body} if body is not None else {}
        return method, f"/api/v1/models/churn{suffix}", kwargs

    return build


def _with_estimator(suffix: str) -> Request:
    """A version with a fitted CBPE estimator and two scored predictions on 2026-11-01."""

    def build(w: World) -> tuple[str, str, dict[str, Any]]:
        version = w.new_version()
        reference = pa.table(
            {"prediction": [0, 1] * 50, "score": [0.2, 0.8] * 50, "label": [0, 1] * 50}
        )
        prepared = w.backend.estimation.prepare_reference(ADMIN, "churn", version, reference)
        assert prepared is not None
        store = w.backend.estimation.store
        stored = store.set_reference("churn", version, prepared.method, 100, b"", "root")
        fitted = estimation_reference.fit(prepared.method, prepared.rows)
        store.record_fit("churn", version, stored.set_at, fitted.params(), None, "root")
        at = datetime(2026, 11, 1, 1, tzinfo=UTC)
        predictions = pa.table({"prediction": [0, 1], "score": [0.3, 0.7], "ts": [at, at]})
        w.backend.telemetry.log_predictions(ADMIN, "churn", version, predictions)
        return "GET", f"/api/v1/models/churn/versions/{version}{suffix}", {}

    return build


def _with_value_model(path: str) -> Request:
    def build(w: World) -> tuple[str, str, dict[str, Any]]:
        w.backend.value.set_value_model(ADMIN, "churn", {"kind": "declared", "monthly": 10})
        return "GET", path, {}

    return build


_V2_BODY = {"inputs": [{"name": "X", "shape": [1, 2], "datatype": "FP64", "data": [0.1, 0.2]}]}

MATRIX: list[tuple[str, str, Request]] = [
    ("GET /healthz", "public", _json("GET", "/healthz")),
    ("GET /readyz", "public", _json("GET", "/readyz")),
    ("GET /metrics", "public", _json("GET", "/metrics")),
    ("GET /", "read", _json("GET", "/")),
    ("GET /models/{name}", "read", _json("GET", "/models/churn")),
    ("GET /models/{name}/versions/{version}", "read", _json("GET", "/models/churn/versions/1")),
    (
        "GET /models/{name}/versions/{version}/artifact",
        "read",
        _json("GET", "/models/churn/versions/1/artifact"),
    ),
    ("GET /models/{name}/documents", "read", _json("GET", "/models/churn/documents")),
    ("GET /api/v1/portfolio", "read", _json("GET", "/api/v1/portfolio")),
    ("GET /api/v1/teams", "read", _json("GET", "/api/v1/teams")),
    (
        "POST /api/v1/teams",
        "admin",
        _json("POST", "/api/v1/teams", lambda w: {"name": w.unique("t")}),
    ),
    ("GET /api/v1/models", "read", _json("GET", "/api/v1/models")),
    ("GET /api/v1/models/{name}", "read", _json("GET", "/api/v1/models/churn")),
    (
        "POST /api/v1/models",
        "write",
        _json(
            "POST",
            "/api/v1/models",
            lambda w: {"name": w.unique("m"), "team": "risk", "owner": "x"},
        ),
    ),
    (
        "PATCH /api/v1/models/{name}",
        "write",
        _json("PATCH", "/api/v1/models/churn", lambda w: {"owner": "x"}),
    ),
    ("POST /api/v1/models/{name}/versions", "write", _upload),
    ("GET /api/v1/models/{name}/versions", "read", _json("GET", "/api/v1/models/churn/versions")),
    ("GET /api/v1/models/{name}/versions/{version}", "read", _version_path("")),
    ("GET /api/v1/models/{name}/versions/{version}/artifact", "read", _version_path("/artifact")),
    ("PUT /api/v1/models/{name}/versions/{version}/evaluation-data", "write", _attach_eval_data),
    ("GET /api/v1/models/{name}/versions/{version}/evaluation-data", "read", _get_eval_data),
    ("GET /api/v1/models/{name}/versions/{version}/scan", "read", _version_path("/scan")),
    (
        "POST /api/v1/models/{name}/versions/{version}/status",
        "write",
        _version_path("/status", "POST", {"status": "candidate"}),
    ),
    ("GET /api/v1/models/{name}/aliases", "read", _json("GET", "/api/v1/models/churn/aliases")),
    (
        "GET /api/v1/models/{name}/aliases/history",
        "read",
        _json("GET", "/api/v1/models/churn/aliases/history"),
    ),
    (
        "PUT /api/v1/models/{name}/aliases/{alias}",
        "write",
        lambda w: (
            "PUT",
            "/api/v1/models/churn/aliases/champion",
            {"json": {"version": w.new_version()}},
        ),
    ),
    ("DELETE /api/v1/models/{name}/aliases/{alias}", "write", _delete_alias),
    ("GET /api/v1/users", "admin", _json("GET", "/api/v1/users")),
    (
        "POST /api/v1/users",
        "admin",
        _json("POST", "/api/v1/users", lambda w: {"name": w.unique("u")}),
    ),
    ("GET /api/v1/users/me", "authenticated", _json("GET", "/api/v1/users/me")),
    (
        "POST /api/v1/users/{name}/roles",
        "admin",
        _json("POST", "/api/v1/users/vera/roles", lambda w: {"role": "viewer", "team": "growth"}),
    ),
    (
        "POST /api/v1/tokens",
        "authenticated",
        _json("POST", "/api/v1/tokens", lambda w: {"name": "t"}),
    ),
    ("GET /api/v1/tokens", "authenticated", _json("GET", "/api/v1/tokens")),
    ("DELETE /api/v1/tokens/{token_id}", "authenticated", _revoke_own),
    ("GET /api/v1/audit", "admin", _json("GET", "/api/v1/audit")),
    ("GET /api/v1/audit/head", "admin", _json("GET", "/api/v1/audit/head")),
    ("GET /api/v1/audit/verify", "admin", _json("GET", "/api/v1/audit/verify")),
    ("POST /api/v1/audit/checkpoints", "admin", _json("POST", "/api/v1/audit/checkpoints")),
    ("GET /api/v1/risk/questionnaire", "read", _json("GET", "/api/v1/risk/questionnaire")),
    (
        "GET /api/v1/models/{name}/risk-assessments",
        "read",
        _json("GET", "/api/v1/models/churn/risk-assessments"),
    ),
    ("POST /api/v1/models/{name}/risk-assessments", "write", _confirm_risk_tier),
    (
        "GET /api/v1/models/{name}/documents",
        "read",
        lambda w: (
            "GET",
            "/api/v1/models/churn/documents",
            {"params": {"version": w.new_version(), "format": "json"}},
        ),
    ),
    (
        "POST /api/v1/models/{name}/documents/exports",
        "read",
        lambda w: (
            "POST",
            "/api/v1/models/churn/documents/exports",
            {"json": {"version": w.new_version(), "format": "md"}},
        ),
    ),
    ("GET /api/v1/policies", "read", _json("GET", "/api/v1/policies")),
    (
        "POST /api/v1/policies",
        "admin",
        _json("POST", "/api/v1/policies", lambda w: {"source": "tier: minimal\nchecks: {}\n"}),
    ),
    ("GET /api/v1/policies/{tier}", "read", _json("GET", "/api/v1/policies/high")),
    (
        "GET /api/v1/policies/{tier}/versions",
        "read",
        _json("GET", "/api/v1/policies/high/versions"),
    ),
    (
        "POST /api/v1/models/{name}/versions/{version}/gates/run",
        "write",
        _version_path("/gates/run", "POST"),
    ),
    ("GET /api/v1/models/{name}/versions/{version}/gates", "read", _version_path("/gates")),
    (
        "GET /api/v1/models/{name}/versions/{version}/gates/history",
        "read",
        _version_path("/gates/history"),
    ),
    (
        "POST /api/v1/models/{name}/versions/{version}/approvals",
        "approve",
        _version_path("/approvals", "POST", {"decision": "reject", "comment": "not this one"}),
    ),
    ("GET /api/v1/models/{name}/versions/{version}/approvals", "read", _version_path("/approvals")),
    (
        "POST /api/v1/models/{name}/versions/{version}/promote",
        "write",
        _version_path("/promote", "POST"),
    ),
    (
        "GET /api/v1/models/{name}/promotions",
        "read",
        _json("GET", "/api/v1/models/churn/promotions"),
    ),
    # Telemetry: ingest is "write" in the model's team (contributors, e.g. service accounts).
    (
        "POST /api/v1/models/{name}/versions/{version}/predictions",
        "write",
        _version_path("/predictions", "POST", {"rows": [{"prediction": 1}]}),
    ),
    (
        "POST /api/v1/models/{name}/versions/{version}/predictions/upload",
        "write",
        _telemetry_upload("/versions/{v}/predictions/upload", pa.table({"prediction": [0.5]})),
    ),
    (
        "POST /api/v1/models/{name}/labels",
        "write",
        _json(
            "POST",
            "/api/v1/models/churn/labels",
            lambda w: {"rows": [{"prediction_id": "p1", "label": 1}]},
        ),
    ),
    (
        "POST /api/v1/models/{name}/labels/upload",
        "write",
        _telemetry_upload("/labels/upload", pa.table({"prediction_id": ["p1"], "label": [1]})),
    ),
    ("PUT /api/v1/models/{name}/versions/{version}/reference", "write", _set_reference),
    ("GET /api/v1/models/{name}/versions/{version}/reference", "read", _get_reference),
    (
        "PUT /api/v1/models/{name}/versions/{version}/reference/profile",
        "write",
        _put_reference_profile,
    ),
    (
        "POST /api/v1/models/{name}/versions/{version}/window-profiles",
        "write",
        _post_window_profile,
    ),
    (
        "GET /api/v1/models/{name}/telemetry-retention",
        "read",
        _json("GET", "/api/v1/models/churn/telemetry-retention"),
    ),
    (
        "PUT /api/v1/models/{name}/telemetry-retention",
        "write",
        _json("PUT", "/api/v1/models/churn/telemetry-retention", lambda w: {"days": 400}),
    ),
    (
        "POST /api/v1/models/{name}/monitors",
        "write",
        _json(
            "POST",
            "/api/v1/models/churn/monitors",
            lambda w: {"name": w.unique("m"), "schedule": {"enabled": False}},
        ),
    ),
    ("GET /api/v1/models/{name}/monitors", "read", _json("GET", "/api/v1/models/churn/monitors")),
    ("GET /api/v1/monitors/{monitor_id}", "read", _on_monitor("GET")),
    ("PATCH /api/v1/monitors/{monitor_id}", "write", _on_monitor("PATCH", {"window": "daily"})),
    ("DELETE /api/v1/monitors/{monitor_id}", "write", _on_monitor("DELETE")),
    ("POST /api/v1/models/{name}/monitors/run", "write", _run_monitor),
    ("GET /api/v1/models/{name}/metrics", "read", _json("GET", "/api/v1/models/churn/metrics")),
    (
        "GET /api/v1/models/{name}/monitoring/status",
        "read",
        _json("GET", "/api/v1/models/churn/monitoring/status"),
    ),
    (
        "POST /api/v1/webhooks",
        "admin",
        _json(
            "POST",
            "/api/v1/webhooks",
            lambda w: {"url": "http://127.0.0.1:9/h", "events": ["gate.*"]},
        ),
    ),
    ("GET /api/v1/webhooks", "admin", _json("GET", "/api/v1/webhooks")),
    (
        "DELETE /api/v1/webhooks/{subscription_id}",
        "admin",
        lambda w: ("DELETE", f"/api/v1/webhooks/{_subscription_id(w)}", {}),
    ),
    ("GET /api/v1/webhooks/deliveries", "admin", _json("GET", "/api/v1/webhooks/deliveries")),
    (
        "POST /api/v1/webhooks/deliveries/{delivery_id}/retry",
        "admin",
        lambda w: ("POST", f"/api/v1/webhooks/deliveries/{_delivery_id(w)}/retry", {}),
    ),
    (
        "POST /api/v1/models/{name}/slos",
        "write",
        _json(
            "POST",
            "/api/v1/models/churn/slos",
            lambda w: {"name": w.unique("s"), "kind": "availability", "objective": 0.999},
        ),
    ),
    ("GET /api/v1/models/{name}/slos", "read", _json("GET", "/api/v1/models/churn/slos")),
    (
        "GET /api/v1/slos/{slo_id}/status",
        "read",
        lambda w: ("GET", f"/api/v1/slos/{_slo_id(w)}/status", {}),
    ),
    (
        "GET /api/v1/models/{name}/alert-rules",
        "read",
        _json("GET", "/api/v1/models/churn/alert-rules"),
    ),
    (
        "POST /api/v1/models/{name}/alert-rules",
        "write",
        _json(
            "POST",
            "/api/v1/models/churn/alert-rules",
            lambda w: {"name": w.unique("r"), "check": "drift"},
        ),
    ),
    (
        "PUT /api/v1/models/{name}/alert-rules",
        "write",
        _json(
            "PUT",
            "/api/v1/models/churn/alert-rules",
            lambda w: {"rules": [{"name": w.unique("r"), "check": "quality"}]},
        ),
    ),
    ("GET /api/v1/alert-rules/{rule_id}", "read", _on_rule("GET")),
    ("DELETE /api/v1/alert-rules/{rule_id}", "write", _on_rule("DELETE")),
    ("GET /api/v1/incidents", "read", _json("GET", "/api/v1/incidents?model=churn")),
    ("GET /api/v1/incidents/stats", "read", _json("GET", "/api/v1/incidents/stats?team=risk")),
    ("GET /api/v1/incidents/{incident_id}", "read", _on_incident("GET")),
    ("POST /api/v1/incidents/{incident_id}/ack", "write", _on_incident("POST", "/ack")),
    ("POST /api/v1/models/{name}/drills", "write", _run_drill),
    ("GET /api/v1/drills", "read", _json("GET", "/api/v1/drills")),
    ("GET /api/v1/drills/{drill_id}", "read", _on_drill("GET")),
    ("POST /api/v1/drills/{drill_id}/ack", "write", _on_drill("POST", "/ack")),
    ("POST /api/v1/drills/{drill_id}/resolve", "write", _on_drill("POST", "/resolve")),
    ("GET /api/v1/drill-schedules", "read", _json("GET", "/api/v1/drill-schedules")),
    ("PUT /api/v1/models/{name}/drill-schedules/{scenario}", "write", _schedule_drill),
    ("DELETE /api/v1/models/{name}/drill-schedules/{scenario}", "write", _unschedule_drill),
    ("POST /api/v1/incidents/{incident_id}/resolve", "write", _on_incident("POST", "/resolve")),
    (
        "POST /api/v1/incidents/{incident_id}/comments",
        "write",
        _on_incident("POST", "/comments", {"text": "looking"}),
    ),
    (
        "PUT /api/v1/incidents/{incident_id}/postmortem",
        "write",
        _on_incident("PUT", "/postmortem", {"markdown": "# Post-mortem"}),
    ),
    ("POST /api/v1/playbooks", "write", _json("POST", "/api/v1/playbooks", _playbook_yaml)),
    ("GET /api/v1/playbooks", "read", _json("GET", "/api/v1/playbooks")),
    ("POST /api/v1/playbooks/test", "write", _playbook_test),
    ("POST /api/v1/models/{name}/rollback", "write", _rollback),
    ("POST /api/v1/models/{name}/deployments", "write", _deploy),
    ("GET /api/v1/models/{name}/deployments", "read", _on_rollout("s", "GET")),
    ("GET /api/v1/deployments", "read", _json("GET", "/api/v1/deployments?active=true")),
    ("GET /api/v1/models/{name}/deployment", "read", _on_rollout("", "GET")),
    ("POST /api/v1/models/{name}/deployment/pause", "write", _on_rollout("/pause", body={})),
    (
        "POST /api/v1/models/{name}/deployment/resume",
        "write",
        _on_rollout("/resume", paused=True),
    ),
    ("POST /api/v1/models/{name}/deployment/abort", "write", _on_rollout("/abort", body={})),
    ("POST /api/v1/models/{name}/deployment/promote", "write", _on_rollout("/promote")),
    ("GET /api/v1/models/{name}/deployment/shadow", "read", _shadow_report),
    (
        "GET /api/v1/models/{name}/deployment/export",
        "read",
        _on_rollout("/export?format=kserve", "GET"),
    ),
    (  # a command job runs code on the server: admins only
        "PUT /api/v1/models/{name}/retraining-job",
        "admin",
        _json("PUT", "/api/v1/models/churn/retraining-job", lambda w: _JOB),
    ),
    (  # a webhook job runs nothing here: the team's writers
        "PUT /api/v1/models/{name}/retraining-job",
        "write",
        _json("PUT", "/api/v1/models/churn/retraining-job", lambda w: {"webhook": True}),
    ),
    ("GET /api/v1/models/{name}/retraining-job", "read", _with_job("GET", "/retraining-job")),
    ("POST /api/v1/models/{name}/retrain", "write", _with_job("POST", "/retrain", {})),
    (  # a run's output is the model team's own
        "GET /api/v1/models/{name}/retrain-runs",
        "team_read",
        _json("GET", "/api/v1/models/churn/retrain-runs"),
    ),
    ("POST /api/v1/costs/imports", "admin", _import_bill),
    ("GET /api/v1/costs/imports", "read", _json("GET", "/api/v1/costs/imports")),
    ("GET /api/v1/costs", "read", _json("GET", "/api/v1/costs?month=2026-10")),
    ("GET /api/v1/costs/settings", "read", _json("GET", "/api/v1/costs/settings")),
    (
        "PUT /api/v1/costs/settings",
        "admin",
        _json("PUT", "/api/v1/costs/settings", lambda w: {"currency": "USD"}),
    ),
    ("GET /api/v1/costs/split-rules", "read", _json("GET", "/api/v1/costs/split-rules")),
    (
        "PUT /api/v1/costs/split-rules/{pool}",
        "admin",
        _json("PUT", "/api/v1/costs/split-rules/Compute", lambda w: {"rule": "even"}),
    ),
    (
        "GET /api/v1/costs/unit-economics",
        "read",
        _json("GET", "/api/v1/costs/unit-economics?model=churn&day=2026-10-01"),
    ),
    (
        "GET /api/v1/models/{name}/training-costs",
        "read",
        _json("GET", "/api/v1/models/churn/training-costs?month=2026-10"),
    ),
    (
        "GET /api/v1/costs/metering.csv",
        "read",
        _json("GET", "/api/v1/costs/metering.csv?month=2026-10"),
    ),
    ("GET /api/v1/costs/waste", "read", _json("GET", "/api/v1/costs/waste")),
    ("POST /api/v1/gc", "admin", _json("POST", "/api/v1/gc", lambda w: {"dry_run": True})),
    ("GET /api/v1/budgets", "read", _json("GET", "/api/v1/budgets")),
    (
        "PUT /api/v1/budgets",
        "approve",
        _json(
            "PUT",
            "/api/v1/budgets",
            lambda w: {"scope": "model", "target": "churn", "amount": "100"},
        ),
    ),
    ("DELETE /api/v1/budgets/{budget_id}", "approve", _delete_budget),
    ("GET /api/v1/budgets/status", "read", _json("GET", "/api/v1/budgets/status?month=2026-10")),
    (
        "POST /api/v1/budgets/check",
        "approve",
        _json("POST", "/api/v1/budgets/check?month=2026-10&as_of=2026-10-31"),
    ),
    (
        "PUT /api/v1/models/{name}/value-model",
        "write",
        _json(
            "PUT",
            "/api/v1/models/churn/value-model",
            lambda w: {"kind": "declared", "monthly": 10},
        ),
    ),
    (
        "GET /api/v1/models/{name}/value-model",
        "read",
        _with_value_model("/api/v1/models/churn/value-model"),
    ),
    (
        "GET /api/v1/models/{name}/value",
        "read",
        _with_value_model(
            "/api/v1/models/churn/value?start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00Z"
        ),
    ),
    (
        "GET /api/v1/models/{name}/versions/{version}/estimator",
        "read",
        _with_estimator("/estimator"),
    ),
    (
        "GET /api/v1/models/{name}/versions/{version}/estimated-performance",
        "read",
        _with_estimator(
            "/estimated-performance?start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00Z"
        ),
    ),
    (
        "GET /api/v1/models/{name}/roi",
        "read",
        _with_value_model("/api/v1/models/churn/roi?from=2026-10&to=2026-11"),
    ),
    ("GET /api/v1/dora", "read", _json("GET", "/api/v1/dora?team=risk")),
    ("GET /api/v1/maturity", "read", _json("GET", "/api/v1/maturity?model=churn")),
    (
        "POST /api/v1/maturity/attestations",
        "admin",
        _json(
            "POST",
            "/api/v1/maturity/attestations",
            lambda w: {"criterion": "ci_tests", "comment": "CI runs", "team": "risk"},
        ),
    ),
    ("GET /api/v1/report", "read", _json("GET", "/api/v1/report?month=2026-11&format=md")),
    ("GET /api/v1/jobs", "read", _json("GET", "/api/v1/jobs")),
    ("GET /api/v1/jobs/{job_id}", "read", lambda w: ("GET", f"/api/v1/jobs/{_job_id(w)}", {})),
    (  # the job's requester, or a writer of its model's team
        "POST /api/v1/jobs/{job_id}/cancel",
        "write",
        lambda w: ("POST", f"/api/v1/jobs/{_job_id(w)}/cancel", {}),
    ),
    # Serving: predicting needs predict in the model's team (predictor, contributor, approver).
    (
        "POST /models/{name}/invocations",
        "predict",
        _json("POST", "/models/churn/invocations", lambda w: {"instances": [[0.1, 0.2]]}),
    ),
    (
        "POST /v2/models/{name}/infer",
        "predict",
        _json("POST", "/v2/models/churn/infer", lambda w: _V2_BODY),
    ),
    ("GET /v2/models/{name}/ready", "predict", _json("GET", "/v2/models/churn/ready")),
    ("GET /v2/models/{name}", "predict", _json("GET", "/v2/models/churn")),
    ("GET /v2/health/live", "public", _json("GET", "/v2/health/live")),
    ("GET /v2/health/ready", "public", _json("GET", "/v2/health/ready")),
]


# -- the MLflow-compatible registry API (issue 15) --------------------------------------------
_MLFLOW = "/api/2.0/mlflow"


def _mlflow_fresh_model(w: World) -> str:
    name = w.unique("mlflow")
    w.backend.registry.create_model(ADMIN, Model(name=name, team="risk", owner="ana"))
    return name


def _mlflow_json(method: str, path: str, body: Callable[[World], Any]) -> Request:
    return lambda w: (method, _MLFLOW + path, {"json": body(w)})


def _mlflow_query(path: str, query: Callable[[World], dict[str, Any]]) -> Request:
    return lambda w: ("GET", _MLFLOW + path, {"params": query(w)})


def _mlflow_alias(w: World) -> dict[str, Any]:
    w.backend.registry.set_alias(ADMIN, "churn", "doomed", w.new_version())
    return {"name": "churn", "alias": "doomed"}


def _mlflow_version_tag(w: World) -> dict[str, Any]:
    version = w.new_version()
    w.backend.mlflow.set_model_version_tag(ADMIN, "churn", version, "k", "v")
    return {"name": "churn", "version": str(version), "key": "k"}


def _mlflow_model_tag(w: World) -> dict[str, Any]:
    w.backend.mlflow.set_registered_model_tag(ADMIN, "churn", "k", "v")
    return {"name": "churn", "key": "k"}


MLFLOW_MATRIX: list[tuple[str, str, Request]] = [
    (
        "POST /api/2.0/mlflow/registered-models/create",
        "write",
        _mlflow_json(
            "POST",
            "/registered-models/create",
            lambda w: {"name": w.unique("m"), "tags": [{"key": "keel.team", "value": "risk"}]},
        ),
    ),
    (
        "GET /api/2.0/mlflow/registered-models/get",
        "read",
        _mlflow_query("/registered-models/get", lambda w: {"name": "churn"}),
    ),
    (
        "GET /api/2.0/mlflow/registered-models/search",
        "read",
        _mlflow_query("/registered-models/search", lambda w: {"max_results": 5}),
    ),
    (
        "PATCH /api/2.0/mlflow/registered-models/update",
        "write",
        _mlflow_json(
            "PATCH", "/registered-models/update", lambda w: {"name": "churn", "description": "d"}
        ),
    ),
    (
        "POST /api/2.0/mlflow/registered-models/rename",
        "write",
        _mlflow_json(
            "POST",
            "/registered-models/rename",
            lambda w: {"name": _mlflow_fresh_model(w), "new_name": w.unique("renamed")},
        ),
    ),
    (
        "DELETE /api/2.0/mlflow/registered-models/delete",
        "write",
        _mlflow_json(
            "DELETE", "/registered-models/delete", lambda w: {"name": _mlflow_fresh_model(w)}
        ),
    ),
    (
        "POST /api/2.0/mlflow/registered-models/set-tag",
        "write",
        _mlflow_json(
            "POST",
            "/registered-models/set-tag",
            lambda w: {"name": "churn", "key": "k", "value": "v"},
        ),
    ),
    (
        "DELETE /api/2.0/mlflow/registered-models/delete-tag",
        "write",
        _mlflow_json("DELETE", "/registered-models/delete-tag", _mlflow_model_tag),
    ),
    (
        "POST /api/2.0/mlflow/registered-models/get-latest-versions",
        "read",
        _mlflow_json("POST", "/registered-models/get-latest-versions", lambda w: {"name": "churn"}),
    ),
    (
        "GET /api/2.0/mlflow/registered-models/get-latest-versions",
        "read",
        _mlflow_query("/registered-models/get-latest-versions", lambda w: {"name": "churn"}),
    ),
    (
        "POST /api/2.0/mlflow/registered-models/alias",
        "write",
        _mlflow_json(
            "POST",
            "/registered-models/alias",
            lambda w: {"name": "churn", "alias": "champion", "version": str(w.new_version())},
        ),
    ),
    (
        "DELETE /api/2.0/mlflow/registered-models/alias",
        "write",
        _mlflow_json("DELETE", "/registered-models/alias", _mlflow_alias),
    ),
    (
        "GET /api/2.0/mlflow/registered-models/alias",
        "read",
        _mlflow_query("/registered-models/alias", _mlflow_alias),
    ),
    (  # models:/<name>/<version> names a version in this registry: no MLflow server needed
        "POST /api/2.0/mlflow/model-versions/create",
        "write",
        _mlflow_json(
            "POST",
            "/model-versions/create",
            lambda w: {"name": "churn", "source": f"models:/churn/{w.new_version()}"},
        ),
    ),
    (
        "GET /api/2.0/mlflow/model-versions/get",
        "read",
        _mlflow_query(
            "/model-versions/get", lambda w: {"name": "churn", "version": w.new_version()}
        ),
    ),
    (
        "GET /api/2.0/mlflow/model-versions/search",
        "read",
        _mlflow_query("/model-versions/search", lambda w: {"filter": "name = 'churn'"}),
    ),
    (
        "GET /api/2.0/mlflow/model-versions/get-download-uri",
        "read",
        _mlflow_query(
            "/model-versions/get-download-uri",
            lambda w: {"name": "churn", "version": w.new_version()},
        ),
    ),
    (
        "PATCH /api/2.0/mlflow/model-versions/update",
        "write",
        _mlflow_json(
            "PATCH",
            "/model-versions/update",
            lambda w: {"name": "churn", "version": str(w.new_version()), "description": "d"},
        ),
    ),
    (
        "DELETE /api/2.0/mlflow/model-versions/delete",
        "write",
        _mlflow_json(
            "DELETE",
            "/model-versions/delete",
            lambda w: {"name": "churn", "version": str(w.new_version())},
        ),
    ),
    (
        "POST /api/2.0/mlflow/model-versions/set-tag",
        "write",
        _mlflow_json(
            "POST",
            "/model-versions/set-tag",
            lambda w: {"name": "churn", "version": str(w.new_version()), "key": "k", "value": "v"},
        ),
    ),
    (
        "DELETE /api/2.0/mlflow/model-versions/delete-tag",
        "write",
        _mlflow_json("DELETE", "/model-versions/delete-tag", _mlflow_version_tag),
    ),
    (
        "POST /api/2.0/mlflow/model-versions/transition-stage",
        "write",
        _mlflow_json(
            "POST",
            "/model-versions/transition-stage",
            lambda w: {"name": "churn", "version": str(w.new_version()), "stage": "Staging"},
        ),
    ),
]
MATRIX += MLFLOW_MATRIX


def _rollout_id(w: World, *, paused: bool = False) -> int:
    _no_rollout(w)
    found = w.backend.deployments.deploy(ADMIN, "churn", w.new_version(), "canary")
    if paused:
        w.backend.deployments.pause(ADMIN, "churn")
    return found.id


def _page_form(method: str, path: Callable[[World], str], form: dict[str, str]) -> Request:
    return lambda w: (method, path(w), {"data": dict(form)})


# The dashboard's work pages (keel.web.approvals, incidents, deployments, audit): forms, so the
# runner adds the session's CSRF token to every POST (see `test_route_by_caller`).
WORK_PAGES_MATRIX: list[tuple[str, str, Request]] = [
    ("GET /approvals", "read", _json("GET", "/approvals")),
    (
        "POST /approvals/{model}/{version}/approve",
        "approve",
        _page_form(
            "POST", lambda w: f"/approvals/churn/{w.new_version()}/approve", {"comment": "ok"}
        ),
    ),
    (
        "POST /approvals/{model}/{version}/reject",
        "approve",
        _page_form(
            "POST", lambda w: f"/approvals/churn/{w.new_version()}/reject", {"comment": "no"}
        ),
    ),
    ("GET /incidents", "read", _json("GET", "/incidents")),
    (
        "GET /incidents/{incident_id}",
        "read",
        lambda w: ("GET", f"/incidents/{_incident_id(w)}", {}),
    ),
    (
        "POST /incidents/{incident_id}/acknowledge",
        "write",
        _page_form("POST", lambda w: f"/incidents/{_incident_id(w)}/acknowledge", {}),
    ),
    (
        "POST /incidents/{incident_id}/resolve",
        "write",
        _page_form("POST", lambda w: f"/incidents/{_incident_id(w)}/resolve", {}),
    ),
    (
        "POST /incidents/{incident_id}/comment",
        "write",
        _page_form("POST", lambda w: f"/incidents/{_incident_id(w)}/comment", {"text": "hi"}),
    ),
    (
        "POST /incidents/{incident_id}/postmortem",
        "write",
        _page_form("POST", lambda w: f"/incidents/{_incident_id(w)}/postmortem", {"markdown": "#"}),
    ),
    ("GET /deployments", "read", _json("GET", "/deployments")),
    (
        "POST /deployments/{deployment_id}/pause",
        "write",
        _page_form("POST", lambda w: f"/deployments/{_rollout_id(w)}/pause", {}),
    ),
    (
        "POST /deployments/{deployment_id}/resume",
        "write",
        _page_form("POST", lambda w: f"/deployments/{_rollout_id(w, paused=True)}/resume", {}),
    ),
    (
        "POST /deployments/{deployment_id}/abort",
        "write",
        _page_form("POST", lambda w: f"/deployments/{_rollout_id(w)}/abort", {}),
    ),
    ("GET /costs", "read", _json("GET", "/costs")),
    ("GET /delivery", "read", _json("GET", "/delivery")),
    ("GET /audit", "admin", _json("GET", "/audit")),
]
MATRIX += WORK_PAGES_MATRIX

INVALID = {"no_token", "garbage", "expired", "revoked"}
ROLE_HOLDERS = {"viewer", "contributor_other_team", "contributor", "approver", "admin"}
READERS_OF_RISK = {"viewer", "contributor", "approver", "admin"}
WRITERS_OF_RISK = {"contributor", "approver", "admin"}
APPROVERS_OF_RISK = {"approver", "admin"}
PREDICTORS_OF_RISK = {"predictor", "contributor", "approver", "admin"}


def _on_dashboard(route: str) -> bool:
    """A route of the dashboard's HTML pages (not the API, the gateway or the probes)."""
    path = route.split(" ", 1)[1]
    gateway = path.startswith(("/v2/", "/invocations")) or path.endswith("/invocations")
    return not (gateway or path.startswith(("/api/", "/healthz", "/readyz", "/metrics")))


def expected(access: str, caller: str) -> int:
    """The status class the caller must get: 200 (any 2xx/3xx), 401 or 403."""
    if access == "public":
        return 200
    if caller in INVALID:
        return 401
    if access == "authenticated":
        return 200
    if access == "read":
        return 200 if caller in ROLE_HOLDERS else 403
    if access == "team_read":
        return 200 if caller in READERS_OF_RISK else 403
    if access == "write":
        return 200 if caller in WRITERS_OF_RISK else 403
    if access == "approve":
        return 200 if caller in APPROVERS_OF_RISK else 403
    if access == "predict":
        return 200 if caller in PREDICTORS_OF_RISK else 403
    assert access == "admin"
    return 200 if caller == "admin" else 403


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("route", "access", "build"), MATRIX, ids=[m[0] for m in MATRIX])
def test_route_by_caller(
    world: World, route: str, access: str, build: Request, caller: str
) -> None:
    method, path, kwargs = build(world)
    token = world.tokens[caller]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request_headers = {**kwargs.pop("headers", {}), **headers}
    if "{own}" in path:
        if token is None or caller in INVALID:
            path = path.replace("{own}", "1")
        else:
            created = world.client.post("/api/v1/tokens", json={"name": "own"}, headers=headers)
            path = path.replace("{own}", str(created.json()["info"]["id"]))
    if _on_dashboard(route) and method == "POST" and token is not None:
        kwargs["data"] = {**kwargs.get("data", {}), "csrf_token": form_token(world.backend, token)}
    response = world.client.request(
        method, path, headers=request_headers, follow_redirects=False, **kwargs
    )
    want = expected(access, caller)
    if _on_dashboard(route) and want != 200:
        # The dashboard sends people without a valid session to the login page instead of a
        # 401, and shows others a page saying which role they lack.
        assert response.status_code == (303 if want == 401 else 403), response.text
        if want == 401:
            assert response.headers["location"] == "/login"
        return
    if _on_dashboard(route) and response.status_code == 303:
        # A form's POST answers with a redirect back to its page (not to the sign-in form).
        assert response.headers["location"] != "/login", f"{caller}: sent to sign in"
        return
    if want == 200:
        assert 200 <= response.status_code < 300, (
            f"{caller}: {response.status_code} {response.text}"
        )
    else:
        assert response.status_code == want, f"{caller}: {response.status_code} {response.text}"
        assert response.json()["error"]["code"] in ("unauthenticated", "permission_denied")


def test_the_matrix_covers_every_route(world: World) -> None:
    served = set()
    for context in iter_route_contexts(world.client.app.routes):  # type: ignore[attr-defined]
        if isinstance(context.original_route, APIRoute):
            served |= {f"{m} {context.path}" for m in context.methods or ()}
    covered = {route for route, _, _ in MATRIX}
    unauthenticated_by_design = {
        "GET /login",
        "POST /login",
        "POST /logout",
        "GET /docs",
        "GET /static/{name:path}",
    }
    assert served - unauthenticated_by_design == covered - unauthenticated_by_design
