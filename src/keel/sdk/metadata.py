"""Everything a version records besides its artifact, gathered on the training machine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.schemas import (
    DatasetFingerprintSpec,
    EnvironmentSpec,
    ModelCardSpec,
    SignatureSpec,
    VersionIn,
)
from keel.sdk import lineage
from keel.sdk.validation import finite_metrics, plain_params, validated

if TYPE_CHECKING:
    # pandas (about a second to import) is loaded only when training data is given.
    import pandas as pd


def version_metadata(
    *,
    training_data: pd.DataFrame | None = None,
    target: str | None = None,
    protected_attributes: Iterable[str] = (),
    metrics: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    card: ModelCardSpec | Mapping[str, Any] | None = None,
    description: str = "",
    signature: SignatureSpec | Mapping[str, Any] | None = None,
    parent_version: int | None = None,
    capture_git: bool = True,
    environment: EnvironmentSpec | None = None,
    cwd: Path | None = None,
) -> VersionIn:
    """The ``metadata`` part of a version upload, checked before anything is sent.

    The signature is inferred from ``training_data`` unless one is given; the data's fingerprint
    and the git checkout at ``cwd`` (default: the working directory) go into the lineage.
    """
    protected = (
        [protected_attributes]
        if isinstance(protected_attributes, str)
        else list(protected_attributes)
    )
    if training_data is None and (target is not None or protected):
        raise InvalidInput(
            "target and protected_attributes name columns of training_data; pass training_data "
            "too, or describe the columns with signature=.",
            {"field": "training_data"},
        )
    if training_data is not None and type(training_data).__module__.split(".")[0] != "pandas":
        raise InvalidInput(
            f"training_data must be a pandas DataFrame. Got {type(training_data).__name__}.",
            {"field": "training_data"},
        )

    data_fingerprint: DatasetFingerprintSpec | None = None
    inferred = SignatureSpec()
    if training_data is not None:
        from keel.sdk.dataset import fingerprint, infer_signature

        inferred = infer_signature(training_data, target, protected)
        data_fingerprint = fingerprint(training_data)

    git = _git_fields(cwd) if capture_git else {}
    fields = {
        "description": description,
        "signature": inferred
        if signature is None
        else validated(SignatureSpec, signature, "signature"),
        "params": plain_params(params),
        "metrics": finite_metrics(metrics),
        "lineage": {"training_data": data_fingerprint, "parent_version": parent_version, **git},
        "environment": lineage.capture_environment() if environment is None else environment,
        "card": validated(ModelCardSpec, card or {}, "card"),
    }
    return validated(VersionIn, fields, "version metadata")


def _git_fields(cwd: Path | None) -> dict[str, Any]:
    state = lineage.capture_git(cwd)
    return {"git_commit": state.commit, "git_repo_url": state.repo_url, "git_dirty": state.dirty}


def with_provenance(
    metadata: VersionIn,
    *,
    capture_git: bool = True,
    cwd: Path | None = None,
    capture_environment: bool = True,
) -> VersionIn:
    """``metadata`` with the git checkout and this Python environment filled in where it has none.

    For metadata prepared elsewhere (the CLI's ``--metadata`` file): what it says is kept. The
    CLI passes ``capture_environment=False``: its interpreter is Keel's, not the model's.
    """
    updates: dict[str, Any] = {}
    recorded = metadata.lineage
    git_known = (recorded.git_commit, recorded.git_repo_url, recorded.git_dirty) != (None,) * 3
    if capture_git and not git_known:
        updates["lineage"] = {**recorded.model_dump(), **_git_fields(cwd)}
    if capture_environment and metadata.environment == EnvironmentSpec():
        updates["environment"] = lineage.capture_environment()
    return validated(VersionIn, {**metadata.model_dump(), **updates}, "version metadata")
