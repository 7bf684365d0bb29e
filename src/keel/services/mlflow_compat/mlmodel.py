"""Understand an MLflow model directory by reading its files as data, never importing the model.

``MLmodel`` (YAML) names the flavors and the model file; ``python_env.yaml`` and
``requirements.txt`` give the environment; the signature's named input columns become the
version's feature columns. MLflow has no notion of a target, so the target column comes from the
``keel.target`` tag (on the version, else on the registered model); without it the performance
gate says what is missing.

The stored artifact is the flavor's own model file when Keel knows the format (scikit-learn via
skops, pickle or cloudpickle; ONNX), so Keel's scanner and gates judge it like any upload;
any other flavor is kept as a zip of the whole directory.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from keel.domain.registry import Environment
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.errors import InvalidInput

TARGET_TAG = "keel.target"

_TYPES = {
    "double": ColumnType.FLOAT,
    "float": ColumnType.FLOAT,
    "long": ColumnType.INTEGER,
    "integer": ColumnType.INTEGER,
    "boolean": ColumnType.BOOLEAN,
    "string": ColumnType.STRING,
    "datetime": ColumnType.DATETIME,
}


@dataclass(frozen=True)
class MlflowModelFiles:
    """What Keel stores and records for one MLflow model directory."""

    artifact: Path  # the file Keel stores (the model file, or a zip of the directory)
    filename: str
    flavors: tuple[str, ...]
    environment: Environment
    signature: Signature


def _yaml(path: Path, what: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(
            f"The model's {what} is not readable YAML ({type(exc).__name__}).",
            {"field": "source", "file": what},
        ) from None
    return loaded if isinstance(loaded, dict) else {}


def read_environment(directory: Path, mlmodel: dict[str, Any]) -> Environment:
    """Python version from python_env.yaml (or MLmodel), pinned packages from requirements.txt."""
    python = None
    env_file = directory / "python_env.yaml"
    if env_file.is_file():
        python = _yaml(env_file, "python_env.yaml").get("python")
    if python is None:
        python = mlmodel.get("flavors", {}).get("python_function", {}).get("python_version")
    packages: dict[str, str] = {}
    requirements = directory / "requirements.txt"
    if requirements.is_file():
        for line in requirements.read_text(encoding="utf-8", errors="replace").splitlines():
            spec = line.split("#", 1)[0].strip()
            if not spec or spec.startswith("-"):
                continue
            name, _, version = spec.partition("==")
            packages[name.strip()] = version.strip()
    return Environment(python_version=str(python) if python else None, packages=packages)


def read_signature(mlmodel: dict[str, Any], target: str | None) -> Signature:
    """Feature columns from a column-based MLflow signature, plus ``target`` when named."""
    signature = mlmodel.get("signature") or {}
    columns: list[Column] = []
    try:
        inputs = json.loads(signature.get("inputs") or "[]")
        outputs = json.loads(signature.get("outputs") or "[]")
    except (TypeError, ValueError):
        inputs, outputs = [], []
    for spec in inputs if isinstance(inputs, list) else []:
        name, kind = spec.get("name"), _TYPES.get(str(spec.get("type")))
        if not name or kind is None or name == target:
            continue  # a tensor signature names no columns: the version gets none
        columns.append(Column(str(name), kind, ColumnRole.FEATURE, not spec.get("required", True)))
    if target:
        first = outputs[0] if isinstance(outputs, list) and outputs else {}
        kind = _TYPES.get(str(first.get("type")), ColumnType.INTEGER)
        if first.get("type") == "tensor":
            dtype = str(first.get("tensor-spec", {}).get("dtype", ""))
            kind = ColumnType.FLOAT if dtype.startswith("float") else ColumnType.INTEGER
        columns.append(Column(target, kind, ColumnRole.TARGET))
    return Signature(tuple(columns))


def _zip(directory: Path) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(directory).as_posix())
    target = directory.parent / f"{directory.name}.zip"
    target.write_bytes(buffer.getvalue())
    return target


def read_model_directory(directory: Path, target: str | None = None) -> MlflowModelFiles:
    """The file Keel stores, with the flavors, environment and signature the directory says."""
    mlmodel_path = directory / "MLmodel"
    if not mlmodel_path.is_file():
        files = [p for p in directory.rglob("*") if p.is_file()]
        if len(files) == 1:  # a bare model file: Keel detects its format like any upload
            return MlflowModelFiles(files[0], files[0].name, (), Environment(), Signature(()))
        raise InvalidInput(
            "The source is neither an MLflow model directory (no MLmodel file) nor a single "
            "model file. Point it at the directory mlflow.<flavor>.log_model wrote.",
            {"field": "source"},
        )
    mlmodel = _yaml(mlmodel_path, "MLmodel")
    flavors = mlmodel.get("flavors") or {}
    model_file: str | None = None
    if "sklearn" in flavors:
        model_file = flavors["sklearn"].get("pickled_model")
    elif "onnx" in flavors:
        model_file = flavors["onnx"].get("data")
    artifact = directory / model_file if model_file else None
    if (
        artifact is None
        or not artifact.is_file()
        or not artifact.resolve().is_relative_to(directory.resolve())
    ):
        artifact = _zip(directory)
    return MlflowModelFiles(
        artifact=artifact,
        filename=artifact.name,
        flavors=tuple(sorted(flavors)),
        environment=read_environment(directory, mlmodel),
        signature=read_signature(mlmodel, target),
    )
