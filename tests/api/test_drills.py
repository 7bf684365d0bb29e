"""Incident drills through the API, with a real job runner, a real webhook receiver on loopback
and the drill service's clock injected (no sleeps: every time in the report is decided here).

churn has v1 then v2 in production, a reference profile, a drift monitor with its default
alert rule, and a playbook that pages and rolls back on drift. A drift drill produces a report
with all four times and changes nothing in production; a second drill with the receiver down
reports the failed page; neither touches the real incidents, metric points or /metrics.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from starlette.testclient import TestClient
from tests.job_runner import finished_job
from tests.webhook_receiver import Receiver

from keel.domain.monitoring import Check, Monitor
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.services.backend import Backend

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
SIGNATURE = Signature(
    (
        Column("income", ColumnType.FLOAT),
        Column("plan", ColumnType.STRING),
        Column("churned", ColumnType.INTEGER, ColumnRole.TARGET),
    )
)
PLAYBOOK = """\
name: churn-drift
model: churn
match: {check: drift}
actions:
  - notify: {event: incident.page}
  - rollback
"""
# A day ago (the maturity criterion looks back 90 days from today); the drill's clock runs on
# from here only as the test moves it.
START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)


class Clock:
    """The drill service's clock: one second passes per reading, and `advance` moves it on
    (a person taking their time to acknowledge)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


@pytest.fixture
def clock(backend: Backend, client: TestClient, receiver: Receiver) -> Clock:
    b = backend
    b.registry.create_team(ADMIN, "risk")
    b.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    b.governance.apply_policy(ADMIN, "tier: unassessed\nchecks: {}\n")
    rng = np.random.default_rng(7)
    reference = pa.table({"income": rng.normal(50, 10, 2000), "plan": rng.choice(["a", "b"], 2000)})
    for version in (1, 2):
        draft = VersionDraft(signature=SIGNATURE)
        b.registry.register_version(ADMIN, "churn", io.BytesIO(b"m"), "m.bin", draft)
        b.telemetry.set_reference(ADMIN, "churn", version, reference)
        b.governance.promote(ADMIN, "churn", version)
    b.monitoring.create(ADMIN, Monitor(model="churn", checks=(Check.DRIFT,)))
    b.playbooks.apply(ADMIN, PLAYBOOK)
    b.notifications.subscribe(ADMIN, url=receiver.url, events=["incident.*"])
    fake = Clock()
    b.drills.clock = fake
    return fake


def run_drill(client: TestClient, **body: Any) -> dict[str, Any]:
    queued = client.post("/api/v1/models/churn/drills", json=body)
    assert queued.status_code == 202, queued.text
    job = finished_job(client, queued.json()["id"])
    assert job["state"] == "succeeded", job
    shown = client.get(f"/api/v1/drills/{job['result']['drill']}")
    assert shown.status_code == 200, shown.text
    report: dict[str, Any] = shown.json()
    return report


def production_state(client: TestClient) -> tuple[Any, ...]:
    aliases = client.get("/api/v1/models/churn/aliases").json()
    deployments = client.get("/api/v1/models/churn/deployments").json()
    promotions = client.get("/api/v1/models/churn/promotions").json()
    return json.dumps(aliases, sort_keys=True), deployments, len(promotions)


def real_records(client: TestClient) -> tuple[Any, ...]:
    incidents = client.get("/api/v1/incidents").json()
    points = client.get("/api/v1/models/churn/metrics").json()
    stats = client.get("/api/v1/incidents/stats?model=churn").json()
    scrape = client.get("/metrics").text
    open_lines = [
        line for line in scrape.splitlines() if "incidents_open" in line and "churn" in line
    ]
    return incidents, points, stats["incidents"], open_lines


def test_a_drift_drill_reports_four_times_and_changes_nothing_real(
    client: TestClient, clock: Clock, receiver: Receiver
) -> None:
    production_before, real_before = production_state(client), real_records(client)
    assert real_before[0] == [] and real_before[2] == 0

    report = run_drill(client, scenario="drift")
    assert report["status"] == "paged", report
    assert report["rules_fired"] == ["default-drift"]
    assert report["failures"] == []
    assert report["time_to_detect_s"] > 0
    assert report["time_to_page_s"] >= report["time_to_detect_s"]
    assert report["detection_wait_s"] == 2 * 3600  # the default rule wants 2 hourly windows
    steps = {s["action"]: s for s in report["steps"]}
    assert steps["rollback"]["outcome"] == "dry_run"
    assert steps["rollback"]["would"] == (
        "would move production of churn from version 2 back to version 1"
    )
    assert steps["notify (event incident.page)"]["outcome"] == "dry_run"

    # The page reached the on-call receiver, marked as a drill; no real incident event did.
    pages = [json.loads(r.body) for r in receiver.received]
    assert {p["type"] for p in pages} >= {"incident.drill.triggered"}
    assert all(p["type"].startswith("incident.drill.") for p in pages)
    assert all(p["data"]["drill"] is True for p in pages)

    # A person acknowledges through the drill, then resolves through the incident route.
    clock.advance(300)
    acked = client.post(f"/api/v1/drills/{report['id']}/ack", json={"comment": "on it"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged"
    clock.advance(600)
    resolved = client.post(f"/api/v1/incidents/{report['incident_id']}/resolve", json={})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["drill_id"] == report["id"]
    final = client.get(f"/api/v1/drills/{report['id']}").json()
    assert final["status"] == "finished"
    times = [final[f"time_to_{t}_s"] for t in ("detect", "page", "acknowledge", "resolve")]
    assert None not in times and times == sorted(times)
    assert times[2] >= 300 and times[3] - times[2] >= 600

    # Production, deployments and every real record are as they were.
    assert production_state(client) == production_before
    assert real_records(client) == real_before
    drills_incidents = client.get("/api/v1/incidents?drill=true").json()
    assert [i["id"] for i in drills_incidents] == [report["incident_id"]]
    # The maturity criterion counts the rehearsal.
    (score,) = client.get("/api/v1/maturity?model=churn").json()
    rehearsal = next(c for c in score["criteria"] if c["id"] == "incident_rehearsed")
    assert rehearsal["status"] == "met"
    assert [e["id"] for e in rehearsal["evidence"]] == [str(report["id"])]


def test_a_drill_with_the_receiver_down_reports_the_failed_page(
    client: TestClient, clock: Clock, receiver: Receiver
) -> None:
    real_before = real_records(client)
    receiver.failing = True
    report = run_drill(client, scenario="drift")
    assert report["status"] == "paged" and report["incident_id"] is not None
    assert report["time_to_page_s"] is None
    (failure,) = report["failures"]
    assert "failed: HTTP 503" in failure and "receiver may be down" in failure
    assert real_records(client) == real_before


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/api/v1/models/churn/drills", {"scenario": "meteor"}, 422, "scenario"),
        ("/api/v1/models/nope/drills", {"scenario": "drift"}, 404, "model"),
        ("/api/v1/models/churn/drills", {"scenario": "drift", "live": True}, 422, "live"),
        ("/api/v1/models/churn/drills", {"scenario": "drift", "alias": "gone"}, 422, "alias"),
    ],
)
def test_bad_drill_requests_name_the_option_and_write_nothing(
    client: TestClient, clock: Clock, path: str, body: dict[str, Any], status: int, field: str
) -> None:
    jobs_before = client.get("/api/v1/jobs").json()
    answer = client.post(path, json=body)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["details"]["field"] == field
    assert f"'{field}'" in error["message"]
    assert client.get("/api/v1/jobs").json() == jobs_before
    assert client.get("/api/v1/drills").json() == []
