"""`keel estimation show|window`: the estimator's state, and a window's estimates beside the
realized values, for a person (a table) and a script (--json)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from rich.console import Console
from tests.stats import estimation_data as data
from typer.testing import Result

from keel.cli.estimation import window_view
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import VersionDraft
from keel.schemas.estimation import WindowEstimateOut
from keel.services.backend import Backend
from keel.services.estimation import reference as estimation_reference

Keel = Callable[..., Result]
ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def churn(keel_cli: Keel, keel_backend: Backend) -> str:
    """churn v1 with a fitted CBPE estimator (fitted here, as the job would) and 300 scored,
    labelled predictions at T0."""
    ok(keel_cli("teams", "create", "risk"))
    ok(keel_cli("models", "create", "churn", "--team", "risk", "--owner", "ana"))
    keel_backend.registry.register_version(
        ADMIN, "churn", io.BytesIO(b"m"), "m.bin", VersionDraft()
    )
    labels, score = data.binary(np.random.default_rng(1), 3000, 0.0)
    reference = pa.table({"prediction": (score > 0.5).astype(int), "score": score, "label": labels})
    estimation = keel_backend.estimation
    prepared = estimation.prepare_reference(ADMIN, "churn", 1, reference)
    assert prepared is not None
    stored = estimation.store.set_reference("churn", 1, prepared.method, 3000, b"", "root")
    fitted = estimation_reference.fit(prepared.method, prepared.rows)
    estimation.store.record_fit("churn", 1, stored.set_at, fitted.params(), None, "root")
    truth, s = data.binary(np.random.default_rng(2), 300, 0.5)
    ids = [f"p{i}" for i in range(300)]
    keel_backend.telemetry.log_predictions(
        ADMIN,
        "churn",
        1,
        pa.table(
            {
                "prediction_id": ids,
                "ts": [T0 + timedelta(seconds=i) for i in range(300)],
                "prediction": (s > 0.5).astype(int),
                "score": s,
            }
        ),
    )
    keel_backend.telemetry.log_labels(
        ADMIN, "churn", pa.table({"prediction_id": ids, "label": truth})
    )
    return "churn"


def test_show_and_window(keel_cli: Keel, churn: str) -> None:
    shown = json.loads(ok(keel_cli("estimation", "show", churn, "1", "--json")).stdout)
    assert (shown["method"], shown["state"]) == ("cbpe", "fitted")
    window = ["--start", T0.isoformat(), "--end", (T0 + timedelta(hours=1)).isoformat()]
    found = json.loads(
        ok(
            keel_cli("estimation", "window", churn, "1", *window, "--metric", "accuracy", "--json")
        ).stdout
    )
    [accuracy] = found["metrics"]
    assert found["rows"] == found["labelled_rows"] == 300
    assert accuracy["lower"] <= accuracy["realized"] <= accuracy["upper"]
    # Not a terminal: JSON by default. A person sees the table.
    every = ok(keel_cli("estimation", "window", churn, "1", *window)).stdout
    console = Console(file=io.StringIO(), width=100)
    console.print(window_view(WindowEstimateOut.model_validate_json(every)))
    table = console.file.getvalue()  # type: ignore[attr-defined]
    assert "roc_auc" in table and "estimation error" in table and "Flags: none" in table


def test_an_unknown_metric_names_the_choices(keel_cli: Keel, churn: str) -> None:
    window = ["--start", T0.isoformat(), "--end", (T0 + timedelta(hours=1)).isoformat()]
    refused = keel_cli("estimation", "window", churn, "1", *window, "--metric", "auc")
    assert refused.exit_code == 1
    assert "'auc'" in refused.output and "roc_auc" in refused.output
