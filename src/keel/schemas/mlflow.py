"""The request bodies of MLflow's Model Registry REST API (``model_registry.proto``).

MLflow clients of different versions send fields Keel does not use (``deployment_job_id``,
``model_id``, ...); like MLflow's own server, Keel ignores unknown fields rather than refuse them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MlflowIn(BaseModel):
    model_config = ConfigDict(extra="ignore")


class MlflowTag(MlflowIn):
    key: str
    value: str = ""


class CreateRegisteredModel(MlflowIn):
    name: str
    tags: list[MlflowTag] = Field(default_factory=list)
    description: str = ""


class RegisteredModelName(MlflowIn):
    name: str


class UpdateRegisteredModel(MlflowIn):
    name: str
    description: str = ""


class RenameRegisteredModel(MlflowIn):
    name: str
    new_name: str = ""


class RegisteredModelTag(MlflowIn):
    name: str
    key: str
    value: str = ""


class RegisteredModelTagKey(MlflowIn):
    name: str
    key: str


class GetLatestVersions(MlflowIn):
    name: str
    stages: list[str] = Field(default_factory=list)


class SetAlias(MlflowIn):
    name: str
    alias: str
    version: str


class DeleteAlias(MlflowIn):
    name: str
    alias: str


class CreateModelVersion(MlflowIn):
    name: str
    source: str = ""
    run_id: str = ""
    tags: list[MlflowTag] = Field(default_factory=list)
    run_link: str = ""
    description: str = ""
    # Keel's one addition, used by `keel import mlflow`: keep the number the version had in
    # the registry it comes from. Refused when that number is taken.
    keel_version: int | None = Field(default=None, ge=1, le=2**31 - 1)


class ModelVersionKey(MlflowIn):
    name: str
    version: str


class UpdateModelVersion(MlflowIn):
    name: str
    version: str
    description: str = ""


class ModelVersionTag(MlflowIn):
    name: str
    version: str
    key: str
    value: str = ""


class ModelVersionTagKey(MlflowIn):
    name: str
    version: str
    key: str


class TransitionStage(MlflowIn):
    name: str
    version: str
    stage: str
    archive_existing_versions: bool = False
