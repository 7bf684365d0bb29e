"""A token that checked out is remembered for at most a second; a refused one never is."""

from __future__ import annotations

import pytest

from keel.domain.permissions import Principal
from keel.errors import Unauthenticated
from keel.serving.callers import RecentCallers


def test_a_revoked_token_stops_working_within_a_second() -> None:
    now = [0.0]
    valid = {"keel_good"}
    checks: list[str | None] = []

    def authenticate(token: str | None) -> Principal:
        checks.append(token)
        if token not in valid:
            raise Unauthenticated("no")
        return Principal("app")

    callers = RecentCallers(authenticate, clock=lambda: now[0])
    assert callers.principal("keel_good").name == "app"
    valid.clear()  # revoked
    now[0] += 0.5
    assert callers.principal("keel_good").name == "app"  # remembered
    now[0] += 0.5
    with pytest.raises(Unauthenticated):
        callers.principal("keel_good")
    with pytest.raises(Unauthenticated):
        callers.principal("keel_good")
    assert checks == ["keel_good", "keel_good", "keel_good"]  # refusals are not remembered


def test_remembered_never_asks_the_identity_store() -> None:
    now = [0.0]
    checks: list[str | None] = []

    def authenticate(token: str | None) -> Principal:
        checks.append(token)
        return Principal("app")

    callers = RecentCallers(authenticate, clock=lambda: now[0])
    assert callers.remembered("keel_good") is None  # never checked: the caller must ask
    assert callers.remembered(None) is None
    assert checks == []
    callers.principal("keel_good")
    assert callers.remembered("keel_good") == Principal("app")
    now[0] += 1.0
    assert callers.remembered("keel_good") is None  # its second is over: ask again
    assert checks == ["keel_good"]
