"""`keel policy|gates|approve|reject|promote` against the real app, in-process."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import joblib
import pytest
from rich.console import Console
from sklearn.dummy import DummyClassifier
from tests.cli.conftest import Keel

from keel.cli.governance import promotions_table
from keel.domain.permissions import Grant, Principal, PrincipalKind, Role
from keel.domain.registry import Environment, Model, VersionDraft
from keel.schemas.governance import PromotionOut
from keel.services.backend import Backend

ROOT = Principal("root", grants=(Grant(Role.ADMIN),))
DANA = Principal("dana", grants=(Grant(Role.CONTRIBUTOR, "risk"),))
POLICY = """\
# unassessed models here: a clean artifact and one approval
tier: unassessed
checks:
  security:
    require_pinned_environment: true
  signoff:
    approvals: 1
"""


def _register(backend: Backend, packages: dict[str, str]) -> int:
    buffer = io.BytesIO()
    joblib.dump(DummyClassifier().fit([[0], [1]], [0, 1]), buffer)
    buffer.seek(0)
    draft = VersionDraft(environment=Environment("3.11.9", packages))
    return backend.registry.register_version(DANA, "credit", buffer, "m.joblib", draft).version


@pytest.fixture
def credit(keel_backend: Backend) -> Backend:
    keel_backend.registry.create_team(ROOT, "risk")
    keel_backend.identity.create_principal(ROOT, "dana", PrincipalKind.USER)
    keel_backend.identity.grant(ROOT, "dana", Role.CONTRIBUTOR, "risk")
    keel_backend.registry.create_model(ROOT, Model(name="credit", team="risk", owner="ana"))
    return keel_backend


def _json(text: str) -> Any:
    return json.loads(text)


def test_policy_apply_refuses_a_bad_file_with_its_line(
    keel_cli: Keel, credit: Backend, tmp_path: Path
) -> None:
    bad = tmp_path / "strict.yaml"
    bad.write_text("tier: high\nchecks:\n  perfomance: {}\n")
    refused = keel_cli("policy", "apply", str(bad))
    assert refused.exit_code == 1
    assert "strict.yaml line 3: checks.perfomance: unknown check" in refused.output

    good = tmp_path / "unassessed.yaml"
    good.write_text(POLICY)
    applied = keel_cli("policy", "apply", str(good), "--json")
    assert applied.exit_code == 0, applied.output
    assert (_json(applied.stdout)["tier"], _json(applied.stdout)["version"]) == ("unassessed", 1)
    shown = _json(keel_cli("policy", "show", "unassessed", "--json").stdout)
    assert shown["source"] == POLICY
    default = _json(keel_cli("policy", "show", "unassessed", "--version", "0", "--json").stdout)
    assert default["policy"]["checks"]["signoff"]["from_teams"] == {"compliance": 1}


def test_gates_approve_and_promote_from_the_terminal(
    keel_cli: Keel, credit: Backend, tmp_path: Path
) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    assert keel_cli("policy", "apply", str(tmp_path / "p.yaml")).exit_code == 0
    version = _register(credit, {"scikit-learn": "1.5.2"})

    ran = keel_cli("gates", "run", "credit", str(version), "--json")
    assert ran.exit_code == 0, ran.output
    outcomes = {g["gate"]: g["outcome"] for g in _json(ran.stdout)["gates"]}
    assert outcomes == {
        "performance": "not_required",
        "security": "passed",
        "fairness": "not_required",
        "signoff": "pending",
    }

    blocked = keel_cli("promote", "credit", str(version))
    assert blocked.exit_code == 1
    assert "signoff gate pending" in blocked.output

    missing = keel_cli("approve", "credit", str(version))
    assert missing.exit_code != 0  # -m is required
    approved = keel_cli("approve", "credit", str(version), "-m", "scan clean, env pinned")
    assert approved.exit_code == 0, approved.output
    status = _json(keel_cli("gates", "status", "credit", str(version), "--json").stdout)
    assert status["promotable"] is True
    assert [a["actor"] for a in status["approvals"]] == ["admin"]

    promoted = keel_cli("promote", "credit", str(version), "--json")
    assert promoted.exit_code == 0, promoted.output
    assert _json(promoted.stdout)["break_glass"] is False


def test_break_glass_and_reject_from_the_terminal(
    keel_cli: Keel, credit: Backend, tmp_path: Path
) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    assert keel_cli("policy", "apply", str(tmp_path / "p.yaml")).exit_code == 0
    loose = _register(credit, {"scikit-learn": ">=1.0"})
    ran = _json(keel_cli("gates", "run", "credit", str(loose), "--json").stdout)
    security = next(g for g in ran["gates"] if g["gate"] == "security")
    assert security["outcome"] == "failed"
    assert "scikit-learn '>=1.0'" in security["to_pass"]

    forced = keel_cli("promote", "credit", str(loose), "--break-glass", "outage fix", "--json")
    assert forced.exit_code == 0, forced.output
    assert (_json(forced.stdout)["break_glass"], _json(forced.stdout)["justification"]) == (
        True,
        "outage fix",
    )

    other = _register(credit, {"scikit-learn": "1.5.2"})
    rejected = keel_cli("reject", "credit", str(other), "-m", "wrong training window")
    assert rejected.exit_code == 0, rejected.output
    again = keel_cli("gates", "run", "credit", str(other))
    assert again.exit_code == 1
    assert "candidacy is over" in again.output


def test_promotions_list_shows_every_promotion_oldest_first(
    keel_cli: Keel, credit: Backend, tmp_path: Path
) -> None:
    none = keel_cli("promotions", "list", "credit")
    assert none.exit_code == 0, none.output
    assert _json(none.stdout) == []  # not a terminal: JSON

    (tmp_path / "p.yaml").write_text(POLICY)
    assert keel_cli("policy", "apply", str(tmp_path / "p.yaml")).exit_code == 0
    first = _register(credit, {"scikit-learn": "1.5.2"})
    assert keel_cli("gates", "run", "credit", str(first)).exit_code == 0
    assert keel_cli("approve", "credit", str(first), "-m", "scan clean").exit_code == 0
    assert keel_cli("promote", "credit", str(first)).exit_code == 0
    second = _register(credit, {"scikit-learn": ">=1.0"})
    forced = keel_cli("promote", "credit", str(second), "--break-glass", "outage fix")
    assert forced.exit_code == 0, forced.output

    listed = _json(keel_cli("promotions", "list", "credit", "--json").stdout)
    assert [(p["version"], p["previous_version"], p["break_glass"]) for p in listed] == [
        (first, None, False),
        (second, first, True),
    ]
    assert listed[0]["policy_tier"] == "unassessed"

    # What a person sees at a terminal.
    screen = io.StringIO()
    console = Console(file=screen, width=120)
    promotions = [PromotionOut.model_validate(p) for p in listed]
    console.print(promotions_table("credit", promotions))
    table = screen.getvalue()
    assert "credit: promotions, oldest first" in table
    assert "yes: outage fix" in table
    assert "unassessed v1" in table
    console.print(promotions_table("credit", []))
    assert "credit has never been promoted" in screen.getvalue()

    unknown = keel_cli("promotions", "list", "nope")
    assert unknown.exit_code == 1
    assert "No model named 'nope'" in unknown.output


def test_after_a_policy_change_keel_approve_reopens_the_rollback(
    keel_cli: Keel, credit: Backend, tmp_path: Path
) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    assert keel_cli("policy", "apply", str(tmp_path / "p.yaml")).exit_code == 0
    for _ in range(2):
        version = _register(credit, {"scikit-learn": "1.5.2"})
        assert keel_cli("gates", "run", "credit", str(version)).exit_code == 0
        assert keel_cli("approve", "credit", str(version), "-m", "scan clean").exit_code == 0
        assert keel_cli("promote", "credit", str(version)).exit_code == 0
    (tmp_path / "p2.yaml").write_text(POLICY + "# revised by the risk committee\n")
    assert keel_cli("policy", "apply", str(tmp_path / "p2.yaml")).exit_code == 0

    refused = keel_cli("rollback", "credit", "--reason", "v2 misbehaves")
    assert refused.exit_code == 1
    assert "keel gates run credit 1" in refused.output
    assert keel_cli("gates", "run", "credit", "1").exit_code == 0
    unsigned = keel_cli("rollback", "credit", "--reason", "v2 misbehaves")
    assert unsigned.exit_code == 1
    assert "keel approve credit 1 -m" in unsigned.output

    approved = keel_cli("approve", "credit", "1", "-m", "re-reviewed under policy v2", "--json")
    assert approved.exit_code == 0, approved.output
    rolled = keel_cli("rollback", "credit", "--reason", "v2 misbehaves", "--json")
    assert rolled.exit_code == 0, rolled.output
    assert (_json(rolled.stdout)["version"], _json(rolled.stdout)["previous_version"]) == (1, 2)
    listed = _json(keel_cli("promotions", "list", "credit").stdout)
    assert [(p["version"], p["policy_version"]) for p in listed] == [(1, 1), (2, 1), (1, 2)]
