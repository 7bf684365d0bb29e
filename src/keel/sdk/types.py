"""What the SDK returns: the wire models, with conveniences a Python user reaches for."""

from __future__ import annotations

from pydantic import Field

from keel.schemas import TokenCreated, VersionOut


class ModelVersion(VersionOut):
    """A registered model version, as the server recorded it."""

    @property
    def artifact_sha256(self) -> str:
        """SHA-256 (hex) of the artifact's bytes: what a download is checked against."""
        return self.artifact.sha256


class NewToken(TokenCreated):
    """A token just created: ``token`` is its secret, shown this once and kept out of reprs."""

    token: str = Field(repr=False, description="Shown once: Keel keeps only its SHA-256.")
