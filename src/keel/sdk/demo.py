"""A demo portfolio, seeded into an empty Keel through its public API only (never its database).

`seed(client, as_of=...)` tells one month of a small company's models, ending the day before
``as_of``: four teams, ten models across the EU AI Act risk tiers, versions that passed and
failed their gates, sign-offs and a rejection, production versions, a canary in progress, a
month of live traffic with labels, a drift episode on the card-fraud model that opened an
incident and its rollback, an ongoing one still open on the churn model, a bill in FOCUS format
with budgets, and value models. Everything is a call a user could make (`keel.sdk.Client`), so
the demo also exercises the API it shows off.

The numbers come from fixed seeds (`keel.sdk.demo_data`); ``as_of`` only places them in time.
Gate runs that evaluate a model take a sandboxed process each, so only the high-risk credit
model is evaluated (Keel's default high-risk policy); the demo's own policies for the minimal
and limited tiers ask for a clean, pinned artifact and one sign-off.
"""

from __future__ import annotations

import platform
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from keel.errors import Conflict
from keel.schemas.jobs import JobOut
from keel.schemas.registry import EnvironmentSpec
from keel.schemas.risk import QuestionOut
from keel.sdk.client import Client
from keel.sdk.demo_data import (
    GROUP,
    LABEL,
    SEED,
    Dataset,
    Feature,
    Spend,
    day_start,
    focus_bill,
    rows,
    traffic,
)

DAYS = 30  # of live traffic, ending the day before as_of
TEAMS = {
    "credit-risk": "Consumer lending decisions",
    "fraud": "Payments and card fraud",
    "growth": "Customer growth and retention",
    "compliance": "Model risk management and AML",
}
LIGHT_POLICY = """\
tier: {tier}
description: The demo's {tier}-risk policy. A clean, pinned artifact and one sign-off.
checks:
  security:
    max_artifact_mb: 100
    require_pinned_environment: true
  signoff:
    approvals: 1
"""
_NO = "no"


@dataclass(frozen=True)
class DemoModel:
    name: str
    team: str
    owner: str
    tier: str  # minimal, limited, high, or unassessed (never assessed)
    use_case: str
    data: Dataset
    per_day: int = 0  # predictions a day once in production; 0: not serving
    spend: float = 0.0  # dollars a day on the bill
    value: Mapping[str, Any] = field(default_factory=dict)


def _f(name: str, mean: float, sd: float, weight: float) -> Feature:
    return Feature(name, mean, sd, weight)


MODELS: tuple[DemoModel, ...] = (
    DemoModel(
        "credit-scoring", "credit-risk", "ana", "high", "Consumer credit decisions",
        Dataset((_f("income", 52_000, 14_000, 1.4), _f("debt_ratio", 0.35, 0.12, -1.2),
                 _f("tenure_years", 6, 3, 0.6)), fairness=True),
        per_day=100, spend=38.0,
        value={"kind": "classification", "tp": 30, "fp": -45, "tn": 0, "fn": -4,
               "expected_monthly_value": 90_000},
    ),
    DemoModel(
        "loan-default", "credit-risk", "ana", "limited", "Early warning on loan repayments",
        Dataset((_f("missed_payments", 0.4, 0.7, 1.3), _f("balance", 8_200, 3_100, 0.5),
                 _f("months_on_book", 30, 14, -0.7))),
        per_day=60, spend=17.0,
        value={"kind": "classification", "tp": 55, "fp": -6, "tn": 0, "fn": -70,
               "expected_monthly_value": 60_000},
    ),
    DemoModel(
        "card-fraud", "fraud", "omar", "limited", "Blocks fraudulent card payments",
        Dataset((_f("amount", 64, 40, 1.1), _f("merchant_risk", 0.2, 0.1, 1.6),
                 _f("hour_of_day", 13, 5, -0.4))),
        per_day=150, spend=52.0,
        value={"kind": "classification", "tp": 120, "fp": -8, "tn": 0, "fn": -150,
               "expected_monthly_value": 150_000},
    ),
    DemoModel(
        "payment-anomaly", "fraud", "omar", "minimal", "Flags unusual payment batches",
        Dataset((_f("batch_size", 120, 45, 0.8), _f("new_payees", 3, 2, 1.2),
                 _f("weekday", 3, 2, -0.2))),
        per_day=80, spend=21.0,
        value={"kind": "declared", "monthly": 9_000, "expected_monthly_value": 10_000},
    ),
    DemoModel(
        "aml-screening", "compliance", "lena", "unassessed", "Anti-money-laundering alerts",
        Dataset((_f("cash_deposits", 4, 3, 1.0), _f("countries", 2, 1, 0.9),
                 _f("account_age_days", 800, 400, -0.6))),
    ),
    DemoModel(
        "kyc-document-check", "compliance", "lena", "limited", "Checks identity documents",
        Dataset((_f("blur_score", 0.3, 0.15, -1.1), _f("glare", 0.2, 0.1, -0.5),
                 _f("mrz_confidence", 0.8, 0.1, 1.4))),
        spend=6.0,
    ),
    DemoModel(
        "churn-predictor", "growth", "sam", "minimal", "Who to call before they leave",
        Dataset((_f("tenure_months", 26, 15, -1.0), _f("monthly_spend", 48, 18, -0.5),
                 _f("support_calls", 1.2, 1.1, 1.3))),
        per_day=120, spend=14.0,
        value={"kind": "classification", "tp": 40, "fp": -5, "tn": 0, "fn": -60,
               "expected_monthly_value": 40_000},
    ),
    DemoModel(
        "product-ranker", "growth", "sam", "minimal", "Orders products on the home page",
        Dataset((_f("views", 300, 120, 1.0), _f("price", 35, 20, -0.6),
                 _f("rating", 4.1, 0.5, 0.9))),
        per_day=120, spend=29.0,
        value={"kind": "declared", "monthly": 22_000, "expected_monthly_value": 25_000},
    ),
    DemoModel(
        "support-intent", "growth", "sam", "limited", "Routes chat messages to the right desk",
        Dataset((_f("words", 24, 12, 0.4), _f("question_marks", 1, 1, 0.8),
                 _f("refund_terms", 0.3, 0.5, 1.5))),
        per_day=80, spend=12.0,
        value={"kind": "declared", "monthly": 7_500},
    ),
    DemoModel(
        "ad-bidder", "growth", "sam", "minimal", "Bids for display ads",
        Dataset((_f("ctr", 0.02, 0.01, 1.2), _f("slot", 3, 1.5, -0.4),
                 _f("audience_size", 5_000, 2_000, 0.3))),
        per_day=90, spend=33.0,
        value={"kind": "declared", "monthly": 16_000, "expected_monthly_value": 30_000},
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Seeded:
    """What the demo made, and where to look at it."""

    url: str
    models: tuple[str, ...]
    as_of: date
    open_incident: int
    resolved_incident: int

    def places(self) -> list[tuple[str, str]]:
        return [
            ("The portfolio", f"{self.url}/"),
            ("A model with a rollback", f"{self.url}/models/card-fraud"),
            ("The approvals queue", f"{self.url}/approvals"),
            ("The open incident", f"{self.url}/incidents/{self.open_incident}"),
            ("Costs and budgets", f"{self.url}/costs"),
        ]


Progress = Callable[[str], None]


class AlreadySeeded(Conflict):
    """The server already holds models: the demo seeds only an empty Keel."""


def _answers(questions: Iterable[QuestionOut], tier: str) -> dict[str, bool]:
    answers = {q.id: False for q in questions if not q.follow_up}
    if tier == "limited":
        answers["interacts_with_people"] = True
    elif tier == "high":
        answers |= {"credit_scoring": True, "narrow_procedural_task": False}
        answers["profiles_people"] = True
    return answers


def _pinned() -> EnvironmentSpec:
    return EnvironmentSpec(
        python_version=platform.python_version(),
        packages={"scikit-learn": sklearn.__version__, "numpy": np.__version__},
    )


class _Story:
    """One run of the demo: the admin's client, the approvers' clients, the seeded generators."""

    def __init__(self, client: Client, as_of: date, say: Progress) -> None:
        self.admin, self.as_of, self.say = client, as_of, say
        self.days = [as_of - timedelta(days=DAYS - i) for i in range(DAYS)]
        self.rng = np.random.default_rng(SEED)
        self.fitted: dict[tuple[str, int], Pipeline] = {}
        self.people: dict[str, Client] = {}
        self.jobs: list[JobOut] = []
        self.open_incident = self.resolved_incident = 0
        self.credit_blocked = ""  # why the credit model could not be signed off, if it could not

    def model(self, name: str) -> DemoModel:
        return next(m for m in MODELS if m.name == name)

    # -- who -------------------------------------------------------------------------------

    def organisation(self) -> None:
        for team, description in TEAMS.items():
            self.admin.create_team(team, description)
        self.admin.apply_policy("minimal.yaml", source=LIGHT_POLICY.format(tier="minimal"))
        self.admin.apply_policy("limited.yaml", source=LIGHT_POLICY.format(tier="limited"))
        grants = {
            "ana": [("approver", "credit-risk"), ("approver", "growth")],
            "omar": [("approver", "fraud"), ("approver", "compliance")],
            "lena": [("approver", "compliance"), ("approver", "fraud")],
            "sam": [("contributor", "growth")],
            "vera": [("viewer", team) for team in TEAMS],
        }
        for person, roles in grants.items():
            self.admin.create_user(person)
            for role, team in roles:
                self.admin.grant(person, role, team)
        for person in ("ana", "omar", "lena"):
            token = self.admin.create_token("demo", principal=person).token
            self.people[person] = Client(self.admin.url, token=token)

    def close(self) -> None:
        for person in self.people.values():
            person.close()

    # -- what ------------------------------------------------------------------------------

    def models(self) -> None:
        questions = self.admin.risk_questionnaire().questions
        for m in MODELS:
            self.admin.create_model(
                m.name, team=m.team, owner=m.owner, use_case=m.use_case, tags=["demo"]
            )
            if m.tier != "unassessed":
                self.admin.assess_risk(m.name, _answers(questions, m.tier))

    def register(
        self, name: str, *, quality: float = 1.0, pinned: bool = True, gates: bool = True
    ) -> int:
        """A new version trained on seeded rows; ``quality`` < 1 flips that share of labels."""
        m = self.model(name)
        train = rows(m.data, self.rng, 600)
        labels = train[LABEL].to_numpy()
        flip = self.rng.random(len(labels)) > quality
        fitted = make_pipeline(StandardScaler(), LogisticRegression()).fit(
            train[m.data.columns], np.where(flip, 1 - labels, labels)
        )
        environment = _pinned() if pinned else EnvironmentSpec(packages={"scikit-learn": ">=1.3"})
        version = self.admin.register_version(
            name,
            fitted,
            training_data=train,
            target=LABEL,
            protected_attributes=[GROUP] if m.data.fairness else [],
            metrics={
                "train_accuracy": round(float(fitted.score(train[m.data.columns], labels)), 4)
            },
            params={"C": 1.0, "rows": len(train)},
            card={"intended_use": m.use_case, "limitations": "Demo data, seeded."},
            capture_git=False,
            environment=environment,
            format="skops",
        ).version
        self.fitted[name, version] = fitted
        if m.tier == "high":  # the one tier whose policy evaluates the model: it needs data
            self.admin.attach_evaluation_data(name, version, rows(m.data, self.rng, 400))
        if gates:
            self.jobs.append(self.admin.start_gate_run(name, version))
        return version

    def versions(self) -> None:
        """Gate runs queue as jobs; the slow one (the credit model's evaluation) goes first."""
        self.register("credit-scoring")
        for name in ("loan-default", "card-fraud", "card-fraud", "loan-default"):
            self.register(name)
        for name in ("payment-anomaly", "payment-anomaly", "kyc-document-check"):
            self.register(name)
        self.register("aml-screening", gates=False)  # its risk is not assessed yet
        for name in ("churn-predictor", "product-ranker", "support-intent", "ad-bidder"):
            self.register(name)
        self.register("product-ranker", pinned=False)  # fails the security gate: unpinned
        self.register("ad-bidder")

    def wait_for_gates(self) -> None:
        for job in self.jobs:
            self.admin.wait_for_job(job.id, timeout=600)
        self.jobs.clear()

    def challenger(self) -> None:
        """Credit v2, judged against production v1 on the same data: it fails Keel's own
        performance gate. Its evaluation runs while the month's monitoring is replayed."""
        if not self.credit_blocked:
            self.register("credit-scoring", quality=0.6)

    def sign_offs(self) -> None:
        ana, omar, lena = self.people["ana"], self.people["omar"], self.people["lena"]
        try:
            ana.approve("credit-scoring", 1, "Metrics and fairness evidence reviewed.")
            lena.approve("credit-scoring", 1, "Model risk review MR-118 closed.")
        except Conflict as refused:  # e.g. no sandbox here to evaluate it: gates in error
            self.credit_blocked = str(refused)
            self.say(f"credit-scoring v1 stays a candidate: {refused}")
        ana.approve("loan-default", 1, "Evidence reviewed.")
        ana.approve("churn-predictor", 1, "Evidence reviewed.")
        ana.approve("support-intent", 1, "Transparency notice in place.")
        ana.approve("product-ranker", 1, "A/B test results attached.")
        ana.approve("ad-bidder", 1, "Spend caps verified.")
        for name, v in (("card-fraud", 1), ("card-fraud", 2), ("payment-anomaly", 1)):
            omar.approve(name, v, "Backtest on last quarter's chargebacks reviewed.")
        omar.approve("payment-anomaly", 2, "Canary plan reviewed.")
        ana.reject("ad-bidder", 2, "Offline lift did not hold on the holdout week.")
        # Left waiting: loan-default v2, kyc-document-check v1 (the approvals queue).

    def production(self) -> None:
        if not self.credit_blocked:
            self.admin.promote("credit-scoring", 1)
        for name, v in (
            ("loan-default", 1),
            ("card-fraud", 1),
            ("card-fraud", 2),
            ("churn-predictor", 1),
            ("product-ranker", 1),
            ("support-intent", 1),
            ("ad-bidder", 1),
        ):
            self.admin.promote(name, v)
        self.admin.deploy("payment-anomaly", 1, strategy="direct")
        plan = {
            "steps": [
                {"weight": 10, "minDuration": "24h", "checks": _CANARY_CHECKS},
                {"weight": 50, "minDuration": "24h", "checks": _CANARY_CHECKS},
                {"weight": 100, "minDuration": "1h", "checks": _CANARY_CHECKS},
            ],
            "analysis": {"interval": "5m", "minSamples": 200},
        }
        self.admin.deploy("payment-anomaly", 2, strategy="canary", plan=plan)

    # -- how it went -----------------------------------------------------------------------

    def serving(self, name: str) -> int:
        """The version whose traffic the month shows: production's, at the month's end."""
        return 2 if name == "card-fraud" else 1

    def telemetry(self) -> None:
        drifting = {
            "card-fraud": self.days[-4:],  # ongoing at the month's end: incident, rollback
            "churn-predictor": self.days[-3:],  # ongoing: the open incident
        }
        for m in MODELS:
            if not m.per_day:
                continue
            version = self.serving(m.name)
            stream = traffic(
                m.data,
                self.rng,
                self.days,
                m.per_day,
                drifting=drifting.get(m.name, ()),
                prefix=m.name,
            )
            score = self.fitted[m.name, version].predict_proba(stream[m.data.columns])[:, 1]
            predictions = stream.drop(columns=[LABEL]).assign(
                prediction=(score >= 0.5).astype(int), score=score
            )
            self.admin.upload_predictions(m.name, version, predictions)
            labelled = stream[self.rng.random(len(stream)) < 0.6]
            self.admin.log_labels(
                m.name,
                ids=labelled["prediction_id"].tolist(),
                labels=labelled[LABEL].tolist(),
                timestamps=(labelled["ts"] + pd.Timedelta(hours=6)).tolist(),
            )

    def monitoring(self) -> None:
        """Replays the month's windows as the worker would have run them, day by day."""
        watched = {"card-fraud": self.days, "churn-predictor": self.days[-10:]}
        for name, days in watched.items():
            self.admin.create_monitor(name, window="daily", checks=_MONITOR_CHECKS, schedule=False)
            for day in days:
                self.admin.run_monitors(name, at=_day_end(day))

    def incidents(self) -> None:
        fraud = self.admin.list_incidents(model="card-fraud", status="open")[0]
        omar = self.people["omar"]
        omar.acknowledge_incident(fraud.id, "Looking: merchant_risk moved after the PSP switch.")
        self.admin.rollback(
            "card-fraud", reason="v2 leans on merchant_risk, which drifted", incident_id=fraud.id
        )
        omar.comment_incident(fraud.id, "Rolled back to v1, which weighs merchant_risk less.")
        omar.resolve_incident(fraud.id, "Scores back within limits on v1.")
        omar.set_postmortem(fraud.id, _POSTMORTEM)
        churn = self.admin.list_incidents(model="churn-predictor", status="open")[0]
        self.people["ana"].acknowledge_incident(churn.id, "A pricing change on the 1st? Checking.")
        self.open_incident, self.resolved_incident = churn.id, fraud.id

    def money(self) -> None:
        spend = [Spend(m.name, m.team, m.spend) for m in MODELS if m.spend]
        first = (self.as_of.replace(day=1) - timedelta(days=1)).replace(day=1)
        days = [first + timedelta(days=i) for i in range((self.as_of - first).days)]
        with tempfile.TemporaryDirectory() as folder:
            bill = Path(folder) / "demo-bill.csv"
            bill.write_text(focus_bill(spend, days), encoding="utf-8")
            self.admin.set_split_rule("GPU cluster", "predictions")
            self.admin.import_costs(bill)
        month_days = _days_in_month(self.as_of)
        # fraud is on course to overspend; its forecast says so before the month ends.
        for team, factor in (("fraud", 0.85), ("growth", 1.5)):
            daily = sum(m.spend for m in MODELS if m.team == team) + 32.0  # a GPU share
            self.admin.set_budget("team", round(daily * month_days * factor), target=team)
        total = sum(m.spend for m in MODELS) + 107.0
        self.admin.set_budget("portfolio", round(total * month_days * 1.2), thresholds=[80, 100])
        for m in MODELS:
            if m.value:
                self.admin.set_value_model(m.name, currency="USD", **m.value)


_MONITOR_CHECKS = ["drift", "performance", "operations"]
_CANARY_CHECKS = [
    {"metric": "error_rate", "absolute": 0.02},
    {"metric": "latency_p99_ms", "relative": 0.25},
    {"metric": "prediction_drift", "absolute": 0.2},
]
_POSTMORTEM = """\
# card-fraud: merchant_risk drift

**What happened.** The payment provider switch changed how merchant risk is scored upstream;
`merchant_risk` moved by more than one standard deviation and v2, which leans on it, drifted.

**What we did.** Rolled production back to v1, which weighs the feature less.

**What changes.** The provider's scores are now monitored at ingest; v3 retrains on them.
"""


def _day_end(day: date) -> datetime:
    """A minute after ``day``'s window closed: when the worker would have judged it."""
    return day_start(day) + timedelta(days=1, minutes=1)


def _days_in_month(day: date) -> int:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (following - day.replace(day=1)).days


def _steps(story: _Story) -> Iterator[tuple[str, Callable[[], object]]]:
    yield "teams, people and policies", story.organisation
    yield f"{len(MODELS)} models, assessed for risk", story.models
    yield "17 versions, their gate runs queued", story.versions
    yield "a month of predictions and labels", story.telemetry
    yield "gate runs (the credit model is evaluated in Keel's sandbox)", story.wait_for_gates
    yield "sign-offs and a rejection", story.sign_offs
    yield "promotions and a canary at 10%", story.production
    yield "a challenger for the credit model, its gates queued", story.challenger
    yield "daily monitoring replayed: drift episodes and incidents", story.monitoring
    yield "an incident, its rollback and post-mortem", story.incidents
    yield "a FOCUS bill, budgets and value models", story.money
    yield "the challenger's gate run", story.wait_for_gates


def seed(client: Client, *, as_of: date, say: Progress = lambda _: None) -> Seeded:
    """Seed the demo portfolio into the empty Keel ``client`` talks to (as an admin).

    Raises `AlreadySeeded` (a `keel.errors.Conflict`) when the server already holds a model.
    """
    if next(iter(client.list_models(limit=1)), None) is not None:
        demo = any(m.name == MODELS[0].name for m in client.list_models(limit=500))
        first = "The demo is already seeded" if demo else f"Keel at {client.url} holds models"
        raise AlreadySeeded(
            f"{first}: keel demo seeds only an empty Keel. Use a fresh data dir "
            "(keel up --data-dir DIR) and run keel demo against it.",
            {"url": client.url},
        )
    story = _Story(client, as_of, say)
    try:
        for what, step in _steps(story):
            say(what)
            step()
    finally:
        story.close()
    names = tuple(m.name for m in MODELS)
    return Seeded(client.url, names, as_of, story.open_incident, story.resolved_incident)


__all__ = ["MODELS", "AlreadySeeded", "DemoModel", "Seeded", "seed"]
