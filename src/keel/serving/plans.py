"""Where the gateway learns what serves a model: a `PlanSource`, read at most once a second.

The deployments service (``backend.deployments``) is the real source; it reads the metadata store,
so a separate `keel serve` process sees an abort or a weight change within `MAX_AGE_S`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from keel.domain.traffic import ServingPlan

MAX_AGE_S = 1.0


class PlanSource(Protocol):
    def serving_plan(self, model: str) -> ServingPlan | None:
        """What serves ``model`` now; None when it has no deployment."""
        ...


class FixedPlans:
    """Plans held in memory: for tests, and for a gateway built without deployments."""

    def __init__(self, plans: Mapping[str, ServingPlan] | None = None) -> None:
        self.plans = dict(plans or {})

    def serving_plan(self, model: str) -> ServingPlan | None:
        return self.plans.get(model)


class CachedPlans:
    """A `PlanSource` in front of another, keeping each model's plan for at most ``max_age_s``."""

    def __init__(
        self,
        source: PlanSource,
        *,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.max_age_s = max_age_s
        self._clock = clock
        self._plans: dict[str, tuple[float, ServingPlan | None]] = {}
        self._lock = threading.Lock()

    def serving_plan(self, model: str) -> ServingPlan | None:
        now = self._clock()
        cached = self._plans.get(model)
        if cached is not None and now - cached[0] < self.max_age_s:
            return cached[1]
        plan = self.source.serving_plan(model)
        with self._lock:
            self._plans[model] = (now, plan)
        return plan
