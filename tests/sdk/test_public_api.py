"""The public names are a promise: a change to them must be a decision, not an accident."""

from __future__ import annotations

import keel
import keel.sdk


def test_keel_exports_exactly_the_client_the_version_type_and_the_version() -> None:
    assert keel.__all__ == ["Client", "ModelVersion", "__version__"]
    for name in keel.__all__:
        assert getattr(keel, name) is not None


def test_the_sdk_exports_exactly_its_curated_names() -> None:
    assert keel.sdk.__all__ == ["Client", "ModelVersion"]
    assert keel.Client is keel.sdk.Client
    assert keel.ModelVersion is keel.sdk.ModelVersion


def test_the_version_is_the_installed_distribution() -> None:
    assert keel.__version__ != "0+unknown"
    assert keel.__version__.count(".") >= 1


def test_model_version_offers_the_artifact_hash() -> None:
    assert isinstance(keel.ModelVersion.artifact_sha256, property)
