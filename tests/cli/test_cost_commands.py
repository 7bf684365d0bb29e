"""`keel costs|budgets|gc` as a script runs them (JSON), over the real app in-process."""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.services.backend import Backend

Keel = Callable[..., Result]
ROOT = Principal("root", grants=(Grant(Role.ADMIN),))


def ok(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if result.stdout.strip().startswith(("{", "[")) else None


@pytest.fixture
def portfolio(keel_backend: Backend) -> Backend:
    registry = keel_backend.registry
    registry.create_team(ROOT, "risk")
    registry.create_team(ROOT, "growth")
    for name, team in (("churn", "risk"), ("fraud", "risk"), ("ranker", "growth")):
        registry.create_model(ROOT, Model(name=name, team=team, owner="ana"))
    return keel_backend


def test_import_show_and_budget_a_bill(keel_cli: Keel, portfolio: Backend, tmp_path: Path) -> None:
    bill = tmp_path / "bill.csv"
    bill.write_text(keel_cli("costs", "sample").stdout, encoding="utf-8")
    ok(keel_cli("costs", "rule", "Tax", "even", "--json"))
    first = ok(keel_cli("costs", "import", str(bill), "--json"))
    assert first["rows"] == 10 and first["effective_cost"] == "621.085"
    again = ok(keel_cli("costs", "import", str(bill), "--json"))
    assert again["replayed"] is True and again["id"] == first["id"]

    shown = ok(keel_cli("costs", "show", "--month", "2026-10", "--json"))
    # Only the tax has a rule here: support 50, ghost 5, GPU 100 and network 12 stay visible.
    assert shown["total"] == "621.085" and shown["bills_unallocated"] == "167"
    reasons = {a["pool"]: a["reason"] for a in shown["allocations"] if a["source"] == "unallocated"}
    assert reasons["Support plan"] == "no split rule for this pool"
    churn = ok(keel_cli("costs", "show", "--month", "2026-10", "--model", "churn", "--json"))
    assert churn["total"] == "201.865"  # 120.50 + 80.255 - 10 + 11.11 (tax / 3)

    budget = ok(
        keel_cli(
            "budgets", "set", "team", "risk", "--amount", "400", "--thresholds", "50,100", "--json"
        )
    )
    assert budget["thresholds"] == [50, 100] and budget["amount"] == "400"
    [status] = ok(
        keel_cli("budgets", "status", "--month", "2026-10", "--as-of", "2026-10-31", "--json")
    )
    assert status["thresholds_crossed"] == [50, 100]  # risk spent 412.975 of 400
    alerts = ok(
        keel_cli("budgets", "check", "--month", "2026-10", "--as-of", "2026-10-31", "--json")
    )
    assert [a["signal"] for a in alerts] == ["threshold:100", "forecast"]
    assert (
        ok(keel_cli("budgets", "check", "--month", "2026-10", "--as-of", "2026-10-31", "--json"))
        == []
    )


def test_a_malformed_bill_names_row_and_column(keel_cli: Keel, tmp_path: Path) -> None:
    bill = tmp_path / "bad.csv"
    text = keel_cli("costs", "sample").stdout.replace(",Purchase,", ",Refund,")
    bill.write_text(text, encoding="utf-8")
    refused = keel_cli("costs", "import", str(bill))
    assert refused.exit_code == 1
    assert "row 6" in refused.output and "ChargeCategory" in refused.output
    assert ok(keel_cli("costs", "imports", "--json")) == []


def test_bad_budget_input_is_refused_with_the_field(keel_cli: Keel, portfolio: Backend) -> None:
    refused = keel_cli("budgets", "set", "model", "churn", "--amount", "-1")
    assert refused.exit_code == 1 and "amount" in refused.output
    refused = keel_cli("budgets", "set", "model", "churn", "--amount", "5", "--thresholds", "a,b")
    assert refused.exit_code == 1 and "thresholds" in refused.output
    assert ok(keel_cli("budgets", "list", "--json")) == []


def test_gc_deletes_only_old_unreferenced_blobs_and_is_audited(
    keel_cli: Keel, portfolio: Backend
) -> None:
    artifacts = portfolio.registry.artifacts
    kept = portfolio.registry.register_version(
        ROOT, "churn", io.BytesIO(b"the model"), "m.bin", VersionDraft()
    )
    orphan = artifacts.put_bytes(b"left behind by a failed upload", max_bytes=1 << 20)
    young = artifacts.put_bytes(b"an upload still in flight", max_bytes=1 << 20)
    month_ago = time.time() - 30 * 86400
    root = Path(artifacts.url) / "sha256"
    for digest in (orphan.sha256, kept.artifact.sha256):
        os.utime(root / digest[:2] / digest, (month_ago, month_ago))

    plan = ok(keel_cli("gc", "--dry-run", "--json"))
    assert [b["sha256"] for b in plan["deleted"]] == [orphan.sha256]
    assert plan["kept_recent"] == 1 and artifacts.exists(orphan.sha256)
    waste = ok(keel_cli("costs", "waste", "--json"))
    assert [(w["kind"], w["fix"]) for w in waste] == [
        ("orphaned_blobs", "keel gc --dry-run  # then keel gc")
    ]

    done = ok(keel_cli("gc", "--json"))
    assert [b["sha256"] for b in done["deleted"]] == [orphan.sha256]
    assert not artifacts.exists(orphan.sha256)
    assert artifacts.exists(kept.artifact.sha256) and artifacts.exists(young.sha256)
    [event] = [e for e in portfolio.audit.log.events(limit=100) if e.action == "artifacts.gc"]
    assert event.details["blobs"] == [{"sha256": orphan.sha256, "size": orphan.size}]
