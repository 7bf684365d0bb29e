"""What the SDK returns: the wire models, with conveniences a Python user reaches for."""

from __future__ import annotations

from keel.schemas import VersionOut


class ModelVersion(VersionOut):
    """A registered model version, as the server recorded it."""

    @property
    def artifact_sha256(self) -> str:
        """SHA-256 (hex) of the artifact's bytes: what a download is checked against."""
        return self.artifact.sha256
