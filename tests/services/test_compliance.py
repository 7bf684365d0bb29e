"""Compliance documents from real records: a high-risk credit model registered with a real
scikit-learn estimator, measured by the gates, signed off, promoted and overridden by
break-glass; the document holds every Annex IV section, lists its gaps first, escapes user text.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression

from keel.config import Settings
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import (
    DatasetFingerprint,
    Environment,
    Lineage,
    Model,
    ModelCard,
    ModelChanges,
    RiskTier,
    VersionDraft,
)
from keel.domain.risk import QUESTIONNAIRE
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.errors import InvalidInput, NotFound
from keel.services.backend import Backend
from keel.services.compliance import ComplianceDocument

ROOT = Principal("root", grants=(Grant(Role.ADMIN),))
DANA = Principal("dana", grants=(Grant(Role.CONTRIBUTOR, "risk"),))  # registers
APRIL = Principal("april", grants=(Grant(Role.APPROVER, "risk"),))
CARL = Principal("carl", grants=(Grant(Role.APPROVER, "compliance"),))
MODEL = "scorecard"
SECTIONS = [
    "intended_purpose",
    "provider",
    "model_card",
    "risk_classification",
    "version_history",
    "data",
    "design",
    "evaluation",
    "gates",
    "approvals",
    "human_oversight",
    "post_market_monitoring",
    "break_glass",
]
SIGNATURE = Signature(
    (
        Column("income", ColumnType.FLOAT),
        Column("debt", ColumnType.FLOAT),
        Column("group", ColumnType.INTEGER, ColumnRole.PROTECTED_ATTRIBUTE),
        Column("repaid", ColumnType.INTEGER, ColumnRole.TARGET),
    )
)
FULL_CARD = ModelCard(
    intended_use="Score consumer credit applications for the underwriting team.",
    out_of_scope_uses="Employment or insurance decisions.",
    limitations="Trained on applicants aged 18-75 only.",
    training_data="2019-2024 loan book.",
    evaluation_data="Held-out 2025 applications.",
    human_oversight="An underwriter reviews every decline before it is sent.",
    post_market_monitoring="Weekly drift and approval-rate parity checks; quarterly review.",
    design_choices="Logistic regression for explainability; no protected attribute as input.",
)


def credit_data(seed: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income, debt = rng.normal(size=rows), rng.normal(size=rows)
    group = rng.integers(0, 2, size=rows)
    signal = 1.5 * income - debt + rng.normal(scale=0.7, size=rows)
    return pd.DataFrame(
        {"income": income, "debt": debt, "group": group, "repaid": (signal > 0).astype(int)}
    )


@dataclass
class World:
    backend: Backend
    holdout: bytes
    artifact: bytes

    def register(self, card: ModelCard = FULL_CARD, description: str = "") -> int:
        draft = VersionDraft(
            signature=SIGNATURE,
            description=description,
            params={"C": 1.0, "solver": "lbfgs"},
            metrics={"roc_auc": 0.99},
            lineage=Lineage(
                training_data=DatasetFingerprint(
                    "ab" * 32, 2000, (("income", "float64"), ("debt", "float64"))
                ),
                git_commit="0123abcd",
            ),
            environment=Environment(
                python_version="3.11.9",
                packages={"scikit-learn": sklearn.__version__, "numpy": np.__version__},
            ),
            card=card,
        )
        registry = self.backend.registry
        version = registry.register_version(
            DANA, MODEL, io.BytesIO(self.artifact), "model.joblib", draft
        ).version
        self.backend.evaluation.attach_dataset(
            DANA, MODEL, version, io.BytesIO(self.holdout), "holdout.parquet"
        )
        return version

    def signed_off(self, card: ModelCard = FULL_CARD) -> int:
        """A version that passed gates 1-3 and has both approvals the high-risk policy asks."""
        version = self.register(card)
        status = self.backend.governance.run_gates(DANA, MODEL, version)
        measured = [g.outcome for g in status.gates if g.gate != "signoff"]
        assert measured == ["passed"] * 3, status.blockers
        governance = self.backend.governance
        governance.approve(APRIL, MODEL, version, "metrics and fairness reviewed")
        governance.approve(CARL, MODEL, version, "compliance review done")
        assert governance.status(MODEL, version).promotable
        return version

    def document(self, version: int | None = None) -> ComplianceDocument:
        return self.backend.compliance.technical_documentation(MODEL, version)


def assess_high_risk(backend: Backend) -> None:
    answers = {q.id: q.id == "credit_scoring" for q in QUESTIONNAIRE.questions if not q.follow_up}
    answers |= {"narrow_procedural_task": False, "profiles_people": True}
    backend.risk.assess(APRIL, MODEL, answers)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    opened = Backend.open(Settings.load(data_dir=tmp_path / "keel", env={}))
    opened.migrate()
    for team in ("risk", "compliance"):
        opened.registry.create_team(ROOT, team)
    opened.registry.create_model(
        ROOT,
        Model(
            name=MODEL,
            team="risk",
            owner="ana",
            description="Consumer credit scorecard",
            use_case="credit decisions",
        ),
    )
    yield opened
    opened.close()


@pytest.fixture
def world(backend: Backend) -> World:
    assess_high_risk(backend)
    train = credit_data(1, 2000)
    estimator = LogisticRegression().fit(train[["income", "debt"]], train["repaid"])
    artifact, holdout = io.BytesIO(), io.BytesIO()
    joblib.dump(estimator, artifact)
    credit_data(2, 1200).to_parquet(holdout)
    return World(backend, holdout.getvalue(), artifact.getvalue())


def test_the_document_of_a_promoted_model_holds_every_annex_iv_section(world: World) -> None:
    first = world.signed_off()
    world.backend.governance.promote(DANA, MODEL, first)
    second = world.register(description="retrained on 2025 data")

    doc = world.document()  # the production version, by default
    assert (doc.version, doc.version_basis, doc.risk_tier) == (first, "production", RiskTier.HIGH)
    assert [s.key for s in doc.sections] == SECTIONS
    assert doc.gaps == ()

    def content(key: str) -> dict[str, Any]:
        return dict(doc.section(key).content)

    assert content("intended_purpose")["intended_use"] == FULL_CARD.intended_use
    assert (content("provider")["team"], content("provider")["owner"]) == ("risk", "ana")
    assert content("model_card")["design_choices"] == FULL_CARD.design_choices
    risk = content("risk_classification")
    assert risk["tier"] == "high" and "Annex III point 5(b)" in risk["rationale"]
    assert risk["assessed_by"] == "april"
    history = content("version_history")["versions"]
    assert [(v["version"], v["status"], v["created_by"]) for v in history] == [
        (first, "production", "dana"),
        (second, "registered", "dana"),
    ]
    assert history[1]["description"] == "retrained on 2025 data"
    data = content("data")
    assert data["training_data"]["sha256"] == "ab" * 32
    assert data["evaluation_data"]["rows"] == 1200
    design = content("design")
    assert design["params"] == {"C": 1.0, "solver": "lbfgs"}
    assert design["environment"]["packages"]["scikit-learn"] == sklearn.__version__
    assert design["security_scan"]["safe"] is True
    evaluation = content("evaluation")
    assert evaluation["performance"]["metrics"]["roc_auc"] > 0.8  # computed by Keel
    assert evaluation["reported_by_client"] == {"roc_auc": 0.99}  # stored, not trusted
    [by_group] = evaluation["fairness"]["attributes"]
    assert by_group["attribute"] == "group"
    assert sorted(g["group"] for g in by_group["groups"]) == ["0", "1"]
    results = content("gates")["results"]
    assert {r["gate"] for r in results} == {"performance", "security", "fairness"}
    assert all(r["policy_tier"] == "high" and r["policy_version"] >= 1 for r in results)
    approvals = content("approvals")["decisions"]
    assert [(a["actor"], a["decision"]) for a in approvals] == [
        ("april", "approve"),
        ("carl", "approve"),
    ]
    assert all(a["decided_at"] for a in approvals)
    assert content("human_oversight")["plan"] == FULL_CARD.human_oversight
    assert content("post_market_monitoring")["plan"] == FULL_CARD.post_market_monitoring
    assert content("break_glass")["overrides"] == []

    rendered = world.backend.compliance.render(doc, "md")
    for section in doc.sections:
        assert f"## {section.title}" in rendered
    assert "None: every field the **high** tier requires is recorded." in rendered


def test_a_field_left_empty_is_a_gap_at_the_top_and_goes_once_filled(world: World) -> None:
    without_oversight = world.signed_off(replace(FULL_CARD, human_oversight=""))
    doc = world.document(without_oversight)
    assert [g.key for g in doc.gaps] == ["human_oversight"]
    assert "card.human_oversight" in doc.gaps[0].missing

    for fmt in ("md", "html"):
        rendered = world.backend.compliance.render(doc, fmt)
        gaps_at = rendered.index("Gaps")
        assert gaps_at < rendered.index("card.human_oversight") < rendered.index("Intended purpose")
    as_json = json.loads(world.backend.compliance.render(doc, "json"))
    assert list(as_json).index("gaps") < list(as_json).index("sections")
    assert [g["key"] for g in as_json["gaps"]] == ["human_oversight"]

    filled = world.signed_off()
    assert world.document(filled).gaps == ()


def test_an_unassessed_model_with_a_bare_version_lists_what_is_missing(backend: Backend) -> None:
    backend.registry.register_version(
        DANA, MODEL, io.BytesIO(b"not a model"), "m.bin", VersionDraft()
    )
    doc = backend.compliance.technical_documentation(MODEL, None)
    assert (doc.version_basis, doc.risk_tier) == ("newest", RiskTier.UNASSESSED)
    keys = [g.key for g in doc.gaps]
    for expected in (
        "risk_classification",
        "limitations",
        "human_oversight",
        "post_market_monitoring",
        "design_choices",
        "training_data_fingerprint",
        "evaluation_data",
        "evaluation",
        "gate:security",
        "gate:signoff",  # which says how many approvals, from whom
    ):
        assert expected in keys
    assert "intended_use" not in keys  # the model's use case stands in for it


def test_a_break_glass_promotion_appears_in_the_document(world: World) -> None:
    version = world.register()  # gates never run: promotion is blocked
    justification = "Regulator-mandated fix; gates to be re-run within 24 hours (INC-42)."
    world.backend.governance.promote(ROOT, MODEL, version, justification=justification)

    doc = world.document()
    assert (doc.version, doc.version_basis) == (version, "production")
    [override] = doc.section("break_glass").content["overrides"]
    assert (override["promoted_by"], override["justification"]) == ("root", justification)
    assert override["overridden"]  # the blockers it bypassed
    assert any("break-glass" in notice for notice in doc.notices)
    for fmt in ("md", "html", "json"):
        assert "INC-42" in world.backend.compliance.render(doc, fmt)


def test_html_and_markdown_escape_user_text(backend: Backend) -> None:
    hostile = '<script>alert("owned")</script>'
    backend.registry.update_model(ROOT, MODEL, ModelChanges(description=hostile))
    backend.registry.register_version(
        DANA,
        MODEL,
        io.BytesIO(b"bytes"),
        "m.bin",
        VersionDraft(description=hostile, card=ModelCard(limitations=f"a | b {hostile}")),
    )
    doc = backend.compliance.technical_documentation(MODEL, None)
    html = backend.compliance.render(doc, "html")
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in html
    # Self-contained: no external resource, nothing fetched when the file is opened.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    markdown = backend.compliance.render(doc, "md")
    assert "<script" not in markdown
    assert "&lt;script&gt;" in markdown
    assert "a \\| b" in markdown  # a pipe cannot break a table row


def test_a_model_without_versions_and_an_unknown_format_are_refused(backend: Backend) -> None:
    with pytest.raises(NotFound, match="no versions"):
        backend.compliance.technical_documentation(MODEL, None)
    backend.registry.register_version(DANA, MODEL, io.BytesIO(b"b"), "m.bin", VersionDraft())
    doc = backend.compliance.technical_documentation(MODEL, 1)
    with pytest.raises(InvalidInput, match="print it to PDF") as refused:
        backend.compliance.render(doc, "pdf")
    assert refused.value.details["field"] == "format"
