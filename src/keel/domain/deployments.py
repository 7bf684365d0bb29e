"""Deployments: how a version reaches live traffic, and the rules a rollout moves by.

A deployment puts one *candidate* version of a model in front of traffic with a strategy:

- **direct**: the candidate takes all traffic at once (that is its promotion);
- **canary**: the candidate takes a growing share in steps; each step is analysed against the
  stable version over the same period, advances by itself when it passes and aborts by itself
  when it fails; finishing the last step is the promotion;
- **blue-green**: the candidate (green) is loaded and smoke-tested beside the current version
  (blue), then takes all traffic in one switch (the promotion); blue stays loaded for an instant
  rollback for `keepBlueSeconds`;
- **shadow**: a share of requests is mirrored to the candidate, whose answers are recorded and
  never returned; it never becomes production through the shadow itself.

States: ``progressing -> paused -> progressing``, and from either ``promoted`` or ``aborted``
(both final). `transition` is the one place those moves are judged.

A plan file (YAML or JSON) configures a canary; the analysis limits keep Argo Rollouts' names
and meaning (`failureLimit`, `inconclusiveLimit`, `consecutiveErrorLimit`)::

    steps:
      - weight: 10            # percent of live traffic on the canary
        minDuration: 2m       # and/or minRequests: 500 (predictions the canary served)
        checks:
          - {metric: error_rate, absolute: 0.02}      # canary's error rate <= 2%
          - {metric: latency_p99_ms, relative: 0.25}  # canary p99 <= stable p99 x 1.25
          - {metric: prediction_drift, absolute: 0.2} # KS distance between the arms
          - {metric: live_accuracy, relative: 0.05}   # >= stable x 0.95, once labels arrive
    analysis: {interval: 30s, failureLimit: 0, inconclusiveLimit: 1, consecutiveErrorLimit: 4}
    routeKey: {header: X-Customer-Id}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from keel.domain.traffic import RouteKey, RouteKeySource
from keel.errors import Conflict, InvalidInput


class Strategy(StrEnum):
    DIRECT = "direct"
    CANARY = "canary"
    BLUE_GREEN = "blue-green"
    SHADOW = "shadow"


class DeploymentState(StrEnum):
    PROGRESSING = "progressing"
    PAUSED = "paused"
    PROMOTED = "promoted"  # final: the candidate is production
    ABORTED = "aborted"  # final: traffic is back on the stable version

    @property
    def active(self) -> bool:
        return self in (DeploymentState.PROGRESSING, DeploymentState.PAUSED)


class Move(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    PROMOTE = "promote"


_ALLOWED: dict[Move, tuple[DeploymentState, ...]] = {
    Move.PAUSE: (DeploymentState.PROGRESSING,),
    Move.RESUME: (DeploymentState.PAUSED,),
    Move.ABORT: (DeploymentState.PROGRESSING, DeploymentState.PAUSED),
    Move.PROMOTE: (DeploymentState.PROGRESSING, DeploymentState.PAUSED),
}
_RESULT = {
    Move.PAUSE: DeploymentState.PAUSED,
    Move.RESUME: DeploymentState.PROGRESSING,
    Move.ABORT: DeploymentState.ABORTED,
    Move.PROMOTE: DeploymentState.PROMOTED,
}


def transition(strategy: Strategy, state: DeploymentState, move: Move) -> DeploymentState:
    """The state after ``move``, or `Conflict` (409) saying why the move is not possible.

    >>> transition(Strategy.CANARY, DeploymentState.PROGRESSING, Move.PAUSE)
    <DeploymentState.PAUSED: 'paused'>
    """
    if move == Move.PROMOTE and strategy == Strategy.SHADOW:
        raise Conflict(
            "A shadow deployment never serves callers, so it cannot be promoted: deploy the "
            "version with --strategy canary, blue-green or direct.",
            {"strategy": str(strategy), "move": str(move)},
        )
    if state not in _ALLOWED[move]:
        raise Conflict(
            f"A deployment that is {state} cannot {move}"
            + (
                ": it has finished; start a new deployment."
                if not state.active
                else f" (only one that is {', '.join(_ALLOWED[move])} can)."
            ),
            {"state": str(state), "move": str(move)},
        )
    return _RESULT[move]


# -- checks ------------------------------------------------------------------------------------


class Metric(StrEnum):
    ERROR_RATE = "error_rate"
    LATENCY_P99_MS = "latency_p99_ms"
    PREDICTION_DRIFT = "prediction_drift"  # two-sample KS distance between the arms' predictions
    LIVE_ACCURACY = "live_accuracy"  # on predictions whose labels arrived (classification)
    LIVE_MAE = "live_mae"  # (regression)
    LIVE_RMSE = "live_rmse"

    @property
    def higher_is_better(self) -> bool:
        return self == Metric.LIVE_ACCURACY

    @property
    def needs_labels(self) -> bool:
        return self.value.startswith("live_")


@dataclass(frozen=True)
class Check:
    """One analysis check. ``absolute``: the worst value the canary may show (a ceiling, or a
    floor for a higher-is-better metric). ``relative``: the worst the canary may be compared with
    stable over the same period, as a share of stable's value (``canary <= stable * (1 + r)``, or
    ``canary >= stable * (1 - r)`` when higher is better)."""

    metric: Metric
    threshold: float
    relative: bool = False

    @property
    def needs_stable(self) -> bool:
        """An absolute threshold judges the canary alone; a relative one and drift need both."""
        return self.relative or self.metric == Metric.PREDICTION_DRIFT

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": str(self.metric),
            "relative" if self.relative else "absolute": self.threshold,
        }


@dataclass(frozen=True)
class Step:
    weight: float  # share of live traffic on the canary, in (0, 1]
    min_duration_s: float | None = None
    min_requests: int | None = None  # predictions (rows) the canary served in the step
    checks: tuple[Check, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"weight": round(self.weight * 100, 6)}
        if self.min_duration_s is not None:
            out["minDuration"] = self.min_duration_s
        if self.min_requests is not None:
            out["minRequests"] = self.min_requests
        out["checks"] = [c.to_dict() for c in self.checks]
        return out


@dataclass(frozen=True)
class AnalysisLimits:
    """Argo Rollouts' limits: the analysis fails after more than `failure_limit` failed
    measurements, pauses after more than `inconclusive_limit` inconclusive ones, and errors
    (aborting, like a failure) after more than `consecutive_error_limit` errors in a row."""

    interval_s: float = 30.0
    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = 4
    min_samples: int = 20  # rows each arm needs before a check can judge it


DEFAULT_CHECKS = (
    Check(Metric.ERROR_RATE, 0.05),
    Check(Metric.LATENCY_P99_MS, 0.5, relative=True),
    Check(Metric.PREDICTION_DRIFT, 0.3),
)


@dataclass(frozen=True)
class DeploymentPlan:
    steps: tuple[Step, ...] = ()
    analysis: AnalysisLimits = field(default_factory=AnalysisLimits)
    route_key: RouteKey | None = None
    mirror: float = 1.0  # shadow: the share of requests mirrored to the candidate
    keep_blue_s: float = 600.0  # blue-green: how long blue stays loaded after the switch
    smoke_test: bool = True  # blue-green: run green on its evaluation data before the switch

    def to_dict(self, strategy: Strategy) -> dict[str, Any]:
        """The plan as a plan file for ``strategy`` (`parse_plan` reads it back)."""
        out: dict[str, Any] = {}
        if strategy == Strategy.CANARY:
            out["steps"] = [s.to_dict() for s in self.steps]
        out["analysis"] = {
            "interval": self.analysis.interval_s,
            "failureLimit": self.analysis.failure_limit,
            "inconclusiveLimit": self.analysis.inconclusive_limit,
            "consecutiveErrorLimit": self.analysis.consecutive_error_limit,
            "minSamples": self.analysis.min_samples,
        }
        if strategy == Strategy.SHADOW:
            out["mirrorPercent"] = round(self.mirror * 100, 6)
        if strategy == Strategy.BLUE_GREEN:
            out["keepBlueSeconds"] = self.keep_blue_s
            out["smokeTest"] = self.smoke_test
        if self.route_key is not None:
            out["routeKey"] = {str(self.route_key.source): self.route_key.name}
        return out


def default_plan(strategy: Strategy) -> DeploymentPlan:
    """The plan used without a plan file: a canary goes 10% -> 50% for a minute each."""
    if strategy == Strategy.CANARY:
        return DeploymentPlan(
            steps=(
                Step(0.1, min_duration_s=60, checks=DEFAULT_CHECKS),
                Step(0.5, min_duration_s=60, checks=DEFAULT_CHECKS),
            )
        )
    return DeploymentPlan()


# -- parsing a plan file -----------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_PLAN_KEYS = {
    "strategy",
    "steps",
    "analysis",
    "routeKey",
    "mirrorPercent",
    "keepBlueSeconds",
    "smokeTest",
}
_STEP_KEYS = {"weight", "minDuration", "minRequests", "checks"}
_ANALYSIS_KEYS = {
    "interval",
    "failureLimit",
    "inconclusiveLimit",
    "consecutiveErrorLimit",
    "minSamples",
}
MAX_STEPS = 20


def _bad(where: str, problem: str, fix: str) -> InvalidInput:
    return InvalidInput(f"The plan's '{where}' {problem}. {fix}", {"field": where})


def _unknown(where: str, data: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        name = f"{where}.{extra[0]}" if where else extra[0]
        raise _bad(name, "is not a plan field", f"Use one of: {', '.join(sorted(allowed))}.")


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(
            where, f"must be a mapping, got {type(value).__name__}", "See keel deploy --help."
        )
    return value


def _number(value: Any, where: str, *, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(where, f"must be a number, got {value!r}", "Give a number.")
    number = float(value)
    if number < low or (high is not None and number > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise _bad(where, f"must be {bound}, got {value!r}", f"Give a value {bound}.")
    return number


def _count(value: Any, where: str, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _bad(where, f"must be a whole number >= {low}, got {value!r}", "Give a count.")
    return value


def parse_duration(value: Any, where: str) -> float:
    """Seconds from ``90``, ``"90s"``, ``"2m"``, ``"1h"`` or ``"500ms"``.

    >>> parse_duration("2m", "minDuration"), parse_duration(45, "interval")
    (120.0, 45.0)
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number(value, where, low=0)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise _bad(where, f"is not a duration: {value!r}", "Write e.g. 90, '90s', '2m' or '1h'.")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _check(data: Any, where: str) -> Check:
    data = _mapping(data, where)
    _unknown(where, data, {"metric", "absolute", "relative"})
    try:
        metric = Metric(data.get("metric"))
    except ValueError:
        raise _bad(
            f"{where}.metric",
            f"is {data.get('metric')!r}",
            f"Use one of: {', '.join(m.value for m in Metric)}.",
        ) from None
    if ("absolute" in data) == ("relative" in data):
        raise _bad(where, "needs exactly one of 'absolute' or 'relative'", "Pick one threshold.")
    relative = "relative" in data
    if relative and metric == Metric.PREDICTION_DRIFT:
        raise _bad(
            f"{where}.relative",
            "is not possible for prediction_drift: it already compares the canary with stable",
            "Give an absolute KS distance, e.g. absolute: 0.2.",
        )
    key = "relative" if relative else "absolute"
    threshold = _number(data[key], f"{where}.{key}", low=0)
    return Check(metric, threshold, relative)


def _step(data: Any, where: str) -> Step:
    data = _mapping(data, where)
    _unknown(where, data, _STEP_KEYS)
    if "weight" not in data:
        raise _bad(f"{where}.weight", "is missing", "Give the canary's share in percent (1-100).")
    weight = _number(data["weight"], f"{where}.weight", low=0, high=100)
    if weight <= 0:
        raise _bad(f"{where}.weight", "must be above 0", "Give the canary's share in percent.")
    duration = None
    if "minDuration" in data:
        duration = parse_duration(data["minDuration"], f"{where}.minDuration")
    requests = None
    if "minRequests" in data:
        requests = _count(data["minRequests"], f"{where}.minRequests", low=1)
    if duration is None and requests is None:
        raise _bad(
            where,
            "needs minDuration and/or minRequests",
            "Say how long or how many requests the step lasts at least.",
        )
    raw_checks = data.get("checks", [])
    if not isinstance(raw_checks, list):
        raise _bad(f"{where}.checks", "must be a list", "List the step's checks.")
    checks = tuple(_check(c, f"{where}.checks[{i}]") for i, c in enumerate(raw_checks))
    return Step(weight / 100.0, duration, requests, checks)


def _limits(data: Any) -> AnalysisLimits:
    data = _mapping(data, "analysis")
    _unknown("analysis", data, _ANALYSIS_KEYS)
    limits = AnalysisLimits()
    if "interval" in data:
        interval = parse_duration(data["interval"], "analysis.interval")
        if interval < 1:
            raise _bad("analysis.interval", "must be at least 1s", "Give e.g. '30s'.")
        limits = replace(limits, interval_s=interval)
    for key, attr in (
        ("failureLimit", "failure_limit"),
        ("inconclusiveLimit", "inconclusive_limit"),
        ("consecutiveErrorLimit", "consecutive_error_limit"),
    ):
        if key in data:
            limits = replace(limits, **{attr: _count(data[key], f"analysis.{key}", low=0)})
    if "minSamples" in data:
        limits = replace(
            limits, min_samples=_count(data["minSamples"], "analysis.minSamples", low=1)
        )
    return limits


def _route_key(data: Any) -> RouteKey:
    data = _mapping(data, "routeKey")
    if len(data) != 1 or next(iter(data)) not in ("header", "field"):
        raise _bad(
            "routeKey",
            "must be {header: NAME} or {field: NAME}",
            "Name one header or input column.",
        )
    source, name = next(iter(data.items()))
    if not isinstance(name, str) or not name.strip() or len(name) > 128:
        raise _bad(
            f"routeKey.{source}", f"must be a name, got {name!r}", "Give a header or column name."
        )
    return RouteKey(RouteKeySource(source), name.strip())


def parse_plan(strategy: Strategy, data: Any) -> DeploymentPlan:
    """Validate a plan document (already read from YAML or JSON) for ``strategy``.

    Raises `InvalidInput` naming the field and the fix; a canary needs at least one step and
    its weights must grow.
    """
    if data is None:
        return default_plan(strategy)
    data = _mapping(data, "plan")
    _unknown("", data, _PLAN_KEYS)
    if "strategy" in data and data["strategy"] != str(strategy):
        raise _bad(
            "strategy",
            f"says {data['strategy']!r} but the deployment is {strategy}",
            "Make them agree, or drop 'strategy' from the plan.",
        )
    plan = default_plan(strategy)
    if "steps" in data:
        if strategy != Strategy.CANARY:
            raise _bad("steps", f"only apply to a canary, not {strategy}", "Drop them.")
        raw = data["steps"]
        if not isinstance(raw, list) or not raw:
            raise _bad("steps", "must be a non-empty list", "Give at least one step.")
        if len(raw) > MAX_STEPS:
            raise _bad("steps", f"has {len(raw)} steps", f"Keep to {MAX_STEPS} at most.")
        steps = tuple(_step(s, f"steps[{i}]") for i, s in enumerate(raw))
        for i in range(1, len(steps)):
            if steps[i].weight <= steps[i - 1].weight:
                raise _bad(
                    f"steps[{i}].weight",
                    f"is {steps[i].weight * 100:g}, not above the step before",
                    "Make each step's weight larger than the one before.",
                )
        plan = replace(plan, steps=steps)
    if "analysis" in data:
        plan = replace(plan, analysis=_limits(data["analysis"]))
    if "routeKey" in data:
        plan = replace(plan, route_key=_route_key(data["routeKey"]))
    if "mirrorPercent" in data:
        if strategy != Strategy.SHADOW:
            raise _bad("mirrorPercent", f"only applies to a shadow, not {strategy}", "Drop it.")
        share = _number(data["mirrorPercent"], "mirrorPercent", low=0, high=100)
        if share <= 0:
            raise _bad("mirrorPercent", "must be above 0", "Mirror some share, e.g. 100.")
        plan = replace(plan, mirror=share / 100.0)
    if "keepBlueSeconds" in data:
        if strategy != Strategy.BLUE_GREEN:
            raise _bad("keepBlueSeconds", f"only applies to blue-green, not {strategy}", "Drop it.")
        plan = replace(plan, keep_blue_s=parse_duration(data["keepBlueSeconds"], "keepBlueSeconds"))
    if "smokeTest" in data:
        if not isinstance(data["smokeTest"], bool):
            raise _bad("smokeTest", "must be true or false", "Write true or false.")
        plan = replace(plan, smoke_test=data["smokeTest"])
    return plan


# -- analysis verdicts ---------------------------------------------------------------------------


class Verdict(StrEnum):
    SUCCESSFUL = "successful"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"  # not enough data on an arm to judge a check
    ERROR = "error"  # the figures could not be read
    SKIPPED = "skipped"  # a live-performance check before labels arrived on both arms


@dataclass(frozen=True)
class ArmFigure:
    """One arm's value of a metric over the measured period, and on how many rows."""

    value: float | None
    rows: int


@dataclass(frozen=True)
class CheckResult:
    metric: Metric
    verdict: Verdict
    canary: float | None
    stable: float | None
    bound: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": str(self.metric),
            "verdict": str(self.verdict),
            "canary": self.canary,
            "stable": self.stable,
            "bound": self.bound,
            "reason": self.reason,
        }


def judge_check(
    check: Check, canary: ArmFigure, stable: ArmFigure, min_samples: int
) -> CheckResult:
    """Judge one check on the two arms' figures over the same period.

    >>> bad = judge_check(Check(Metric.ERROR_RATE, 0.05), ArmFigure(0.2, 99), ArmFigure(0, 9), 5)
    >>> bad.verdict
    <Verdict.FAILED: 'failed'>
    """
    both = check.needs_stable
    few = canary.rows < min_samples or (both and stable.rows < min_samples)
    if few or canary.value is None or (both and stable.value is None):
        verdict = Verdict.SKIPPED if check.metric.needs_labels else Verdict.INCONCLUSIVE
        need = "the canary needs" if not both else "each arm needs"
        return CheckResult(
            check.metric,
            verdict,
            canary.value,
            stable.value,
            None,
            f"{canary.rows} canary and {stable.rows} stable rows; {need} {min_samples}",
        )
    assert canary.value is not None
    higher = check.metric.higher_is_better
    if check.relative:
        assert stable.value is not None
        bound = (
            stable.value * (1 - check.threshold) if higher else stable.value * (1 + check.threshold)
        )
    else:
        bound = check.threshold
    passed = canary.value >= bound if higher else canary.value <= bound
    sign = ">=" if higher else "<="
    return CheckResult(
        check.metric,
        Verdict.SUCCESSFUL if passed else Verdict.FAILED,
        canary.value,
        stable.value,
        bound,
        f"canary {check.metric} {canary.value:.4g} {'' if passed else 'not '}{sign} {bound:.4g}"
        + (f" (stable {stable.value:.4g})" if check.relative else ""),
    )


def measurement(results: tuple[CheckResult, ...]) -> Verdict:
    """A measurement fails when any check fails, is inconclusive when any check could not
    judge, and succeeds otherwise (skipped checks do not count)."""
    verdicts = {r.verdict for r in results}
    if Verdict.FAILED in verdicts:
        return Verdict.FAILED
    if Verdict.INCONCLUSIVE in verdicts:
        return Verdict.INCONCLUSIVE
    return Verdict.SUCCESSFUL


@dataclass(frozen=True)
class AnalysisCounts:
    """A step's measurements so far (reset when the step advances)."""

    failed: int = 0
    inconclusive: int = 0
    consecutive_errors: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "failed": self.failed,
            "inconclusive": self.inconclusive,
            "consecutive_errors": self.consecutive_errors,
        }


class Outcome(StrEnum):
    WAIT = "wait"  # keep measuring
    ADVANCE = "advance"  # the step passed: next step, or promotion after the last
    PAUSE = "pause"  # too many inconclusive measurements: a person decides
    ABORT = "abort"  # failed or errored beyond the limits: traffic back to stable


def decide(
    counts: AnalysisCounts, verdict: Verdict, limits: AnalysisLimits, *, step_done: bool
) -> tuple[Outcome, AnalysisCounts]:
    """What one measurement does to a step, with Argo Rollouts' limits.

    A failed measurement counts at once (a bad canary aborts inside its first step); an
    inconclusive one counts only once the step's minimum duration and requests are met (before
    that, too little data is expected). A success once the step is done advances.

    >>> decide(AnalysisCounts(), Verdict.FAILED, AnalysisLimits(failure_limit=0), step_done=False)
    (<Outcome.ABORT: 'abort'>, AnalysisCounts(failed=1, inconclusive=0, consecutive_errors=0))
    """
    if verdict == Verdict.ERROR:
        counts = replace(counts, consecutive_errors=counts.consecutive_errors + 1)
        if counts.consecutive_errors > limits.consecutive_error_limit:
            return Outcome.ABORT, counts
        return Outcome.WAIT, counts
    counts = replace(counts, consecutive_errors=0)
    if verdict == Verdict.FAILED:
        counts = replace(counts, failed=counts.failed + 1)
        return (Outcome.ABORT if counts.failed > limits.failure_limit else Outcome.WAIT), counts
    if not step_done:
        return Outcome.WAIT, counts
    if verdict == Verdict.INCONCLUSIVE:
        counts = replace(counts, inconclusive=counts.inconclusive + 1)
        if counts.inconclusive > limits.inconclusive_limit:
            return Outcome.PAUSE, counts
        return Outcome.WAIT, counts
    return Outcome.ADVANCE, counts


# -- the deployment itself -----------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    id: int
    model: str
    strategy: Strategy
    state: DeploymentState
    candidate: int  # the version being deployed
    stable: int | None  # the production version when it started (None: there was none)
    plan: DeploymentPlan
    step: int  # index of the current canary step
    step_started_at: datetime
    counts: AnalysisCounts
    revision: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    reason: str = ""  # why it paused, aborted or finished
    break_glass: bool = False
    justification: str = ""
    switched_at: datetime | None = None  # blue-green: when green took all traffic
    blue_until: datetime | None = None  # blue-green: blue stays loaded until then
    incident_id: int | None = None
    measured_at: datetime | None = None  # the current step's latest measurement

    @property
    def weight(self) -> float:
        """The candidate's share of live traffic now."""
        if self.state == DeploymentState.PROMOTED:
            return 1.0
        if self.strategy != Strategy.CANARY or not self.state.active:
            return 0.0
        return self.plan.steps[self.step].weight


@dataclass(frozen=True)
class DeploymentEvent:
    id: int
    deployment_id: int
    at: datetime
    kind: str  # started, paused, resumed, aborted, promoted, advanced, measured, switched...
    actor: str
    details: Mapping[str, Any]
