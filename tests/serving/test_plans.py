"""A plan is read from its source at most once per second, so an abort reaches traffic within
one second, also in a separate `keel serve` process."""

from __future__ import annotations

from keel.domain.traffic import Arm, ArmName, ServingPlan
from keel.serving.plans import CachedPlans, FixedPlans


class _Counting(FixedPlans):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def serving_plan(self, model: str) -> ServingPlan | None:
        self.reads += 1
        return super().serving_plan(model)


def test_a_changed_plan_is_seen_within_a_second() -> None:
    now = [100.0]
    source = _Counting()
    source.plans["churn"] = ServingPlan("churn", (Arm(ArmName.STABLE, 1, 1.0),))
    cached = CachedPlans(source, clock=lambda: now[0])
    first = cached.serving_plan("churn")
    assert first is not None and first.live[0].version == 1
    source.plans["churn"] = ServingPlan("churn", (Arm(ArmName.STABLE, 2, 1.0),), revision=1)
    now[0] += 0.5
    assert cached.serving_plan("churn") == first  # still cached
    assert source.reads == 1
    now[0] += 0.5
    again = cached.serving_plan("churn")
    assert again is not None and again.live[0].version == 2
    del source.plans["churn"]  # the deployment is gone: the model gets 404s within a second
    now[0] += 1.0
    assert cached.serving_plan("churn") is None
