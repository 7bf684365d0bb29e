"""The cost service (Backend field ``costs``): import bills, allocate them, meter Keel's own work,
and answer what a model, a team or the portfolio cost.

Who may do what: importing bills, split rules, tag keys and unit prices are admin settings (a bill
spans every team); budgets are set by admins or, for a model or a team, by that team's approvers
(see `keel.services.costs.budgets`); reading follows the usual read rule.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from keel.domain.costs import (
    DEFAULT_MODEL_TAG,
    DEFAULT_POOL,
    DEFAULT_TEAM_TAG,
    Allocation,
    AllocationSource,
    Budget,
    BudgetStatus,
    CostImport,
    MeteredCost,
    SplitRule,
    UnitPrices,
    decimal_to_micros,
    micros_to_decimal,
    parse_month,
)
from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, authorize
from keel.errors import InvalidInput, NotFound
from keel.services.costs import budgets as budget_rules
from keel.services.costs.allocation import Registered, allocate
from keel.services.costs.focus import check_tag_key, read_focus
from keel.services.costs.metering import metered_costs, midnight, predictions_per_day
from keel.services.incidents import Incidents
from keel.services.notifications import Notifications
from keel.store.sql.compute_usage import SqlComputeUsage
from keel.store.sql.costs import DayLine, SqlCostStore
from keel.store.telemetry import TelemetryFiles

DEFAULT_POOL_TAG = "keel-pool"
DEFAULT_CURRENCY = "USD"
PRICE_NAMES = ("vcpu_hour", "gpu_hour", "gb_month", "per_thousand_predictions")
TAG_SETTINGS = ("model_tag", "team_tag", "pool_tag")
_DEFAULTS = {
    "model_tag": DEFAULT_MODEL_TAG,
    "team_tag": DEFAULT_TEAM_TAG,
    "pool_tag": DEFAULT_POOL_TAG,
    "currency": DEFAULT_CURRENCY,
}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class CostService:
    """Costs from FOCUS bills and Keel's own metering, allocated to models and teams."""

    def __init__(
        self,
        store: SqlCostStore,
        files: TelemetryFiles,
        *,
        incidents: Incidents | None = None,
        notifications: Notifications | None = None,
        compute_usage: SqlComputeUsage | None = None,
    ) -> None:
        self.store = store
        self.files = files
        # Serving and evaluation compute-seconds (None: nothing metered, e.g. a bare service).
        self.compute_usage = compute_usage
        self.incidents = incidents
        self.notifications = notifications

    # -- settings ------------------------------------------------------------------------------

    def settings(self) -> dict[str, str]:
        """Tag keys, currency and unit prices (as decimal strings), defaults filled in."""
        stored = self.store.settings()
        out = {**_DEFAULTS, **{n: "0" for n in PRICE_NAMES}}
        out.update({k: v for k, v in stored.items() if k in out})
        return out

    def prices(self) -> UnitPrices:
        s = self.settings()
        return UnitPrices(*(decimal_to_micros(s[n], n) for n in PRICE_NAMES))

    def configure(self, by: Principal, changes: Mapping[str, Any]) -> dict[str, str]:
        """Change tag keys, the currency or unit prices (admins; audited). Unknown names and bad
        values are refused before anything is written."""
        authorize(by, Permission.ADMIN)
        clean: dict[str, str] = {}
        for name, value in changes.items():
            if value is None:
                continue
            if name in PRICE_NAMES:
                micros = decimal_to_micros(value, name)
                if micros < 0:
                    raise InvalidInput(
                        f"The '{name}' price must be >= 0. Got {value!r} instead.",
                        {"field": name},
                    )
                clean[name] = str(micros_to_decimal(micros))
            elif name in TAG_SETTINGS:
                clean[name] = check_tag_key(str(value), name)
            elif name == "currency":
                code = str(value).strip().upper()
                if len(code) != 3 or not code.isalpha():
                    raise InvalidInput(
                        f"The 'currency' field must be an ISO 4217 code such as USD or EUR. "
                        f"Got {value!r} instead.",
                        {"field": "currency"},
                    )
                clean[name] = code
            else:
                known = ", ".join((*PRICE_NAMES, *TAG_SETTINGS, "currency"))
                raise InvalidInput(
                    f"Unknown cost setting {name!r}; the settings are {known}.", {"field": name}
                )
        if clean:
            self.store.set_settings(clean, by.name)
        return self.settings()

    def split_rules(self) -> dict[str, str]:
        return self.store.split_rules()

    def set_split_rule(self, by: Principal, pool: str, rule: str | None) -> dict[str, str]:
        """Split ``pool``'s untagged cost by ``rule`` (None: leave it unallocated). Pool ``*``
        is the rule for every pool without its own."""
        authorize(by, Permission.ADMIN)
        if not isinstance(pool, str) or not pool.strip() or len(pool) > 256:
            raise InvalidInput(
                "The 'pool' field must be a pool name (a ServiceName or keel-pool tag value) "
                f"of 1-256 characters, or '{DEFAULT_POOL}' for every other pool.",
                {"field": "pool"},
            )
        if rule is not None:
            try:
                rule = SplitRule(rule).value
            except ValueError:
                raise InvalidInput(
                    f"The 'rule' field must be one of {', '.join(SplitRule)}. Got {rule!r}.",
                    {"field": "rule"},
                ) from None
        self.store.set_split_rule(pool.strip(), rule, by.name)
        return self.split_rules()

    # -- import --------------------------------------------------------------------------------

    def import_focus(
        self, by: Principal, path: Path, *, file_format: str, filename: str
    ) -> CostImport:
        """Check and import a FOCUS file (admins). The same file twice imports once; a file
        refused by `read_focus` writes nothing."""
        authorize(by, Permission.ADMIN)
        sha256 = _sha256(path)
        known = self.store.find_import(sha256)
        if known is not None:
            return known
        s = self.settings()
        bill = read_focus(
            path,
            file_format,
            model_tag=s["model_tag"],
            team_tag=s["team_tag"],
            pool_tag=s["pool_tag"],
            currency=s["currency"],
        )
        lines = [asdict(line) for line in bill.lines]
        return self.store.record_import(
            sha256=sha256,
            filename=filename[:512] or "upload",
            file_format=file_format,
            rows=bill.rows,
            lines=lines,
            actor=by.name,
        )

    def imports(self) -> list[CostImport]:
        return self.store.imports()

    # -- allocation ----------------------------------------------------------------------------

    def _registered(self) -> Registered:
        records = self.store.models()
        return Registered({m.name: m.team for m in records}, frozenset(self.store.teams()))

    def _weights(self, start: date, end: date, known: Registered) -> Any:
        cache: dict[SplitRule, dict[str, int]] = {}

        def weights(rule: SplitRule) -> dict[str, int]:
            if rule not in cache:
                if rule == SplitRule.PREDICTIONS:
                    counts: dict[str, int] = defaultdict(int)
                    for (model, _, _), n in predictions_per_day(self.store, start, end).items():
                        counts[model] += n
                    cache[rule] = dict(counts)
                elif rule == SplitRule.EVEN:
                    cache[rule] = {m: 1 for m in known.model_teams}
                else:
                    # Serving compute-seconds, in milliseconds: weights are integers.
                    cache[rule] = {
                        model: round(seconds * 1000)
                        for model, seconds in self._serving_seconds(start, end).items()
                        if round(seconds * 1000) > 0
                    }
            return cache[rule]

        return weights

    def allocations(self, start: date, end: date) -> list[Allocation]:
        """Bills of start <= day < end, allocated; they sum to the period's EffectiveCost."""
        known = self._registered()
        lines = self.store.day_lines(start, end)
        return allocate(lines, self.store.split_rules(), self._weights(start, end, known), known)

    def month_allocations(self, month: str) -> list[Allocation]:
        return self.allocations(*parse_month(month))

    def _serving_seconds(self, start: date, end: date) -> dict[str, float]:
        if self.compute_usage is None:
            return {}
        return self.compute_usage.seconds_per_model(midnight(start), midnight(end), "serving")

    def metered(self, start: date, end: date) -> list[MeteredCost]:
        known = self._registered()
        compute = (
            []
            if self.compute_usage is None
            else self.compute_usage.usage(midnight(start), midnight(end))
        )
        return metered_costs(
            self.store,
            self.files,
            self.prices(),
            start,
            end,
            model_teams=known.model_teams,
            compute=compute,
        )

    def period_micros(
        self, start: date, end: date, *, model: str | None = None, team: str | None = None
    ) -> int:
        """Allocated bills plus metering for the period; no filter = everything, unallocated
        included."""
        total = 0
        for a in self.allocations(start, end):
            if _matches(a.model, a.team, model, team):
                total += a.micros
        for m in self.metered(start, end):
            if _matches(m.model, m.team, model, team):
                total += m.micros
        return total

    def month_cost(
        self, month: str, *, model: str | None = None, team: str | None = None
    ) -> Decimal:
        """What ``model``, ``team`` or (no filter) the whole portfolio cost in YYYY-MM."""
        start, end = parse_month(month)
        if model is not None:
            check_name(model, "model")
        if team is not None:
            check_name(team, "team")
        return micros_to_decimal(self.period_micros(start, end, model=model, team=team))

    def month_cost_by_model(self, month: str) -> tuple[Decimal, dict[str, Decimal]]:
        """The whole portfolio's cost in YYYY-MM (unallocated included) and each model's, from
        one allocation of the month: what a page listing many models asks, instead of
        `month_cost` once per model."""
        start, end = parse_month(month)
        total = 0
        by_model: dict[str, int] = defaultdict(int)
        # The registered models are read once for both (at 1,000 models that read dominates).
        known = self._registered()
        allocated = allocate(
            self.store.day_lines(start, end),
            self.store.split_rules(),
            self._weights(start, end, known),
            known,
        )
        metered = metered_costs(
            self.store, self.files, self.prices(), start, end, model_teams=known.model_teams
        )
        rows: list[tuple[str | None, int]] = [(a.model, a.micros) for a in allocated] + [
            (m.model, m.micros) for m in metered
        ]
        for model, micros in rows:
            total += micros
            if model is not None:
                by_model[model] += micros
        return micros_to_decimal(total), {m: micros_to_decimal(v) for m, v in by_model.items()}

    def daily_micros(
        self, start: date, end: date, *, model: str | None = None, team: str | None = None
    ) -> list[int]:
        """The scope's cost per day for start <= day < end (each day allocated on its own)."""
        known = self._registered()
        rules = self.store.split_rules()
        by_day: dict[date, list[DayLine]] = defaultdict(list)
        for line in self.store.day_lines(start, end):
            by_day[line.day].append(line)
        metered: dict[date, int] = defaultdict(int)
        for m in self.metered(start, end):
            if _matches(m.model, m.team, model, team):
                metered[m.day] += m.micros
        out = []
        day = start
        while day < end:
            following = day + timedelta(days=1)
            weights = self._weights(day, following, known)
            allocated = allocate(by_day.get(day, []), rules, weights, known)
            out.append(
                sum(a.micros for a in allocated if _matches(a.model, a.team, model, team))
                + metered[day]
            )
            day = following
        return out

    # -- unit economics ------------------------------------------------------------------------

    def cost_per_thousand_predictions(
        self, model: str, version: int | None, day: date
    ) -> Decimal | None:
        """The model's (or version's) cost on ``day`` per 1,000 of its predictions that day.

        A version's cost is its own metering plus the model's allocated bill for the day in
        proportion to the version's share of the model's predictions. None without predictions.
        """
        check_name(model, "model")
        following = day + timedelta(days=1)
        counts = {
            v: n
            for (m, v, _), n in predictions_per_day(self.store, day, following).items()
            if m == model
        }
        model_predictions = sum(counts.values())
        chosen = model_predictions if version is None else counts.get(int(version), 0)
        if chosen == 0:
            return None
        bill = sum(a.micros for a in self.allocations(day, following) if a.model == model)
        own = sum(
            m.micros
            for m in self.metered(day, following)
            if m.model == model and (version is None or m.version in (version, None))
        )
        share = Decimal(bill) * chosen / model_predictions
        total = (share + own) / 1_000_000
        return (total * 1000 / chosen).quantize(Decimal("0.000001"))

    def training_run_costs(self, model: str, start: date, end: date) -> list[MeteredCost]:
        """Each finished retraining run of ``model`` in the period, priced (vCPU-hours)."""
        check_name(model, "model")
        if model not in self._registered().model_teams:
            raise NotFound(f"No model named {model!r}.", {"model": model})
        return [m for m in self.metered(start, end) if m.model == model and m.kind == "retraining"]

    def allocation_totals(self, allocations: list[Allocation]) -> dict[str, Decimal]:
        unallocated = sum(a.micros for a in allocations if a.source == AllocationSource.UNALLOCATED)
        total = sum(a.micros for a in allocations)
        return {
            "total": micros_to_decimal(total),
            "allocated": micros_to_decimal(total - unallocated),
            "unallocated": micros_to_decimal(unallocated),
        }

    # -- budgets -------------------------------------------------------------------------------

    def budgets(self) -> list[Budget]:
        return self.store.budgets()

    def set_budget(
        self,
        by: Principal,
        scope: str,
        target: str | None,
        amount: Decimal | str,
        thresholds: list[int] | None = None,
    ) -> Budget:
        return budget_rules.set_budget(self, by, scope, target, amount, thresholds)

    def delete_budget(self, by: Principal, budget_id: int) -> Budget:
        return budget_rules.delete_budget(self, by, budget_id)

    def budget_status(self, month: str, *, as_of: date | None = None) -> list[BudgetStatus]:
        """Every budget's spend, month-end forecast (with interval and the backtest's error)
        and the thresholds crossed, for YYYY-MM as of ``as_of`` (default today)."""
        return budget_rules.statuses(self, month, as_of)

    def check_budgets(
        self, month: str, *, as_of: date | None = None
    ) -> list[budget_rules.BudgetAlert]:
        """Raise the month's new budget alerts (incident and ``budget.*`` webhook), once each."""
        return budget_rules.check(self, month, as_of)


def _matches(
    row_model: str | None, row_team: str | None, model: str | None, team: str | None
) -> bool:
    if model is not None and row_model != model:
        return False
    return not (team is not None and row_team != team)
