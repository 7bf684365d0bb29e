"""The governance pipeline's vocabulary: gates, their stored results, sign-off and promotion.

A version reaches production through four gates, in this order::

    performance -> security -> fairness -> signoff -> production

Each gate run is stored as a `GateResult` with its evidence, the risk tier and policy version it
was judged under, who ran it and when, and ``evidence_digest``: the SHA-256 of the canonical JSON
of ``{"gate", "outcome", "evidence"}`` (`evidence_digest`). An approval records the digests of the
gate results it saw; a re-run that produces a different digest voids it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from keel.domain.policy import Policy


class Gate(StrEnum):
    PERFORMANCE = "performance"
    SECURITY = "security"
    FAIRNESS = "fairness"
    SIGNOFF = "signoff"


GATE_ORDER: tuple[Gate, ...] = (Gate.PERFORMANCE, Gate.SECURITY, Gate.FAIRNESS, Gate.SIGNOFF)
# The gates whose evidence an approver signs off on.
EVIDENCE_GATES: tuple[Gate, ...] = (Gate.PERFORMANCE, Gate.SECURITY, Gate.FAIRNESS)


class GateOutcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    PENDING = "pending"  # not run yet, run under an older policy, or waiting for approvals
    ERROR = "error"  # could not be judged (e.g. the evaluation crashed or timed out)
    NOT_REQUIRED = "not_required"  # the tier's policy does not ask for this gate


@dataclass(frozen=True)
class GateResult:
    id: int
    model: str
    version: int
    gate: Gate
    outcome: GateOutcome
    evidence: Mapping[str, Any]
    policy_tier: str
    policy_version: int
    evaluated_by: str
    evaluated_at: datetime
    evidence_digest: str


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True)
class Approval:
    id: int
    model: str
    version: int
    decision: Decision
    actor: str
    teams: tuple[str, ...]
    comment: str
    decided_at: datetime
    void: bool
    void_reason: str | None
    # gate -> evidence digest of the result the approver saw (performance, security, fairness)
    saw: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Promotion:
    id: int
    model: str
    version: int
    previous_version: int | None
    promoted_by: str
    promoted_at: datetime
    break_glass: bool
    justification: str
    policy_version: int | None
    policy_tier: str | None = None
    # For break-glass: the blockers that were overridden, in words.
    overridden: tuple[str, ...] = ()


@dataclass(frozen=True)
class GateState:
    gate: Gate
    required: bool
    outcome: GateOutcome
    result: GateResult | None
    to_pass: str  # what would make it pass, in words ("" when it passed or is not required)


@dataclass(frozen=True)
class PipelineStatus:
    model: str
    version: int
    tier: str
    policy_version: int
    gates: tuple[GateState, ...]
    approvals: tuple[Approval, ...]
    promotable: bool
    blockers: tuple[str, ...]


@dataclass(frozen=True)
class PolicyRecord:
    """One version of a tier's policy. Version 0 is the built-in default, not yet recorded."""

    tier: str
    version: int
    source: str
    created_by: str
    created_at: datetime
    policy: Policy
    sha256: str = ""


def canonical_json(data: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: one text per value, for hashing.

    >>> canonical_json({"b": 1, "a": [1.5, None]})
    '{"a":[1.5,null],"b":1}'
    """
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def evidence_digest(gate: Gate, outcome: GateOutcome, evidence: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a gate's outcome and evidence."""
    payload = {"gate": str(gate), "outcome": str(outcome), "evidence": evidence}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()
