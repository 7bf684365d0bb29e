"""EU AI Act risk classification: the questionnaire and the rule from answers to a tier.

The questions follow Regulation (EU) 2024/1689 (the AI Act): the prohibited practices of Art. 5,
the Annex I product-safety route and the Annex III high-risk areas of Art. 6, the derogation of
Art. 6(3), and the transparency obligations of Art. 50. Every question is a yes/no question; the
rule is, in order:

1. any Art. 5 practice                          -> ``prohibited``
2. Annex I safety component, or an Annex III area
   (unless the Art. 6(3) derogation applies and the system does not profile people)
                                                -> ``high``
3. any Art. 50 transparency obligation          -> ``limited``
4. otherwise                                    -> ``minimal``

The rationale names every article that led to the tier, so a reviewer can check the reasoning
without re-reading the answers. This is a triage aid recorded with its answers, not legal advice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from keel.domain.registry import RiskTier
from keel.errors import InvalidInput

QUESTIONNAIRE_VERSION = 1


class Category(StrEnum):
    """Which part of the AI Act a question belongs to."""

    PROHIBITED = "prohibited_practice"  # Art. 5
    PRODUCT_SAFETY = "product_safety"  # Art. 6(1), Annex I
    HIGH_RISK_AREA = "high_risk_area"  # Art. 6(2), Annex III
    DEROGATION = "derogation"  # Art. 6(3), asked only after an Annex III "yes"
    TRANSPARENCY = "transparency"  # Art. 50


@dataclass(frozen=True)
class Question:
    """One yes/no question. ``article`` is the provision a "yes" invokes."""

    id: str
    category: Category
    area: str
    text: str
    article: str

    @property
    def follow_up(self) -> bool:
        """Derogation questions matter (and are required) only after an Annex III "yes"."""
        return self.category == Category.DEROGATION


def _q(id: str, category: Category, area: str, article: str, text: str) -> Question:
    return Question(id=id, category=category, area=area, text=text, article=article)


P, S, H, D, T = (
    Category.PROHIBITED,
    Category.PRODUCT_SAFETY,
    Category.HIGH_RISK_AREA,
    Category.DEROGATION,
    Category.TRANSPARENCY,
)

QUESTIONS: tuple[Question, ...] = (
    # -- Art. 5: prohibited practices ------------------------------------------------------------
    _q(
        "manipulation",
        P,
        "Manipulative or deceptive techniques",
        "Art. 5(1)(a)",
        "Does the system deploy subliminal, purposefully manipulative or deceptive techniques that "
        "materially distort people's behaviour in a way that causes or is likely to cause them "
        "significant harm?",
    ),
    _q(
        "exploits_vulnerabilities",
        P,
        "Exploitation of vulnerabilities",
        "Art. 5(1)(b)",
        "Does the system exploit vulnerabilities of people due to their age, disability or social "
        "or economic situation to materially distort their behaviour, causing significant harm?",
    ),
    _q(
        "social_scoring",
        P,
        "Social scoring",
        "Art. 5(1)(c)",
        "Does the system evaluate or classify people by their social behaviour or personal "
        "characteristics, with a social score leading to detrimental treatment in unrelated "
        "contexts or out of proportion to that behaviour?",
    ),
    _q(
        "crime_prediction_by_profiling",
        P,
        "Predicting crime from profiling alone",
        "Art. 5(1)(d)",
        "Does the system assess the risk that a person commits a criminal offence based solely on "
        "profiling or on their personality traits?",
    ),
    _q(
        "facial_image_scraping",
        P,
        "Untargeted facial-image scraping",
        "Art. 5(1)(e)",
        "Does the system create or expand a facial recognition database by untargeted scraping of "
        "facial images from the internet or CCTV footage?",
    ),
    _q(
        "emotion_recognition_work_school",
        P,
        "Emotion recognition at work or school",
        "Art. 5(1)(f)",
        "Does the system infer the emotions of people in the workplace or in education, other than "
        "for medical or safety reasons?",
    ),
    _q(
        "sensitive_biometric_categorisation",
        P,
        "Biometric categorisation by sensitive traits",
        "Art. 5(1)(g)",
        "Does the system categorise people from biometric data to deduce their race, political "
        "opinions, trade union membership, religious beliefs, sex life or sexual orientation?",
    ),
    _q(
        "realtime_remote_biometric_id_law_enforcement",
        P,
        "Real-time remote biometric identification for law enforcement",
        "Art. 5(1)(h)",
        "Is the system used for real-time remote biometric identification of people in publicly "
        "accessible spaces for law enforcement?",
    ),
    # -- Art. 6(1), Annex I: safety components of regulated products -----------------------------
    _q(
        "product_safety_component",
        S,
        "Safety component of a regulated product",
        "Art. 6(1) and Annex I",
        "Is the system a product, or the safety component of a product, covered by the Union "
        "harmonisation legislation of Annex I (machinery, toys, lifts, medical devices, vehicles, "
        "...) that must undergo a third-party conformity assessment?",
    ),
    # -- Art. 6(2), Annex III: high-risk areas ----------------------------------------------------
    _q(
        "remote_biometric_identification",
        H,
        "Biometrics",
        "Annex III point 1(a)",
        "Does the system identify people remotely from biometric data (not mere verification that "
        "someone is who they claim to be)?",
    ),
    _q(
        "biometric_categorisation",
        H,
        "Biometrics",
        "Annex III point 1(b)",
        "Does the system categorise people from biometric data by sensitive or protected "
        "attributes?",
    ),
    _q(
        "emotion_recognition",
        H,
        "Biometrics",
        "Annex III point 1(c)",
        "Does the system recognise people's emotions (outside work and education)?",
    ),
    _q(
        "critical_infrastructure",
        H,
        "Critical infrastructure",
        "Annex III point 2",
        "Is the system a safety component in managing or operating critical digital "
        "infrastructure, road traffic, or the supply of water, gas, heating or electricity?",
    ),
    _q(
        "education_access_or_assessment",
        H,
        "Education and vocational training",
        "Annex III point 3",
        "Does the system decide access or admission to education, evaluate learning outcomes, "
        "assess the level of education a person will receive, or monitor students during tests?",
    ),
    _q(
        "employment",
        H,
        "Employment and workers management",
        "Annex III point 4",
        "Is the system used to recruit or select people (targeted job ads, filtering applications, "
        "evaluating candidates), or to decide on promotion, termination, task allocation or to "
        "monitor and evaluate workers?",
    ),
    _q(
        "public_benefits",
        H,
        "Access to essential public services",
        "Annex III point 5(a)",
        "Does the system evaluate people's eligibility for public assistance benefits and services "
        "(including healthcare), or grant, reduce or revoke them?",
    ),
    _q(
        "credit_scoring",
        H,
        "Access to essential private services",
        "Annex III point 5(b)",
        "Does the system evaluate the creditworthiness of people or establish their credit score "
        "(other than to detect financial fraud)?",
    ),
    _q(
        "life_health_insurance_pricing",
        H,
        "Access to essential private services",
        "Annex III point 5(c)",
        "Is the system used for risk assessment and pricing of people's life or health insurance?",
    ),
    _q(
        "emergency_triage",
        H,
        "Access to essential services",
        "Annex III point 5(d)",
        "Does the system evaluate and classify emergency calls, dispatch emergency services or "
        "triage patients in emergency healthcare?",
    ),
    _q(
        "law_enforcement",
        H,
        "Law enforcement",
        "Annex III point 6",
        "Is the system used by or for law enforcement: to assess the risk of a person becoming a "
        "victim or (re-)offending, as a polygraph, to evaluate the reliability of evidence, or to "
        "profile people in detecting, investigating or prosecuting crime?",
    ),
    _q(
        "migration_border",
        H,
        "Migration, asylum and border control",
        "Annex III point 7",
        "Is the system used in migration, asylum or border control: as a polygraph, to assess "
        "security, irregular-migration or health risks posed by a person, to examine applications "
        "for asylum, visas or residence permits, or to detect and identify people?",
    ),
    _q(
        "justice_democracy",
        H,
        "Administration of justice and democratic processes",
        "Annex III point 8",
        "Does the system assist a judicial authority in researching and interpreting facts and law "
        "and applying the law, or is it intended to influence the outcome of an election or "
        "referendum or people's voting behaviour?",
    ),
    # -- Art. 6(3): derogation for Annex III systems ----------------------------------------------
    _q(
        "narrow_procedural_task",
        D,
        "Derogation: no significant risk",
        "Art. 6(3)",
        "Does the system only perform a narrow procedural task, improve the result of a completed "
        "human activity, detect decision patterns without replacing human assessment, or perform a "
        "preparatory task, so that it poses no significant risk of harm?",
    ),
    _q(
        "profiles_people",
        D,
        "Profiling of natural persons",
        "Art. 6(3), last subparagraph",
        "Does the system profile people (automated evaluation of personal aspects such as work "
        "performance, economic situation, health, preferences, behaviour or location)?",
    ),
    # -- Art. 50: transparency obligations --------------------------------------------------------
    _q(
        "interacts_with_people",
        T,
        "Interaction with people",
        "Art. 50(1)",
        "Does the system interact directly with people (a chatbot, a voice assistant, ...)?",
    ),
    _q(
        "generates_synthetic_content",
        T,
        "Synthetic content",
        "Art. 50(2)",
        "Does the system generate synthetic audio, images, video or text?",
    ),
    _q(
        "emotion_or_biometric_categorisation_disclosure",
        T,
        "Emotion recognition or biometric categorisation",
        "Art. 50(3)",
        "Does the system recognise emotions or categorise people from biometric data, so that the "
        "people exposed to it must be told?",
    ),
    _q(
        "deep_fakes_or_public_interest_text",
        T,
        "Deep fakes and public-interest text",
        "Art. 50(4)",
        "Does the system produce deep fakes, or text published to inform the public on matters of "
        "public interest?",
    ),
)


@dataclass(frozen=True)
class Questionnaire:
    """The questions, in the order they are asked, with the version assessments record."""

    version: int
    questions: tuple[Question, ...]

    def question(self, id: str) -> Question | None:
        return next((q for q in self.questions if q.id == id), None)

    def in_category(self, category: Category) -> tuple[Question, ...]:
        return tuple(q for q in self.questions if q.category == category)


QUESTIONNAIRE = Questionnaire(version=QUESTIONNAIRE_VERSION, questions=QUESTIONS)


@dataclass(frozen=True)
class Classification:
    """What the answers add up to: the tier, why, and the articles that decided it."""

    tier: RiskTier
    rationale: str
    articles: tuple[str, ...]
    answers: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class RiskAssessment:
    """One recorded assessment of a model: the classification, its answers, who and when."""

    id: int
    model: str
    tier: RiskTier
    previous_tier: RiskTier
    rationale: str
    answers: Mapping[str, bool]
    questionnaire_version: int
    assessed_by: str
    assessed_at: datetime


def check_answers(
    answers: Mapping[str, Any], questionnaire: Questionnaire = QUESTIONNAIRE
) -> dict[str, bool]:
    """The answers as ``{question id: bool}``, every required question present.

    Refuses (`InvalidInput` naming the question) an unknown id, an answer that is not true or
    false, and a missing answer. Derogation questions (Art. 6(3)) are required only when some
    Annex III question is answered yes; otherwise they may be left out and count as no.
    """
    if not isinstance(answers, Mapping):
        raise InvalidInput(
            "The 'answers' field must map question ids to true or false. "
            "See GET /api/v1/risk/questionnaire for the ids.",
            {"field": "answers"},
        )
    known = {q.id for q in questionnaire.questions}
    for key, value in answers.items():
        if key not in known:
            raise InvalidInput(
                f"'answers.{key}' is not a question of the risk questionnaire (version "
                f"{questionnaire.version}). See GET /api/v1/risk/questionnaire or "
                "`keel risk questions` for the ids.",
                {"field": f"answers.{key}", "question": key},
            )
        if not isinstance(value, bool):
            raise InvalidInput(
                f"'answers.{key}' must be true or false. Got {value!r} ({type(value).__name__}).",
                {"field": f"answers.{key}", "question": key},
            )
    clean: dict[str, bool] = {}
    annex_iii = any(answers.get(q.id) is True for q in questionnaire.in_category(H))
    for question in questionnaire.questions:
        if question.id in answers:
            clean[question.id] = bool(answers[question.id])
        elif question.follow_up and not annex_iii:
            clean[question.id] = False
        else:
            why = (
                " (asked because an Annex III area was answered yes)" if question.follow_up else ""
            )
            raise InvalidInput(
                f"'answers.{question.id}' is missing{why}: answer true or false to "
                f"{question.article}: {question.text}",
                {"field": f"answers.{question.id}", "question": question.id},
            )
    return clean


def _line(question: Question) -> str:
    return f'- {question.article}, {question.area}: yes to "{question.text}"'


def classify(
    answers: Mapping[str, Any], questionnaire: Questionnaire = QUESTIONNAIRE
) -> Classification:
    """The tier and a written rationale for ``answers`` (checked by `check_answers`)."""
    clean = check_answers(answers, questionnaire)
    yes = [q for q in questionnaire.questions if clean[q.id]]

    def answered(*categories: Category) -> list[Question]:
        return [q for q in yes if q.category in categories]

    transparency = answered(T)
    transparency_note = (
        [
            "The transparency obligations of Art. 50 apply as well:",
            *(_line(q) for q in transparency),
        ]
        if transparency
        else []
    )

    prohibited = answered(P)
    if prohibited:
        lines = [
            "Prohibited (EU AI Act Art. 5): the system may not be placed on the market, put into "
            "service or used in the EU. Keel never promotes a prohibited model.",
            "Answered yes:",
            *(_line(q) for q in prohibited),
        ]
        return _result(RiskTier.PROHIBITED, lines, prohibited, clean)

    product = answered(S)
    areas = answered(H)
    derogation = bool(areas) and not product and clean["narrow_procedural_task"]
    if derogation and clean["profiles_people"]:
        derogation = False
    if product or (areas and not derogation):
        lines = [
            "High-risk (EU AI Act Art. 6): the requirements of Art. 8-15 apply (risk management, "
            "data governance, technical documentation per Annex IV, record-keeping, transparency "
            "to deployers, human oversight, accuracy, robustness and cybersecurity), with "
            "post-market monitoring under Art. 72.",
            "Answered yes:",
            *(_line(q) for q in product + areas),
        ]
        if areas and clean["narrow_procedural_task"] and clean["profiles_people"]:
            lines.append(
                "- Art. 6(3), last subparagraph: the system profiles people, so the Art. 6(3) "
                "derogation does not apply even though it performs a narrow task."
            )
        return _result(RiskTier.HIGH, [*lines, *transparency_note], product + areas, clean)

    cited: list[Question] = []
    lines = []
    if areas:
        lines = [
            "Not high-risk under Art. 6(3): the system is used in an Annex III area but performs "
            "only a narrow or preparatory task and does not profile people. Art. 6(4): this "
            "assessment must be documented before the system is placed on the market, and the "
            "system registered under Art. 49(2).",
            *(_line(q) for q in areas),
        ]
        cited = [*areas, *answered(D)]
    if transparency:
        lines = [
            "Limited risk (EU AI Act Art. 50): people must be told they are dealing with an AI "
            "system or AI-generated content.",
            "Answered yes:",
            *(_line(q) for q in transparency),
            *lines,
        ]
        return _result(RiskTier.LIMITED, lines, [*transparency, *cited], clean)
    headline = (
        "Minimal risk: no answer places the system under Art. 5 (prohibited practices) or Art. 50 "
        "(transparency), and it is not high-risk under Art. 6."
        if areas
        else "Minimal risk: no answer places the system under Art. 5 (prohibited practices), "
        "Art. 6 with Annex I or Annex III (high-risk) or Art. 50 (transparency)."
    )
    lines = [
        f"{headline} No obligations apply beyond AI literacy (Art. 4); voluntary codes of "
        "conduct are encouraged (Art. 95).",
        *lines,
    ]
    return _result(RiskTier.MINIMAL, lines, cited, clean)


def _result(
    tier: RiskTier, lines: list[str], cited: list[Question], answers: dict[str, bool]
) -> Classification:
    articles = tuple(dict.fromkeys(q.article for q in cited))
    return Classification(tier=tier, rationale="\n".join(lines), articles=articles, answers=answers)
