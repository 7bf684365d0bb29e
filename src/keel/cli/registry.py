"""`keel teams|models|versions|alias ...`: the registry from a terminal, through `keel.sdk`.

Also the connection every client command shares (`connected`, `client_factory`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from keel.cli import output
from keel.errors import InvalidInput, KeelError
from keel.schemas import VersionIn
from keel.sdk import Client
from keel.sdk.metadata import with_provenance
from keel.sdk.validation import finite_metrics, plain_params, validated


def _connect(url: str | None, token: str | None) -> Client:
    return Client(url=url, token=token)


# How commands get a client. Tests replace it to reach an in-process app.
client_factory: Callable[[str | None, str | None], Client] = _connect


@dataclass(frozen=True)
class Connection:
    """The global ``--url`` / ``--token``, carried to every command in the Typer context."""

    url: str | None = None
    token: str | None = None

    def __repr__(self) -> str:  # never show the token, even in a debugger
        return f"Connection(url={self.url!r})"


@contextlib.contextmanager
def connected(ctx: typer.Context) -> Iterator[Client]:
    """A client for the command; any `KeelError` becomes one line on stderr and exit code 1."""
    connection = ctx.find_object(Connection) or Connection()
    try:
        with client_factory(connection.url, connection.token) as client:
            yield client
    except KeelError as exc:
        Console(stderr=True).print(output.error_line(exc), soft_wrap=True)
        raise typer.Exit(1) from None


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

teams_app = typer.Typer(help="Teams own models.", no_args_is_help=True)
models_app = typer.Typer(help="Registered models.", no_args_is_help=True)
versions_app = typer.Typer(
    help="Versions of a model: register, inspect, download.", no_args_is_help=True
)
alias_app = typer.Typer(
    help="Named pointers to versions (champion, challenger, ...).", no_args_is_help=True
)


# -- teams -------------------------------------------------------------------------------------


@teams_app.command("create")
def teams_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Team name.")],
    description: Annotated[str, typer.Option(help="What the team does.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create a team."""
    with connected(ctx) as keel:
        team = keel.create_team(name, description=description)
    output.show(as_json, team, lambda: output.teams_table([team]))


@teams_app.command("list")
def teams_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List every team."""
    with connected(ctx) as keel:
        teams = list(keel.list_teams())
    output.show(as_json, teams, lambda: output.teams_table(teams))


# -- models ------------------------------------------------------------------------------------


@models_app.command("create")
def models_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name (letters, digits, '.', '_', '-').")],
    team: Annotated[str, typer.Option(help="The owning team (must exist).")],
    owner: Annotated[str, typer.Option(help="The person accountable for the model.")],
    description: Annotated[str, typer.Option(help="What the model does.")] = "",
    use_case: Annotated[str, typer.Option(help="The business decision it supports.")] = "",
    tag: Annotated[list[str] | None, typer.Option(help="A tag; repeat for several.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a model (its versions come later)."""
    with connected(ctx) as keel:
        model = keel.create_model(
            name,
            team=team,
            owner=owner,
            description=description,
            use_case=use_case,
            tags=tag or [],
        )
    output.show(as_json, model, lambda: output.model_details(model))


@models_app.command("list")
def models_list(
    ctx: typer.Context,
    team: Annotated[str | None, typer.Option(help="Only this team's models.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only models with this tag.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only models with a version in this status.")
    ] = None,
    query: Annotated[
        str | None, typer.Option(help="Text in the name, description or use case.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List models."""
    with connected(ctx) as keel:
        models = list(keel.list_models(team=team, tag=tag, status=status, q=query))
    output.show(as_json, models, lambda: output.models_table(models))


@models_app.command("show")
def models_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    as_json: JsonFlag = False,
) -> None:
    """Show one model."""
    with connected(ctx) as keel:
        model = keel.get_model(name)
    output.show(as_json, model, lambda: output.model_details(model))


# -- versions ----------------------------------------------------------------------------------


@versions_app.command("list")
def versions_list(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    status: Annotated[str | None, typer.Option(help="Only versions in this status.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List a model's versions, newest first."""
    with connected(ctx) as keel:
        versions = list(keel.list_versions(model, status=status))
    output.show(as_json, versions, lambda: output.versions_table(model, versions))


@versions_app.command("show")
def versions_show(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version number.")],
    as_json: JsonFlag = False,
) -> None:
    """Show one version: artifact, signature, metrics, lineage."""
    with connected(ctx) as keel:
        found = keel.get_version(model, version)
    output.show(as_json, found, lambda: output.version_details(found))


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}.", param_hint=option)
        pairs[key.strip()] = value.strip()
    return pairs


def _metric_values(values: list[str] | None) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for key, raw in _pairs(values, "--metric").items():
        try:
            metrics[key] = float(raw)
        except ValueError:
            raise typer.BadParameter(
                f"the metric {key!r} must be a number, got {raw!r}.", param_hint="--metric"
            ) from None
    return metrics


def _param_value(raw: str) -> Any:
    # "0.1" -> 0.1, "true" -> True, "null" -> None; anything else stays the text it was.
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if value is None or isinstance(value, str | int | float | bool) else raw


def _metadata_file(path: Path | None) -> VersionIn:
    if path is None:
        return VersionIn()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(
            f"Cannot read the metadata file {str(path)!r}: {exc.strerror}."
        ) from None
    except ValueError as exc:
        raise InvalidInput(f"The metadata file {str(path)!r} is not valid JSON: {exc}.") from None
    return validated(VersionIn, data, f"metadata file {path}")


@versions_app.command("register")
def versions_register(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    path: Annotated[
        Path, typer.Argument(help="The model file.", exists=True, dir_okay=False, readable=True)
    ],
    metadata: Annotated[
        Path | None,
        typer.Option(
            help="JSON file of version metadata (signature, metrics, params, card, lineage...).",
            dir_okay=False,
        ),
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option(help="KEY=NUMBER; repeat for several.")
    ] = None,
    param: Annotated[list[str] | None, typer.Option(help="KEY=VALUE; repeat for several.")] = None,
    description: Annotated[str | None, typer.Option(help="What changed in this version.")] = None,
    training_data: Annotated[
        Path | None,
        typer.Option(
            "--training-data",
            help="Parquet, Arrow or CSV file the model was trained on: gives the signature, "
            "the data fingerprint and the drift reference.",
            dir_okay=False,
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="The target column of --training-data.")
    ] = None,
    protected: Annotated[
        list[str] | None,
        typer.Option(help="A protected attribute column of --training-data; repeat for several."),
    ] = None,
    environment: Annotated[
        Path | None,
        typer.Option(
            "--environment",
            help="requirements.txt of the model's environment (pip freeze), for the "
            "security gate's pinned-environment check.",
            dir_okay=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Upload a model file as the model's next version.

    Records the git checkout here. The signature and the drift reference come from
    --training-data, the environment from --environment (this CLI's own packages are never
    recorded as the model's); --metadata may give both instead.
    """
    from keel.cli.version_inputs import read_requirements, read_training_data

    metrics = _metric_values(metric)
    params = {key: _param_value(raw) for key, raw in _pairs(param, "--param").items()}
    console = Console()
    with connected(ctx) as keel:
        if training_data is None and (target is not None or protected):
            raise InvalidInput(
                "--target and --protected name columns of --training-data; give that file too.",
                {"field": "--training-data"},
            )
        base = _metadata_file(metadata)
        fields = base.model_dump()
        fields["metrics"] = {**base.metrics, **finite_metrics(metrics)}
        fields["params"] = {**base.params, **plain_params(params)}
        if description is not None:
            fields["description"] = description
        frame = None if training_data is None else read_training_data(training_data)
        if frame is not None:
            from keel.sdk.dataset import fingerprint, infer_signature

            if not base.signature.columns:
                fields["signature"] = infer_signature(frame, target, protected or [])
            fields["lineage"]["training_data"] = fingerprint(frame)
        if environment is not None:
            fields["environment"] = read_requirements(environment)
        prepared = with_provenance(
            validated(VersionIn, fields, "version metadata"), capture_environment=False
        )
        if console.is_terminal:
            with _upload_bar(console, path) as advance:
                registered = keel.upload_version(model, path, prepared, progress=advance)
        else:
            registered = keel.upload_version(model, path, prepared)
        if frame is not None:
            keel.set_reference(model, registered.version, frame, source="training data")
    output.show(as_json, registered, lambda: output.version_details(registered))


@contextlib.contextmanager
def _upload_bar(console: Console, path: Path) -> Iterator[Callable[[int], None]]:
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"Uploading {path.name}", total=path.stat().st_size)
        yield lambda sent: bar.advance(task, sent)


@versions_app.command("download")
def versions_download(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version number.")],
    out: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="File, or folder ending in '/', to write (default: its registered name, here).",
        ),
    ] = None,
) -> None:
    """Download a version's artifact, verified against its recorded SHA-256."""
    with connected(ctx) as keel:
        # A str, not a Path: a trailing "/" says the user meant a folder.
        written = keel.download_artifact(model, version, out if out is not None else Path.cwd())
    Console(stderr=True).print(
        f"Downloaded {model} version {version} to {written} (SHA-256 verified).",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )


# -- aliases -----------------------------------------------------------------------------------


@alias_app.command("set")
def alias_set(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias, e.g. champion.")],
    version: Annotated[int, typer.Argument(help="Version it points to.")],
    as_json: JsonFlag = False,
) -> None:
    """Point an alias at a version (production is set only through governance)."""
    with connected(ctx) as keel:
        assigned = keel.set_alias(model, alias, version)
    output.show(as_json, assigned, lambda: output.aliases_table([assigned]))


@alias_app.command("list")
def alias_list(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    as_json: JsonFlag = False,
) -> None:
    """The model's aliases as they point now."""
    with connected(ctx) as keel:
        current = keel.aliases(model)
    output.show(as_json, current, lambda: output.aliases_table(current))


@alias_app.command("delete")
def alias_delete(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias to remove (its history is kept).")],
) -> None:
    """Remove an alias."""
    with connected(ctx) as keel:
        keel.delete_alias(model, alias)


@alias_app.command("history")
def alias_history(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str | None, typer.Option(help="Only this alias.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every period each alias pointed at a version, newest first."""
    with connected(ctx) as keel:
        periods = keel.alias_history(model, alias)
    output.show(as_json, periods, lambda: output.aliases_table(periods, history=True))
