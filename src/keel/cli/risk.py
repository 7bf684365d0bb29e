"""`keel risk questions|assess|show`: EU AI Act risk classification from a terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from keel.cli import output
from keel.cli.registry import JsonFlag, connected
from keel.schemas.risk import QuestionnaireOut, RiskAssessmentOut

risk_app = typer.Typer(
    help="EU AI Act risk classification: the questionnaire, assessments and each model's tier.",
    no_args_is_help=True,
)

_CATEGORY_TITLES = {
    "prohibited_practice": "Prohibited practices (Art. 5)",
    "product_safety": "Safety components of regulated products (Art. 6(1), Annex I)",
    "high_risk_area": "High-risk areas (Art. 6(2), Annex III)",
    "derogation": "Annex III derogation (Art. 6(3))",
    "transparency": "Transparency obligations (Art. 50)",
}


def load_answers(path: Path) -> dict[str, Any]:
    """Answers from a YAML or JSON file: ``{question id: true|false}`` (or ``{answers: {...}}``,
    the API's request body). The server checks the ids and values."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {str(path)!r}: {exc.strerror}", param_hint="--answers"
        ) from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            import yaml  # only when a YAML file is given

            data = yaml.safe_load(raw)
    except ValueError as exc:  # json.JSONDecodeError and yaml.YAMLError both derive from it
        raise typer.BadParameter(
            f"{str(path)!r} is not valid {path.suffix.lstrip('.').upper() or 'YAML'}: {exc}",
            param_hint="--answers",
        ) from None
    if isinstance(data, dict) and set(data) == {"answers"} and isinstance(data["answers"], dict):
        data = data["answers"]
    if not isinstance(data, dict):
        raise typer.BadParameter(
            f"{str(path)!r} must hold a mapping of question ids to true or false "
            "(see `keel risk questions`).",
            param_hint="--answers",
        )
    return {str(key): value for key, value in data.items()}


def _ask(questionnaire: QuestionnaireOut, console: Console) -> dict[str, bool]:
    """Ask each question in turn; the Art. 6(3) follow-ups only after an Annex III yes."""
    answers: dict[str, bool] = {}
    category: str | None = None
    for question in questionnaire.questions:
        annex_iii = any(
            answers.get(q.id) for q in questionnaire.questions if q.category == "high_risk_area"
        )
        if question.follow_up and not annex_iii:
            continue
        if question.category != category:
            category = question.category
            console.print(Text(f"\n{_CATEGORY_TITLES.get(category, category)}", style="bold"))
        console.print(Text(f"{question.article}, {question.area}", style="dim"))
        # Prompts on stderr: stdout carries only the result (JSON when piped).
        answers[question.id] = typer.confirm(question.text, default=False, err=True)
    return answers


def _assessment_view(assessment: RiskAssessmentOut) -> Text:
    return Text.assemble(
        ("Risk tier: ", "bold"),
        (str(assessment.tier), "bold"),
        f"  (assessed by {assessment.assessed_by}, {output.when(assessment.assessed_at)} UTC; "
        f"was {assessment.previous_tier})\n\n",
        assessment.rationale,
    )


def _history_table(assessments: list[RiskAssessmentOut]) -> Table:
    table = Table("assessed", "by", "tier", "previous tier", title="Assessments, oldest first")
    for a in assessments:
        table.add_row(output.when(a.assessed_at), a.assessed_by, str(a.tier), str(a.previous_tier))
    return table


@risk_app.command("questions")
def questions(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The questionnaire: each question's id, article and text."""
    with connected(ctx) as keel:
        questionnaire = keel.risk_questionnaire()

    def render() -> Table:
        table = Table("id", "article", "question", title=f"Questionnaire v{questionnaire.version}")
        for q in questionnaire.questions:
            table.add_row(q.id, q.article, q.text + (" (follow-up)" if q.follow_up else ""))
        return table

    output.show(as_json, questionnaire, render)


@risk_app.command("assess")
def assess(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    answers_file: Annotated[
        Path | None,
        typer.Option(
            "--answers",
            metavar="FILE.yaml|json",
            help="Answers from a file ({question id: true|false}) instead of asking.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Classify MODEL by the EU AI Act questionnaire; its tier becomes the result.

    Asks each question unless --answers is given. Changing a model's tier needs the approver
    role in its team; a contributor may only confirm the current tier.
    """
    given = None if answers_file is None else load_answers(answers_file)
    with connected(ctx) as keel:
        if given is None:
            given = _ask(keel.risk_questionnaire(), Console(stderr=True, highlight=False))
        assessment = keel.assess_risk(model, given)
    output.show(as_json, assessment, lambda: _assessment_view(assessment))


@risk_app.command("show")
def show(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    as_json: JsonFlag = False,
) -> None:
    """MODEL's current tier with its rationale, and every assessment (JSON: the list)."""
    with connected(ctx) as keel:
        assessments = keel.risk_assessments(model)

    def render() -> Any:
        if not assessments:
            return Text(f"{model} has never been assessed: run `keel risk assess {model}`.")
        return Group(_assessment_view(assessments[-1]), Text(""), _history_table(assessments))

    output.show(as_json, assessments, render)
