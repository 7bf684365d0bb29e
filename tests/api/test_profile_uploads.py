"""Ready profiles (from Spark) uploaded as a reference or as one hour's window.

An uploaded profile is untrusted: every inconsistency is a 422 naming the field, and a refused
upload writes nothing.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient
from tests.api.test_telemetry_api import MODEL, SIGNATURE, batch

from keel.services.backend import Backend
from keel.services.telemetry_profiles import stats_columns
from keel.stats.profile import DatasetProfile, build_reference, profile_like

KINDS = {"age": "numeric", "income": "numeric", "region": "categorical", "sex": "categorical"}
HOUR = datetime(2026, 5, 1, 13, tzinfo=UTC)
Document = dict[str, Any]


@pytest.fixture
def version(client: TestClient, team_and_model: str) -> int:
    created = client.post(
        f"{MODEL}/versions",
        files={"artifact": ("m.bin", b"model bytes")},
        data={"metadata": json.dumps({"signature": SIGNATURE})},
    )
    assert created.status_code == 201, created.text
    return int(created.json()["version"])


def _reference() -> DatasetProfile:
    return build_reference(stats_columns(batch(500, seed=1), KINDS), KINDS, bins=5, top_k=2)


def _window(reference: DatasetProfile) -> DatasetProfile:
    return profile_like(reference, stats_columns(batch(300, seed=2, shift=9000.0), KINDS))


def test_a_ready_reference_and_window_are_stored_and_merged_once(
    client: TestClient, backend: Backend, version: int
) -> None:
    reference = _reference()
    path = f"{MODEL}/versions/{version}"
    stored = client.put(
        f"{path}/reference/profile",
        json={"profile": reference.to_dict(compact=True), "source": "s3a://lake/train"},
    )
    assert stored.status_code == 200, stored.text
    assert client.get(f"{path}/reference").json()["profile"] == reference.to_dict()

    window = _window(reference)
    body = {"hour": HOUR.isoformat(), "profile": window.to_dict(), "batch_id": "spark-000001"}
    for replayed in (False, True):
        sent = client.post(f"{path}/window-profiles", json=body)
        assert sent.status_code == 200, sent.text
        assert (sent.json()["rows"], sent.json()["replayed"]) == (300, replayed)
    merged = backend.telemetry.merged_profile("churn", version, HOUR, HOUR.replace(hour=14))
    assert merged is not None and merged.to_dict() == window.to_dict()  # merged once
    assert backend.telemetry.hourly_row_counts("churn", version, HOUR, HOUR.replace(hour=14)) == [
        (HOUR, 300)
    ]


def _set(*keys: str | int, value: Any) -> Callable[[Document], None]:
    def change(d: Document) -> None:
        target: Any = d
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


def _drop(*keys: str) -> Callable[[Document], None]:
    def change(d: Document) -> None:
        target: Any = d
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return change


def _categorical_counts(d: Document) -> None:
    d["columns"]["region"]["counts"][0][1] += 1


BAD_REFERENCES: dict[str, tuple[Callable[[Document], None], str]] = {
    "format": (_set("format", value="v0"), "profile.format"),
    "rows": (_set("rows", value=-1), "profile.rows"),
    "no columns": (_set("columns", value={}), "profile.columns"),
    "kind": (_set("columns", "age", "kind", value="ordinal"), "profile.columns.age.kind"),
    "missing field": (_drop("columns", "age", "m2"), "profile.columns.age"),
    "count type": (_set("columns", "age", "count", value=2.5), "profile.columns.age.count"),
    "count text": (_set("columns", "sex", "count", value="500"), "profile.columns.sex.count"),
    "negative bin": (_set("columns", "age", "counts", 0, value=-1), "profile.columns.age.counts"),
    "counts sum": (_set("columns", "age", "counts", 1, value=10**6), "profile.columns.age.counts"),
    "rows mismatch": (_set("columns", "age", "null_count", value=3), "profile.columns.age"),
    "edges order": (_set("columns", "age", "edges", 1, value=1e9), "profile.columns.age.edges"),
    "edges null": (_set("columns", "age", "edges", 1, value=None), "profile.columns.age.edges"),
    "mean": (_set("columns", "income", "mean", value=None), "profile.columns.income"),
    "m2": (_set("columns", "income", "m2", value=-5.0), "profile.columns.income"),
    "min max": (_set("columns", "income", "min", value=1e12), "profile.columns.income"),
    "sums": (_set("columns", "age", "sums", value=[1.0]), "profile.columns.age.sums"),
    "category counts": (_categorical_counts, "profile.columns.region.counts"),
    "category pairs": (
        _set("columns", "region", "counts", value={"north": 3}),
        "profile.columns.region.counts",
    ),
    "other": (_set("columns", "region", "other", value=-1), "profile.columns.region.counts"),
    "not a feature": (
        lambda d: d["columns"].update(churned=d["columns"]["sex"]),
        "profile.columns.churned",
    ),
    "kind vs signature": (
        lambda d: d["columns"].update(sex=d["columns"]["age"]),
        "profile.columns.sex.kind",
    ),
    "required column": (_drop("columns", "age"), "profile.columns"),
}


@pytest.mark.parametrize("case", list(BAD_REFERENCES))
def test_a_bad_reference_profile_names_the_field_and_writes_nothing(
    client: TestClient, version: int, case: str
) -> None:
    change, field = BAD_REFERENCES[case]
    document = _reference().to_dict()
    change(document)
    path = f"{MODEL}/versions/{version}"
    answer = client.put(f"{path}/reference/profile", json={"profile": document})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_input" and error["details"]["field"] == field, error
    assert client.get(f"{path}/reference").status_code == 404


def test_an_empty_reference_is_refused(client: TestClient, version: int) -> None:
    empty = profile_like(_reference(), {name: np.array([]) for name in KINDS})
    answer = client.put(
        f"{MODEL}/versions/{version}/reference/profile", json={"profile": empty.to_dict()}
    )
    assert answer.status_code == 422 and "no rows" in answer.json()["error"]["message"]


def test_a_window_needs_a_reference_and_its_bins(
    client: TestClient, backend: Backend, version: int
) -> None:
    path = f"{MODEL}/versions/{version}"
    reference = _reference()
    window = _window(reference).to_dict()

    def send(profile: Document, hour: str = HOUR.isoformat()) -> Any:
        return client.post(f"{path}/window-profiles", json={"hour": hour, "profile": profile})

    no_reference = send(window)
    assert no_reference.status_code == 409, no_reference.text
    assert "set one first" in no_reference.json()["error"]["message"]
    client.put(f"{path}/reference/profile", json={"profile": reference.to_dict()})

    other = build_reference(stats_columns(batch(500, seed=9), KINDS), KINDS, bins=5, top_k=2)
    foreign = _window(other).to_dict()
    renamed = copy.deepcopy(window)
    renamed["columns"]["region"]["counts"][0][0] = "west"
    unknown = copy.deepcopy(window)
    unknown["columns"]["height"] = unknown["columns"]["age"]
    for bad, field in (
        (foreign, "profile.columns.age.edges"),
        (renamed, "profile.columns.region.counts"),
        (unknown, "profile.columns.height"),
    ):
        answer = send(bad)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["details"]["field"] == field
    half_past = send(window, "2026-05-01T13:30:00Z")
    assert half_past.status_code == 422
    assert half_past.json()["error"]["details"]["field"] == "hour"
    assert "2026-05-01T13:00:00+00:00" in half_past.json()["error"]["message"]
    assert backend.telemetry.hourly_row_counts("churn", version, HOUR, HOUR.replace(hour=14)) == []
