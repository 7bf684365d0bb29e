"""Compliance documents: the model card and EU AI Act Annex IV technical documentation.

Everything in a document comes from Keel's own records: the registry (model, versions, cards,
lineage, environment), the risk assessments, the governance records (gate results with their
evidence and policy versions, approvals, promotions and break-glass overrides) and the evaluation
records (evaluation datasets, security scans). Nothing is taken from the caller.

Fields that the model's risk tier requires but that Keel holds no record of are listed first, as
`Gap` entries: a document never hides what is missing. Which fields a tier requires is the table
`REQUIRED_BY_TIER` below (an unassessed model is held to the high-risk list: until it is
classified, nobody can say it needs less).

Formats: ``json`` is the structured document; ``md`` and ``html`` render it with Jinja2 templates
shipped in ``compliance_templates`` (HTML autoescaped, self-contained: inline styles, no scripts,
no external resources). PDF is not offered: no well-kept pure-Python PDF library that works
offline is in Keel's dependencies; print the HTML to PDF from a browser instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import jinja2

from keel.domain.evaluation import EvaluationDataset, ScanReport
from keel.domain.explainability import Explanation
from keel.domain.governance import (
    Approval,
    Decision,
    Gate,
    GateOutcome,
    GateResult,
    PipelineStatus,
    Promotion,
)
from keel.domain.names import check_name
from keel.domain.registry import Model, ModelVersion, RiskTier
from keel.domain.risk import QUESTIONNAIRE, RiskAssessment
from keel.errors import InvalidInput, KeelError, NotFound
from keel.services.registry import Registry
from keel.services.risk import RiskClassification

FORMATS = ("md", "html", "json")
MEDIA_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "json": "application/json",
}
# The HTML document's own policy: its inline stylesheet and nothing else (no script, no request
# anywhere). Served as the response's header, it replaces the dashboard's stricter default-src
# 'self', which would refuse that stylesheet.
DOCUMENT_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'"
    )
}


def document_headers(fmt: str) -> dict[str, str]:
    """The headers a document in ``fmt`` is served with (the CSP, for HTML)."""
    return dict(DOCUMENT_HEADERS) if fmt == "html" else {}


class GovernanceRecords(Protocol):
    """What documents read from governance (`keel.services.governance.Governance`)."""

    def status(self, model: str, version: int) -> PipelineStatus: ...
    def gate_results(self, model: str, version: int) -> list[GateResult]: ...
    def approvals(self, model: str, version: int) -> list[Approval]: ...
    def promotions(self, model: str) -> list[Promotion]: ...


class EvaluationRecords(Protocol):
    """What documents read from evaluation (`keel.services.evaluation.Evaluation`)."""

    def scan_report(self, sha256: str) -> ScanReport | None: ...
    def dataset(self, model: str, version: int) -> EvaluationDataset | None: ...


@dataclass(frozen=True)
class Gap:
    """A field the tier requires that Keel has no record of, and how to fill it."""

    key: str
    requirement: str
    missing: str
    fix: str


@dataclass(frozen=True)
class Section:
    """One part of the document; ``content`` is JSON-ready (str, numbers, lists, dicts)."""

    key: str
    title: str
    reference: str
    content: Mapping[str, Any]


@dataclass(frozen=True)
class ComplianceDocument:
    """The technical documentation of one model version, gaps first."""

    model: str
    version: int
    version_basis: str  # "requested", "production" or "newest"
    risk_tier: RiskTier
    generated_at: datetime
    gaps: tuple[Gap, ...]
    notices: tuple[str, ...]
    sections: tuple[Section, ...] = field(default_factory=tuple)

    def section(self, key: str) -> Section:
        """The section named ``key`` (`KeyError` if there is none)."""
        for section in self.sections:
            if section.key == key:
                return section
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """The structured document, as the JSON export writes it."""
        return {
            "document": "Technical documentation (EU AI Act, Annex IV) and model card",
            "model": self.model,
            "version": self.version,
            "version_basis": self.version_basis,
            "risk_tier": str(self.risk_tier),
            "generated_at": self.generated_at.isoformat(),
            "generated_from": "Keel's own records",
            "gaps": [vars(g) for g in self.gaps],
            "notices": list(self.notices),
            "sections": [
                {
                    "key": s.key,
                    "title": s.title,
                    "reference": s.reference,
                    "content": s.content,
                }
                for s in self.sections
            ],
        }


# -- what each tier requires ---------------------------------------------------------------------

_BASE = ("intended_use", "risk_classification", "gates")
_LIMITED = (*_BASE, "limitations")
_HIGH = (
    *_LIMITED,
    "human_oversight",
    "post_market_monitoring",
    "design_choices",
    "training_data_fingerprint",
    "evaluation_data",
    "evaluation",
    "approvals",
)
REQUIRED_BY_TIER: Mapping[RiskTier, tuple[str, ...]] = {
    RiskTier.MINIMAL: _BASE,
    RiskTier.LIMITED: _LIMITED,
    RiskTier.HIGH: _HIGH,
    RiskTier.PROHIBITED: _HIGH,
    RiskTier.UNASSESSED: _HIGH,
}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _performance(result: GateResult | None) -> dict[str, Any] | None:
    """What the performance gate measured, from its stored evidence (None: never computed)."""
    if result is None or not isinstance(result.evidence.get("computed_metrics"), Mapping):
        return None
    evidence = result.evidence
    return {
        "outcome": str(result.outcome),
        "summary": evidence.get("summary", ""),
        "policy_version": result.policy_version,
        "evaluated_at": _iso(result.evaluated_at),
        "task": evidence.get("task"),
        "rows": evidence.get("rows"),
        "metrics": dict(evidence["computed_metrics"]),
        "segments": dict(evidence.get("segment_metrics") or {}),
        "production_version": evidence.get("production_version"),
        "production_metrics": evidence.get("production_metrics"),
    }


def _explainability(result: GateResult | None) -> dict[str, Any] | None:
    """Feature importance from the performance gate's evidence (None: the policy asked none)."""
    if result is None or not isinstance(result.evidence.get("explainability"), Mapping):
        return None
    try:
        explanation = Explanation.from_dict(result.evidence["explainability"])
    except (KeyError, TypeError, ValueError):
        return None
    return {
        "outcome": str(result.outcome),
        "policy_version": result.policy_version,
        "evaluated_at": _iso(result.evaluated_at),
        "summary": explanation.summary(),
        **explanation.to_dict(),
    }


def _fairness(result: GateResult | None) -> dict[str, Any] | None:
    """Group rates and fairness metrics per protected attribute, from the fairness gate."""
    if result is None:
        return None
    evidence = result.evidence
    attributes = evidence.get("attributes")
    return {
        "outcome": str(result.outcome),
        "summary": evidence.get("summary", ""),
        "policy_version": result.policy_version,
        "evaluated_at": _iso(result.evaluated_at),
        "protected_attributes": list(evidence.get("protected_attributes") or []),
        "attributes": [
            {"attribute": name, **values}
            for name, values in (attributes.items() if isinstance(attributes, Mapping) else ())
        ],
    }


def _latest(results: Sequence[GateResult], gate: Gate) -> GateResult | None:
    matching = [r for r in results if r.gate == gate]
    return matching[-1] if matching else None


class ComplianceDocuments:
    """Builds `ComplianceDocument` from the records, and renders it as md, html or json."""

    def __init__(
        self,
        registry: Registry,
        risk: RiskClassification,
        governance: GovernanceRecords,
        evaluation: EvaluationRecords | None = None,
    ) -> None:
        self.registry = registry
        self.risk = risk
        self.governance = governance
        self.evaluation = evaluation
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("keel.services", "compliance_templates"),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self._templates.filters["md"] = _markdown_text
        self._templates.filters["md_block"] = _markdown_block
        self._templates.filters["num"] = _number

    # -- building ------------------------------------------------------------------------------

    def _pick_version(self, model: Model, version: int | None) -> tuple[ModelVersion, str]:
        if version is not None:
            return self.registry.get_version(model.name, version), "requested"
        production = [
            a for a in self.registry.current_aliases(model.name) if a.alias == "production"
        ]
        if production:
            return self.registry.get_version(model.name, production[0].version), "production"
        if model.latest_version == 0:
            raise NotFound(
                f"Model {model.name!r} has no versions, so there is nothing to document yet. "
                "Register one first (`keel versions register`).",
                {"model": model.name},
            )
        return self.registry.get_version(model.name, model.latest_version), "newest"

    def export_target(self, model: str, version: int | None, fmt: str) -> tuple[str, int]:
        """The (model, version) an export of ``fmt`` would document, checking what the export
        checks (model, version, format) without building it: a refused export queues nothing."""
        _check_format(fmt)
        found = self.registry.get_model(check_name(model, "model"))
        chosen, _ = self._pick_version(found, version)
        return found.name, chosen.version

    def technical_documentation(self, model: str, version: int | None) -> ComplianceDocument:
        """The document for ``version`` of ``model`` (default: production, else the newest)."""
        found = self.registry.get_model(check_name(model, "model"))
        chosen, basis = self._pick_version(found, version)
        versions = self._all_versions(found.name)
        assessments = self.risk.history(found.name)
        results = self.governance.gate_results(found.name, chosen.version)
        approvals = self.governance.approvals(found.name, chosen.version)
        promotions = self.governance.promotions(found.name)
        status = self._status(found.name, chosen.version)
        dataset = self.evaluation.dataset(found.name, chosen.version) if self.evaluation else None
        scan = self.evaluation.scan_report(chosen.artifact.sha256) if self.evaluation else None

        sections = (
            self._intended_purpose(found, chosen),
            self._provider(found),
            self._model_card(chosen, _explainability(_latest(results, Gate.PERFORMANCE))),
            self._risk(found, assessments),
            self._version_history(versions, promotions),
            self._data(chosen, dataset),
            self._design(chosen, scan),
            self._evaluation(chosen, results),
            self._gates(results, status),
            self._approvals(approvals),
            Section(
                "human_oversight",
                "Human oversight",
                "Art. 14; Annex IV 2(e) and 3",
                {"plan": chosen.card.human_oversight},
            ),
            Section(
                "post_market_monitoring",
                "Post-market monitoring plan",
                "Art. 72; Annex IV 9",
                {"plan": chosen.card.post_market_monitoring},
            ),
            self._break_glass(promotions),
        )
        gaps = self._gaps(found, chosen, assessments, results, approvals, status, dataset)
        notices = []
        if found.risk_tier == RiskTier.PROHIBITED:
            notices.append(
                "This model is classified as a prohibited AI practice (Art. 5): it may not be "
                "placed on the market, put into service or used in the EU, and Keel never "
                "promotes it."
            )
        overrides = [p for p in promotions if p.break_glass]
        if overrides:
            notices.append(
                f"{len(overrides)} promotion(s) of this model bypassed the gates by break-glass "
                "override; see 'Break-glass overrides'."
            )
        return ComplianceDocument(
            model=found.name,
            version=chosen.version,
            version_basis=basis,
            risk_tier=found.risk_tier,
            generated_at=datetime.now(UTC),
            gaps=tuple(gaps),
            notices=tuple(notices),
            sections=sections,
        )

    def _all_versions(self, model: str) -> list[ModelVersion]:
        found: list[ModelVersion] = []
        cursor: str | None = None
        while True:
            page = self.registry.list_versions(model, cursor=cursor, limit=500)
            found.extend(page.items)
            if page.next_cursor is None:
                return sorted(found, key=lambda v: v.version)
            cursor = page.next_cursor

    def _status(self, model: str, version: int) -> PipelineStatus | None:
        try:
            return self.governance.status(model, version)
        except KeelError:
            # A pipeline that cannot be judged (e.g. an unassessed model without a policy)
            # is reported as a gap below, not as a failed export.
            return None

    @staticmethod
    def _intended_purpose(model: Model, version: ModelVersion) -> Section:
        return Section(
            "intended_purpose",
            "Intended purpose",
            "Annex IV 1(a)",
            {
                "model": model.name,
                "description": model.description,
                "use_case": model.use_case,
                "intended_use": version.card.intended_use,
                "out_of_scope_uses": version.card.out_of_scope_uses,
                "version": version.version,
                "version_description": version.description,
                "tags": list(model.tags),
            },
        )

    @staticmethod
    def _provider(model: Model) -> Section:
        return Section(
            "provider",
            "Provider and owner",
            "Annex IV 1(a)",
            {
                "team": model.team,
                "owner": model.owner,
                "registered_at": _iso(model.created_at),
            },
        )

    @staticmethod
    def _model_card(version: ModelVersion, explained: Mapping[str, Any] | None) -> Section:
        content = dict(vars(version.card))
        if explained is not None:
            # The model card's "factors": what the predictions depend on, as gate 1 measured it.
            content["factors"] = f"Feature importance (performance gate): {explained['summary']}"
        return Section("model_card", "Model card", "Annex IV 1-3", content)

    @staticmethod
    def _risk(model: Model, assessments: Sequence[RiskAssessment]) -> Section:
        current = assessments[-1] if assessments else None
        yes = []
        if current is not None:
            for question in QUESTIONNAIRE.questions:
                if current.answers.get(question.id):
                    yes.append(
                        {
                            "question": question.id,
                            "article": question.article,
                            "text": question.text,
                        }
                    )
        return Section(
            "risk_classification",
            "Risk classification",
            "Art. 5, 6 and 50; Annex III; Annex IV 5",
            {
                "tier": str(model.risk_tier),
                "rationale": current.rationale if current else "",
                "assessed_by": current.assessed_by if current else None,
                "assessed_at": _iso(current.assessed_at) if current else None,
                "questionnaire_version": current.questionnaire_version if current else None,
                "answered_yes": yes,
                "history": [
                    {
                        "tier": str(a.tier),
                        "previous_tier": str(a.previous_tier),
                        "assessed_by": a.assessed_by,
                        "assessed_at": _iso(a.assessed_at),
                    }
                    for a in assessments
                ],
            },
        )

    @staticmethod
    def _version_history(
        versions: Sequence[ModelVersion], promotions: Sequence[Promotion]
    ) -> Section:
        return Section(
            "version_history",
            "Version history and changes",
            "Annex IV 6",
            {
                "versions": [
                    {
                        "version": v.version,
                        "status": str(v.status),
                        "created_by": v.created_by,
                        "created_at": _iso(v.created_at),
                        "description": v.description,
                        "parent_version": v.lineage.parent_version,
                        "training_data_sha256": v.lineage.training_data.sha256
                        if v.lineage.training_data
                        else None,
                        "aliases": list(v.aliases),
                    }
                    for v in versions
                ],
                "promotions": [
                    {
                        "version": p.version,
                        "previous_version": p.previous_version,
                        "promoted_by": p.promoted_by,
                        "promoted_at": _iso(p.promoted_at),
                        "break_glass": p.break_glass,
                        "policy_version": p.policy_version,
                    }
                    for p in promotions
                ],
            },
        )

    @staticmethod
    def _data(version: ModelVersion, dataset: EvaluationDataset | None) -> Section:
        lineage = version.lineage
        training = lineage.training_data
        return Section(
            "data",
            "Data lineage and dataset fingerprints",
            "Annex IV 2(d)",
            {
                "training_data": {
                    "sha256": training.sha256,
                    "rows": training.rows,
                    "columns": [{"name": n, "dtype": t} for n, t in training.columns],
                }
                if training
                else None,
                "training_data_description": version.card.training_data,
                "evaluation_data": {
                    "sha256": dataset.sha256,
                    "format": dataset.format,
                    "rows": dataset.rows,
                    "columns": list(dataset.columns),
                    "uploaded_by": dataset.uploaded_by,
                    "uploaded_at": _iso(dataset.uploaded_at),
                }
                if dataset
                else None,
                "evaluation_data_description": version.card.evaluation_data,
                "git_commit": lineage.git_commit,
                "git_repo_url": lineage.git_repo_url,
                "git_dirty": lineage.git_dirty,
                "parent_version": lineage.parent_version,
            },
        )

    @staticmethod
    def _design(version: ModelVersion, scan: ScanReport | None) -> Section:
        return Section(
            "design",
            "Design choices recorded on the version",
            "Annex IV 2(b) and 2(c)",
            {
                "design_choices": version.card.design_choices,
                "params": dict(version.params),
                "signature": [
                    {"name": c.name, "dtype": str(c.dtype), "role": str(c.role)}
                    for c in version.signature.columns
                ],
                "artifact": {
                    "sha256": version.artifact.sha256,
                    "size": version.artifact.size,
                    "flavor": str(version.artifact.flavor),
                    "filename": version.artifact.filename,
                },
                "security_scan": {
                    "scanner": f"{scan.scanner} {scan.scanner_version}",
                    "safe": scan.safe,
                    "findings": [
                        {"severity": f.severity, "message": f.message} for f in scan.findings
                    ],
                    "scanned_at": _iso(scan.scanned_at),
                }
                if scan
                else None,
                "environment": {
                    "python_version": version.environment.python_version,
                    "packages": dict(sorted(version.environment.packages.items())),
                },
            },
        )

    @staticmethod
    def _evaluation(version: ModelVersion, results: Sequence[GateResult]) -> Section:
        return Section(
            "evaluation",
            "Evaluation metrics, overall and per group",
            "Annex IV 2(g) and 4",
            {
                "performance": _performance(_latest(results, Gate.PERFORMANCE)),
                "explainability": _explainability(_latest(results, Gate.PERFORMANCE)),
                "fairness": _fairness(_latest(results, Gate.FAIRNESS)),
                "reported_by_client": dict(version.metrics),
            },
        )

    @staticmethod
    def _gates(results: Sequence[GateResult], status: PipelineStatus | None) -> Section:
        return Section(
            "gates",
            "Gate results and the policy versions they were judged under",
            "Art. 9 and 17; Annex IV 2(g)",
            {
                "pipeline": {
                    "tier": status.tier,
                    "policy_version": status.policy_version,
                    "promotable": status.promotable,
                    "blockers": list(status.blockers),
                    "gates": [
                        {
                            "gate": str(g.gate),
                            "required": g.required,
                            "outcome": str(g.outcome),
                            "to_pass": g.to_pass,
                        }
                        for g in status.gates
                    ],
                }
                if status
                else None,
                "results": [
                    {
                        "gate": str(r.gate),
                        "outcome": str(r.outcome),
                        "policy_tier": r.policy_tier,
                        "policy_version": r.policy_version,
                        "evaluated_by": r.evaluated_by,
                        "evaluated_at": _iso(r.evaluated_at),
                        "evidence_digest": r.evidence_digest,
                    }
                    for r in results
                ],
            },
        )

    @staticmethod
    def _approvals(approvals: Sequence[Approval]) -> Section:
        return Section(
            "approvals",
            "Approvals",
            "Art. 14 and 17",
            {
                "decisions": [
                    {
                        "decision": str(a.decision),
                        "actor": a.actor,
                        "teams": list(a.teams),
                        "comment": a.comment,
                        "decided_at": _iso(a.decided_at),
                        "void": a.void,
                        "void_reason": a.void_reason,
                    }
                    for a in approvals
                ]
            },
        )

    @staticmethod
    def _break_glass(promotions: Sequence[Promotion]) -> Section:
        return Section(
            "break_glass",
            "Break-glass overrides",
            "Art. 17 (accountability)",
            {
                "overrides": [
                    {
                        "version": p.version,
                        "previous_version": p.previous_version,
                        "promoted_by": p.promoted_by,
                        "promoted_at": _iso(p.promoted_at),
                        "justification": p.justification,
                        "overridden": list(p.overridden),
                        "policy_version": p.policy_version,
                    }
                    for p in promotions
                    if p.break_glass
                ]
            },
        )

    # -- gaps ----------------------------------------------------------------------------------

    @staticmethod
    def _gaps(
        model: Model,
        version: ModelVersion,
        assessments: Sequence[RiskAssessment],
        results: Sequence[GateResult],
        approvals: Sequence[Approval],
        status: PipelineStatus | None,
        dataset: EvaluationDataset | None,
    ) -> list[Gap]:
        card = version.card
        required = REQUIRED_BY_TIER[model.risk_tier]
        gaps: list[Gap] = []

        def card_field(key: str, name: str, requirement: str, what: str) -> None:
            if key in required and not getattr(card, name).strip():
                gaps.append(
                    Gap(
                        key,
                        requirement,
                        f"card.{name}: {what}",
                        f"Register a version whose model card fills '{name}'.",
                    )
                )

        if "intended_use" in required and not (card.intended_use.strip() or model.use_case):
            gaps.append(
                Gap(
                    "intended_use",
                    "Annex IV 1(a)",
                    "card.intended_use (or the model's use_case): the intended purpose",
                    "Fill the version's model card 'intended_use', or the model's use case "
                    "(`keel models update --use-case`).",
                )
            )
        if "risk_classification" in required and not assessments:
            gaps.append(
                Gap(
                    "risk_classification",
                    "Art. 6; Annex IV 5",
                    "risk classification: the model was never assessed",
                    f"Run `keel risk assess {model.name}`.",
                )
            )
        card_field("limitations", "limitations", "Annex IV 3", "known limitations")
        card_field(
            "human_oversight", "human_oversight", "Art. 14; Annex IV 2(e)", "human oversight"
        )
        card_field(
            "post_market_monitoring",
            "post_market_monitoring",
            "Art. 72; Annex IV 9",
            "the post-market monitoring plan",
        )
        card_field("design_choices", "design_choices", "Annex IV 2(b)", "key design choices")
        if "training_data_fingerprint" in required and version.lineage.training_data is None:
            gaps.append(
                Gap(
                    "training_data_fingerprint",
                    "Art. 10; Annex IV 2(d)",
                    "lineage.training_data: the training data's fingerprint",
                    "Register the version with its training data "
                    "(SDK: register_version(..., training_data=df)).",
                )
            )
        if "evaluation_data" in required and dataset is None and not card.evaluation_data.strip():
            gaps.append(
                Gap(
                    "evaluation_data",
                    "Annex IV 2(d) and 2(g)",
                    "evaluation data: no evaluation dataset attached and none described",
                    "Attach an evaluation dataset to the version, or describe it in the card's "
                    "'evaluation_data'.",
                )
            )
        performance = _latest(results, Gate.PERFORMANCE)
        if "evaluation" in required and _performance(performance) is None:
            gaps.append(
                Gap(
                    "evaluation",
                    "Annex IV 2(g) and 4",
                    "evaluation metrics computed by Keel (the performance gate has no report)",
                    f"Run the gates: `keel gates run {model.name} {version.version}`.",
                )
            )
        if "gates" in required:
            if status is None:
                gaps.append(
                    Gap(
                        "gates",
                        "Art. 9 and 17",
                        "gate results: the pipeline could not be judged",
                        f"Assess the model (`keel risk assess {model.name}`) and run the gates.",
                    )
                )
            else:
                for state in status.gates:
                    if state.required and state.outcome != GateOutcome.PASSED:
                        gaps.append(
                            Gap(
                                f"gate:{state.gate}",
                                "Art. 9 and 17",
                                f"gate '{state.gate}' has not passed ({state.outcome})",
                                state.to_pass
                                or f"Run `keel gates run {model.name} {version.version}`.",
                            )
                        )
        signoff_listed = any(g.key == f"gate:{Gate.SIGNOFF}" for g in gaps)
        if (
            "approvals" in required
            and not signoff_listed
            and not any(a.decision == Decision.APPROVE and not a.void for a in approvals)
        ):
            gaps.append(
                Gap(
                    "approvals",
                    "Art. 14 and 17",
                    "management sign-off: no valid approval of this version",
                    f"An approver runs `keel approve {model.name} {version.version} -m ...`.",
                )
            )
        return gaps

    # -- rendering -----------------------------------------------------------------------------

    def render(self, doc: ComplianceDocument, fmt: str) -> str:
        """``doc`` as ``md``, ``html`` (self-contained, user text escaped) or ``json``."""
        _check_format(fmt)
        data = doc.to_dict()
        if fmt == "json":
            return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        template = self._templates.get_template(f"technical_documentation.{fmt}.j2")
        return template.render(doc=data, sections={s["key"]: s for s in data["sections"]})


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InvalidInput(
            f"The 'format' parameter must be one of {', '.join(FORMATS)}. Got {fmt!r}. "
            "(PDF is not offered: open the HTML export in a browser and print it to PDF.)",
            {"field": "format"},
        )


def _number(value: Any) -> str:
    """A metric for people: four decimals, "n/a" when it could not be computed."""
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.4f}"


_MD_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "\\|"})


def _markdown_text(value: Any) -> str:
    """User text made safe in a Markdown line or table cell: no raw HTML (renderers pass it
    through and could run a script), no cell breaks, one line."""
    if value is None:
        return ""
    return " ".join(str(value).translate(_MD_ESCAPES).split())


def _markdown_block(value: Any) -> str:
    """User text made safe as a Markdown paragraph, its line breaks kept."""
    if value is None:
        return ""
    lines = [" ".join(line.translate(_MD_ESCAPES).split()) for line in str(value).splitlines()]
    return "  \n".join(line for line in lines if line)
