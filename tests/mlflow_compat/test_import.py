"""`keel import mlflow` against a real MLflow server: 3 models, 5 versions, aliases, stages and
tags, checked field by field through an unmodified MlflowClient on each side; then run again.

One test per defect of mlflow-export-import that loses data: renumbered versions (#183),
regenerated run ids (#163), versions that fail to register (#165), lost version tags (#240) and
missing lineage (#150).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from mlflow import MlflowClient
from tests.mlflow_compat.conftest import Keel, LoggedRun, log_model
from tests.mlflow_server import MlflowServer

IMPORT_TAGS = {"keel.import.mlflow_stage", "keel.import.mlflow_aliases", "mlflow.run_id"}


@dataclass
class Migration:
    source: MlflowClient
    keel: MlflowClient
    runs: dict[str, LoggedRun]
    dry_run: subprocess.CompletedProcess[str]
    first: subprocess.CompletedProcess[str]
    keel_server: Keel
    tracking: MlflowServer

    def run_import(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.keel_server.server.keel(
            "import", "mlflow", "--tracking-uri", self.tracking.url, "--team", "risk", *args
        )


def _gone(run: LoggedRun) -> str:
    return f"mlflow-artifacts:/0/{run.run_id}/artifacts/gone"


def _registry(tracking: MlflowServer) -> dict[str, LoggedRun]:
    """The registry being left: what a team's MLflow holds after a few months."""
    runs = {"a": log_model(tracking.url, c=1.0, commit="a" * 40)}
    runs["b"] = log_model(tracking.url, c=0.5, commit="b" * 40)
    mlflow = MlflowClient(tracking_uri=tracking.url, registry_uri=tracking.url)
    mlflow.create_registered_model("fraud", tags={"owner": "risk"}, description="Card fraud.")
    mlflow.create_registered_model("churn", tags={"owner": "growth"})
    mlflow.create_registered_model("pricing", description="Dynamic pricing.")
    a, b = runs["a"], runs["b"]
    mlflow.create_model_version(
        "fraud", a.model_uri, run_id=a.run_id, model_id=a.model_id, description="first"
    )
    mlflow.create_model_version("fraud", a.model_uri, run_id=a.run_id, model_id=a.model_id)
    mlflow.create_model_version(
        "fraud",
        b.model_uri,
        run_id=b.run_id,
        model_id=b.model_id,
        tags={"validated": "yes", "dataset": "2026-10"},
    )
    mlflow.delete_model_version("fraud", "2")  # fraud keeps 1 and 3
    mlflow.create_model_version("churn", a.model_uri, run_id=a.run_id, model_id=a.model_id)
    mlflow.create_model_version("churn", f"runs:/{b.run_id}/model", run_id=b.run_id)
    mlflow.create_model_version(
        "pricing", b.model_uri, run_id=b.run_id, model_id=b.model_id, tags={"tier": "gold"}
    )
    # A version whose files are gone: it must be listed with its reason, the rest imported.
    mlflow.create_model_version("pricing", _gone(b), run_id=b.run_id)
    mlflow.set_registered_model_alias("fraud", "production", "3")
    mlflow.set_registered_model_alias("churn", "champion", "2")
    mlflow.transition_model_version_stage("churn", "1", "Production")
    mlflow.transition_model_version_stage("churn", "2", "Staging")
    return runs


@pytest.fixture(scope="module")
def migration(tracking: MlflowServer, keel: Keel) -> Iterator[Migration]:
    runs = _registry(tracking)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_TOKEN", keel.tokens["root"])
        env.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        source = MlflowClient(tracking_uri=tracking.url, registry_uri=tracking.url)
        target = MlflowClient(tracking_uri=tracking.url, registry_uri=keel.url)
        built = Migration(source, target, runs, None, None, keel, tracking)  # type: ignore[arg-type]
        built.dry_run = built.run_import("--dry-run")
        built.first = built.run_import()
        yield built


def test_a_dry_run_shows_the_plan_and_writes_nothing(migration: Migration) -> None:
    assert "3 model(s) and 6 version(s) would be imported" in migration.dry_run.stdout
    with migration.keel_server.api("root") as api:
        # The dry run came first: nothing existed in Keel before the real import.
        events = api.get("/api/v1/audit", params={"action": "model.create"}).json()["items"]
    assert len(events) == 3  # the three the real import created, none from the dry run


def test_models_versions_tags_and_descriptions_come_over_field_by_field(
    migration: Migration,
) -> None:
    assert migration.first.returncode == 1, migration.first.stdout  # one version failed
    assert "3 model(s) and 5 version(s) were imported" in migration.first.stdout
    for name in ("fraud", "churn", "pricing"):
        left, arrived = (
            migration.source.get_registered_model(name),
            migration.keel.get_registered_model(name),
        )
        assert arrived.description == left.description
        assert {k: v for k, v in arrived.tags.items() if k != "keel.team"} == left.tags
    assert migration.keel.get_registered_model("churn").aliases == {"champion": "2"}
    churn = {v.version: v for v in migration.keel.search_model_versions("name = 'churn'")}
    assert churn["2"].current_stage == "Staging"
    # Production in MLflow is history, not a promotion: registered here, flagged by its tags.
    assert churn["1"].current_stage == "None"
    assert churn["1"].tags["keel.import.mlflow_stage"] == "Production"
    fraud_v3 = migration.keel.get_model_version("fraud", "3")
    assert fraud_v3.tags["keel.import.mlflow_aliases"] == "production"
    assert "production" not in migration.keel.get_registered_model("fraud").aliases
    assert "fraud v3" in migration.first.stdout.split("Held production in MLflow")[1]


def test_183_version_numbers_are_kept(migration: Migration) -> None:
    numbers = sorted(int(v.version) for v in migration.keel.search_model_versions("name = 'fraud'"))
    assert numbers == [1, 3]


def test_163_run_ids_and_sources_are_the_originals(migration: Migration) -> None:
    for name in ("fraud", "churn", "pricing"):
        for left in migration.source.search_model_versions(f"name = '{name}'"):
            if (name, left.version) == ("pricing", "2"):
                continue  # the one that could not be fetched
            arrived = migration.keel.get_model_version(name, left.version)
            assert (arrived.run_id, arrived.source) == (left.run_id, left.source)


def test_165_a_version_that_fails_is_listed_and_the_rest_import(migration: Migration) -> None:
    assert "! pricing v2: INVALID_PARAMETER_VALUE" in migration.first.stdout
    assert _gone(migration.runs["b"]) in migration.first.stdout
    assert [v.version for v in migration.keel.search_model_versions("name = 'pricing'")] == ["1"]


def test_240_version_tags_are_kept(migration: Migration) -> None:
    for name in ("fraud", "churn", "pricing"):
        for left in migration.source.search_model_versions(f"name = '{name}'"):
            if name == "pricing" and left.version == "2":
                continue
            arrived = migration.keel.get_model_version(name, left.version).tags
            assert {k: v for k, v in arrived.items() if k not in IMPORT_TAGS} == left.tags


def test_150_lineage_comes_from_the_run(migration: Migration) -> None:
    with migration.keel_server.api("root") as api:
        shown = api.get("/api/v1/models/fraud/versions/3").json()
    run = migration.runs["b"]
    assert shown["params"] == run.params
    assert shown["metrics"] == run.metrics
    assert shown["lineage"]["git_commit"] == "b" * 40
    assert shown["artifact"]["flavor"] == "skops"


def test_a_second_run_imports_nothing_twice_and_reports_what_changed(
    migration: Migration,
) -> None:
    again = migration.run_import()
    assert "0 model(s) and 0 version(s) were imported; 0 change(s)" in again.stdout, again.stdout
    assert "! pricing v2" in again.stdout  # still unreachable, still listed
    migration.source.set_model_version_tag("fraud", "3", "validated", "twice")
    changed = migration.run_import("--model", "fraud")
    assert changed.returncode == 0, changed.stdout
    assert "1 change(s) were applied" in changed.stdout
    assert "~ fraud v3: tag validated" in changed.stdout
    assert migration.keel.get_model_version("fraud", "3").tags["validated"] == "twice"
    with httpx.Client(base_url=migration.keel_server.url) as api:
        listed = api.get(
            "/api/2.0/mlflow/model-versions/search",
            params={"filter": "name = 'fraud'"},
            headers={"Authorization": f"Bearer {migration.keel_server.tokens['root']}"},
        ).json()
    assert len(listed["model_versions"]) == 2  # no duplicates
