"""`keel profiles build`: profile very large data where it lives (Spark) and upload the profile."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console

from keel.cli.output import emit_json
from keel.cli.registry import JsonFlag, connected
from keel.errors import InvalidInput

profiles_app = typer.Typer(
    help="Profiles of very large data, computed on Spark and uploaded.", no_args_is_help=True
)
_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".orc": "orc"}
_NUMERIC_TYPES = ("integer", "float", "datetime")


class Engine(StrEnum):
    spark = "spark"


class ProfileRole(StrEnum):
    reference = "reference"
    window = "window"


def _hour(text: str | None, role: ProfileRole) -> datetime | None:
    if role is ProfileRole.reference:
        if text is not None:
            raise typer.BadParameter(
                "a reference has no hour; --at is for --as window only.", param_hint="'--at'"
            )
        return None
    if text is None:
        raise typer.BadParameter(
            "--as window needs the window's UTC hour, e.g. --at 2026-05-01T13:00Z.",
            param_hint="'--at'",
        )
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 hour; give one such as 2026-05-01T13:00Z.",
            param_hint="'--at'",
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _read(spark: Any, source: str) -> Any:
    """A path (Parquet by default; .csv, .json, .orc by suffix) or a table in Spark's catalog."""
    from pyspark.errors import AnalysisException

    is_path = "/" in source or "://" in source or any(source.endswith(s) for s in _FORMATS)
    try:
        if not is_path and not source.endswith(".parquet"):
            return spark.table(source)
        kind = next((f for s, f in _FORMATS.items() if source.lower().endswith(s)), "parquet")
        reader = spark.read
        if kind == "csv":
            reader = reader.option("header", "true").option("inferSchema", "true")
        return getattr(reader, kind)(source)
    except AnalysisException as exc:
        first = str(exc).strip().splitlines()[0]
        raise InvalidInput(
            f"Cannot read --input {source!r}: {first}. Give a Parquet, CSV, JSON or ORC path, "
            "or a table name Spark knows.",
            {"field": "input"},
        ) from None


def _signature_kinds(signature: Any) -> dict[str, str] | None:
    """Kinds of the signature's features and protected attributes (None: no signature)."""
    logged = [c for c in signature.columns if c.role in ("feature", "protected_attribute")]
    if not logged:
        return None
    return {c.name: "numeric" if c.dtype in _NUMERIC_TYPES else "categorical" for c in logged}


@profiles_app.command("build")
def build(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Option(
            "--input",
            help="Parquet (default), .csv, .json or .orc path (local, s3a://, hdfs://), or a "
            "table name.",
        ),
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name.")],
    version: Annotated[int, typer.Option("--version", "-v", help="Version number.")],
    engine: Annotated[Engine, typer.Option(help="Where to compute the profile.")] = Engine.spark,
    role: Annotated[
        ProfileRole,
        typer.Option("--as", help="The version's reference, or one hour's window on its bins."),
    ] = ProfileRole.reference,
    at: Annotated[
        str | None, typer.Option("--at", help="The window's UTC hour, e.g. 2026-05-01T13:00Z.")
    ] = None,
    master: Annotated[
        str,
        typer.Option(envvar="KEEL_SPARK_MASTER", help="Spark master URL.", show_envvar=True),
    ] = "local[*]",
    bins: Annotated[int, typer.Option(help="Bins per numeric column (reference).")] = 20,
    top_k: Annotated[int, typer.Option(help="Categories kept per column (reference).")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Profile data on Spark and upload the profile: the version's reference for drift (exact
    quantile bins, as the server would compute them), or a window merged into one hour.

    Needs PySpark and Java 17+: pip install 'keel-mlops\\[spark]'.
    """
    hour = _hour(at, role)
    with connected(ctx) as keel:
        found = keel.get_version(model, version)  # fails fast, before Spark starts
        reference = keel.reference_profile(model, version) if hour is not None else None
        from keel.sdk.spark import profile, spark_session

        started = time.monotonic()
        spark = spark_session(master, f"keel-profile-{model}-v{version}")
        try:
            spark.sparkContext.setLogLevel("ERROR")
            df = _read(spark, source)
            kinds = None
            if reference is None:
                wanted = _signature_kinds(found.signature)
                kinds = (
                    None if wanted is None else {n: k for n, k in wanted.items() if n in df.columns}
                )
            built = profile(df, reference, kinds=kinds, bins=bins, top_k=top_k)
        finally:
            spark.stop()
        seconds = time.monotonic() - started
        if hour is None:
            result: Any = keel.upload_reference_profile(model, version, built, source=source)
            said = f"Set the reference of {model} v{version}"
        else:
            result = keel.upload_window_profile(model, version, hour, built)
            said = f"Added to the {hour:%Y-%m-%d %H:00} UTC window of {model} v{version}"
    if as_json:
        emit_json(Console(), result)
        return
    Console().print(
        f"{said}: {built.rows:,} rows, {len(built.columns)} columns, profiled on Spark "
        f"({master}) in {seconds:.1f} s."
    )
