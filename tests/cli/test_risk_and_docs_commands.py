"""`keel risk questions|assess|show` and `keel docs export` as a person and a script run them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from keel.cli.main import app
from keel.domain.permissions import Grant, Principal, PrincipalKind, Role
from keel.domain.risk import QUESTIONNAIRE
from keel.services.backend import Backend

Keel = Callable[..., Result]
ROOT = Principal("root", grants=(Grant(Role.ADMIN),))


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def churn(keel_cli: Keel) -> str:
    ok(keel_cli("teams", "create", "risk"))
    ok(keel_cli("models", "create", "churn", "--team", "risk", "--owner", "ana"))
    return "churn"


def spoken(*yes: str) -> str:
    """What a person types at the prompts: y for ``yes``, n otherwise, follow-ups included."""
    typed, annex_iii = [], False
    for question in QUESTIONNAIRE.questions:
        if question.follow_up and not annex_iii:
            continue
        answer = question.id in yes
        annex_iii |= answer and question.category == "high_risk_area"
        typed.append("y" if answer else "n")
    return "\n".join(typed) + "\n"


def test_assess_asks_each_question_and_prints_tier_and_rationale(
    keel_cli: Keel, churn: str
) -> None:
    # keel_cli points the CLI at the in-process server; this runner also types the answers.
    runner = CliRunner()
    result = runner.invoke(
        app, ["risk", "assess", churn], input=spoken("credit_scoring", "profiles_people")
    )
    assert result.exit_code == 0, result.output
    assert "Art. 5(1)(c)" in result.stderr  # the prompts name the article
    # stdout is not a terminal, so the result is JSON; Click's test runner also echoes the typed
    # answers there (a terminal would show them on the tty), so read from the JSON's start.
    assessed = json.loads(result.stdout[result.stdout.index("{") :])
    assert assessed["tier"] == "high"
    assert "Annex III point 5(b)" in assessed["rationale"]

    shown = json.loads(ok(keel_cli("risk", "show", churn, "--json")).stdout)
    assert [(a["tier"], a["previous_tier"]) for a in shown] == [("high", "unassessed")]
    assert shown[0]["answers"]["narrow_procedural_task"] is False


def test_assess_from_a_yaml_file_for_scripts(keel_cli: Keel, churn: str, tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    lines = [
        f"{q.id}: {'yes' if q.id == 'interacts_with_people' else 'no'}"
        for q in QUESTIONNAIRE.questions
        if not q.follow_up
    ]
    answers.write_text("\n".join(lines) + "\n")

    assessed = json.loads(
        ok(keel_cli("risk", "assess", churn, "--answers", str(answers), "--json")).stdout
    )
    assert assessed["tier"] == "limited"
    assert "Art. 50(1)" in assessed["rationale"]
    assert json.loads(ok(keel_cli("risk", "show", churn)).stdout)[-1]["tier"] == "limited"


def test_a_contributor_cannot_change_the_tier(
    keel_cli: Keel, churn: str, keel_backend: Backend, tmp_path: Path
) -> None:
    keel_backend.identity.create_principal(ROOT, "cara", PrincipalKind.USER)
    keel_backend.identity.grant(ROOT, "cara", Role.CONTRIBUTOR, "risk")
    token, _ = keel_backend.identity.create_token(ROOT, principal="cara", name="cli")
    answers = tmp_path / "answers.json"
    answers.write_text(
        json.dumps({"answers": {q.id: False for q in QUESTIONNAIRE.questions if not q.follow_up}})
    )

    refused = keel_cli("--token", token, "risk", "assess", churn, "--answers", str(answers))
    assert refused.exit_code == 1
    assert "approver" in refused.output
    assert json.loads(ok(keel_cli("risk", "show", churn, "--json")).stdout) == []


def test_a_bad_answers_file_is_refused_naming_the_question(
    keel_cli: Keel, churn: str, tmp_path: Path
) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"social_credit": True}))
    refused = keel_cli("risk", "assess", churn, "--answers", str(answers))
    assert refused.exit_code == 1
    assert "answers.social_credit" in refused.output


def test_docs_export_writes_each_format(keel_cli: Keel, churn: str, tmp_path: Path) -> None:
    model_file = tmp_path / "m.bin"
    model_file.write_bytes(b"model bytes")
    ok(keel_cli("versions", "register", churn, str(model_file)))

    html = tmp_path / "churn.html"
    ok(keel_cli("docs", "export", churn, "--format", "html", "-o", str(html)))
    assert html.read_text().startswith("<!DOCTYPE html>")

    markdown = ok(keel_cli("docs", "export", churn, "--version", "1", "--format", "md")).stdout
    assert markdown.startswith("# Technical documentation: churn version 1")
    assert markdown.index("## Gaps") < markdown.index("## Intended purpose")

    document = json.loads(ok(keel_cli("docs", "export", churn, "--format", "json")).stdout)
    assert "risk_classification" in [g["key"] for g in document["gaps"]]

    refused = keel_cli("docs", "export", churn, "--format", "pdf")
    assert refused.exit_code == 1
