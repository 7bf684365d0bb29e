"""The MLflow-compatible registry API in-process: every kind of bad input answers MLflow's error
shape (with Keel's envelope beside it), names the field, and writes nothing; a local MLflow model
directory below KEEL_MLFLOW_LOCAL_ROOTS is read as data (MLmodel, requirements, signature)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import skops.io  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression
from starlette.testclient import TestClient
from tests.api.conftest import admin_token, app, backend, bearer, client, open_backend

from keel.server import build_app

__all__ = ["admin_token", "app", "backend", "client"]

M = "/api/2.0/mlflow"


def _error(response: Any, code: str, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error_code"] == code
    assert body["error"]["message"] == body["message"]
    return body


@pytest.fixture
def churn(client: TestClient) -> str:
    assert client.post("/api/v1/teams", json={"name": "risk"}).status_code == 201
    created = client.post(
        f"{M}/registered-models/create",
        json={"name": "churn", "tags": [{"key": "keel.team", "value": "risk"}]},
    )
    assert created.status_code == 200, created.text
    return "churn"


def _version(client: TestClient) -> str:
    made = client.post(
        "/api/v1/models/churn/versions", files={"artifact": ("m.bin", b"model bytes")}
    )
    assert made.status_code == 201, made.text
    return str(made.json()["version"])


def _audit_count(client: TestClient) -> int:
    return len(client.get("/api/v1/audit", params={"limit": 500}).json()["items"])


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/registered-models/create", {}, "name"),
        ("/registered-models/create", {"name": ""}, "name"),
        ("/registered-models/create", {"name": "no team"}, "name"),
        ("/registered-models/create", {"name": "lonely"}, "tags.keel.team"),
        (
            "/registered-models/create",
            {"name": "x", "tags": [{"key": "k" * 300, "value": "v"}]},
            "key",
        ),
        ("/model-versions/create", {"name": "churn"}, "source"),
        ("/model-versions/create", {"name": "churn", "source": "runs:/abc/model"}, "source"),
        ("/model-versions/create", {"name": "churn", "source": "http://evil/x"}, "source"),
        ("/model-versions/create", {"name": "churn", "source": "/etc"}, "source"),
        (
            "/model-versions/create",
            {"name": "churn", "source": "models:/churn/1", "keel_version": 0},
            "keel_version",
        ),
        (
            "/model-versions/transition-stage",
            {"name": "churn", "version": "1", "stage": "Live"},
            "stage",
        ),
        ("/model-versions/set-tag", {"name": "churn", "version": "abc", "key": "k"}, "version"),
    ],
)
def test_bad_input_is_invalid_parameter_value_and_writes_nothing(
    client: TestClient, churn: str, path: str, body: dict[str, Any], field: str
) -> None:
    _version(client)
    before = _audit_count(client)
    answered = _error(client.post(M + path, json=body), "INVALID_PARAMETER_VALUE")
    error = answered["error"]
    named = json.dumps(error["details"])
    assert field in named or field in error["message"], error
    assert _audit_count(client) == before
    listed = client.get(f"{M}/model-versions/search", params={"filter": "name = 'churn'"})
    assert len(listed.json()["model_versions"]) == 1


def test_the_source_error_says_how_to_fix_it(client: TestClient, churn: str) -> None:
    unconfigured = client.post(
        f"{M}/model-versions/create", json={"name": "churn", "source": "runs:/abc/model"}
    )
    assert "KEEL_MLFLOW_TRACKING_URI" in unconfigured.json()["message"]
    local = client.post(f"{M}/model-versions/create", json={"name": "churn", "source": "/etc"})
    assert "KEEL_MLFLOW_LOCAL_ROOTS" in local.json()["message"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"filter": "owner = 'ana'"}, "filter"),
        ({"filter": "name = 'a' OR name = 'b'"}, "filter"),
        ({"filter": "name = unquoted"}, "filter"),
        ({"max_results": 0}, "max_results"),
        ({"max_results": 5000}, "max_results"),
        ({"page_token": "not-a-token"}, "page_token"),
        ({"order_by": "owner DESC"}, "order_by"),
    ],
)
def test_bad_searches_name_the_parameter(
    client: TestClient, churn: str, params: dict[str, Any], field: str
) -> None:
    answered = _error(
        client.get(f"{M}/registered-models/search", params=params), "INVALID_PARAMETER_VALUE"
    )
    assert answered["error"]["details"]["field"] == field


def test_missing_things_and_taken_names(client: TestClient, churn: str) -> None:
    _error(
        client.get(f"{M}/registered-models/get", params={"name": "nope"}),
        "RESOURCE_DOES_NOT_EXIST",
        404,
    )
    _error(
        client.get(f"{M}/model-versions/get", params={"name": "churn", "version": "9"}),
        "RESOURCE_DOES_NOT_EXIST",
        404,
    )
    _error(
        client.request(
            "DELETE", f"{M}/registered-models/delete-tag", json={"name": "churn", "key": "k"}
        ),
        "RESOURCE_DOES_NOT_EXIST",
        404,
    )
    _error(
        client.post(f"{M}/registered-models/create", json={"name": "churn"}),
        "RESOURCE_ALREADY_EXISTS",
    )
    version = _version(client)
    _error(
        client.post(
            f"{M}/model-versions/create",
            json={"name": "churn", "source": "models:/churn/1", "keel_version": int(version)},
        ),
        "RESOURCE_ALREADY_EXISTS",
    )
    renamed = client.post(f"{M}/registered-models/rename", json={"name": "churn", "new_name": "x"})
    assert "telemetry" in _error(renamed, "INVALID_STATE")["message"]


def test_a_copy_keeps_a_chosen_number_and_the_audit_names_the_route(
    client: TestClient, churn: str
) -> None:
    _version(client)
    copied = client.post(
        f"{M}/model-versions/create",
        json={"name": "churn", "source": "models:/churn/1", "keel_version": 5},
    )
    assert copied.status_code == 200, copied.text
    assert copied.json()["model_version"]["version"] == "5"
    # Numbering goes on after the highest number.
    assert _version(client) == "6"
    events = client.get("/api/v1/audit", params={"action": "version.register"}).json()["items"]
    routes = [e["details"].get("route") for e in events]
    assert sorted(routes, key=str) == sorted(
        [None, "POST /api/2.0/mlflow/model-versions/create", None], key=str
    )


@pytest.fixture
def local_roots(tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    root = tmp_path / "models"
    backend = open_backend(tmp_path / "keel", KEEL_MLFLOW_LOCAL_ROOTS=str(root))
    token = backend.identity.bootstrap_admin()
    assert token is not None
    with TestClient(build_app(backend), headers=bearer(token)) as test_client:
        yield test_client, root
    backend.close()


def test_a_local_mlflow_model_directory_is_read_as_data(
    local_roots: tuple[TestClient, Path],
) -> None:
    client, root = local_roots
    model_dir = root / "credit" / "model"
    model_dir.mkdir(parents=True)
    estimator = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], [0, 1, 1])
    (model_dir / "model.skops").write_bytes(skops.io.dumps(estimator))
    (model_dir / "MLmodel").write_text(
        "flavors:\n"
        "  sklearn:\n    pickled_model: model.skops\n    serialization_format: skops\n"
        "  python_function:\n    loader_module: mlflow.sklearn\n"
        "signature:\n"
        '  inputs: \'[{"type": "double", "name": "income"}, '
        '{"type": "double", "name": "debt"}]\'\n'
        '  outputs: \'[{"type": "long"}]\'\n'
    )
    (model_dir / "python_env.yaml").write_text("python: 3.11.9\n")
    (model_dir / "requirements.txt").write_text("scikit-learn==1.9.1\nnumpy==2.3.0\n")
    assert client.post("/api/v1/teams", json={"name": "risk"}).status_code == 201
    created = client.post(
        f"{M}/registered-models/create",
        json={
            "name": "credit",
            "tags": [
                {"key": "keel.team", "value": "risk"},
                {"key": "keel.target", "value": "repaid"},
            ],
        },
    )
    assert created.status_code == 200, created.text
    made = client.post(
        f"{M}/model-versions/create", json={"name": "credit", "source": f"file://{model_dir}"}
    )
    assert made.status_code == 200, made.text
    shown = client.get("/api/v1/models/credit/versions/1").json()
    assert shown["artifact"]["flavor"] == "skops"
    assert shown["environment"] == {
        "python_version": "3.11.9",
        "packages": {"scikit-learn": "1.9.1", "numpy": "2.3.0"},
    }
    assert [(c["name"], c["role"], c["dtype"]) for c in shown["signature"]["columns"]] == [
        ("income", "feature", "float"),
        ("debt", "feature", "float"),
        ("repaid", "target", "integer"),
    ]
    stored = client.get("/api/v1/models/credit/versions/1/artifact").content
    assert stored == (model_dir / "model.skops").read_bytes()
    escape = client.post(
        f"{M}/model-versions/create", json={"name": "credit", "source": f"{root}/../keel"}
    )
    _error(escape, "INVALID_PARAMETER_VALUE")
