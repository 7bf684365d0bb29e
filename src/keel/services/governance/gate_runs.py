"""Running gates 1-3 (`run_gates`, needs write access in the model's team).

Keel runs the artifact on the version's evaluation data in a separate process (once; gates 1 and
3 share the report). An artifact without a clean scan is never loaded: gates 1 and 3 are ERROR
with "not loaded: failed security scan". Every result is stored with its evidence, the tier and
policy version, the time, who ran it, and the evidence digest; every run is audited. See
``keel.services.gates.*`` for each gate's own rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keel.domain.evaluation import EvaluationReport, EvaluationSpec
from keel.domain.explainability import Explanation
from keel.domain.governance import (
    EVIDENCE_GATES,
    Gate,
    GateOutcome,
    PipelineStatus,
    evidence_digest,
)
from keel.domain.lifecycle import VersionStatus
from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, authorize
from keel.domain.policy import Policy
from keel.domain.registry import ModelVersion
from keel.domain.signature import ColumnRole
from keel.errors import Conflict, InvalidInput, KeelError
from keel.services.explainability import Explainer
from keel.services.gates import Verdict
from keel.services.gates import fairness as fairness_gate
from keel.services.gates import performance as performance_gate
from keel.services.gates import security as security_gate
from keel.services.governance.pipeline import Pipeline
from keel.store.sql.governance import NewGateResult

NOT_LOADED = "not loaded: failed security scan"


@dataclass(frozen=True)
class _Evaluated:
    """What the evaluation step produced for gates 1 and 3."""

    report: EvaluationReport | None
    unavailable: tuple[GateOutcome, str, str] | None
    dataset: dict[str, Any] | None
    production: performance_gate.Production
    explanation: Explanation | None = None


class GateRuns(Pipeline):
    """Gates 1-3: evaluate, scan, judge, store."""

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
        explanation = None
        wanted = policy.performance.explainability if policy.performance else None
        if wanted is not None:
            # After the metrics: this child is handed the labels (see explanation_runner).
            explanation = Explainer(self.evaluation).explain(
                found,
                self.evaluation.data_frame(dataset),
                task=spec.task,
                target=spec.target,
                n_repeats=wanted.n_repeats,
                budget_s=wanted.budget_s,
                shap=wanted.shap,
                memory_limit_mb=spec.memory_limit_mb,
                load_time_s=spec.time_limit_s,
            )
        return _Evaluated(report, None, described, prod_side, explanation)

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
                policy.security,
                version=found,
                scan=scan,
                hash_problem=self._hash_problem(found),
                loading_problem=self.evaluation.loading_problem(found),
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
                explanation=evaluated.explanation,
                protected=tuple(
                    c.name for c in found.signature.with_role(ColumnRole.PROTECTED_ATTRIBUTE)
                ),
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
