"""Governance over REST: policies, the gates, sign-off and promotion (with break-glass).

Every route declares its permission; the governance service checks again against the model's
team (write to run gates or promote, approve to sign off, admin to apply a policy or break glass).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from keel.api.deps import Admin, Reader, Writer, get_backend, requires
from keel.api.routers import API_PREFIX
from keel.api.routers.jobs import job_out
from keel.domain import governance as g
from keel.domain.permissions import Permission, Principal
from keel.domain.policy import policy_to_dict
from keel.errors import InvalidInput
from keel.schemas.base import MAX_INT64, Id
from keel.schemas.governance import (
    ApprovalOut,
    DecisionIn,
    GateResultOut,
    GateStateOut,
    PipelineStatusOut,
    PolicyIn,
    PolicyOut,
    PromoteIn,
    PromotionOut,
)
from keel.schemas.jobs import JobOut
from keel.services.backend import Backend
from keel.services.governance import Governance
from keel.services.job_kinds import queue_gate_run


def get_governance(backend: Annotated[Backend, Depends(get_backend)]) -> Governance:
    return backend.governance


GovernanceDep = Annotated[Governance, Depends(get_governance)]
BackendDep = Annotated[Backend, Depends(get_backend)]
Approver = Annotated[Principal, Depends(requires(Permission.APPROVE))]

router = APIRouter(prefix=API_PREFIX, tags=["governance"])
_VERSION = "/models/{name}/versions/{version}"


# -- converters (domain -> wire) -----------------------------------------------------------------


def policy_out(record: g.PolicyRecord) -> PolicyOut:
    return PolicyOut(
        tier=record.tier,
        version=record.version,
        source=record.source,
        sha256=record.sha256,
        created_by=record.created_by,
        created_at=record.created_at,
        policy=policy_to_dict(record.policy),
    )


def result_out(result: g.GateResult) -> GateResultOut:
    return GateResultOut(
        id=result.id,
        model=result.model,
        version=result.version,
        gate=result.gate,
        outcome=result.outcome,
        evidence=dict(result.evidence),
        policy_tier=result.policy_tier,
        policy_version=result.policy_version,
        evaluated_by=result.evaluated_by,
        evaluated_at=result.evaluated_at,
        evidence_digest=result.evidence_digest,
    )


def approval_out(approval: g.Approval) -> ApprovalOut:
    return ApprovalOut(
        id=approval.id,
        model=approval.model,
        version=approval.version,
        decision=approval.decision,
        actor=approval.actor,
        teams=list(approval.teams),
        comment=approval.comment,
        decided_at=approval.decided_at,
        void=approval.void,
        void_reason=approval.void_reason,
        saw=dict(approval.saw or {}),
    )


def status_out(status: g.PipelineStatus) -> PipelineStatusOut:
    return PipelineStatusOut(
        model=status.model,
        version=status.version,
        tier=status.tier,
        policy_version=status.policy_version,
        gates=[
            GateStateOut(
                gate=s.gate,
                required=s.required,
                outcome=s.outcome,
                to_pass=s.to_pass,
                result=None if s.result is None else result_out(s.result),
            )
            for s in status.gates
        ],
        approvals=[approval_out(a) for a in status.approvals],
        promotable=status.promotable,
        blockers=list(status.blockers),
    )


def promotion_out(promotion: g.Promotion) -> PromotionOut:
    return PromotionOut(
        id=promotion.id,
        model=promotion.model,
        version=promotion.version,
        previous_version=promotion.previous_version,
        promoted_by=promotion.promoted_by,
        promoted_at=promotion.promoted_at,
        break_glass=promotion.break_glass,
        justification=promotion.justification,
        policy_tier=promotion.policy_tier,
        policy_version=promotion.policy_version,
        overridden=list(promotion.overridden),
    )


# -- policies ------------------------------------------------------------------------------------


@router.get("/policies", summary="The policy in force for each risk tier")
def list_policies(governance: GovernanceDep, _: Reader) -> list[PolicyOut]:
    return [policy_out(p) for p in governance.current_policies()]


@router.post("/policies", status_code=201, summary="Apply a policy file (admins; a new version)")
def apply_policy(body: PolicyIn, governance: GovernanceDep, caller: Admin) -> PolicyOut:
    return policy_out(governance.apply_policy(caller, body.source, body.filename))


@router.get("/policies/{tier}", summary="A tier's policy (the newest, or ?version=N)")
def get_policy(
    tier: str,
    governance: GovernanceDep,
    _: Reader,
    version: Annotated[int | None, Query(ge=0, le=MAX_INT64)] = None,
) -> PolicyOut:
    return policy_out(governance.policy(tier, version))


@router.get("/policies/{tier}/versions", summary="Every version of a tier's policy")
def policy_versions(tier: str, governance: GovernanceDep, _: Reader) -> list[PolicyOut]:
    return [policy_out(p) for p in governance.policy_versions(tier)]


# -- gates ---------------------------------------------------------------------------------------


@router.post(
    _VERSION + "/gates/run",
    status_code=202,
    summary="Queue a run of gates 1-3 (performance, security, fairness); 202: follow the job",
)
def run_gates(name: str, version: Id, backend: BackendDep, caller: Writer) -> JobOut:
    job = queue_gate_run(backend.jobs, backend.governance, caller, name, version)
    return job_out(job)


@router.get(_VERSION + "/gates", summary="The version's pipeline: each gate, sign-off, blockers")
def gate_status(name: str, version: Id, governance: GovernanceDep, _: Reader) -> PipelineStatusOut:
    return status_out(governance.status(name, version))


@router.get(_VERSION + "/gates/history", summary="Every stored gate result, oldest first")
def gate_history(
    name: str, version: Id, governance: GovernanceDep, _: Reader
) -> list[GateResultOut]:
    return [result_out(r) for r in governance.gate_results(name, version)]


# -- sign-off ------------------------------------------------------------------------------------


@router.post(_VERSION + "/approvals", status_code=201, summary="Approve or reject, with a comment")
def decide(
    name: str, version: Id, body: DecisionIn, governance: GovernanceDep, caller: Approver
) -> ApprovalOut:
    if body.decision == g.Decision.APPROVE:
        return approval_out(governance.approve(caller, name, version, body.comment))
    return approval_out(governance.reject(caller, name, version, body.comment))


@router.get(_VERSION + "/approvals", summary="Every decision on the version, void ones marked")
def list_approvals(
    name: str, version: Id, governance: GovernanceDep, _: Reader
) -> list[ApprovalOut]:
    return [approval_out(a) for a in governance.approvals(name, version)]


# -- promotion -----------------------------------------------------------------------------------


@router.post(_VERSION + "/promote", summary="Set the production alias (409 lists what blocks it)")
def promote(
    name: str,
    version: Id,
    governance: GovernanceDep,
    caller: Writer,
    body: PromoteIn | None = None,
) -> PromotionOut:
    body = body or PromoteIn()
    if not body.break_glass and body.justification.strip():
        raise InvalidInput(
            "A 'justification' is only for break-glass; set 'break_glass': true to override "
            "the gates, or leave the justification out.",
            {"field": "justification"},
        )
    justification = body.justification if body.break_glass else None
    return promotion_out(governance.promote(caller, name, version, justification=justification))


@router.get("/models/{name}/promotions", summary="Every promotion of the model, oldest first")
def list_promotions(name: str, governance: GovernanceDep, _: Reader) -> list[PromotionOut]:
    return [promotion_out(p) for p in governance.promotions(name)]
