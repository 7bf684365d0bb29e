"""Governance: the four gates, management sign-off and promotion, under the tier's policy.

```
performance -> security -> fairness -> signoff -> production
```

The rules a version lives by (see also ``keel.services.gates.*`` for each gate's own rules):

- **Policy.** The model's risk tier (``Model.risk_tier``, set by the risk assessment) picks the
  policy. Each tier has a default Keel ships (``default_policies/<tier>.yaml``); an admin replaces
  it with `apply_policy`, and every apply is a new version. Until a tier's policy is first used
  or replaced, `policy` reports the default as version 0; the first gate run records it as
  version 1. An *unassessed* model is judged by the unassessed policy, which by default is as
  strict as the high-risk one. A *prohibited* model is never promoted, not even by break-glass.
- **Gates 1-3** run together (`run_gates`, needs write access in the model's team): Keel runs
  the artifact on the version's evaluation data in a separate process (once; gates 1 and 3 share
  the report). An artifact without a clean scan is never loaded: gate 1 and 3 are ERROR with
  "not loaded: failed security scan". Every result is stored with its evidence, the tier and
  policy version, the time, who ran it, and the evidence digest; every run is audited.
- **Stale results.** A stored result only counts while it was judged under the tier's current
  policy version, on the evaluation data attached now, and (for relative thresholds) against
  the version in production now; otherwise the gate is PENDING until the gates are run again.
- **Sign-off.** Approving or rejecting needs the approver role in the model's team or in a team
  the policy asks approvals from, a person (not a service account) and a comment. Whoever
  registered the version cannot approve it (separation of duties). Approvals are accepted only
  once every required gate 1-3 has passed; each approval records the evidence digests it saw,
  and is void as soon as a re-run of those gates produces a different digest. A rejection ends
  the candidacy: the version is archived and can never be promoted; register a new version.
- **Promotion** (write access in the model's team) sets the ``production`` alias only when every
  required gate passed; otherwise `Conflict` (409) lists each failing or missing gate and what
  would make it pass. The previous production version is retired and recorded for rollback.
  **Break-glass**: an admin may promote despite failing gates with a written justification;
  the promotion is flagged forever (`Promotion.break_glass`) and audited with the blockers it
  overrode. It cannot revive a rejected (archived) version or a prohibited model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from keel.domain.evaluation import EvaluationReport, EvaluationSpec
from keel.domain.governance import (
    EVIDENCE_GATES,
    GATE_ORDER,
    Approval,
    Decision,
    Gate,
    GateOutcome,
    GateResult,
    GateState,
    PipelineStatus,
    PolicyRecord,
    Promotion,
    evidence_digest,
)
from keel.domain.lifecycle import VersionStatus
from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, PrincipalKind, allows, authorize
from keel.domain.policy import Policy, SignoffPolicy, policy_to_dict
from keel.domain.registry import Model, ModelVersion, RiskTier
from keel.domain.signature import ColumnRole
from keel.errors import Conflict, InvalidInput, KeelError, NotFound, PermissionDenied
from keel.services import policies
from keel.services.evaluation import Evaluation
from keel.services.gates import Verdict
from keel.services.gates import fairness as fairness_gate
from keel.services.gates import performance as performance_gate
from keel.services.gates import security as security_gate
from keel.services.gates import signoff as signoff_gate
from keel.services.registry import Registry
from keel.store.sql.governance import (
    NewGateResult,
    NewPromotion,
    RollbackNote,
    SqlGovernanceStore,
)

MAX_COMMENT = 10_000
NOT_LOADED = "not loaded: failed security scan"


@dataclass(frozen=True)
class RollbackPlan:
    """Where a rollback would move ``production`` (``target``) and what blocks it."""

    model: str
    current: int | None
    target: int | None
    blockers: tuple[str, ...]


@dataclass(frozen=True)
class _Evaluated:
    """What the evaluation step produced for gates 1 and 3."""

    report: EvaluationReport | None
    unavailable: tuple[GateOutcome, str, str] | None
    dataset: dict[str, Any] | None
    production: performance_gate.Production


def _latest(results: Sequence[GateResult]) -> dict[Gate, GateResult]:
    latest: dict[Gate, GateResult] = {}
    for result in results:
        latest[result.gate] = result
    return latest


def _text(value: str, field: str, what: str) -> str:
    text = value.strip()
    if not text:
        raise InvalidInput(f"The '{field}' is required: {what}.", {"field": field})
    if len(text) > MAX_COMMENT:
        raise InvalidInput(
            f"The '{field}' is {len(text)} characters; keep it under {MAX_COMMENT}.",
            {"field": field},
        )
    return text


log = logging.getLogger("keel.governance")

# Called with (event type, JSON-ready payload) after a change commits: gate.completed,
# gate.signoff, promotion.completed, promotion.break_glass, rollback.completed.
Listener = Callable[[str, Mapping[str, Any]], object]


def _promotion_payload(promotion: Promotion) -> dict[str, Any]:
    return {
        "model": promotion.model,
        "version": promotion.version,
        "previous_version": promotion.previous_version,
        "promoted_by": promotion.promoted_by,
        "promoted_at": promotion.promoted_at.isoformat(),
        "break_glass": promotion.break_glass,
        "justification": promotion.justification,
        "policy_version": promotion.policy_version,
    }


class Governance:
    """The gates, sign-off and promotion of model versions."""

    def __init__(
        self, store: SqlGovernanceStore, registry: Registry, evaluation: Evaluation
    ) -> None:
        self.store = store
        self.registry = registry
        self.evaluation = evaluation
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event_type, payload)`` after each committed gate run, decision,
        promotion and rollback (the notifications outbox subscribes here)."""
        self._listeners.append(listener)

    def _announce(self, event: str, payload: Mapping[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(event, payload)
            except Exception:  # the change is committed: a listener's failure must not hide it
                log.exception("governance listener failed on %s", event)

    # -- policies -------------------------------------------------------------------------------

    def _default(self, tier: RiskTier) -> PolicyRecord:
        source = policies.default_source(tier)
        return PolicyRecord(
            tier=str(tier),
            version=0,
            source=source,
            created_by="keel (built-in default)",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
            policy=policies.parse(source, f"default_policies/{tier}.yaml"),
            sha256=policies.digest(source),
        )

    def policy(self, tier: str, version: int | None = None) -> PolicyRecord:
        """The tier's policy: the newest version, or ``version`` (0 is the built-in default)."""
        checked = policies.check_tier(tier)
        if version == 0:
            return self._default(checked)
        if version is None:
            return self.store.latest_policy(str(checked)) or self._default(checked)
        found = self.store.policy(str(checked), version)
        if found is None:
            raise NotFound(
                f"The {checked} policy has no version {version}.",
                {"tier": str(checked), "version": version},
            )
        return found

    def policy_versions(self, tier: str) -> list[PolicyRecord]:
        """Every recorded version of the tier's policy, oldest first (the default if none)."""
        checked = policies.check_tier(tier)
        return self.store.policy_versions(str(checked)) or [self._default(checked)]

    def current_policies(self) -> list[PolicyRecord]:
        """The policy in force for each risk tier."""
        return [self.policy(str(tier)) for tier in RiskTier]

    def apply_policy(
        self, by: Principal, source: str, filename: str = "policy.yaml"
    ) -> PolicyRecord:
        """Validate a policy file and store it as its tier's next version (admins only)."""
        authorize(by, Permission.ADMIN)
        policy = policies.parse(source, filename or "policy.yaml")
        return self.store.add_policy(
            str(policy.tier), source, policy_to_dict(policy), policies.digest(source), by.name
        )

    def _recorded_policy(self, tier: RiskTier) -> PolicyRecord:
        """The policy in force, recorded as version 1 first if it is still the default."""
        current = self.policy(str(tier))
        if current.version > 0:
            return current
        return self.store.add_policy(
            str(tier),
            current.source,
            policy_to_dict(current.policy),
            current.sha256,
            "keel",
            action="policy.adopt_default",
            only_if_none=True,
        )

    # -- reading --------------------------------------------------------------------------------

    def gate_results(self, model: str, version: int) -> list[GateResult]:
        """Every stored gate result of the version, oldest first."""
        return self.store.gate_results(check_name(model, "model"), version)

    def approvals(self, model: str, version: int) -> list[Approval]:
        """Every approval and rejection of the version, oldest first, void ones marked."""
        return self.store.approvals(check_name(model, "model"), version)

    def promotions(self, model: str) -> list[Promotion]:
        """Every promotion of the model, oldest first, break-glass ones flagged."""
        return self.store.promotions(check_name(model, "model"))

    def _production_version(self, model: str) -> int | None:
        for alias in self.registry.current_aliases(model):
            if alias.alias == "production":
                return alias.version
        return None

    def _rollback_target(self, model: str) -> tuple[int | None, int | None]:
        """(the production version, the version it replaced: where a rollback would go)."""
        current = self._production_version(model)
        if current is None:
            return None, None
        history = self.store.promotions(model)
        placed = next((p for p in reversed(history) if p.version == current), None)
        return current, None if placed is None else placed.previous_version

    def _stale(
        self,
        result: GateResult,
        record: PolicyRecord,
        dataset_sha: str | None,
        production: int | None,
        version: int,
        *,
        rollback: bool = False,
    ) -> str | None:
        if (result.policy_tier, result.policy_version) != (record.tier, record.version):
            return (
                f"it was judged under the {result.policy_tier} policy v{result.policy_version}; "
                f"the {record.tier} policy v{record.version} is in force now"
            )
        if result.gate in (Gate.PERFORMANCE, Gate.FAIRNESS):
            seen = result.evidence.get("dataset")
            seen_sha = seen.get("sha256") if isinstance(seen, dict) else None
            if seen_sha is not None and seen_sha != dataset_sha:
                return "the evaluation data attached to the version changed since"
        if (
            not rollback
            and result.gate == Gate.PERFORMANCE
            and record.policy.performance is not None
            and record.policy.performance.max_drop_vs_production
            and result.outcome != GateOutcome.ERROR
            and "production_version" in result.evidence
        ):
            compared = result.evidence.get("production_version")
            now = None if production == version else production
            if compared != now and not (compared is None and now is None):
                return (
                    f"it compared against production version {compared}; production is now "
                    f"{'none' if now is None else f'version {now}'}"
                )
        return None

    def status(self, model: str, version: int) -> PipelineStatus:
        """The version's pipeline: each gate's state, decisions, and what blocks promotion."""
        found = self.registry.get_version(model, version)
        owner = self.registry.get_model(model)
        record = self.policy(str(owner.risk_tier))
        return self._status(owner, found, record)

    def _status(
        self, owner: Model, found: ModelVersion, record: PolicyRecord, *, rollback: bool = False
    ) -> PipelineStatus:
        model, version = owner.name, found.version
        policy = record.policy
        latest = _latest(self.store.gate_results(model, version))
        decisions = self.store.approvals(model, version)
        dataset = self.evaluation.dataset(model, version)
        production, target = self._rollback_target(model)
        # The version production replaced is never compared against production: that is the
        # version a rollback moves away from (so its gates, sign-off and rollback agree).
        rollback = rollback or version == target
        required = {
            Gate.PERFORMANCE: policy.performance is not None,
            Gate.SECURITY: policy.security is not None,
            Gate.FAIRNESS: policy.fairness is not None,
            Gate.SIGNOFF: policy.signoff is not None and policy.signoff.approvals > 0,
        }
        states: list[GateState] = []
        for gate in EVIDENCE_GATES:
            result = latest.get(gate)
            if not required[gate]:
                states.append(GateState(gate, False, GateOutcome.NOT_REQUIRED, result, ""))
            elif result is None:
                states.append(
                    GateState(
                        gate,
                        True,
                        GateOutcome.PENDING,
                        None,
                        f"run the gates (keel gates run {model} {version})",
                    )
                )
            else:
                stale = self._stale(
                    result,
                    record,
                    dataset.sha256 if dataset else None,
                    production,
                    version,
                    rollback=rollback,
                )
                if stale:
                    again = f"run the gates again (keel gates run {model} {version}): {stale}"
                    states.append(GateState(gate, True, GateOutcome.PENDING, result, again))
                else:
                    states.append(
                        GateState(
                            gate,
                            True,
                            result.outcome,
                            result,
                            str(result.evidence.get("to_pass", "")),
                        )
                    )
        evidence_ready = all(
            s.outcome in (GateOutcome.PASSED, GateOutcome.NOT_REQUIRED) for s in states
        )
        if required[Gate.SIGNOFF]:
            assert policy.signoff is not None
            verdict = signoff_gate.judge(policy.signoff, decisions, evidence_ready=evidence_ready)
            to_pass = verdict.to_pass.replace("MODEL VERSION", f"{model} {version}")
            states.append(GateState(Gate.SIGNOFF, True, verdict.outcome, None, to_pass))
        else:
            rejected = signoff_gate.judge(
                SignoffPolicy(approvals=0), decisions, evidence_ready=True
            )
            outcome = (
                GateOutcome.FAILED
                if rejected.outcome == GateOutcome.FAILED
                else GateOutcome.NOT_REQUIRED
            )
            states.append(
                GateState(
                    Gate.SIGNOFF,
                    False,
                    outcome,
                    None,
                    rejected.to_pass if outcome == GateOutcome.FAILED else "",
                )
            )
        blockers: list[str] = []
        if owner.risk_tier == RiskTier.PROHIBITED:
            blockers.append(
                "the model's risk tier is 'prohibited' (EU AI Act Art. 5): it can never be "
                "promoted, not even by break-glass"
            )
        if found.status == VersionStatus.PRODUCTION:
            blockers.append(f"version {version} is already in production")
        elif found.status == VersionStatus.ARCHIVED:
            blockers.append(f"version {version} is archived: register a new version")
        for state in states:
            if state.outcome not in (GateOutcome.PASSED, GateOutcome.NOT_REQUIRED):
                blockers.append(f"{state.gate} gate {state.outcome}: {state.to_pass}")
        return PipelineStatus(
            model=model,
            version=version,
            tier=record.tier,
            policy_version=record.version,
            gates=tuple(sorted(states, key=lambda s: GATE_ORDER.index(s.gate))),
            approvals=tuple(decisions),
            promotable=not blockers,
            blockers=tuple(blockers),
        )

    # -- running the gates ----------------------------------------------------------------------

    def _evaluate(self, found: ModelVersion, policy: Policy, scan_safe: bool) -> _Evaluated:
        model, version = found.model, found.version
        production, target = self._rollback_target(model)
        compare = (
            policy.performance is not None
            and bool(policy.performance.max_drop_vs_production)
            and production is not None
            and production != version
            and target != version  # see `_status`: rolling back is choosing the older version
        )
        prod_side = performance_gate.Production(production if compare else None)
        dataset = self.evaluation.dataset(model, version)
        described = (
            None
            if dataset is None
            else {
                "sha256": dataset.sha256,
                "rows": dataset.rows,
                "format": dataset.format,
                "uploaded_by": dataset.uploaded_by,
            }
        )

        def unavailable(outcome: GateOutcome, summary: str, to_pass: str) -> _Evaluated:
            return _Evaluated(None, (outcome, summary, to_pass), described, prod_side)

        if not scan_safe:
            return unavailable(
                GateOutcome.ERROR,
                NOT_LOADED,
                "the artifact has no clean security scan, so Keel will not load it; fix the "
                "security gate first (register a safe artifact as a new version)",
            )
        if dataset is None:
            return unavailable(
                GateOutcome.PENDING,
                "no evaluation data attached",
                "attach evaluation data, a Parquet or CSV file with the signature's columns "
                f"(keel eval-data attach {model} {version} FILE), then run the gates again",
            )
        try:
            spec = EvaluationSpec.from_signature(
                found.signature,
                segments=policy.performance.segments.columns if policy.performance else (),
                min_group_size=policy.fairness.min_group_size if policy.fairness else 30,
            )
        except InvalidInput as exc:
            return unavailable(GateOutcome.FAILED, "the version cannot be evaluated", exc.message)
        try:
            report = self.evaluation.evaluate(model, version, spec)
        except KeelError as exc:
            return unavailable(
                GateOutcome.ERROR,
                f"the evaluation failed: {exc.message}",
                "fix what the evaluation reported and run the gates again",
            )
        if compare:
            assert production is not None
            try:
                prod_report = self.evaluation.evaluate(
                    model, production, spec, data_of_version=version
                )
                prod_side = performance_gate.Production(production, prod_report)
            except KeelError as exc:
                prod_side = performance_gate.Production(production, None, exc.message)
        return _Evaluated(report, None, described, prod_side)

    def _hash_problem(self, found: ModelVersion) -> str | None:
        try:
            self.registry.artifacts.open_verified(found.artifact.sha256).close()
        except KeelError as exc:
            return exc.message
        return None

    def _verdicts(self, found: ModelVersion, policy: Policy) -> dict[Gate, Verdict]:
        scan = self.evaluation.scan_report(found.artifact.sha256)
        verdicts: dict[Gate, Verdict] = {}
        if policy.security is not None:
            verdicts[Gate.SECURITY] = security_gate.judge(
                policy.security, version=found, scan=scan, hash_problem=self._hash_problem(found)
            )
        if policy.performance is None and policy.fairness is None:
            return verdicts
        evaluated = self._evaluate(found, policy, scan is not None and scan.safe)
        if policy.performance is not None:
            verdicts[Gate.PERFORMANCE] = performance_gate.judge(
                policy.performance,
                report=evaluated.report,
                unavailable=evaluated.unavailable,
                reported=found.metrics,
                production=evaluated.production,
                dataset=evaluated.dataset,
            )
        if policy.fairness is not None:
            fairness = fairness_gate.judge(
                policy.fairness,
                report=evaluated.report,
                unavailable=evaluated.unavailable,
                protected=tuple(
                    c.name for c in found.signature.with_role(ColumnRole.PROTECTED_ATTRIBUTE)
                ),
            )
            dataset_part = {"dataset": evaluated.dataset}
            verdicts[Gate.FAIRNESS] = Verdict(
                fairness.outcome,
                fairness.summary,
                fairness.to_pass,
                {**fairness.details, **dataset_part},
            )
        return verdicts

    def run_gates(self, by: Principal, model: str, version: int) -> PipelineStatus:
        """Judge gates 1-3 under the tier's policy, store each result, return the pipeline.

        Needs write access in the model's team. Refused for a rejected or archived version.
        """
        owner = self.registry.get_model(check_name(model, "model"))
        authorize(by, Permission.WRITE, owner.team)
        found = self.registry.get_version(owner.name, version)
        if found.status == VersionStatus.ARCHIVED:
            raise Conflict(
                f"{owner.name} version {version} is archived (rejected or withdrawn); its "
                "candidacy is over. Register a new version.",
                {"model": owner.name, "version": version},
            )
        record = self._recorded_policy(owner.risk_tier)
        verdicts = self._verdicts(found, record.policy)
        results = []
        for gate in EVIDENCE_GATES:
            verdict = verdicts.get(gate)
            if verdict is None:
                continue
            evidence = verdict.evidence(record.tier, record.version)
            results.append(
                NewGateResult(
                    gate,
                    verdict.outcome,
                    evidence,
                    evidence_digest(gate, verdict.outcome, evidence),
                )
            )
        self.store.record_gates(
            owner.name,
            version,
            results,
            policy_tier=record.tier,
            policy_version=record.version,
            actor=by.name,
        )
        status = self._status(owner, self.registry.get_version(owner.name, version), record)
        self._announce(
            "gate.completed",
            {
                "model": owner.name,
                "version": version,
                "tier": status.tier,
                "policy_version": status.policy_version,
                "gates": {str(s.gate): str(s.outcome) for s in status.gates},
                "promotable": status.promotable,
                "run_by": by.name,
            },
        )
        return status

    # -- sign-off -------------------------------------------------------------------------------

    def _decider(self, by: Principal, owner: Model, policy: Policy) -> None:
        if by.kind == PrincipalKind.SERVICE:
            raise PermissionDenied(
                f"{by.name!r} is a service account; sign-off is a person's decision. "
                "Approve or reject with a user's token.",
                {"permission": "approve", "principal": by.name},
            )
        teams = [owner.team, *(policy.signoff.from_teams if policy.signoff else ())]
        if not any(allows(by, Permission.APPROVE, team) for team in teams):
            authorize(by, Permission.APPROVE, owner.team)

    def _decide(
        self, by: Principal, model: str, version: int, comment: str, decision: Decision
    ) -> Approval:
        comment = _text(
            comment,
            "comment",
            "say why you " + ("approve" if decision == Decision.APPROVE else "reject"),
        )
        owner = self.registry.get_model(check_name(model, "model"))
        record = self.policy(str(owner.risk_tier))
        self._decider(by, owner, record.policy)
        found = self.registry.get_version(owner.name, version)
        saw: dict[str, str] = {}
        if decision == Decision.APPROVE:
            if found.created_by == by.name:
                raise PermissionDenied(
                    f"Separation of duties: {by.name!r} registered {owner.name} version "
                    f"{version}, so {by.name!r} cannot approve it. Ask another approver.",
                    {"permission": "approve", "reason": "separation_of_duties"},
                )
            if owner.risk_tier == RiskTier.PROHIBITED:
                raise Conflict(
                    f"{owner.name} is in the prohibited risk tier: it can never be promoted, "
                    "so it cannot be approved.",
                    {"model": owner.name, "tier": str(owner.risk_tier)},
                )
            state = self._status(owner, found, record)
            unready = [
                s
                for s in state.gates
                if s.gate != Gate.SIGNOFF
                and s.outcome not in (GateOutcome.PASSED, GateOutcome.NOT_REQUIRED)
            ]
            if unready:
                listed = "; ".join(f"{s.gate} is {s.outcome} ({s.to_pass})" for s in unready)
                raise Conflict(
                    f"Approvals are accepted once gates 1-3 have passed: {listed}.",
                    {"gates": {str(s.gate): str(s.outcome) for s in unready}},
                )
            saw = {
                str(s.gate): s.result.evidence_digest
                for s in state.gates
                if s.result is not None and s.gate != Gate.SIGNOFF
            }
        signoff = record.policy.signoff

        def check(
            decisions: Sequence[Approval], results: Sequence[GateResult], status: VersionStatus
        ) -> None:
            if any(d.decision == Decision.REJECT for d in decisions):
                raise Conflict(
                    f"{owner.name} version {version} was rejected; its candidacy is over. "
                    "Register a new version.",
                    {"model": owner.name, "version": version},
                )
            # A retired version may be decided on again: its approvals are voided when a policy
            # change or a risk reassessment makes its gates run again, and without new ones
            # it could never be rolled back to (see `rollback_plan`).
            if status in (VersionStatus.ARCHIVED, VersionStatus.PRODUCTION):
                raise Conflict(
                    f"{owner.name} version {version} is '{status}': sign-off is for candidates "
                    "and for retired versions to roll back to.",
                    {"model": owner.name, "version": version, "status": str(status)},
                )
            if decision == Decision.APPROVE:
                if any(d.actor == by.name for d in signoff_gate.counting(decisions)):
                    raise Conflict(
                        f"{by.name!r} already approved {owner.name} version {version}; each "
                        "person counts once.",
                        {"model": owner.name, "version": version},
                    )
                latest = _latest(results)
                if any(
                    latest[Gate(g)].evidence_digest != d
                    for g, d in saw.items()
                    if Gate(g) in latest
                ):
                    raise Conflict(
                        "The gates were re-run while you were approving; review the new "
                        f"results (keel gates status {owner.name} {version}) and approve again.",
                        {"model": owner.name, "version": version},
                    )

        def complete(decisions: Sequence[Approval]) -> bool:
            return signoff is None or signoff_gate.complete(signoff, decisions)

        return self.store.add_decision(
            owner.name,
            version,
            decision=decision,
            actor=by.name,
            teams=tuple(sorted({g.team for g in by.grants if g.team})),
            comment=comment,
            saw=saw,
            check=check,
            complete=complete,
        )

    def _announce_decision(self, approval: Approval) -> Approval:
        self._announce(
            "gate.signoff",
            {
                "model": approval.model,
                "version": approval.version,
                "decision": str(approval.decision),
                "actor": approval.actor,
                "comment": approval.comment,
                "decided_at": approval.decided_at.isoformat(),
            },
        )
        return approval

    def approve(self, by: Principal, model: str, version: int, comment: str) -> Approval:
        """Approve the version (see the module's rules: role, comment, separation of duties,
        gates 1-3 passed first)."""
        return self._announce_decision(self._decide(by, model, version, comment, Decision.APPROVE))

    def reject(self, by: Principal, model: str, version: int, comment: str) -> Approval:
        """Reject the version: its candidacy ends (it is archived and never promoted)."""
        return self._announce_decision(self._decide(by, model, version, comment, Decision.REJECT))

    # -- promotion ------------------------------------------------------------------------------

    def promote(
        self, by: Principal, model: str, version: int, *, justification: str | None = None
    ) -> Promotion:
        """Point ``production`` at the version when every required gate passed.

        With ``justification`` this is a break-glass override: admins only, audited and flagged
        forever, and still refused for a prohibited model or a rejected version.
        """
        owner = self.registry.get_model(check_name(model, "model"))
        authorize(by, Permission.WRITE, owner.team)
        break_glass = justification is not None
        if break_glass:
            if not by.is_admin:
                raise PermissionDenied(
                    f"{by.name!r} may not break glass: overriding the gates needs the 'admin' "
                    "role. Make the failing gates pass instead, or ask an admin.",
                    {"permission": "admin", "needs": "admin"},
                )
            justification = _text(
                justification or "", "justification", "explain why the gates must be overridden"
            )
        if owner.risk_tier == RiskTier.PROHIBITED:
            raise Conflict(
                f"{owner.name} is in the prohibited risk tier (EU AI Act Art. 5): it can never be "
                "promoted, not even by break-glass.",
                {"model": owner.name, "tier": "prohibited"},
            )
        token = self.store.state_token(owner.name, version)
        found = self.registry.get_version(owner.name, version)
        record = self.policy(str(owner.risk_tier))
        state = self._status(owner, found, record)
        if not state.promotable and not break_glass:
            failing = [
                s
                for s in state.gates
                if s.outcome not in (GateOutcome.PASSED, GateOutcome.NOT_REQUIRED)
            ]
            raise Conflict(
                f"{owner.name} version {version} cannot be promoted: "
                + "; ".join(state.blockers)
                + ".",
                {
                    "model": owner.name,
                    "version": version,
                    "blockers": list(state.blockers),
                    "gates": [
                        {"gate": str(s.gate), "outcome": str(s.outcome), "to_pass": s.to_pass}
                        for s in failing
                    ],
                },
            )
        promotion = self.store.promote(
            owner.name,
            version,
            NewPromotion(
                actor=by.name,
                break_glass=break_glass,
                justification=justification or "",
                overridden=state.blockers if break_glass else (),
                policy_tier=record.tier,
                policy_version=record.version,
            ),
            expect=token,
        )
        event = "promotion.break_glass" if promotion.break_glass else "promotion.completed"
        self._announce(event, _promotion_payload(promotion))
        return promotion

    # -- rollback -------------------------------------------------------------------------------

    def rollback_plan(self, model: str) -> RollbackPlan:
        """Where a rollback of the model would go and what blocks it, without changing anything.

        The target is the ``previous_version`` of the promotion that put the current production
        version in place. It must still pass every required gate under the tier's policy in
        force now, with its evaluation data now, and keep its sign-off; the one check a rollback
        does not re-judge is the comparison against the production version (that is the version
        being rolled back from).
        """
        owner = self.registry.get_model(check_name(model, "model"))
        current, target = self._rollback_target(owner.name)
        if current is None:
            return RollbackPlan(
                owner.name,
                None,
                None,
                (f"{owner.name} has no production version, so there is nothing to roll back",),
            )
        if target is None:
            return RollbackPlan(
                owner.name,
                current,
                None,
                (
                    f"{owner.name} version {current} is the first production version: there is "
                    "no earlier promoted version to roll back to; promote a fixed version instead",
                ),
            )
        found = self.registry.get_version(owner.name, target)
        record = self.policy(str(owner.risk_tier))
        state = self._status(owner, found, record, rollback=True)
        return RollbackPlan(owner.name, current, target, state.blockers)

    def rollback(
        self, by: Principal, model: str, *, reason: str, incident_id: int | None = None
    ) -> Promotion:
        """Move ``production`` back to the version it replaced, through the promotion checks.

        See `rollback_plan` for the target and the checks. Refused with `Conflict` (409) and
        the reasons when there is no earlier production version or it no longer passes. Recorded
        as a promotion plus a rollback record (reason, incident), audited as
        ``governance.rollback``, and visible in the alias history.
        """
        owner = self.registry.get_model(check_name(model, "model"))
        authorize(by, Permission.WRITE, owner.team)
        reason = _text(reason, "reason", "say why production is rolled back")
        plan = self.rollback_plan(owner.name)
        if plan.target is None or plan.blockers:
            where = "" if plan.target is None else f" to version {plan.target}"
            raise Conflict(
                f"{owner.name} cannot be rolled back{where}: " + "; ".join(plan.blockers) + ".",
                {
                    "model": owner.name,
                    "version": plan.target,
                    "production": plan.current,
                    "blockers": list(plan.blockers),
                },
            )
        assert plan.current is not None
        token = self.store.state_token(owner.name, plan.target)
        record = self.policy(str(owner.risk_tier))
        # Judged again under the token, so a gate run or decision landing meanwhile refuses.
        again = self.rollback_plan(owner.name)
        if again != plan:
            raise Conflict(
                f"{owner.name}'s production or gates changed while it was being rolled back; "
                "try again.",
                {"model": owner.name},
            )
        promotion = self.store.promote(
            owner.name,
            plan.target,
            NewPromotion(
                actor=by.name,
                break_glass=False,
                justification="",
                overridden=(),
                policy_tier=record.tier,
                policy_version=record.version,
                rollback=RollbackNote(
                    reason=reason, incident_id=incident_id, from_version=plan.current
                ),
            ),
            expect=token,
        )
        self._announce(
            "rollback.completed",
            {**_promotion_payload(promotion), "reason": reason, "incident_id": incident_id},
        )
        return promotion
