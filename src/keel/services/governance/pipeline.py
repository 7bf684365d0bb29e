"""The pipeline of a version under its tier's policy: which policy is in force, each gate's
state, what blocks promotion, and the announcements governance makes.

- **Policy.** The model's risk tier (``Model.risk_tier``, set by the risk assessment) picks the
  policy. Each tier has a default Keel ships (``default_policies/<tier>.yaml``); an admin replaces
  it with `apply_policy`, and every apply is a new version. Until a tier's policy is first used
  or replaced, `policy` reports the default as version 0; the first gate run records it as
  version 1. An *unassessed* model is judged by the unassessed policy, which by default is as
  strict as the high-risk one. A *prohibited* model is never promoted, not even by break-glass.
- **Stale results.** A stored result only counts while it was judged under the tier's current
  policy version, on the evaluation data attached now, and (for relative thresholds) against
  the version in production now; otherwise the gate is PENDING until the gates are run again.
  The version production replaced (where a rollback would go) is never compared against
  production: that is the version a rollback moves away from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from keel.domain.governance import (
    EVIDENCE_GATES,
    GATE_ORDER,
    Approval,
    Gate,
    GateOutcome,
    GateResult,
    GateState,
    PipelineStatus,
    PolicyRecord,
    Promotion,
)
from keel.domain.lifecycle import VersionStatus
from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, authorize
from keel.domain.policy import SignoffPolicy, policy_to_dict
from keel.domain.registry import Model, ModelVersion, RiskTier
from keel.errors import InvalidInput, NotFound
from keel.services import policies
from keel.services.evaluation import Evaluation
from keel.services.gates import signoff as signoff_gate
from keel.services.registry import Registry
from keel.store.sql.governance import SqlGovernanceStore

MAX_COMMENT = 10_000


def latest_results(results: Sequence[GateResult]) -> dict[Gate, GateResult]:
    latest: dict[Gate, GateResult] = {}
    for result in results:
        latest[result.gate] = result
    return latest


def required_text(value: str, field: str, what: str) -> str:
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


def promotion_payload(promotion: Promotion) -> dict[str, Any]:
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


class Pipeline:
    """Policies, the pipeline's state, and the listeners told of every committed change."""

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
        latest = latest_results(self.store.gate_results(model, version))
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
