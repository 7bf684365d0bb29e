"""The EU AI Act questionnaire: which answers give which tier, and why."""

from __future__ import annotations

from typing import Any

import pytest

from keel.domain.registry import RiskTier
from keel.domain.risk import QUESTIONNAIRE, Category, classify
from keel.errors import InvalidInput


def answers(*yes: str, **explicit: Any) -> dict[str, Any]:
    """Every always-asked question answered no, except ``yes``; ``explicit`` overrides."""
    base: dict[str, Any] = {q.id: False for q in QUESTIONNAIRE.questions if not q.follow_up}
    base.update(dict.fromkeys(yes, True))
    base.update(explicit)
    return base


# Annex III systems must say whether the Art. 6(3) derogation applies.
NO_DEROGATION = {"narrow_procedural_task": False, "profiles_people": True}

CASES = [
    # (system, answers, tier, an article the rationale must name)
    (
        "credit scoring",
        answers("credit_scoring", **NO_DEROGATION),
        RiskTier.HIGH,
        "Annex III point 5(b)",
    ),
    ("social scoring", answers("social_scoring"), RiskTier.PROHIBITED, "Art. 5(1)(c)"),
    ("customer-service chatbot", answers("interacts_with_people"), RiskTier.LIMITED, "Art. 50(1)"),
    ("spam filter", answers(), RiskTier.MINIMAL, "Art. 95"),
    (
        "CV screening",
        answers("employment", **NO_DEROGATION),
        RiskTier.HIGH,
        "Annex III point 4",
    ),
    (
        "life insurance pricing",
        answers("life_health_insurance_pricing", **NO_DEROGATION),
        RiskTier.HIGH,
        "Annex III point 5(c)",
    ),
    (
        "emotion recognition of employees",
        answers("emotion_recognition_work_school"),
        RiskTier.PROHIBITED,
        "Art. 5(1)(f)",
    ),
    (
        "face database scraped from the web",
        answers("facial_image_scraping"),
        RiskTier.PROHIBITED,
        "Art. 5(1)(e)",
    ),
    (
        "real-time face identification for the police",
        answers("realtime_remote_biometric_id_law_enforcement"),
        RiskTier.PROHIBITED,
        "Art. 5(1)(h)",
    ),
    ("image generator", answers("generates_synthetic_content"), RiskTier.LIMITED, "Art. 50(2)"),
    (
        "safety component of a medical device",
        answers("product_safety_component"),
        RiskTier.HIGH,
        "Annex I",
    ),
    (
        "spell-checker for asylum case files (narrow task, no profiling)",
        answers("migration_border", narrow_procedural_task=True, profiles_people=False),
        RiskTier.MINIMAL,
        "Art. 6(3)",
    ),
    (
        "narrow task that profiles people stays high-risk",
        answers("credit_scoring", narrow_procedural_task=True, profiles_people=True),
        RiskTier.HIGH,
        "Art. 6(3), last subparagraph",
    ),
    (
        "prohibited beats high-risk and transparency",
        answers("social_scoring", "credit_scoring", "interacts_with_people", **NO_DEROGATION),
        RiskTier.PROHIBITED,
        "Art. 5(1)(c)",
    ),
]


@pytest.mark.parametrize(("system", "given", "tier", "article"), CASES, ids=[c[0] for c in CASES])
def test_answers_give_the_tier_and_a_rationale_naming_the_article(
    system: str, given: dict[str, Any], tier: RiskTier, article: str
) -> None:
    result = classify(given)
    assert result.tier == tier
    assert article in result.rationale


def test_a_high_risk_chatbot_also_names_its_transparency_duty() -> None:
    result = classify(answers("credit_scoring", "interacts_with_people", **NO_DEROGATION))
    assert result.tier == RiskTier.HIGH
    assert "Art. 50(1)" in result.rationale
    assert result.articles == ("Annex III point 5(b)",)


def test_every_category_of_the_act_is_asked_about() -> None:
    categories = {q.category for q in QUESTIONNAIRE.questions}
    assert categories == set(Category)
    ids = [q.id for q in QUESTIONNAIRE.questions]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("given", "field", "says"),
    [
        (answers(social_credit=True), "answers.social_credit", "not a question"),
        (answers(credit_scoring="yes"), "answers.credit_scoring", "must be true or false"),
        (answers(social_scoring=1), "answers.social_scoring", "must be true or false"),
        (
            {k: v for k, v in answers().items() if k != "employment"},
            "answers.employment",
            "missing",
        ),
        (answers("credit_scoring"), "answers.narrow_procedural_task", "Annex III area"),
    ],
    ids=["unknown id", "string", "integer", "missing", "derogation needed after Annex III"],
)
def test_bad_answers_are_refused_naming_the_question(
    given: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(InvalidInput, match=says) as raised:
        classify(given)
    assert raised.value.details["field"] == field
    assert field in raised.value.message
