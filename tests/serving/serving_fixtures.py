"""A registered scikit-learn model that Keel may serve, and a gateway in front of it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from starlette.testclient import TestClient

from keel.config import Settings
from keel.domain.permissions import Grant, Principal, PrincipalKind, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.domain.traffic import Arm, ArmName, ServingPlan
from keel.server import build_app
from keel.services.backend import Backend
from keel.serving.gateway import Gateway
from keel.serving.plans import FixedPlans

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
SIGNATURE = Signature(
    (
        Column("x1", ColumnType.FLOAT, nullable=False),
        Column("x2", ColumnType.FLOAT, nullable=True),
        Column("region", ColumnType.STRING, ColumnRole.PROTECTED_ATTRIBUTE, nullable=True),
        Column("y", ColumnType.INTEGER, ColumnRole.TARGET),
    )
)


def training_data(n: int = 200, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    y = (x1 - x2 + rng.normal(scale=0.3, size=n) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "y": y})


def fitted_model(seed: int = 3) -> LogisticRegression:
    data = training_data(seed=seed)
    return LogisticRegression().fit(data[["x1", "x2"]], data["y"])


def joblib_bytes(model: object) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def open_backend(data_dir: Path) -> Backend:
    """A backend with team ``risk``, model ``churn`` and a policy that asks for no gate, so a
    version whose artifact scanned safe may be served (governance is deploy's concern)."""
    backend = Backend.open(Settings.load(data_dir=data_dir, env={}))
    backend.migrate()
    backend.identity.store.create_principal("root", PrincipalKind.USER, "test")
    backend.identity.store.grant("root", Role.ADMIN, None, "test")
    backend.registry.create_team(ADMIN, "risk")
    backend.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    backend.governance.apply_policy(ADMIN, "tier: unassessed\nchecks: {}\n")
    return backend


def register(backend: Backend, model: str, artifact: bytes, filename: str = "m.joblib") -> int:
    found = backend.registry.register_version(
        ADMIN, model, io.BytesIO(artifact), filename, VersionDraft(signature=SIGNATURE)
    )
    return found.version


def direct(model: str, version: int) -> ServingPlan:
    return ServingPlan(model, (Arm(ArmName.STABLE, version, 1.0),))


def token_for(backend: Backend, name: str, role: Role, team: str | None) -> str:
    backend.identity.store.create_principal(name, PrincipalKind.SERVICE, "root")
    backend.identity.store.grant(name, role, team, "root")
    token, _ = backend.identity.create_token(ADMIN, principal=name, name="t")
    return token


@dataclass
class Served:
    backend: Backend
    client: TestClient
    gateway: Gateway
    plans: FixedPlans
    token: str  # a predictor of team risk

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def served(data_dir: Path) -> Iterator[Served]:
    """``churn`` v1 (a logistic regression) deployed directly, behind a real app."""
    backend = open_backend(data_dir)
    version = register(backend, "churn", joblib_bytes(fitted_model()))
    app = build_app(backend)
    gateway = app.state.gateway
    plans = FixedPlans({"churn": direct("churn", version)})
    gateway.use_plans(plans)
    token = token_for(backend, "churn-app", Role.PREDICTOR, "risk")
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Served(backend, client, gateway, plans, token)
    finally:
        gateway.close()
        backend.close()
