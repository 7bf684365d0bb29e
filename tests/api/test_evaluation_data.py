"""Evaluation data over HTTP: attach (Parquet, CSV, or a DataFrame through the SDK), read back,
and refusals that name the column and write nothing."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient
from tests.services.evaluation_fixtures import (
    ADMIN,
    dataset,
    fair_model,
    joblib_bytes,
    parquet_bytes,
    register,
)

from keel.domain.registry import Model
from keel.errors import InvalidInput
from keel.sdk import Client
from keel.services.backend import Backend

URL = "/api/v1/models/churn/versions/1/evaluation-data"


@pytest.fixture
def version(backend: Backend, client: TestClient) -> int:
    """churn v1, a real LogisticRegression, with the evaluation fixtures' signature."""
    backend.registry.create_team(ADMIN, "risk")
    backend.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    return register(backend, joblib_bytes(fair_model(dataset()))).version


@pytest.fixture
def sdk(app: FastAPI, admin_token: str) -> Iterator[Client]:
    with TestClient(app) as test_client:
        transport = test_client._transport
        with Client(url="http://testserver", token=admin_token, transport=transport) as keel:
            yield keel


def _csv(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def test_attach_parquet_then_read_the_record(
    client: TestClient, backend: Backend, version: int
) -> None:
    frame = dataset(n=120)
    data = parquet_bytes(frame)
    put = client.put(URL, files={"file": ("eval.parquet", data)})
    assert put.status_code == 200, put.text
    record = put.json()
    assert record["format"] == "parquet"
    assert record["rows"] == 120
    assert record["columns"] == ["x1", "x2", "sex", "region", "y"]
    assert backend.registry.artifacts.exists(record["sha256"])
    assert client.get(URL).json() == record
    events = backend.audit.events(ADMIN, action="evaluation_data.attach")
    assert [(e.subject_id, e.details["sha256"]) for e in events] == [("churn/1", record["sha256"])]


def test_attach_csv_and_dataframe_through_the_sdk(
    sdk: Client, version: int, tmp_path: Path
) -> None:
    frame = dataset(n=80)
    csv = tmp_path / "eval.csv"
    csv.write_bytes(_csv(frame))
    from_file = sdk.attach_evaluation_data("churn", version, csv)
    assert (from_file.format, from_file.rows) == ("csv", 80)
    from_frame = sdk.attach_evaluation_data("churn", version, frame)
    assert (from_frame.format, from_frame.rows) == ("parquet", 80)
    assert sdk.evaluation_data("churn", version).sha256 == from_frame.sha256
    scan = sdk.scan_report("churn", version)
    assert scan.safe and scan.scanner == "keel"


@pytest.mark.parametrize(
    ("change", "column", "expected"),
    [
        (lambda f: f.assign(x1=["high"] * len(f)), "x1", "float"),
        (lambda f: f.assign(sex=[0.5] * len(f)), "sex", "integer"),
        (lambda f: f.assign(extra=1), "extra", None),
        (lambda f: f.drop(columns=["y"]), "y", "integer"),
    ],
    ids=["text-in-float", "fraction-in-integer", "unknown-column", "missing-target"],
)
def test_data_that_breaks_the_signature_is_refused_naming_the_column(
    client: TestClient,
    backend: Backend,
    version: int,
    change: object,
    column: str,
    expected: str | None,
) -> None:
    frame = change(dataset(n=50))  # type: ignore[operator]
    response = client.put(URL, files={"file": ("eval.csv", _csv(frame))})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"]["column"] == column
    assert repr(column) in error["message"]
    if expected is not None:
        assert expected in error["message"]
    assert client.get(URL).status_code == 404
    assert backend.audit.events(ADMIN, action="evaluation_data.attach") == []


@pytest.mark.parametrize(
    ("filename", "content", "status"),
    [
        ("eval.parquet", b"PAR1 this is not parquet", 400),
        ("eval.csv", b'x1,x2\n"unterminated', 400),
        ("eval.csv", b"", 400),
        ("eval.xlsx", b"PK\x03\x04", 422),
    ],
    ids=["bad-parquet", "bad-csv", "empty-csv", "not-parquet-or-csv"],
)
def test_malformed_files_are_refused_and_nothing_is_stored(
    client: TestClient, backend: Backend, version: int, filename: str, content: bytes, status: int
) -> None:
    stored = {p.name for p in Path(backend.registry.artifacts.url).rglob("*") if p.is_file()}
    response = client.put(URL, files={"file": (filename, content)})
    assert response.status_code == status, response.text
    assert response.json()["error"]["details"]["field"] == "file"
    after = {p.name for p in Path(backend.registry.artifacts.url).rglob("*") if p.is_file()}
    assert after == stored
    assert client.get(URL).status_code == 404


def test_sdk_refuses_what_is_neither_a_frame_nor_a_path(sdk: Client, version: int) -> None:
    with pytest.raises(InvalidInput, match="DataFrame or the path"):
        sdk.attach_evaluation_data("churn", version, 42)  # type: ignore[arg-type]
