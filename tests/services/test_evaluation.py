"""Evaluation in a child process: Keel's metrics equal scikit-learn's, fairness shows a biased
model's disparity, unsafe artifacts are never loaded, and the limits stop runaway models."""

from __future__ import annotations

import io
import pickle
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn import metrics
from tests.services.evaluation_fixtures import (
    ADMIN,
    SIGNATURE,
    AllocatesTooMuch,
    LoopsForever,
    RunsCommand,
    attach,
    biased_model,
    dataset,
    fair_model,
    joblib_bytes,
    open_backend,
    register,
    trapped_model,
)

from keel.domain.evaluation import EvaluationSpec, TaskType
from keel.errors import EvaluationFailed, InvalidInput, UnsafeArtifact
from keel.services.backend import Backend


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    opened = open_backend(tmp_path / "keel")
    yield opened
    opened.close()


def test_metrics_equal_scikit_learns_on_the_same_rows(backend: Backend) -> None:
    train, held_out = dataset(seed=1), dataset(seed=2)
    model = fair_model(train)
    version = register(backend, joblib_bytes(model))
    attach(backend, version.version, held_out)

    spec = EvaluationSpec.from_signature(SIGNATURE, segments=["region"], min_group_size=30)
    report = backend.evaluation.evaluate("churn", version.version, spec)

    x, y = held_out[["x1", "x2"]], held_out["y"]
    pred, proba = model.predict(x), model.predict_proba(x)[:, 1]
    assert report.task == TaskType.CLASSIFICATION
    assert report.rows == len(held_out)
    assert report.metrics["accuracy"] == pytest.approx(metrics.accuracy_score(y, pred))
    assert report.metrics["precision"] == pytest.approx(metrics.precision_score(y, pred))
    assert report.metrics["recall"] == pytest.approx(metrics.recall_score(y, pred))
    assert report.metrics["f1"] == pytest.approx(metrics.f1_score(y, pred))
    assert report.metrics["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, proba))
    assert report.metrics["log_loss"] == pytest.approx(metrics.log_loss(y, model.predict_proba(x)))
    north = held_out["region"] == "north"
    assert report.segments["region"]["north"]["accuracy"] == pytest.approx(
        metrics.accuracy_score(y[north], pred[north.to_numpy()])
    )
    assert report.segments["region"]["north"]["rows"] == north.sum()
    # the report survives the JSON round trip governance stores it through
    assert type(report).from_dict(report.to_dict()) == report


def test_a_model_using_a_protected_attribute_shows_the_disparity(backend: Backend) -> None:
    fair = register(backend, joblib_bytes(fair_model(dataset(seed=1))))
    biased = register(backend, joblib_bytes(biased_model(dataset(seed=1, biased=True))))
    held_out = dataset(seed=2)
    attach(backend, fair.version, held_out)
    spec = EvaluationSpec.from_signature(SIGNATURE)

    fair_sex = backend.evaluation.evaluate("churn", fair.version, spec).fairness[0]
    # the biased version is evaluated on the fair version's data (the champion's comparison)
    biased_report = backend.evaluation.evaluate(
        "churn", biased.version, spec, data_of_version=fair.version
    )
    biased_sex = biased_report.fairness[0]

    assert fair_sex.attribute == biased_sex.attribute == "sex"
    assert fair_sex.demographic_parity_difference is not None
    assert biased_sex.demographic_parity_difference is not None
    assert biased_sex.disparate_impact_ratio is not None
    assert fair_sex.demographic_parity_difference < 0.1
    assert biased_sex.demographic_parity_difference > 0.5
    assert biased_sex.disparate_impact_ratio < 0.8  # fails the four-fifths rule
    rates = {g.group: g.selection_rate for g in biased_sex.groups}
    assert rates["1"] is not None and rates["0"] is not None and rates["1"] > rates["0"]

    region = biased_report.fairness[1]
    assert region.attribute == "region"
    assert region.too_small_groups == ("tiny",)
    tiny = next(g for g in region.groups if g.group == "tiny")
    assert tiny.too_small and tiny.count == 10


def test_unsafe_artifact_is_refused_and_never_loaded(backend: Backend, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = register(backend, pickle.dumps(RunsCommand(f"touch {marker}")), "model.pkl")
    attach(backend, evil.version, dataset())
    with pytest.raises(UnsafeArtifact, match="failed the security scan"):
        backend.evaluation.evaluate("churn", evil.version, EvaluationSpec.from_signature(SIGNATURE))
    assert not marker.exists()


def test_corrupt_pickle_is_unsafe_and_refused(backend: Backend) -> None:
    whole = joblib_bytes(fair_model(dataset()))
    broken = register(backend, whole[: len(whole) - 40])
    scan = backend.evaluation.scan_report(broken.artifact.sha256)
    assert scan is not None and not scan.safe
    assert "truncated" in scan.findings[0].message
    attach(backend, broken.version, dataset())
    with pytest.raises(UnsafeArtifact):
        backend.evaluation.evaluate(
            "churn", broken.version, EvaluationSpec.from_signature(SIGNATURE)
        )


def test_a_model_that_loops_forever_is_stopped_by_the_time_limit(backend: Backend) -> None:
    version = register(backend, trapped_model(LoopsForever()), "model.pkl")
    scan = backend.evaluation.scan_report(version.artifact.sha256)
    assert scan is not None and scan.safe  # nothing in it looks like code: only a limit helps
    attach(backend, version.version, dataset())
    spec = EvaluationSpec.from_signature(SIGNATURE, time_limit_s=4.0)
    started = time.monotonic()
    with pytest.raises(EvaluationFailed, match="longer than 4 s") as caught:
        backend.evaluation.evaluate("churn", version.version, spec)
    assert caught.value.details["cause"] == "timeout"
    assert time.monotonic() - started < 15


def test_a_model_that_allocates_too_much_is_stopped_by_the_memory_limit(backend: Backend) -> None:
    version = register(backend, trapped_model(AllocatesTooMuch()), "model.pkl")
    attach(backend, version.version, dataset())
    spec = EvaluationSpec.from_signature(SIGNATURE, memory_limit_mb=1024)
    with pytest.raises(EvaluationFailed, match="more than 1024 MB") as caught:
        backend.evaluation.evaluate("churn", version.version, spec)
    assert caught.value.details["cause"] == "memory"


def test_missing_columns_fail_with_the_column_named(backend: Backend) -> None:
    model = biased_model(dataset(seed=1, biased=True))  # fitted on x1, x2 and sex
    version = register(backend, joblib_bytes(model))
    frame = dataset().drop(columns=["sex"])
    data = io.BytesIO()
    frame.to_csv(data, index=False)
    # the signature requires 'sex' too, so the upload itself is refused first
    with pytest.raises(InvalidInput, match="'sex'"):
        backend.evaluation.attach_dataset(
            ADMIN, "churn", version.version, io.BytesIO(data.getvalue()), "e.csv"
        )
    spec = EvaluationSpec.from_signature(SIGNATURE)
    with pytest.raises(EvaluationFailed, match="no evaluation data"):
        backend.evaluation.evaluate("churn", version.version, spec)
