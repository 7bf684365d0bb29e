"""An unmodified MlflowClient (tracking: a real mlflow server; registry: a real `keel up`) runs
the registry workflow against Keel: create, search with a filter and pages, versions from a
runs:/ source with the run's lineage, tags, aliases, stages, errors, delete, and the
`production` alias refused until Keel's gates pass, then accepted."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException
from tests.job_runner import finished_job
from tests.mlflow_compat.conftest import Keel, LoggedRun, data, log_model
from tests.mlflow_server import MlflowServer


@pytest.fixture(scope="module")
def run(tracking: MlflowServer) -> LoggedRun:
    return log_model(tracking.url, commit="a" * 40)


@pytest.fixture
def client(
    tracking: MlflowServer, keel: Keel, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MlflowClient]:
    # The Keel token travels as MLflow's own bearer token; the client is not changed at all.
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", keel.tokens["dana"])
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    yield MlflowClient(tracking_uri=tracking.url, registry_uri=keel.url)


def _code(exc: pytest.ExceptionInfo[MlflowException]) -> str:
    return str(exc.value.error_code)


def test_the_mlflow_client_runs_the_registry_workflow_against_keel(
    client: MlflowClient, keel: Keel, run: LoggedRun
) -> None:
    created = client.create_registered_model(
        "credit", tags={"keel.target": "repaid", "domain": "lending"}, description="Credit risk."
    )
    assert (created.name, created.description) == ("credit", "Credit risk.")
    assert created.tags == {"keel.target": "repaid", "domain": "lending"}
    client.create_registered_model("credit-small")
    client.create_registered_model("churn")
    with pytest.raises(MlflowException) as exists:
        client.create_registered_model("credit")
    assert _code(exists) == "RESOURCE_ALREADY_EXISTS"

    # Search with a filter, one page at a time.
    first = client.search_registered_models(filter_string="name LIKE 'credit%'", max_results=1)
    assert [m.name for m in first] == ["credit"] and first.token
    second = client.search_registered_models(
        filter_string="name LIKE 'credit%'", max_results=1, page_token=first.token
    )
    assert [m.name for m in second] == ["credit-small"] and not second.token
    tagged = client.search_registered_models(filter_string="tags.domain = 'lending'")
    assert [m.name for m in tagged] == ["credit"]

    # A version from a runs:/ source: Keel fetched, stored and scanned it, with the run's lineage.
    version = client.create_model_version(
        "credit", f"runs:/{run.run_id}/model", run_id=run.run_id, tags={"origin": "ci"}
    )
    assert (version.version, version.status, version.run_id) == ("1", "READY", run.run_id)
    assert version.tags == {"origin": "ci", "mlflow.run_id": run.run_id}
    with keel.api("dana") as api:
        shown = api.get("/api/v1/models/credit/versions/1").json()
    assert shown["params"] == run.params
    assert shown["metrics"] == run.metrics
    assert shown["lineage"]["git_commit"] == "a" * 40
    assert shown["artifact"]["flavor"] == "skops"
    assert "scikit-learn" in shown["environment"]["packages"]
    roles = {c["name"]: c["role"] for c in shown["signature"]["columns"]}
    assert roles == {"income": "feature", "debt": "feature", "repaid": "target"}

    # Tags, description, aliases and stages.
    client.set_model_version_tag("credit", "1", "reviewed", "yes")
    client.delete_model_version_tag("credit", "1", "origin")
    client.update_model_version("credit", "1", description="First fit.")
    client.set_registered_model_alias("credit", "champion", "1")
    by_alias = client.get_model_version_by_alias("credit", "champion")
    assert (by_alias.version, by_alias.description) == ("1", "First fit.")
    assert by_alias.tags == {"reviewed": "yes", "mlflow.run_id": run.run_id}
    staged = client.transition_model_version_stage("credit", "1", "Staging")
    assert staged.current_stage == "Staging"
    assert [v.version for v in client.get_latest_versions("credit", stages=["Staging"])] == ["1"]
    found = client.search_model_versions(f"run_id = '{run.run_id}'")
    assert [(v.name, v.version) for v in found] == [("credit", "1")]
    assert client.get_registered_model("credit").aliases == {"champion": "1"}
    client.delete_registered_model_alias("credit", "champion")

    # production is refused with Keel's blockers until the gates pass and someone signs off.
    with pytest.raises(MlflowException) as refused:
        client.set_registered_model_alias("credit", "production", "1")
    assert _code(refused) == "INVALID_STATE"
    assert "cannot be promoted" in refused.value.message
    assert "performance" in refused.value.message
    with pytest.raises(MlflowException) as by_stage:
        client.transition_model_version_stage("credit", "1", "Production")
    assert _code(by_stage) == "INVALID_STATE"
    holdout = io.BytesIO()
    data(2, 300).to_parquet(holdout)
    with keel.api("dana") as api:
        attached = api.put(
            "/api/v1/models/credit/versions/1/evaluation-data",
            files={"file": ("holdout.parquet", holdout.getvalue())},
        )
        assert attached.status_code in (200, 201), attached.text
        queued = api.post("/api/v1/models/credit/versions/1/gates/run")
        assert queued.status_code == 202, queued.text  # a gate run is a job
        job = finished_job(api, queued.json()["id"], timeout_s=600)
        assert job["state"] == "succeeded", job
        outcomes = job["result"]["gates"]
        assert outcomes["performance"] == outcomes["security"] == "passed", job
    with pytest.raises(MlflowException) as unsigned:
        client.set_registered_model_alias("credit", "production", "1")
    assert "signoff" in unsigned.value.message
    with keel.api("april") as api:
        approved = api.post(
            "/api/v1/models/credit/versions/1/approvals",
            json={"decision": "approve", "comment": "reviewed the gates"},
        )
        assert approved.status_code == 201, approved.text
    client.set_registered_model_alias("credit", "production", "1")
    promoted = client.get_model_version("credit", "1")
    assert promoted.current_stage == "Production"
    assert promoted.aliases == ["production"]
    with keel.api("root") as api:
        trail = api.get("/api/v1/audit", params={"action": "governance.promote"}).json()
    assert [e["details"]["route"] for e in trail["items"]] == [
        "POST /api/2.0/mlflow/registered-models/alias"
    ]
    with pytest.raises(MlflowException) as side_door:
        client.delete_registered_model_alias("credit", "production")
    assert _code(side_door) == "INVALID_STATE"
    with pytest.raises(MlflowException) as stuck:
        client.delete_model_version("credit", "1")
    assert _code(stuck) == "INVALID_STATE"

    # Delete: the model leaves the MLflow API; Keel keeps its record for the audit trail.
    client.delete_registered_model("churn")
    with pytest.raises(MlflowException) as gone:
        client.get_registered_model("churn")
    assert _code(gone) == "RESOURCE_DOES_NOT_EXIST"
    assert [m.name for m in client.search_registered_models()] == ["credit", "credit-small"]


def test_errors_come_back_in_mlflows_shape(
    client: MlflowClient, keel: Keel, tracking: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.create_registered_model("errors")
    with pytest.raises(MlflowException) as missing:
        client.get_model_version("errors", "7")
    assert _code(missing) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as unfetchable:
        client.create_model_version("errors", "runs:/0123456789abcdef0123456789abcdef/model")
    assert _code(unfetchable) == "INVALID_PARAMETER_VALUE"
    assert "could not fetch" in unfetchable.value.message
    assert client.search_model_versions("name = 'errors'") == []  # and no version
    with pytest.raises(MlflowException) as local:
        client.create_model_version("errors", str(tracking.root / "artifacts"))
    assert "KEEL_MLFLOW_LOCAL_ROOTS" in local.value.message
    with pytest.raises(MlflowException) as bad_filter:
        client.search_registered_models(filter_string="owner = 'x'")
    assert _code(bad_filter) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as too_many:
        client.search_registered_models(max_results=5000)
    assert _code(too_many) == "INVALID_PARAMETER_VALUE"

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "keel_" + "x" * 43)
    with pytest.raises(RestException) as unauthenticated:
        MlflowClient(tracking_uri=tracking.url, registry_uri=keel.url).get_registered_model(
            "errors"
        )
    assert _code(unauthenticated) == "UNAUTHENTICATED"
