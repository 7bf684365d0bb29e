"""Registration refuses data files posing as models, and accepts models in every format."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from starlette.testclient import TestClient

from keel.services.backend import Backend

VERSIONS = "/api/v1/models/churn/versions"
_FRAME = pd.DataFrame({"age": [31, 45, 52], "income": [52000.0, 61000.0, 48000.0]})


def _parquet() -> bytes:
    buffer = io.BytesIO()
    _FRAME.to_parquet(buffer)
    return buffer.getvalue()


DATA_FILES = {
    "csv": ("model.pkl", _FRAME.to_csv(index=False).encode(), "CSV"),
    "csv-named-csv": ("train.csv", b"age;income\n31;52000\n", "CSV"),
    "json": ("model.joblib", json.dumps({"coef": [0.1, 0.2], "intercept": 0.3}).encode(), "JSON"),
    "parquet": ("model.joblib", _parquet(), "Parquet"),
    "text": ("notes.txt", b"these are the model weights", "plain text"),
}


def _stored_files(backend: Backend) -> list[Path]:
    return [p for p in Path(backend.settings.artifact_url).rglob("*") if p.is_file()]


@pytest.mark.parametrize("kind", sorted(DATA_FILES))
def test_a_data_file_is_refused_as_an_artifact_and_nothing_is_stored(
    client: TestClient, team_and_model: str, backend: Backend, kind: str
) -> None:
    filename, data, detected = DATA_FILES[kind]
    response = client.post(
        VERSIONS, files={"artifact": (filename, data)}, data={"metadata": json.dumps({})}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"]["field"] == "artifact"
    assert error["details"]["detected"] == detected
    assert f"a {detected} file, not a model" in error["message"]
    for accepted in ("joblib", "skops", "ONNX"):
        assert accepted in error["message"]
    assert client.get(VERSIONS).json()["items"] == []
    assert _stored_files(backend) == []


def test_models_are_still_accepted(client: TestClient, team_and_model: str) -> None:
    import pickle

    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    for protocol in (0, 2, 5):
        response = client.post(
            VERSIONS,
            files={"artifact": ("model.pkl", pickle.dumps(model, protocol=protocol))},
            data={"metadata": json.dumps({})},
        )
        assert response.status_code == 201, response.text
        assert response.json()["artifact"]["flavor"] == "sklearn"
