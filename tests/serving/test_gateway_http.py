"""The gateway over HTTP: both protocols, ids and headers, logging, metrics and every bad input."""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.serving.serving_fixtures import (
    ADMIN,
    Served,
    direct,
    fitted_model,
    joblib_bytes,
    register,
    served,
    token_for,
)

from keel.domain.permissions import Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.domain.telemetry import ARM
from keel.serving.callers import MAX_AGE_S, RecentCallers

ROWS = [[0.5, -0.2], [-1.0, 1.5], [2.0, 0.1]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("gateway")) as built:
        yield built


def _expected() -> list[Any]:
    import pandas as pd

    frame = pd.DataFrame(ROWS, columns=["x1", "x2"])
    return [int(v) for v in fitted_model().predict(frame)]


def _invoke(world: Served, body: Any, **kwargs: Any) -> Any:
    return world.client.post("/models/churn/invocations", json=body, headers=world.auth, **kwargs)


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return dict(error)


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["x1", "x2"], "data": ROWS}},
        {"dataframe_records": [{"x1": a, "x2": b} for a, b in ROWS]},
        {"instances": ROWS},
        {"instances": [{"x1": a, "x2": b} for a, b in ROWS]},
        {"inputs": {"x1": [r[0] for r in ROWS], "x2": [r[1] for r in ROWS]}},
        {"inputs": ROWS, "params": {}},
    ],
    ids=["split", "records", "instances-lists", "instances-objects", "inputs-columns", "inputs"],
)
def test_every_mlflow_body_gets_the_models_own_predictions(world: Served, body: Any) -> None:
    response = _invoke(world, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": _expected()}
    assert response.headers["X-Keel-Version"] == "1"
    assert response.headers["X-Keel-Arm"] == "stable"
    assert len(response.headers["X-Keel-Prediction-Ids"].split(",")) == len(ROWS)


def test_csv_bodies_are_scored_too(world: Served) -> None:
    csv = "x1,x2\n" + "".join(f"{a},{b}\n" for a, b in ROWS)
    response = world.client.post(
        "/models/churn/invocations",
        content=csv,
        headers={**world.auth, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": _expected()}


def test_open_inference_v2_answers_the_same_model(world: Served) -> None:
    body = {
        "id": "req-1",
        "inputs": [
            {"name": "x1", "shape": [3], "datatype": "FP64", "data": [r[0] for r in ROWS]},
            {"name": "x2", "shape": [3, 1], "datatype": "FP64", "data": [[r[1]] for r in ROWS]},
        ],
    }
    response = world.client.post("/v2/models/churn/infer", json=body, headers=world.auth)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"] == "req-1" and answer["model_version"] == "1"
    assert answer["outputs"][0]["data"] == _expected()
    assert all(0.0 <= s <= 1.0 for s in answer["outputs"][1]["data"])
    matrix = {"inputs": [{"name": "X", "shape": [3, 2], "datatype": "FP64", "data": ROWS}]}
    response = world.client.post("/v2/models/churn/infer", json=matrix, headers=world.auth)
    assert response.json()["outputs"][0]["data"] == _expected()
    assert world.client.get("/v2/models/churn/ready", headers=world.auth).json()["ready"]
    meta = world.client.get("/v2/models/churn", headers=world.auth).json()
    assert meta["versions"] == ["1"]
    assert [i["name"] for i in meta["inputs"]] == ["x1", "x2", "region"]
    assert world.client.get("/v2/health/live").json() == {"live": True}
    assert world.client.get("/v2/health/ready").json() == {"ready": True}


def test_every_prediction_is_logged_with_its_id_and_arm(world: Served) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    body = {
        "dataframe_records": [
            {"x1": 0.3, "x2": 0.1, "region": "north", "prediction_id": "order-17"},
            {"x1": -0.3, "x2": 0.4, "region": "south", "prediction_id": "order-18"},
        ]
    }
    response = _invoke(world, body)
    assert response.headers["X-Keel-Prediction-Ids"] == "order-17,order-18"
    assert world.gateway.log.flush()
    after = datetime.now(UTC) + timedelta(minutes=1)
    rows = world.backend.telemetry.files.read_predictions("churn", 1, before, after)
    logged = {r["prediction_id"]: r for r in rows.to_pylist()}
    assert logged["order-17"]["region"] == "north"
    assert logged["order-17"][ARM] == "stable"
    assert logged["order-18"]["latency_ms"] > 0
    assert logged["order-18"]["error"] is None


def test_metrics_count_requests_by_model_version_and_arm(world: Served) -> None:
    _invoke(world, {"instances": ROWS})
    text = world.client.get("/metrics").text
    assert 'keel_predictions_total{arm="stable",model="churn",version="1"}' in text
    assert "keel_prediction_latency_seconds_bucket" in text


# -- bad input ----------------------------------------------------------------------------------


def test_a_wrong_type_names_the_column_and_the_expected_type(world: Served) -> None:
    error = _error(_invoke(world, {"dataframe_records": [{"x1": "high", "x2": 1.0}]}), 422)
    assert error["details"]["column"] == "x1"
    assert error["details"]["expected"] == "float"
    assert "x1" in error["message"]


def test_a_missing_column_is_named(world: Served) -> None:
    error = _error(_invoke(world, {"dataframe_records": [{"x2": 1.0}]}), 422)
    assert error["details"] == {"field": "x1", "column": "x1", "expected": "float"}


def test_an_unknown_column_is_named(world: Served) -> None:
    error = _error(_invoke(world, {"dataframe_records": [{"x1": 1.0, "income": 3}]}), 422)
    assert error["details"]["column"] == "income"


def test_a_prediction_id_that_cannot_travel_in_a_header_is_refused(world: Served) -> None:
    body = {"dataframe_records": [{"x1": 1.0, "x2": 1.0, "prediction_id": "a,b"}]}
    assert _error(_invoke(world, body), 422)["details"]["column"] == "prediction_id"


def test_a_row_of_the_wrong_width_says_the_feature_order(world: Served) -> None:
    error = _error(_invoke(world, {"instances": [[1.0, 2.0, 3.0]]}), 422)
    assert "x1, x2" in error["message"]


def test_a_body_over_the_limit_is_413(world: Served) -> None:
    limit = world.backend.settings.max_request_bytes
    big = {"instances": [[0.5, 0.5]] * (limit // 10)}
    _error(_invoke(world, big), 413)


def test_a_body_that_is_neither_json_nor_csv_is_415(world: Served) -> None:
    response = world.client.post(
        "/models/churn/invocations",
        content=b"x1=1",
        headers={**world.auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert _error(response, 415)["details"]["field"] == "Content-Type"


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[1, 2]", b'{"instances": [[1, 2]], "inputs": [[1, 2]]}', b'{"rows": []}'],
    ids=["broken", "not-an-object", "two-input-fields", "no-input-field"],
)
def test_a_malformed_body_is_400(world: Served, content: bytes) -> None:
    response = world.client.post(
        "/models/churn/invocations",
        content=content,
        headers={**world.auth, "Content-Type": "application/json"},
    )
    _error(response, 400)


def test_unknown_models_and_models_without_deployment_are_404(world: Served) -> None:
    assert (
        _error(
            world.client.post(
                "/models/nope/invocations", json={"instances": ROWS}, headers=world.auth
            ),
            404,
        )["code"]
        == "not_found"
    )
    world.backend.registry.create_model(ADMIN, Model(name="idle", team="risk", owner="ana"))
    error = _error(
        world.client.post("/models/idle/invocations", json={"instances": ROWS}, headers=world.auth),
        404,
    )
    assert "no deployment" in error["message"]


def test_a_v2_tensor_whose_shape_lies_is_422(world: Served) -> None:
    body = {"inputs": [{"name": "x1", "shape": [2], "datatype": "FP64", "data": [1.0]}]}
    response = world.client.post("/v2/models/churn/infer", json=body, headers=world.auth)
    assert _error(response, 422)["details"]["column"] == "x1"


# -- who may predict ----------------------------------------------------------------------------


def test_only_a_predict_permission_in_the_models_team_predicts(world: Served) -> None:
    body = {"instances": ROWS}
    for name, role, team, status in [
        ("viewer-1", Role.VIEWER, "risk", 403),
        ("other-app", Role.PREDICTOR, "growth", 403),
        ("writer-1", Role.CONTRIBUTOR, "risk", 200),
    ]:
        if team == "growth":
            world.backend.registry.create_team(ADMIN, "growth")
        token = token_for(world.backend, name, role, team)
        response = world.client.post(
            "/models/churn/invocations", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == status, (name, response.text)
    assert world.client.post("/models/churn/invocations", json=body).status_code == 401
    # A predictor reads nothing else and writes nothing.
    listed = world.client.get("/api/v1/models", headers=world.auth)
    assert listed.status_code == 403


def test_a_revoked_token_stops_predicting_within_a_second(world: Served) -> None:
    now = [100.0]
    identity = world.backend.identity
    remembered = world.gateway.callers
    world.gateway.callers = RecentCallers(identity.authenticate, clock=lambda: now[0])
    token = token_for(world.backend, "revoked-app", Role.PREDICTOR, "risk")
    auth = {"Authorization": f"Bearer {token}"}

    def predict() -> Any:
        return world.client.post(
            "/models/churn/invocations", json={"instances": ROWS}, headers=auth
        )

    try:
        assert predict().status_code == 200
        (info,) = identity.store.list_tokens("revoked-app")
        identity.revoke_token(ADMIN, info.id)
        now[0] += MAX_AGE_S / 2
        assert predict().status_code == 200  # remembered for up to MAX_AGE_S
        now[0] += MAX_AGE_S / 2
        _error(predict(), 401)
        now[0] += 60
        _error(predict(), 401)  # a refusal is never remembered
    finally:
        world.gateway.callers = remembered


# -- a model that fails -------------------------------------------------------------------------


def test_a_model_that_raises_gets_503_naming_the_cause_and_keeps_serving(world: Served) -> None:
    # scikit-learn's LogisticRegression refuses missing values: x2 is nullable in the signature.
    response = _invoke(world, {"dataframe_records": [{"x1": 1.0, "x2": None}]})
    error = _error(response, 503)
    assert error["code"] == "model_unavailable"
    assert error["details"]["cause"] == "model_error"
    assert "ValueError" in error["message"]
    assert _invoke(world, {"instances": ROWS}).json() == {"predictions": _expected()}
    text = world.client.get("/metrics").text
    assert 'keel_prediction_errors_total{arm="stable",model="churn",version="1"} 1.0' in text


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("true",))


def test_a_version_whose_scan_failed_is_never_loaded(world: Served) -> None:
    version = register(world.backend, "churn", pickle.dumps(_Evil()), "m.pkl")
    world.plans.plans["churn"] = direct("churn", version)
    world.gateway.use_plans(world.plans)  # no cached plan: the change is seen at once
    try:
        error = _error(_invoke(world, {"instances": ROWS}), 503)
        assert error["details"]["cause"] == "not_servable"
        assert "security" in error["message"]
        assert world.gateway.workers.loaded("churn", version) is None
    finally:
        world.plans.plans["churn"] = direct("churn", 1)
        world.gateway.use_plans(world.plans)


def test_a_prediction_that_cannot_be_logged_is_counted_and_opens_an_incident(
    world: Served,
) -> None:
    # The signature says the prediction is a boolean; the model answers 0/1 integers, which
    # telemetry refuses. The caller still gets its answer; the lost rows are not silent.
    signature = Signature(
        (
            Column("x1", ColumnType.FLOAT, nullable=False),
            Column("x2", ColumnType.FLOAT),
            Column("approved", ColumnType.BOOLEAN, ColumnRole.PREDICTION),
        )
    )
    world.backend.registry.create_model(ADMIN, Model(name="loan", team="risk", owner="ana"))
    version = world.backend.registry.register_version(
        ADMIN,
        "loan",
        io.BytesIO(joblib_bytes(fitted_model())),
        "m.joblib",
        VersionDraft(signature=signature),
    ).version
    world.plans.plans["loan"] = direct("loan", version)
    response = world.client.post(
        "/models/loan/invocations", json={"instances": ROWS}, headers=world.auth
    )
    assert response.status_code == 200, response.text
    assert world.gateway.log.flush()
    text = world.client.get("/metrics").text
    assert 'keel_prediction_log_failures_total{model="loan",reason="invalid"} 3.0' in text
    incident = world.backend.incidents.open_incident("prediction-log:loan")
    assert incident is not None and "not being logged" in incident.title
