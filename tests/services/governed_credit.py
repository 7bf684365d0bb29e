"""A credit model whose versions are promoted honestly through governance (service level).

The policy (applied by an admin, as any team would) asks for the performance gate (Keel runs
the artifact on the holdout), the security gate and two approvals, one from compliance. Versions
are real scikit-learn models, registered by dana; april and carl approve; dana promotes.
"""

from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression

from keel.domain.governance import GateOutcome
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Environment, Model, VersionDraft
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.services.backend import Backend

MODEL = "credit"
ROOT = Principal("root", grants=(Grant(Role.ADMIN),))
DANA = Principal("dana", grants=(Grant(Role.CONTRIBUTOR, "risk"),))
APRIL = Principal("april", grants=(Grant(Role.APPROVER, "risk"),))
CARL = Principal("carl", grants=(Grant(Role.APPROVER, "compliance"),))
SIGNATURE = Signature(
    (
        Column("income", ColumnType.FLOAT),
        Column("debt", ColumnType.FLOAT),
        Column("repaid", ColumnType.INTEGER, ColumnRole.TARGET),
    )
)
ENVIRONMENT = Environment("3.11.9", {"scikit-learn": sklearn.__version__, "numpy": np.__version__})
POLICY = """\
tier: unassessed
checks:
  performance:
    min: {roc_auc: 0.75}
    max_drop_vs_production: {roc_auc: 0.05}
  security:
    max_artifact_mb: 10
  signoff:
    approvals: 2
    from_teams: {compliance: 1}
"""
# The same policy with a bar that a logistic regression on this data cannot reach.
STRICTER = POLICY.replace("roc_auc: 0.75", "roc_auc: 0.999")


def credit_data(seed: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income, debt = rng.normal(size=rows), rng.normal(size=rows)
    signal = 1.5 * income - 1.0 * debt + rng.normal(scale=0.7, size=rows)
    return pd.DataFrame({"income": income, "debt": debt, "repaid": (signal > 0).astype(int)})


def trained(seed: int) -> LogisticRegression:
    train = credit_data(seed, 2000)
    return LogisticRegression().fit(train[["income", "debt"]], train["repaid"])


def set_up(backend: Backend) -> None:
    """Teams, the model and the policy."""
    backend.registry.create_team(ROOT, "risk")
    backend.registry.create_team(ROOT, "compliance")
    backend.registry.create_model(ROOT, Model(name=MODEL, team="risk", owner="ana"))
    backend.governance.apply_policy(ROOT, POLICY)


def holdout_bytes() -> bytes:
    buffer = io.BytesIO()
    credit_data(2, 1200).to_parquet(buffer)
    return buffer.getvalue()


def register(backend: Backend, seed: int) -> int:
    buffer = io.BytesIO()
    joblib.dump(trained(seed), buffer)
    buffer.seek(0)
    draft = VersionDraft(signature=SIGNATURE, environment=ENVIRONMENT)
    found = backend.registry.register_version(DANA, MODEL, buffer, "model.joblib", draft)
    backend.evaluation.attach_dataset(
        DANA, MODEL, found.version, io.BytesIO(holdout_bytes()), "holdout.parquet"
    )
    return found.version


def promote_new_version(backend: Backend, seed: int) -> int:
    """Register, run the gates (all must pass), two approvals, promote; return the version."""
    version = register(backend, seed)
    status = backend.governance.run_gates(DANA, MODEL, version)
    failing = [g for g in status.gates if g.outcome == GateOutcome.FAILED]
    assert not failing, status.blockers
    backend.governance.approve(APRIL, MODEL, version, "metrics reviewed")
    backend.governance.approve(CARL, MODEL, version, "compliance review done")
    backend.governance.promote(DANA, MODEL, version)
    return version


def production(backend: Backend) -> int | None:
    return next(
        (a.version for a in backend.registry.current_aliases(MODEL) if a.alias == "production"),
        None,
    )
