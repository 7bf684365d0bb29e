"""Two holes of the review, replayed through the API with real tokens, on SQLite and PostgreSQL.

- Move, then approve: a contributor of team risk who is an approver in team growth moved risk's
  model into growth, then approved a version someone else registered. Moving a model with a
  version awaiting sign-off or promotion now needs an admin.
- Retiring production: a contributor retired the production version through the status route,
  leaving ``production`` on a retired version. The version holding ``production`` now changes
  status only through governance (a promotion or a rollback), for everyone, admins included.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests import pg_cluster
from tests.job_runner import finished_job, running_jobs

from keel.config import Settings
from keel.server import build_app
from keel.services.backend import Backend

MODEL = "/api/v1/models/churn"
POLICY = "tier: unassessed\nchecks:\n  signoff:\n    approvals: 1\n"


@dataclass
class Keel:
    client: TestClient
    backend: Backend
    tokens: dict[str, str]

    def as_(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, path, headers=headers, **kwargs)

    def audit(self, action: str) -> list[dict[str, Any]]:
        found = self.as_("root", "GET", "/api/v1/audit", params={"action": action})
        assert found.status_code == 200, found.text
        events: list[dict[str, Any]] = found.json()["items"]
        return events


def _keel(backend: Backend) -> Iterator[Keel]:
    backend.migrate()
    root = backend.identity.bootstrap_admin()
    assert root is not None
    with (
        TestClient(build_app(backend), raise_server_exceptions=False) as client,
        running_jobs(backend),
    ):
        keel = Keel(client, backend, {"root": root})
        for team in ("risk", "growth"):
            assert keel.as_("root", "POST", "/api/v1/teams", json={"name": team}).is_success
        people: dict[str, list[tuple[str, str | None]]] = {
            "dana": [("contributor", "risk")],
            "mallory": [("contributor", "risk"), ("approver", "growth")],
            "otto": [("contributor", "risk"), ("contributor", "growth")],
            "april": [("approver", "risk")],
            "ada": [("admin", None)],
        }
        for name, grants in people.items():
            assert keel.as_("root", "POST", "/api/v1/users", json={"name": name}).is_success
            for role, where in grants:
                granted = keel.as_(
                    "root",
                    "POST",
                    f"/api/v1/users/{name}/roles",
                    json={"role": role, "team": where},
                )
                assert granted.is_success, granted.text
            made = keel.as_("root", "POST", "/api/v1/tokens", json={"principal": name})
            assert made.status_code == 201, made.text
            keel.tokens[name] = made.json()["token"]
        model = {"name": "churn", "team": "risk", "owner": "ana"}
        assert keel.as_("dana", "POST", "/api/v1/models", json=model).status_code == 201
        applied = keel.as_("root", "POST", "/api/v1/policies", json={"source": POLICY})
        assert applied.status_code == 201, applied.text
        yield keel


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def keel(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Keel]:
    if request.param == "sqlite":
        backend = Backend.open(Settings.load(data_dir=tmp_path / "keel", env={}))
        try:
            yield from _keel(backend)
        finally:
            backend.close()
        return
    with pg_cluster.fresh_database(request.getfixturevalue("postgres_url")) as url:
        backend = Backend.open(Settings.load(data_dir=tmp_path / "keel", database_url=url, env={}))
        try:
            yield from _keel(backend)
        finally:
            backend.close()


def _register(keel: Keel, who: str = "dana") -> int:
    made = keel.as_(who, "POST", f"{MODEL}/versions", files={"artifact": ("m.bin", b"weights")})
    assert made.status_code == 201, made.text
    version: int = made.json()["version"]
    return version


def _approve(keel: Keel, version: int) -> None:
    """Gates run (none required but sign-off), then april's approval: the version is approved."""
    ran = keel.as_("dana", "POST", f"{MODEL}/versions/{version}/gates/run")
    assert ran.status_code == 202, ran.text
    dana = {"Authorization": f"Bearer {keel.tokens['dana']}"}
    job = finished_job(keel.client, ran.json()["id"], headers=dana)
    assert job["state"] == "succeeded", job
    approval = {"decision": "approve", "comment": "evidence reviewed"}
    decided = keel.as_("april", "POST", f"{MODEL}/versions/{version}/approvals", json=approval)
    assert decided.status_code == 201, decided.text


def _team(keel: Keel) -> str:
    team: str = keel.as_("root", "GET", MODEL).json()["team"]
    return team


def test_moving_a_model_with_a_pending_candidate_then_approving_it_is_refused(keel: Keel) -> None:
    version = _register(keel)  # dana's candidate, awaiting risk's approvers

    # Before the move mallory is no approver of risk's model.
    approval = {"decision": "approve", "comment": "looks fine to me"}
    early = keel.as_("mallory", "POST", f"{MODEL}/versions/{version}/approvals", json=approval)
    assert early.status_code == 403, early.text

    # The move that would make mallory its approver is refused, naming why and what to do.
    moved = keel.as_("mallory", "PATCH", MODEL, json={"team": "growth"})
    assert moved.status_code == 403, moved.text
    error = moved.json()["error"]
    assert error["code"] == "permission_denied"
    assert "while versions await sign-off or promotion (v1 registered)" in error["message"]
    assert "Ask an admin to move it" in error["message"]
    assert error["details"]["pending_versions"] == [1]
    assert error["details"]["needs"] == "admin"
    assert _team(keel) == "risk"
    assert keel.audit("model.update") == []

    # So the approval that followed in the attack is still refused, and writes nothing.
    late = keel.as_("mallory", "POST", f"{MODEL}/versions/{version}/approvals", json=approval)
    assert late.status_code == 403, late.text
    assert keel.as_("root", "GET", f"{MODEL}/versions/{version}/approvals").json() == []

    # A contributor of both teams cannot move it either; an owner change is still fine.
    both = keel.as_("otto", "PATCH", MODEL, json={"team": "growth", "owner": "otto"})
    assert both.status_code == 403, both.text
    assert keel.as_("root", "GET", MODEL).json()["owner"] == "ana"
    assert keel.as_("mallory", "PATCH", MODEL, json={"owner": "mal"}).status_code == 200


def test_an_approved_candidate_also_pins_the_team(keel: Keel) -> None:
    version = _register(keel)
    _approve(keel, version)
    status = keel.as_("root", "GET", f"{MODEL}/versions/{version}").json()["status"]
    assert status == "approved"
    moved = keel.as_("mallory", "PATCH", MODEL, json={"team": "growth"})
    assert moved.status_code == 403
    assert "v1 approved" in moved.json()["error"]["message"]


def test_an_admin_may_move_a_model_with_candidates_and_it_is_audited(keel: Keel) -> None:
    _register(keel)
    moved = keel.as_("ada", "PATCH", MODEL, json={"team": "growth"})
    assert moved.status_code == 200, moved.text
    assert _team(keel) == "growth"
    [event] = keel.audit("model.update")
    assert event["actor"] == "ada"
    assert (event["details"]["team"], event["details"]["previous_team"]) == ("growth", "risk")


def test_a_model_without_candidates_moves_with_write_access_in_both_teams(keel: Keel) -> None:
    version = _register(keel)
    # Its only version reaches production (april approves, dana promotes): no candidacy left.
    _approve(keel, version)
    promoted = keel.as_("dana", "POST", f"{MODEL}/versions/{version}/promote", json={})
    assert promoted.status_code == 200, promoted.text
    moved = keel.as_("otto", "PATCH", MODEL, json={"team": "growth"})
    assert moved.status_code == 200, moved.text
    assert _team(keel) == "growth"
    # dana, a contributor of risk only, may no longer move it back.
    back = keel.as_("dana", "PATCH", MODEL, json={"team": "risk"})
    assert back.status_code == 403


def test_no_one_moves_the_production_version_through_the_status_route(keel: Keel) -> None:
    version = _register(keel)
    _approve(keel, version)
    promoted = keel.as_("dana", "POST", f"{MODEL}/versions/{version}/promote", json={})
    assert promoted.status_code == 200, promoted.text

    for who in ("dana", "april", "ada"):  # contributor, approver, admin
        for target in ("retired", "archived"):
            body = {"status": target, "reason": "we are done with it"}
            refused = keel.as_(who, "POST", f"{MODEL}/versions/{version}/status", json=body)
            assert refused.status_code == 409, (who, target, refused.text)
            error = refused.json()["error"]
            assert error["code"] == "conflict"
            assert "holds the 'production' alias" in error["message"]
            assert "keel promote churn VERSION" in error["message"]
            assert "keel rollback churn" in error["message"]
            assert error["details"] == {
                "model": "churn",
                "version": version,
                "alias": "production",
                "status": target,
            }
    shown = keel.as_("root", "GET", f"{MODEL}/versions/{version}").json()
    assert (shown["status"], shown["aliases"]) == ("production", ["production"])
    assert keel.audit("version.status")[-1]["details"]["to"] == "production"


def test_a_version_leaves_production_through_governance_then_its_status_is_free(
    keel: Keel,
) -> None:
    for _ in range(2):
        version = _register(keel)
        _approve(keel, version)
        promoted = keel.as_("dana", "POST", f"{MODEL}/versions/{version}/promote", json={})
        assert promoted.status_code == 200, promoted.text
    first = keel.as_("root", "GET", f"{MODEL}/versions/1").json()
    assert (first["status"], first["aliases"]) == ("retired", [])
    body = {"status": "archived", "reason": "superseded for good"}
    archived = keel.as_("dana", "POST", f"{MODEL}/versions/1/status", json=body)
    assert archived.status_code == 200, archived.text
    assert archived.json()["status"] == "archived"
