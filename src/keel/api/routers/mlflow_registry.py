"""MLflow's Model Registry REST API (``ModelRegistryService``) under ``/api/2.0/mlflow``.

An unmodified MLflow client points its registry URI at Keel, with a Keel token as
``MLFLOW_TRACKING_TOKEN``. Every route needs the same permission as Keel's own (read, or write in
the model's team); the rules the compatible API keeps are in `keel.services.mlflow_compat`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from keel.api.deps import Reader, Writer, get_backend
from keel.api.mlflow_wire import MlflowRoute, model_json, tag_map, version_json
from keel.schemas import mlflow as wire
from keel.services.backend import Backend
from keel.services.mlflow_compat import MlflowRegistry

router = APIRouter(prefix="/api/2.0/mlflow", tags=["mlflow"], route_class=MlflowRoute)
_MODELS = "/registered-models"
_VERSIONS = "/model-versions"


def _mlflow(backend: Annotated[Backend, Depends(get_backend)]) -> MlflowRegistry:
    return backend.mlflow


Mlflow = Annotated[MlflowRegistry, Depends(_mlflow)]
Json = dict[str, Any]

# -- registered models -------------------------------------------------------------------------


@router.post(_MODELS + "/create", summary="MLflow: create a registered model")
def create_registered_model(
    body: wire.CreateRegisteredModel, mlflow: Mlflow, caller: Writer
) -> Json:
    created = mlflow.create_registered_model(
        caller, body.name, tag_map(body.tags), body.description
    )
    return {"registered_model": model_json(created)}


@router.get(_MODELS + "/get", summary="MLflow: get a registered model")
def get_registered_model(name: str, mlflow: Mlflow, _: Reader) -> Json:
    return {"registered_model": model_json(mlflow.get_registered_model(name))}


@router.get(_MODELS + "/search", summary="MLflow: search registered models")
def search_registered_models(
    mlflow: Mlflow,
    _: Reader,
    filter: str | None = None,
    max_results: int | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    page_token: str | None = None,
) -> Json:
    page = mlflow.search_registered_models(filter, max_results, order_by or [], page_token)
    body: Json = {"registered_models": [model_json(m) for m in page.items]}
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    return body


@router.patch(_MODELS + "/update", summary="MLflow: update a registered model's description")
def update_registered_model(
    body: wire.UpdateRegisteredModel, mlflow: Mlflow, caller: Writer
) -> Json:
    updated = mlflow.update_registered_model(caller, body.name, body.description)
    return {"registered_model": model_json(updated)}


@router.post(_MODELS + "/rename", summary="MLflow: rename a registered model (no versions yet)")
def rename_registered_model(
    body: wire.RenameRegisteredModel, mlflow: Mlflow, caller: Writer
) -> Json:
    renamed = mlflow.rename_registered_model(caller, body.name, body.new_name)
    return {"registered_model": model_json(renamed)}


@router.delete(_MODELS + "/delete", summary="MLflow: delete (archive and hide) a registered model")
def delete_registered_model(body: wire.RegisteredModelName, mlflow: Mlflow, caller: Writer) -> Json:
    mlflow.delete_registered_model(caller, body.name)
    return {}


@router.post(_MODELS + "/set-tag", summary="MLflow: set a registered model tag")
def set_registered_model_tag(body: wire.RegisteredModelTag, mlflow: Mlflow, caller: Writer) -> Json:
    mlflow.set_registered_model_tag(caller, body.name, body.key, body.value)
    return {}


@router.delete(_MODELS + "/delete-tag", summary="MLflow: delete a registered model tag")
def delete_registered_model_tag(
    body: wire.RegisteredModelTagKey, mlflow: Mlflow, caller: Writer
) -> Json:
    mlflow.delete_registered_model_tag(caller, body.name, body.key)
    return {}


def _latest(mlflow: MlflowRegistry, name: str, stages: list[str]) -> Json:
    return {"model_versions": [version_json(v) for v in mlflow.get_latest_versions(name, stages)]}


@router.post(_MODELS + "/get-latest-versions", summary="MLflow: latest version per stage")
def get_latest_versions(body: wire.GetLatestVersions, mlflow: Mlflow, _: Reader) -> Json:
    return _latest(mlflow, body.name, body.stages)


@router.get(_MODELS + "/get-latest-versions", summary="MLflow: latest version per stage")
def get_latest_versions_by_query(
    name: str,
    mlflow: Mlflow,
    _: Reader,
    stages: Annotated[list[str] | None, Query()] = None,
) -> Json:
    return _latest(mlflow, name, stages or [])


@router.post(
    _MODELS + "/alias", summary="MLflow: set an alias ('production' goes through the gates)"
)
def set_registered_model_alias(body: wire.SetAlias, mlflow: Mlflow, caller: Writer) -> Json:
    mlflow.set_alias(caller, body.name, body.alias, body.version)
    return {}


@router.delete(_MODELS + "/alias", summary="MLflow: delete an alias")
def delete_registered_model_alias(body: wire.DeleteAlias, mlflow: Mlflow, caller: Writer) -> Json:
    mlflow.delete_alias(caller, body.name, body.alias)
    return {}


@router.get(_MODELS + "/alias", summary="MLflow: the version an alias points at")
def get_model_version_by_alias(name: str, alias: str, mlflow: Mlflow, _: Reader) -> Json:
    return {"model_version": version_json(mlflow.get_version_by_alias(name, alias))}


# -- model versions ----------------------------------------------------------------------------


@router.post(_VERSIONS + "/create", summary="MLflow: register a version from a source URI")
def create_model_version(body: wire.CreateModelVersion, mlflow: Mlflow, caller: Writer) -> Json:
    created = mlflow.create_model_version(
        caller,
        body.name,
        body.source,
        run_id=body.run_id,
        tags=tag_map(body.tags),
        run_link=body.run_link,
        description=body.description,
        number=body.keel_version,
    )
    return {"model_version": version_json(created)}


@router.get(_VERSIONS + "/get", summary="MLflow: get a model version")
def get_model_version(name: str, version: str, mlflow: Mlflow, _: Reader) -> Json:
    return {"model_version": version_json(mlflow.get_model_version(name, version))}


@router.get(_VERSIONS + "/search", summary="MLflow: search model versions")
def search_model_versions(
    mlflow: Mlflow,
    _: Reader,
    filter: str | None = None,
    max_results: int | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    page_token: str | None = None,
) -> Json:
    page = mlflow.search_model_versions(filter, max_results, order_by or [], page_token)
    body: Json = {"model_versions": [version_json(v) for v in page.items]}
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    return body


@router.patch(_VERSIONS + "/update", summary="MLflow: update a version's description")
def update_model_version(body: wire.UpdateModelVersion, mlflow: Mlflow, caller: Writer) -> Json:
    updated = mlflow.update_model_version(caller, body.name, body.version, body.description)
    return {"model_version": version_json(updated)}


@router.delete(_VERSIONS + "/delete", summary="MLflow: delete (archive and hide) a version")
def delete_model_version(body: wire.ModelVersionKey, mlflow: Mlflow, caller: Writer) -> Json:
    mlflow.delete_model_version(caller, body.name, body.version)
    return {}


@router.post(_VERSIONS + "/set-tag", summary="MLflow: set a model version tag")
def set_model_version_tag(body: wire.ModelVersionTag, mlflow: Mlflow, caller: Writer) -> Json:
    mlflow.set_model_version_tag(caller, body.name, body.version, body.key, body.value)
    return {}


@router.delete(_VERSIONS + "/delete-tag", summary="MLflow: delete a model version tag")
def delete_model_version_tag(body: wire.ModelVersionTagKey, mlflow: Mlflow, caller: Writer) -> Json:
    mlflow.delete_model_version_tag(caller, body.name, body.version, body.key)
    return {}


@router.get(_VERSIONS + "/get-download-uri", summary="MLflow: where a version's files are")
def get_model_version_download_uri(
    name: str, version: str, mlflow: Mlflow, _: Reader, request: Request
) -> Json:
    uri = mlflow.get_download_uri(name, version)
    if uri.startswith("/"):  # a version registered in Keel itself: its verified download
        uri = str(request.base_url).rstrip("/") + uri
    return {"artifact_uri": uri}


@router.post(
    _VERSIONS + "/transition-stage",
    summary="MLflow: move a version's stage ('Production' goes through the gates)",
)
def transition_model_version_stage(
    body: wire.TransitionStage, mlflow: Mlflow, caller: Writer
) -> Json:
    moved = mlflow.transition_stage(
        caller, body.name, body.version, body.stage, body.archive_existing_versions
    )
    return {"model_version": version_json(moved)}
