"""Monthly budgets per model, team or the portfolio; their status, forecast and alerts.

A budget holds every month until changed. `check` compares each budget's month-to-date spend and
month-end forecast with it: each threshold crossed (e.g. 50, 80, 100 %) and a forecast above
the budget alert once per budget and month, across every replica (`claim_alert` is a unique
row). An alert is one signed ``budget.threshold_crossed`` or ``budget.forecast_over`` webhook
and an incident (one per budget and month, whatever the signals):

- a model's budget: on that model;
- a team's budget: on the team's model that spent the most of the month so far (ties: the
  first by name), so the incident lands with the team that can act and names the biggest
  spender; its labels carry ``team`` and ``budget_scope: team``. A team with no model alerts
  by webhook only;
- the portfolio's budget alerts by webhook only (incidents belong to a model's team).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from keel.domain.costs import (
    Budget,
    BudgetScope,
    BudgetStatus,
    Forecast,
    cents,
    check_thresholds,
    decimal_to_micros,
    micros_to_decimal,
    parse_month,
)
from keel.domain.incidents import Severity
from keel.domain.names import check_name
from keel.domain.permissions import Grant, Permission, Principal, PrincipalKind, Role, authorize
from keel.errors import InvalidInput, NotFound
from keel.services.costs.forecast import forecast_days

if TYPE_CHECKING:
    from keel.services.costs.service import CostService

# Budget alerts are raised by Keel itself, whoever asked for the check.
BUDGET_ACTOR = Principal("keel-budgets", PrincipalKind.SERVICE, grants=(Grant(Role.ADMIN),))
HISTORY_DAYS = 8 * 7  # the forecast learns from the last eight weeks


@dataclass(frozen=True)
class BudgetAlert:
    budget: Budget
    month: str
    signal: str
    event_type: str
    incident_id: int | None


def parse_scope(scope: str) -> BudgetScope:
    try:
        return BudgetScope(str(scope).strip().lower())
    except ValueError:
        raise InvalidInput(
            f"The 'scope' field must be one of {', '.join(BudgetScope)}. Got {scope!r} instead.",
            {"field": "scope"},
        ) from None


def set_budget(
    costs: CostService,
    by: Principal,
    scope: str,
    target: str | None,
    amount: Decimal | str,
    thresholds: Sequence[int] | None,
) -> Budget:
    """Create or replace a monthly budget. A model's or team's needs an approver of that team
    (or an admin); the portfolio's needs an admin. Bad input writes nothing."""
    chosen = parse_scope(scope)
    name = (target or "").strip()
    if chosen == BudgetScope.PORTFOLIO:
        if name:
            raise InvalidInput(
                "A portfolio budget has no target; leave 'target' out.", {"field": "target"}
            )
        authorize(by, Permission.ADMIN)
    else:
        check_name(name, str(chosen))
        teams = {m.name: m.team for m in costs.store.models()}
        if chosen == BudgetScope.MODEL:
            if name not in teams:
                raise NotFound(f"No model named {name!r}.", {"model": name})
            team = teams[name]
        else:
            if name not in costs.store.teams():
                raise NotFound(f"No team named {name!r}.", {"team": name})
            team = name
        authorize(by, Permission.APPROVE, team)
    micros = decimal_to_micros(amount, "amount")
    if micros <= 0:
        raise InvalidInput(
            f"The 'amount' field must be > 0 (per month). Got {amount!r} instead.",
            {"field": "amount"},
        )
    return costs.store.put_budget(chosen, name, micros, check_thresholds(thresholds), by.name)


def delete_budget(costs: CostService, by: Principal, budget_id: int) -> Budget:
    found = next((b for b in costs.store.budgets() if b.id == budget_id), None)
    if found is None:
        raise NotFound(f"No budget with id {budget_id}.", {"budget_id": budget_id})
    _authorize_budget(costs, by, found)
    return costs.store.delete_budget(budget_id, by.name)


def _authorize_budget(costs: CostService, by: Principal, budget: Budget) -> None:
    if budget.scope == BudgetScope.PORTFOLIO:
        authorize(by, Permission.ADMIN)
    elif budget.scope == BudgetScope.TEAM:
        authorize(by, Permission.APPROVE, budget.target)
    else:
        team = {m.name: m.team for m in costs.store.models()}.get(budget.target)
        authorize(by, Permission.APPROVE, team)


def _filters(budget: Budget) -> dict[str, str | None]:
    return {
        "model": budget.target if budget.scope == BudgetScope.MODEL else None,
        "team": budget.target if budget.scope == BudgetScope.TEAM else None,
    }


def status(
    costs: CostService, budget: Budget, month: str, as_of: date | None = None
) -> BudgetStatus:
    """Spend of the month up to and including ``as_of`` (default today, UTC), the month-end
    forecast with its interval, and which thresholds the spend has crossed."""
    start, end = parse_month(month)
    today = as_of or datetime.now(UTC).date()
    through = min(max(today + timedelta(days=1), start), end)
    filters = _filters(budget)
    spent = costs.period_micros(start, through, **filters)
    history_start = through - timedelta(days=HISTORY_DAYS)
    daily = costs.daily_micros(history_start, through, **filters) if through > start else []
    # Days before the scope had any cost are not history: leading zeros would drag the mean.
    first = next((i for i, d in enumerate(daily) if d != 0), len(daily))
    predicted = forecast_days(daily[first:], (end - through).days)
    point = micros_to_decimal(spent) + Decimal(str(predicted.remaining / 1_000_000))
    half = Decimal(str(predicted.half_width / 1_000_000))
    forecast = Forecast(
        method=predicted.method,
        point=point.quantize(Decimal("0.01")),
        low=max(point - half, micros_to_decimal(spent)).quantize(Decimal("0.01")),
        high=(point + half).quantize(Decimal("0.01")),
        backtest_mape=None
        if predicted.backtest_mape is None
        else round(predicted.backtest_mape, 2),
        history_days=len(daily) - first,
    )
    crossed = tuple(t for t in budget.thresholds if spent * 100 >= budget.amount_micros * t)
    return BudgetStatus(
        budget=budget,
        month=month,
        spent=cents(spent),
        forecast=forecast,
        thresholds_crossed=crossed,
        forecast_over_budget=forecast.point > micros_to_decimal(budget.amount_micros),
        alerts=tuple(costs.store.alerts_sent(month).get(budget.id, [])),
    )


def statuses(costs: CostService, month: str, as_of: date | None = None) -> list[BudgetStatus]:
    parse_month(month)
    return [status(costs, b, month, as_of) for b in costs.store.budgets()]


def check(costs: CostService, month: str, as_of: date | None = None) -> list[BudgetAlert]:
    """Raise each new alert of the month (see module docs); an alert already raised is not."""
    raised = []
    for current in statuses(costs, month, as_of):
        signals: list[tuple[str, str, str]] = []
        if current.thresholds_crossed:
            top = max(current.thresholds_crossed)
            signals.append(
                (f"threshold:{top}", "budget.threshold_crossed", f"spend crossed {top}% of")
            )
        if current.forecast_over_budget:
            signals.append(("forecast", "budget.forecast_over", "month-end forecast is above"))
        for signal, event_type, words in signals:
            payload = _payload(current, signal)
            if not costs.store.claim_alert(current.budget.id, month, signal, payload):
                continue
            incident_id = _open_incident(costs, current, signal, words)
            if incident_id is not None:
                costs.store.note_alert_incident(current.budget.id, month, signal, incident_id)
                payload["incident_id"] = incident_id
            if costs.notifications is not None:
                costs.notifications.emit(event_type, payload)
            raised.append(BudgetAlert(current.budget, month, signal, event_type, incident_id))
    return raised


def _payload(current: BudgetStatus, signal: str) -> dict[str, Any]:
    b = current.budget
    return {
        "budget_id": b.id,
        "scope": str(b.scope),
        "target": b.target,
        "month": current.month,
        "signal": signal,
        "budget": str(current.amount),
        "spent": str(current.spent),
        "forecast": str(current.forecast.point),
        "forecast_low": str(current.forecast.low),
        "forecast_high": str(current.forecast.high),
        "forecast_method": current.forecast.method,
        "thresholds_crossed": list(current.thresholds_crossed),
    }


def _open_incident(
    costs: CostService, current: BudgetStatus, signal: str, words: str
) -> int | None:
    budget = current.budget
    if costs.incidents is None or budget.scope == BudgetScope.PORTFOLIO:
        return None
    labels = {"budget": str(budget.id), "signal": signal.replace(":", "-")}
    if budget.scope == BudgetScope.MODEL:
        model = budget.target
        whose = "its"
    else:
        found = top_spender(costs, budget.target, current.month)
        if found is None:
            return None
        model = found
        whose = f"team {budget.target}'s"
        labels.update({"team": budget.target, "budget_scope": "team"})
    incident, _ = costs.incidents.trigger(
        BUDGET_ACTOR,
        key=f"budget:{budget.id}:{current.month}",
        model=model,
        version=None,
        title=(
            f"{budget.target}: {words} {whose} {current.month} budget of {current.amount} "
            f"(spent {current.spent}, forecast {current.forecast.point})"
        ),
        severity=Severity.P3,
        check="budget",
        labels=labels,
        details={**_payload(current, signal), "incident_model": model},
    )
    return incident.id


def top_spender(costs: CostService, team: str, month: str) -> str | None:
    """The team's model that spent the most in ``month`` (ties: first by name); None when the
    team has no model."""
    names = sorted(m.name for m in costs.store.models() if m.team == team)
    if not names:
        return None
    start, end = parse_month(month)
    spent = dict.fromkeys(names, 0)
    for a in costs.allocations(start, end):
        if a.model in spent:
            spent[a.model] += a.micros
    for m in costs.metered(start, end):
        if m.model in spent:
            spent[m.model] += m.micros
    return max(names, key=lambda name: spent[name])  # max keeps the first of equals
