"""Wire models for teams, models, versions and aliases."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, Field, field_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from keel.domain.lifecycle import VersionStatus
from keel.domain.registry import ArtifactFlavor, RiskTier
from keel.domain.signature import ColumnRole, ColumnType
from keel.schemas.base import Id, WireIn, WireOut

T = TypeVar("T")

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Text = Annotated[str, Field(max_length=10_000)]
ShortText = Annotated[str, Field(max_length=256)]
ParamValue = str | int | float | bool | None


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class TeamIn(WireIn):
    name: ShortText
    description: Text = ""


class TeamOut(WireOut):
    name: str
    description: str
    created_at: datetime


class ModelIn(WireIn):
    name: ShortText
    team: ShortText
    owner: ShortText
    description: Text = ""
    use_case: Text = ""
    tags: list[ShortText] = Field(default_factory=list, max_length=64)


class ModelPatch(WireIn):
    """Fields to change; those left out stay as they are.

    ``risk_tier`` is not one of them: a tier comes only from a risk assessment.
    """

    team: ShortText | None = None
    owner: ShortText | None = None
    description: Text | None = None
    use_case: Text | None = None
    tags: list[ShortText] | None = Field(default=None, max_length=64)

    # Accepted only to be refused with directions (hidden from the OpenAPI schema).
    risk_tier: SkipJsonSchema[Any] = Field(default=None, exclude=True)

    @field_validator("risk_tier")
    @classmethod
    def _no_risk_tier(cls, value: Any) -> Any:
        raise PydanticCustomError(
            "risk_tier_read_only",
            "a model's risk tier is set only by a risk assessment: run `keel risk assess MODEL` "
            "(or POST /api/v1/models/{name}/risk-assessments); changing a tier needs an approver",
        )


class ModelOut(WireOut):
    name: str
    team: str
    owner: str
    description: str
    use_case: str
    tags: list[str]
    risk_tier: RiskTier
    latest_version: int
    created_at: datetime
    updated_at: datetime


class ColumnSpec(WireIn):
    name: ShortText
    dtype: ColumnType
    role: ColumnRole = ColumnRole.FEATURE
    nullable: bool = True


class SignatureSpec(WireIn):
    columns: list[ColumnSpec] = Field(default_factory=list, max_length=10_000)


class ColumnSchema(WireIn):
    name: ShortText
    dtype: ShortText


class DatasetFingerprintSpec(WireIn):
    sha256: Sha256
    rows: int = Field(ge=0)
    columns: list[ColumnSchema] = Field(max_length=10_000)


class LineageSpec(WireIn):
    training_data: DatasetFingerprintSpec | None = None
    git_commit: Annotated[str, Field(pattern=r"^[0-9a-f]{7,64}$")] | None = None
    git_repo_url: ShortText | None = None
    git_dirty: bool | None = None
    parent_version: Id | None = None


class EnvironmentSpec(WireIn):
    python_version: ShortText | None = None
    packages: dict[ShortText, ShortText] = Field(default_factory=dict, max_length=5_000)


class ModelCardSpec(WireIn):
    intended_use: Text = ""
    out_of_scope_uses: Text = ""
    limitations: Text = ""
    ethical_considerations: Text = ""
    training_data: Text = ""
    evaluation_data: Text = ""
    caveats: Text = ""
    human_oversight: Text = ""
    post_market_monitoring: Text = ""
    design_choices: Text = ""


class VersionIn(WireIn):
    """The JSON ``metadata`` part of a version upload; the artifact travels as the file part."""

    description: Text = ""
    signature: SignatureSpec = Field(default_factory=SignatureSpec)
    params: dict[ShortText, ParamValue] = Field(default_factory=dict, max_length=1_000)
    metrics: dict[ShortText, float] = Field(default_factory=dict, max_length=1_000)
    lineage: LineageSpec = Field(default_factory=LineageSpec)
    environment: EnvironmentSpec = Field(default_factory=EnvironmentSpec)
    card: ModelCardSpec = Field(default_factory=ModelCardSpec)

    @field_validator("metrics")
    @classmethod
    def _finite_metrics(cls, metrics: dict[str, float]) -> dict[str, float]:
        for name, value in metrics.items():
            if not math.isfinite(value):
                raise ValueError(
                    f"metric {name!r} is {value}; metrics must be finite numbers "
                    "(leave the metric out if it could not be computed)"
                )
        return metrics


class ArtifactOut(WireOut):
    sha256: str
    size: int
    flavor: ArtifactFlavor
    filename: str


class VersionOut(WireOut):
    model: str
    version: int
    status: VersionStatus
    description: str
    artifact: ArtifactOut
    signature: SignatureSpec
    params: dict[str, ParamValue]
    metrics: dict[str, float]
    lineage: LineageSpec
    environment: EnvironmentSpec
    card: ModelCardSpec
    aliases: list[str]
    created_by: str
    created_at: datetime


class StatusChange(WireIn):
    status: VersionStatus
    reason: Text = ""


class AliasIn(WireIn):
    version: Id


class AliasOut(WireOut):
    model: str
    alias: str
    version: int
    set_by: str
    set_at: datetime
    cleared_by: str | None = None
    cleared_at: datetime | None = None
