"""`keel monitor create|list|run|status|delete` as a person or a script runs them."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console, RenderableType
from typer.testing import Result

from keel.cli.monitoring import monitors_table, status_view
from keel.domain.monitoring import Status
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import VersionDraft
from keel.domain.signature import Column, ColumnType, Signature
from keel.schemas.monitoring import MonitorOut, RunOut
from keel.services.backend import Backend

Keel = Callable[..., Result]


def render(renderable: RenderableType) -> str:
    console = Console(file=io.StringIO(), width=120)
    console.print(renderable)
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def churn(keel_cli: Keel, keel_backend: Backend) -> str:
    ok(keel_cli("teams", "create", "risk"))
    ok(keel_cli("models", "create", "churn", "--team", "risk", "--owner", "ana"))
    signature = Signature((Column("income", ColumnType.FLOAT),))
    keel_backend.registry.register_version(
        ADMIN, "churn", io.BytesIO(b"m"), "m.bin", VersionDraft(signature=signature)
    )
    return "churn"


def test_create_list_run_and_status(keel_cli: Keel, churn: str, tmp_path: Path) -> None:
    limits = tmp_path / "limits.json"
    limits.write_text(json.dumps({"operations": {"latency_p95_ms": 250}}))
    made = json.loads(
        ok(
            keel_cli(
                "monitor",
                "create",
                "churn",
                "--name",
                "ops",
                "--check",
                "operations",
                "--check",
                "drift",
                "--window",
                "daily",
                "--thresholds",
                str(limits),
                "--no-schedule",
                "--json",
            )
        ).stdout
    )
    assert made["checks"] == ["operations", "drift"] and made["window"] == "daily"
    assert made["thresholds"]["operations"]["latency_p95_ms"] == 250
    assert made["schedule"]["enabled"] is False

    listed = json.loads(ok(keel_cli("monitor", "list", "churn", "--json")).stdout)
    assert [m["name"] for m in listed] == ["ops"]
    # Off a terminal (as here) the output is JSON; people get a table.
    table = render(monitors_table(MonitorOut.model_validate(m) for m in listed))
    assert "ops" in table and "manual" in table and "operations, drift" in table

    at = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    ran = json.loads(ok(keel_cli("monitor", "run", "churn", "--at", at, "--json")).stdout)
    assert ran["status"] == "no_data"  # nothing logged yet
    p95 = [p for p in ran["points"] if p["metric"] == "latency_p95_ms"]
    assert len(p95) == 1 and p95[0]["threshold"] == 250

    status = json.loads(ok(keel_cli("monitor", "status", "churn", "--json")).stdout)
    assert status["model"] == "churn" and status["status"] == "no_data"
    assert {(p["check"], p["metric"]) for p in status["points"]} >= {
        ("operations", "latency_p95_ms"),
        ("drift", "drift_share"),
    }

    ok(keel_cli("monitor", "delete", str(made["id"])))
    assert json.loads(ok(keel_cli("monitor", "list", "churn", "--json")).stdout) == []
    # The deleted monitor's history is still there.
    assert json.loads(ok(keel_cli("monitor", "status", "churn", "--json")).stdout)["points"]


def test_status_for_people(keel_cli: Keel, churn: str) -> None:
    empty = json.loads(ok(keel_cli("monitor", "status", "churn", "--json")).stdout)
    shown = render(status_view("churn", Status(empty["status"]), []))
    assert "No metric points yet" in shown and "keel monitor run" in shown
    ok(keel_cli("monitor", "create", "churn", "--check", "operations"))
    ran = RunOut.model_validate_json(ok(keel_cli("monitor", "run", "churn", "--json")).stdout)
    shown = render(status_view("churn", ran.status, ran.points))
    assert "churn: no_data" in shown and "error_rate" in shown and "0.01" in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("monitor", "create", "churn", "--thresholds", "{not json"), "not valid JSON"),
        (("monitor", "create", "churn", "--thresholds", "no-such-file.json"), "neither"),
        (("monitor", "create", "churn", "--window", "weekly"), "'window'"),
        (("monitor", "create", "churn", "--check", "vibes"), "checks"),
        (("monitor", "run", "churn"), "no monitors"),
        (("monitor", "status", "nope"), "No model named 'nope'"),
    ],
)
def test_mistakes_are_one_clear_line_and_exit_1(
    keel_cli: Keel, churn: str, args: tuple[str, ...], message: str
) -> None:
    result = keel_cli(*args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert json.loads(ok(keel_cli("monitor", "list", "churn", "--json")).stdout) == []


def test_update_changes_what_is_given_and_keeps_the_rest(keel_cli: Keel, churn: str) -> None:
    ok(keel_cli("monitor", "create", "churn", "--name", "ops", "--check", "operations"))
    clash = keel_cli("monitor", "create", "churn", "--name", "ops")
    assert clash.exit_code == 1 and "keel monitor update" in clash.stderr
    updated = json.loads(
        ok(
            keel_cli(
                "monitor",
                "update",
                "churn",
                "--name",
                "ops",
                "--thresholds",
                '{"operations": {"latency_p95_ms": 400}}',
                "--delay-minutes",
                "15",
                "--json",
            )
        ).stdout
    )
    assert updated["thresholds"]["operations"]["latency_p95_ms"] == 400
    assert updated["schedule"] == {"enabled": True, "delay_minutes": 15}
    assert updated["checks"] == ["operations"] and updated["window"] == "hourly"
    listed = json.loads(ok(keel_cli("monitor", "list", "churn", "--json")).stdout)
    assert listed[0]["thresholds"]["operations"]["latency_p95_ms"] == 400


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--name", "ghost", "--window", "daily"), "no monitor named 'ghost'"),
        (("--name", "ops"), "Nothing to change"),
        (("--name", "ops", "--thresholds", "{oops"), "--thresholds"),
    ],
)
def test_update_mistakes_are_one_line(
    keel_cli: Keel, churn: str, args: tuple[str, ...], message: str
) -> None:
    ok(keel_cli("monitor", "create", "churn", "--name", "ops", "--check", "operations"))
    result = keel_cli("monitor", "update", "churn", *args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
