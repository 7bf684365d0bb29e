"""`keel demo`: seed a living demo portfolio into an empty Keel, through its API, and say where
to look."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich.console import Console

from keel.cli.registry import connected


def _as_of(value: str | None) -> date:
    today = datetime.now(UTC).date()
    if value is None:
        return today
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date; give one like {today.isoformat()} (YYYY-MM-DD).",
            param_hint="--as-of",
        ) from None
    if parsed > today:
        raise typer.BadParameter(
            f"{parsed} is in the future; the demo's month ends the day before --as-of, and "
            f"telemetry cannot come from the future. Give {today} or earlier.",
            param_hint="--as-of",
        )
    return parsed


def demo(
    ctx: typer.Context,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="The demo's today (YYYY-MM-DD, UTC; default today): its month of traffic, "
            "incidents and costs ends the day before. The numbers are the same for any date.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Seed a demo portfolio (teams, models, gates, a canary, a month of telemetry, incidents,
    costs) into an empty Keel through its API, as an admin; then print where to look.

    It refuses a Keel that already holds models: run it against a fresh data dir
    (./scripts/up.sh --demo does both)."""
    # Imported here: the demo trains models, and every other command should start without
    # loading scikit-learn and pandas.
    from keel.sdk.demo import MODELS, seed

    day = _as_of(as_of)
    err = Console(stderr=True)
    started = time.monotonic()
    step = [0]

    def say(what: str) -> None:
        step[0] += 1
        err.print(f"[{time.monotonic() - started:5.1f} s] {step[0]:2d}. {what}", highlight=False)

    with connected(ctx) as keel:
        err.print(f"Seeding the demo portfolio into {keel.url} (as of {day}) ...")
        seeded = seed(keel, as_of=day, say=say)
    out = Console(soft_wrap=True, highlight=False)
    out.print(
        f"Demo portfolio seeded in {time.monotonic() - started:.0f} s: "
        f"{len(MODELS)} models in 4 teams. Where to look:"
    )
    for what, url in seeded.places():
        out.print(f"  {what + ':':<26} {url}")
    out.print(
        "Sign in with the admin token (on this machine: <data dir>/admin-token, e.g. "
        "cat .keel/admin-token)."
    )
