"""A real MLflow tracking server and a real `keel up` that trusts it, one pair per test module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
import scipy  # type: ignore[import-untyped]
import sklearn
import skops  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression
from tests.mlflow_server import MlflowServer, mlflow_server
from tests.running_keel import Server, keel_up

REQUIREMENTS = [
    f"scikit-learn=={sklearn.__version__}",
    f"numpy=={np.__version__}",
    f"scipy=={scipy.__version__}",
    f"skops=={skops.__version__}",
]

# Each gate the policy asks for can pass or fail quickly; sign-off needs one approver.
POLICY = """tier: unassessed
checks:
  performance:
    min:
      accuracy: 0.7
  security:
    require_pinned_environment: true
  signoff:
    approvals: 1
"""


@dataclass
class Keel:
    server: Server
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, who: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.tokens[who]}"}, timeout=120
        )


def people(keel: Server) -> dict[str, str]:
    """root (admin), dana (contributor in risk) and april (approver in risk), with tokens."""
    admin = (keel.data_dir / "admin-token").read_text().strip()
    tokens = {"root": admin}
    with httpx.Client(
        base_url=keel.url, headers={"Authorization": f"Bearer {admin}"}, timeout=60
    ) as api:
        assert api.post("/api/v1/teams", json={"name": "risk"}).status_code == 201
        for name, role in (("dana", "contributor"), ("april", "approver")):
            assert api.post("/api/v1/users", json={"name": name}).status_code == 201
            granted = api.post(f"/api/v1/users/{name}/roles", json={"role": role, "team": "risk"})
            assert granted.status_code in (200, 201), granted.text
            made = api.post("/api/v1/tokens", json={"name": "mlflow", "principal": name})
            assert made.status_code == 201, made.text
            tokens[name] = made.json()["token"]
        applied = api.post("/api/v1/policies", json={"source": POLICY})
        assert applied.status_code == 201, applied.text
    return tokens


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


@pytest.fixture(scope="module")
def keel(tracking: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keel]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KEEL_MLFLOW_TRACKING_URI", tracking.url)
        env.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg")))
        with keel_up(tmp_path_factory.mktemp("keel")) as server:
            yield Keel(server, people(server))


def data(seed: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income, debt = rng.normal(size=rows), rng.normal(size=rows)
    signal = 1.5 * income - 1.0 * debt + rng.normal(scale=0.5, size=rows)
    return pd.DataFrame({"income": income, "debt": debt, "repaid": (signal > 0).astype(int)})


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    model_uri: str  # models:/m-... (MLflow 3's logged model)
    params: dict[str, str]
    metrics: dict[str, float]

    @property
    def model_id(self) -> str:
        return self.model_uri.rsplit("/", 1)[-1]


def log_model(tracking_uri: str, *, c: float = 1.0, commit: str = "0" * 40) -> LoggedRun:
    """Train and log a scikit-learn model with the real MLflow client, as training code does."""
    train = data(1, 400)
    client_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        with mlflow.start_run() as run:
            mlflow.log_param("C", c)
            mlflow.log_metric("train_accuracy", 0.91)
            mlflow.set_tag("mlflow.source.git.commit", commit)
            model = LogisticRegression(C=c).fit(train[["income", "debt"]], train["repaid"])
            info: Any = mlflow.sklearn.log_model(
                model,
                name="model",
                input_example=train[["income", "debt"]].head(3),
                # Stated, as a team pins them: MLflow's inference would run the model in a
                # subprocess for a minute to guess them.
                pip_requirements=REQUIREMENTS,
            )
    finally:
        mlflow.set_tracking_uri(client_uri)
    return LoggedRun(run.info.run_id, info.model_uri, {"C": str(c)}, {"train_accuracy": 0.91})
