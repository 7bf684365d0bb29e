"""The registry's entities: teams, models, versions and what is recorded about each."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from keel.domain.lifecycle import VersionStatus
from keel.domain.signature import Signature


class RiskTier(StrEnum):
    """EU AI Act categories; filled in by governance. ``unassessed`` until then."""

    UNASSESSED = "unassessed"
    MINIMAL = "minimal"
    LIMITED = "limited"
    HIGH = "high"
    PROHIBITED = "prohibited"


class ArtifactFlavor(StrEnum):
    SKLEARN = "sklearn"
    JOBLIB = "joblib"
    PICKLE = "pickle"
    SKOPS = "skops"  # scikit-learn saved with skops.io: loads without running code
    ONNX = "onnx"
    OTHER = "other"


@dataclass(frozen=True)
class Team:
    name: str
    description: str
    created_at: datetime


@dataclass(frozen=True)
class Model:
    name: str
    team: str
    owner: str
    description: str = ""
    use_case: str = ""
    tags: tuple[str, ...] = ()
    risk_tier: RiskTier = RiskTier.UNASSESSED
    created_at: datetime | None = None
    updated_at: datetime | None = None
    latest_version: int = 0


@dataclass(frozen=True)
class Artifact:
    sha256: str
    size: int
    flavor: ArtifactFlavor
    filename: str


@dataclass(frozen=True)
class DatasetFingerprint:
    """SHA-256 of a dataset's canonical encoding, with its shape: enough to say "same data"."""

    sha256: str
    rows: int
    columns: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Lineage:
    training_data: DatasetFingerprint | None = None
    git_commit: str | None = None
    git_repo_url: str | None = None
    git_dirty: bool | None = None
    parent_version: int | None = None


@dataclass(frozen=True)
class Environment:
    python_version: str | None = None
    packages: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelCard:
    """What people need to know about a version; the last three are EU AI Act Annex IV fields."""

    intended_use: str = ""
    out_of_scope_uses: str = ""
    limitations: str = ""
    ethical_considerations: str = ""
    training_data: str = ""
    evaluation_data: str = ""
    caveats: str = ""
    human_oversight: str = ""  # Art. 14, Annex IV 2(e): who can intervene, how
    post_market_monitoring: str = ""  # Art. 72, Annex IV 9: the monitoring plan
    design_choices: str = ""  # Annex IV 2(b): key design choices, rationale and assumptions


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: int
    status: VersionStatus
    artifact: Artifact
    signature: Signature
    created_by: str
    created_at: datetime
    description: str = ""
    params: dict[str, ParamValue] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    lineage: Lineage = field(default_factory=Lineage)
    environment: Environment = field(default_factory=Environment)
    card: ModelCard = field(default_factory=ModelCard)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class AliasAssignment:
    """One period during which ``alias`` pointed at ``version``; open while not cleared."""

    model: str
    alias: str
    version: int
    set_by: str
    set_at: datetime
    cleared_by: str | None = None
    cleared_at: datetime | None = None


T = TypeVar("T")

ParamValue = str | int | float | bool | None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class VersionDraft:
    """What a client says about a new version; the registry adds artifact, number and times."""

    signature: Signature = field(default_factory=lambda: Signature(()))
    description: str = ""
    params: dict[str, ParamValue] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    lineage: Lineage = field(default_factory=Lineage)
    environment: Environment = field(default_factory=Environment)
    card: ModelCard = field(default_factory=ModelCard)


@dataclass(frozen=True)
class ModelChanges:
    """A partial update of a model; ``None`` leaves a field as it is."""

    team: str | None = None
    owner: str | None = None
    description: str | None = None
    use_case: str | None = None
    tags: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ModelQuery:
    team: str | None = None
    tag: str | None = None
    status: VersionStatus | None = None
    text: str | None = None
