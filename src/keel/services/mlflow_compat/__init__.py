"""MLflow interoperability: MLflow's Model Registry REST API over Keel's registry
(`MlflowRegistry`), and ``keel import mlflow`` (`importer`).

Keel never needs the ``mlflow`` package at run time: it speaks MLflow's REST API with httpx and
reads model directories (``MLmodel``, ``python_env.yaml``, ``requirements.txt``) as data.
"""

from __future__ import annotations

from keel.services.mlflow_compat.registry import (
    MlflowRegistry,
    ModelView,
    ResourceAlreadyExists,
    ResultPage,
    VersionView,
)
from keel.services.mlflow_compat.sources import ModelSources
from keel.store.sql.audit import recorded_route

__all__ = [
    "MlflowRegistry",
    "ModelSources",
    "ModelView",
    "ResourceAlreadyExists",
    "ResultPage",
    "VersionView",
    "recorded_route",
]
