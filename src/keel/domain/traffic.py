"""Who answers a prediction request: the serving plan of a model and how a request picks its arm.

A deployment (direct, canary, blue/green, shadow) turns into a `ServingPlan`: the live arms with
their traffic weights, and at most one shadow arm that sees a mirrored share of requests whose
answers are never returned. The gateway asks for the plan of a model and picks an arm per request.

Routing is sticky: a request that carries a route key (a header or a field named by the plan) is
hashed to one of `BUCKETS` buckets, and the arms own consecutive ranges of buckets in plan order, so
the same key reaches the same arm for as long as the weights hold. A request without a key uses a
uniform draw in [0, 1) that the caller supplies (injected, so tests are deterministic).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

BUCKETS = 10_000


class ArmName(StrEnum):
    STABLE = "stable"  # the version in production (direct deployments serve only this arm)
    CANARY = "canary"
    BLUE = "blue"  # blue/green: the version serving before the switch
    GREEN = "green"  # blue/green: the version serving after the switch
    SHADOW = "shadow"  # mirrored requests only; answers are recorded, never returned


class RouteKeySource(StrEnum):
    HEADER = "header"  # an HTTP header of the prediction request, e.g. X-Customer-Id
    FIELD = "field"  # an input column; the first row's value routes the whole request


@dataclass(frozen=True)
class RouteKey:
    source: RouteKeySource
    name: str


@dataclass(frozen=True)
class Arm:
    name: ArmName
    version: int
    # live arms: share of live traffic (the live weights sum to 1); shadow: the share mirrored
    weight: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"arm {self.name}: weight {self.weight} is outside [0, 1]")


@dataclass(frozen=True)
class ServingPlan:
    """What serves a model right now. `revision` changes whenever the plan changes, so a gateway
    that caches plans can tell a stale one from the current one cheaply."""

    model: str
    live: tuple[Arm, ...]
    shadow: Arm | None = None
    deployment_id: str | None = None
    route_key: RouteKey | None = None
    revision: int = 0
    paused: bool = False
    versions: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not self.live:
            raise ValueError(f"model {self.model}: a serving plan needs at least one live arm")
        total = sum(arm.weight for arm in self.live)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"model {self.model}: live weights sum to {total}, not 1")
        if self.shadow is not None and self.shadow.name is not ArmName.SHADOW:
            raise ValueError(f"model {self.model}: the shadow arm must be named 'shadow'")
        versions = tuple(arm.version for arm in self.live)
        if self.shadow is not None:
            versions += (self.shadow.version,)
        object.__setattr__(self, "versions", versions)


def bucket(key: str) -> int:
    """The bucket in [0, BUCKETS) a route key hashes to: stable across processes and releases
    (blake2b, not Python's salted `hash`)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def _position(key: str | None, draw: float) -> float:
    if key is not None:
        return bucket(key) / BUCKETS
    if not 0.0 <= draw < 1.0:
        raise ValueError(f"draw {draw} is outside [0, 1)")
    return draw


def pick_arm(plan: ServingPlan, key: str | None, draw: float) -> Arm:
    """The live arm that answers a request with route key `key` (or uniform `draw` without one)."""
    position = _position(key, draw)
    upper = 0.0
    for arm in plan.live:
        upper += arm.weight
        if position < upper:
            return arm
    # Rounding can leave the last sliver of [0, 1) uncovered; it belongs to the last weighted arm.
    return next(arm for arm in reversed(plan.live) if arm.weight > 0)


def mirrors(plan: ServingPlan, key: str | None, draw: float) -> bool:
    """Whether this request is also sent to the shadow arm. Keyed requests are mirrored by a
    second hash, independent of the live split, so shadow sees the same share of every live arm."""
    if plan.shadow is None or plan.shadow.weight <= 0:
        return False
    position = _position(None if key is None else f"shadow:{key}", draw)
    return position < plan.shadow.weight
