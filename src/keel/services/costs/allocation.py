"""Allocate a period's bills to models and teams by their tags, and split shared pools by rule.

* A row tagged with a registered model goes to that model (and the model's team in Keel).
* A row tagged only with a team goes to that team.
* An untagged row belongs to its pool (the ``keel-pool`` tag, else its ServiceName); the pool's
  split rule (or the ``*`` rule) divides it between models, in proportion to their predictions,
  their serving compute-seconds, or evenly. A pool with no rule, or with nothing to weigh it by,
  stays *unallocated*, as do tags naming an unknown model or team: visible, never dropped.

Amounts are integer micro-units and every split is exact (`split_evenly_by_weight`), so the
allocations of a period always sum to its EffectiveCost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from keel.domain.costs import (
    DEFAULT_POOL,
    Allocation,
    AllocationSource,
    SplitRule,
    split_evenly_by_weight,
)
from keel.store.sql.costs import DayLine

Weights = Callable[[SplitRule], Mapping[str, int]]


@dataclass(frozen=True)
class Registered:
    """What allocation needs from the registry: every model's team, and the team names."""

    model_teams: Mapping[str, str]
    teams: frozenset[str]


def allocate(
    lines: Iterable[DayLine], rules: Mapping[str, str], weights: Weights, known: Registered
) -> list[Allocation]:
    """The period's allocations, one per (model, team, pool, source), biggest first."""
    per_key: dict[tuple[str | None, str | None, str], int] = {}
    for line in lines:
        key = (line.model, line.team, line.pool)
        per_key[key] = per_key.get(key, 0) + line.effective_micros
    out: dict[tuple[str | None, str | None, str, AllocationSource, str], int] = {}

    def add(
        model: str | None,
        team: str | None,
        pool: str,
        source: AllocationSource,
        micros: int,
        why: str = "",
    ) -> None:
        key = (model, team, pool, source, why)
        out[key] = out.get(key, 0) + micros

    for (model, team, pool), micros in sorted(per_key.items(), key=lambda kv: str(kv[0])):
        if model is not None:
            if model in known.model_teams:
                add(model, known.model_teams[model], pool, AllocationSource.DIRECT, micros)
            else:
                add(
                    None,
                    None,
                    pool,
                    AllocationSource.UNALLOCATED,
                    micros,
                    f"unknown model {model!r}",
                )
        elif team is not None:
            if team in known.teams:
                add(None, team, pool, AllocationSource.DIRECT, micros)
            else:
                add(
                    None, None, pool, AllocationSource.UNALLOCATED, micros, f"unknown team {team!r}"
                )
        else:
            _split_pool(pool, micros, rules, weights, known, add)
    allocations = [
        Allocation(model, team, pool, source, micros, why)
        for (model, team, pool, source, why), micros in out.items()
    ]
    return sorted(allocations, key=lambda a: (-abs(a.micros), a.model or "", a.team or "", a.pool))


def _split_pool(
    pool: str,
    micros: int,
    rules: Mapping[str, str],
    weights: Weights,
    known: Registered,
    add: Callable[..., None],
) -> None:
    rule_name = rules.get(pool) or rules.get(DEFAULT_POOL)
    if rule_name is None:
        add(None, None, pool, AllocationSource.UNALLOCATED, micros, "no split rule for this pool")
        return
    rule = SplitRule(rule_name)
    weighed = {m: w for m, w in weights(rule).items() if w > 0 and m in known.model_teams}
    if not weighed:
        add(
            None,
            None,
            pool,
            AllocationSource.UNALLOCATED,
            micros,
            f"nothing to split by: no model has {rule.value} in the period",
        )
        return
    for model, share in split_evenly_by_weight(micros, weighed).items():
        add(model, known.model_teams[model], pool, AllocationSource.SPLIT, share)
