"""Wire models for governance: policies, gate results, the pipeline, sign-off and promotion."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from keel.domain.governance import Decision, Gate, GateOutcome
from keel.schemas.base import WireIn, WireOut

MAX_POLICY_CHARS = 256 * 1024
Comment = Annotated[str, Field(max_length=10_000)]


class PolicyIn(WireIn):
    """A policy file's YAML text; ``filename`` is only used in error messages."""

    source: Annotated[str, Field(max_length=MAX_POLICY_CHARS)]
    filename: Annotated[str, Field(max_length=256)] = "policy.yaml"


class PolicyOut(WireOut):
    tier: str
    version: int  # 0: the built-in default, not yet recorded
    source: str
    sha256: str
    created_by: str
    created_at: datetime
    policy: dict[str, Any]


class GateResultOut(WireOut):
    id: int
    model: str
    version: int
    gate: Gate
    outcome: GateOutcome
    evidence: dict[str, Any]
    policy_tier: str
    policy_version: int
    evaluated_by: str
    evaluated_at: datetime
    evidence_digest: str


class ApprovalOut(WireOut):
    id: int
    model: str
    version: int
    decision: Decision
    actor: str
    teams: list[str]
    comment: str
    decided_at: datetime
    void: bool
    void_reason: str | None = None
    saw: dict[str, str] = Field(default_factory=dict)


class GateStateOut(WireOut):
    gate: Gate
    required: bool
    outcome: GateOutcome
    to_pass: str
    result: GateResultOut | None = None


class PipelineStatusOut(WireOut):
    model: str
    version: int
    tier: str
    policy_version: int
    gates: list[GateStateOut]
    approvals: list[ApprovalOut]
    promotable: bool
    blockers: list[str]


class DecisionIn(WireIn):
    decision: Decision
    comment: Comment


class PromoteIn(WireIn):
    """``break_glass`` overrides failing gates (admins only) and needs a ``justification``."""

    break_glass: bool = False
    justification: Comment = ""


class PromotionOut(WireOut):
    id: int
    model: str
    version: int
    previous_version: int | None
    promoted_by: str
    promoted_at: datetime
    break_glass: bool
    justification: str
    policy_tier: str | None = None
    policy_version: int | None = None
    overridden: list[str] = Field(default_factory=list)
