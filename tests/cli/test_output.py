"""What a person sees in the terminal: tables and details rendered by `keel.cli.output`."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console, RenderableType

from keel.cli import output
from keel.domain.permissions import PrincipalKind, Role
from keel.domain.registry import RiskTier
from keel.errors import NotFound
from keel.schemas import (
    AliasOut,
    AuditEventOut,
    AuditVerification,
    GrantSpec,
    ModelOut,
    PrincipalOut,
    TeamOut,
    TokenOut,
    VersionOut,
)

MOMENT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def render(renderable: RenderableType) -> str:
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(renderable)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text


def model() -> ModelOut:
    return ModelOut(
        name="churn",
        team="risk",
        owner="ana",
        description="Who leaves next month",
        use_case="Retention offers",
        tags=["b2c", "monthly"],
        risk_tier=RiskTier.UNASSESSED,
        latest_version=3,
        created_at=MOMENT,
        updated_at=MOMENT,
    )


def version() -> VersionOut:
    return VersionOut.model_validate(
        {
            "model": "churn",
            "version": 3,
            "status": "candidate",
            "description": "Retrained on March data",
            "artifact": {
                "sha256": "ab" * 32,
                "size": 1887,
                "flavor": "sklearn",
                "filename": "model.joblib",
            },
            "signature": {
                "columns": [
                    {"name": "tenure", "dtype": "integer", "role": "feature", "nullable": False},
                    {"name": "gender", "dtype": "string", "role": "protected_attribute"},
                    {"name": "churned", "dtype": "boolean", "role": "target", "nullable": False},
                ]
            },
            "params": {"C": 1.0},
            "metrics": {"auc": 0.91},
            "lineage": {
                "training_data": {
                    "sha256": "cd" * 32,
                    "rows": 569,
                    "columns": [{"name": "tenure", "dtype": "integer"}],
                },
                "git_commit": "0123456789abcdef0123",
                "git_repo_url": "https://git.example.com/risk/churn.git",
                "git_dirty": True,
            },
            "environment": {"python_version": "3.11.9", "packages": {"scikit-learn": "1.5.0"}},
            "card": {},
            "aliases": ["champion"],
            "created_by": "ana",
            "created_at": MOMENT,
        }
    )


def test_teams_table() -> None:
    team = TeamOut(name="risk", description="Credit risk", created_at=MOMENT)
    text = render(output.teams_table([team]))
    assert "Teams" in text
    assert "risk" in text and "Credit risk" in text and "2026-03-04 05:06" in text


def test_models_table_shows_team_owner_latest_version_and_tags() -> None:
    text = render(output.models_table([model()]))
    for expected in ("churn", "risk", "ana", "v3", "unassessed", "b2c, monthly"):
        assert expected in text


def test_model_details() -> None:
    text = render(output.model_details(model()))
    assert "Retention offers" in text
    assert "Who leaves next month" in text


def test_versions_table_names_the_model_and_sizes_the_artifact() -> None:
    text = render(output.versions_table("churn", [version()]))
    assert "Versions of churn" in text
    assert "candidate" in text and "champion" in text and "1.9 kB" in text


def test_version_details_summarise_signature_lineage_and_environment() -> None:
    text = render(output.version_details(version()))
    assert "3 columns (1 feature, 1 protected attribute, 1 target)" in text
    assert "ab" * 32 in text
    assert "auc=0.91" in text
    assert "data cdcdcdcdcdcd (569 rows, 1 columns)" in text
    assert "git 0123456789ab with uncommitted changes" in text
    assert "3.11.9 (1 packages recorded)" in text
    assert "gender" in text and "protected_attribute" in text
    assert "sklearn (runs code when loaded: only in the sandbox)" in " ".join(text.split())


def test_alias_history_shows_when_each_period_ended() -> None:
    current = AliasOut(model="churn", alias="champion", version=3, set_by="ana", set_at=MOMENT)
    past = current.model_copy(update={"version": 2, "cleared_by": "bob", "cleared_at": MOMENT})
    text = render(output.aliases_table([current, past], history=True))
    assert "Alias history" in text
    assert "current" in text and "bob" in text


def test_json_is_plain_and_parseable() -> None:
    console = Console(file=io.StringIO(), width=20, force_terminal=True)
    output.emit_json(console, [model()])
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[" not in text
    assert json.loads(text)[0]["description"] == "Who leaves next month"


def test_json_is_chosen_for_pipes_and_on_request() -> None:
    pipe = Console(file=io.StringIO())
    terminal = Console(file=io.StringIO(), force_terminal=True)
    assert output.wants_json(False, pipe) is True
    assert output.wants_json(False, terminal) is False
    assert output.wants_json(True, terminal) is True


def test_no_color_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    console = Console(file=io.StringIO(), width=80, force_terminal=True)
    console.print(output.error_line(NotFound("No model named 'ghost'.")))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "No model named 'ghost'." in text
    assert "31m" not in text  # bold may stay; red may not


def test_an_error_is_one_line_and_its_brackets_are_not_markup() -> None:
    line = output.error_line(NotFound("Bad [bold]name[/bold]\nsecond line"))
    assert line.plain == "Error: Bad [bold]name[/bold] second line"


def test_roles_read_as_a_sentence() -> None:
    grants = [GrantSpec(role=Role.CONTRIBUTOR, team="risk"), GrantSpec(role=Role.VIEWER, team="x")]
    assert output.roles(grants) == "contributor in risk, viewer in x"
    assert output.roles([GrantSpec(role=Role.ADMIN)]) == "admin"
    assert output.roles([]) == "none"


def test_users_table_and_principal_details() -> None:
    ana = PrincipalOut(
        name="ana", kind=PrincipalKind.USER, grants=[GrantSpec(role=Role.APPROVER, team="risk")]
    )
    assert "approver in risk" in render(output.users_table([ana]))
    details = render(output.principal_details(ana))
    assert "ana" in details and "user" in details and "approver in risk" in details


def test_tokens_table_shows_hint_and_state_never_a_token() -> None:
    def token(id: int, **changes: datetime) -> TokenOut:
        return TokenOut(
            id=id, principal="ana", name="t", hint="keel_AbCd…", created_at=MOMENT, **changes
        )

    tokens = [token(1), token(2, expires_at=MOMENT), token(3, revoked_at=MOMENT)]
    assert [output.token_state(t) for t in tokens] == ["active", "expired", "revoked"]
    assert output.token_state(tokens[1], MOMENT - timedelta(days=1)) == "active"
    text = render(output.tokens_table(tokens))
    assert text.count("keel_AbCd…") == 3
    assert "never" in text


def test_audit_table_shows_subject_and_details() -> None:
    event = AuditEventOut(
        seq=7,
        at=MOMENT,
        actor="ana",
        action="model.create",
        subject_type="model",
        subject_id="churn",
        details={"team": "risk", "tags": ["b2c"], "size": None},
        prev_hash="0" * 64,
        hash="a" * 64,
    )
    text = render(output.audit_table([event]))
    assert "2026-03-04 05:06:07" in text
    assert "model:churn" in text
    assert "team=risk," in text
    assert "size=null" in text


def test_verification_line() -> None:
    intact = AuditVerification(intact=True, checked=9, head_seq=9, head_hash="ab" * 32)
    assert output.verification_line(intact).plain == f"intact: 9 events, head 9:{'ab' * 32}"
    broken = AuditVerification(
        intact=False, checked=2, head_seq=2, head_hash="cd" * 32, broken_seq=3, reason="edited"
    )
    assert output.verification_line(broken).plain == (
        "NOT intact: the audit trail breaks at seq 3: edited; the 2 events before it check out"
    )
