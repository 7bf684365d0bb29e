"""Story 8: an unchanged MLflow scoring client (plain httpx with the bodies MLflow documents)
gets the same predictions from Keel as from a real `mlflow models serve --env-manager local` on
the same model file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.serving.live_server import live
from tests.serving.mlflow_server import mlflow_serve, save_mlflow_model
from tests.serving.serving_fixtures import (
    direct,
    fitted_model,
    open_backend,
    register,
    token_for,
    training_data,
)

from keel.domain.permissions import Role
from keel.server import build_app
from keel.serving.plans import FixedPlans

FRAME = training_data(n=25, seed=11)[["x1", "x2"]]
ROWS = FRAME.to_numpy().tolist()
BODIES: list[tuple[str, Any]] = [
    ("dataframe_split", {"dataframe_split": FRAME.to_dict(orient="split")}),
    ("dataframe_records", {"dataframe_records": FRAME.to_dict(orient="records")}),
    ("instances", {"instances": FRAME.to_dict(orient="records")}),
    ("inputs", {"inputs": {c: FRAME[c].tolist() for c in FRAME.columns}}),
]


def test_an_mlflow_client_gets_the_same_predictions_from_keel(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    model = fitted_model()
    pickled = save_mlflow_model(model, FRAME, tmp_path / "mlflow-model")
    backend = open_backend(tmp_path / "keel")
    version = register(backend, "churn", pickled.read_bytes(), pickled.name)
    app = build_app(backend)
    app.state.gateway.use_plans(FixedPlans({"churn": direct("churn", version)}))
    token = token_for(backend, "churn-app", Role.PREDICTOR, "risk")
    try:
        with mlflow_serve(tmp_path / "mlflow-model") as mlflow_url, live(app) as keel_url:
            for name, body in BODIES:
                theirs = httpx.post(f"{mlflow_url}/invocations", json=body, timeout=60)
                ours = httpx.post(
                    f"{keel_url}/models/churn/invocations",
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=60,
                )
                assert theirs.status_code == 200, (name, theirs.text)
                assert ours.status_code == 200, (name, ours.text)
                assert ours.json() == theirs.json(), name
            csv = FRAME.to_csv(index=False)
            headers = {"Content-Type": "text/csv"}
            theirs = httpx.post(f"{mlflow_url}/invocations", content=csv, headers=headers)
            ours = httpx.post(
                f"{keel_url}/models/churn/invocations",
                content=csv,
                headers={**headers, "Authorization": f"Bearer {token}"},
            )
            assert ours.json() == theirs.json() == {"predictions": model.predict(FRAME).tolist()}
    finally:
        app.state.gateway.close()
        backend.close()
