"""Issue 6, "What it must show": drift -> exactly one incident -> one signed notification to a
real HTTP receiver on loopback -> automatic resolution when the drift clears.

Telemetry goes in through the REST API with timestamps in given hours; the monitor runs through
the API for given times (one run per hour, as the worker would); the webhook outbox is delivered
by the same job the worker runs (`Notifications.deliver_due`) to an `http.server` on port 0.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient
from tests.api.conftest import admin_token, app, backend, client
from tests.job_runner import monitor_run

from keel.domain.permissions import Grant, Principal, Role
from keel.domain.webhooks import (
    HEADER_EVENT,
    HEADER_IDEMPOTENCY_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    verify,
)
from keel.services.backend import Backend

__all__ = ["admin_token", "app", "backend", "client"]

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
SECRET = "e2e-shared-secret-0123456789"
HOUR = timedelta(hours=1)
ROWS = 600
DEADLINE_S = 10.0
# Hours well inside the default telemetry retention.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
SIGNATURE = {
    "columns": [
        {"name": "income", "dtype": "float", "nullable": False},
        {"name": "plan", "dtype": "string", "nullable": False},
        {"name": "churned", "dtype": "boolean", "role": "target"},
    ]
}


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real webhook receiver: records every POST and signals each arrival."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int) -> list[Received]:
        """Block until ``count`` requests arrived (or fail after `DEADLINE_S`)."""
        with self.arrived:
            ok = self.arrived.wait_for(lambda: len(self.requests) >= count, timeout=DEADLINE_S)
        assert ok, f"the receiver got {len(self.requests)} requests, expected {count}"
        return list(self.requests)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.end_headers()
            with state.arrived:
                state.requests.append(Received(dict(self.headers.items()), body))
                state.arrived.notify_all()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/keel"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=DEADLINE_S)


def arrow_stream(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def log_hour(client: TestClient, hour: datetime, *, shift: float, rows: int = ROWS) -> None:
    """``rows`` predictions inside ``hour``, income shifted by ``shift`` standard deviations."""
    # Seeded by the hour's place in the test, never by the clock: the same data every run.
    rng = np.random.default_rng(1000 + round((hour - T0) / HOUR))
    offsets = np.sort(rng.uniform(0, 3599, rows))
    table = pa.table(
        {
            "ts": pa.array(
                [hour + timedelta(seconds=float(s)) for s in offsets], pa.timestamp("us", tz="UTC")
            ),
            "prediction": rng.random(rows) < 0.3,
            "income": rng.normal(50 + 10 * shift, 10, rows),
            "plan": rng.choice(["a", "b", "c"], rows),
        }
    )
    logged = client.post(
        "/api/v1/models/churn/versions/1/predictions/upload",
        content=arrow_stream(table),
        headers={"Content-Type": "application/vnd.apache.arrow.stream"},
    )
    assert logged.status_code == 200, logged.text


def run_hour(client: TestClient, hour: datetime) -> None:
    monitor_run(client, "churn", {"at": (hour + HOUR + timedelta(minutes=1)).isoformat()})


def incidents(client: TestClient) -> list[dict[str, object]]:
    listed = client.get("/api/v1/incidents", params={"model": "churn"})
    assert listed.status_code == 200, listed.text
    found: list[dict[str, object]] = listed.json()
    return found


def test_drift_opens_one_incident_notifies_once_signed_and_resolves_when_it_clears(
    client: TestClient, backend: Backend, receiver: Receiver
) -> None:
    assert client.post("/api/v1/teams", json={"name": "risk"}).status_code == 201
    made = client.post("/api/v1/models", json={"name": "churn", "team": "risk", "owner": "ana"})
    assert made.status_code == 201, made.text
    version = client.post(
        "/api/v1/models/churn/versions",
        files={"artifact": ("m.bin", b"model bytes")},
        data={"metadata": json.dumps({"signature": SIGNATURE})},
    )
    assert version.status_code == 201, version.text
    rng = np.random.default_rng(6)
    parquet = io.BytesIO()
    pq.write_table(
        pa.table({"income": rng.normal(50, 10, 5000), "plan": rng.choice(["a", "b", "c"], 5000)}),
        parquet,
    )
    reference = client.put(
        "/api/v1/models/churn/versions/1/reference",
        content=parquet.getvalue(),
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert reference.status_code == 200, reference.text
    backend.notifications.subscribe(
        ADMIN, url=receiver.url, events=["incident.triggered", "incident.resolved"], secret=SECRET
    )

    monitor = client.post(
        "/api/v1/models/churn/monitors",
        json={"name": "live", "checks": ["drift"], "schedule": {"enabled": False}},
    )
    assert monitor.status_code == 201, monitor.text
    (rule,) = client.get("/api/v1/models/churn/alert-rules").json()
    assert (rule["name"], rule["metric"], rule["windows"]) == ("live-drift", "drift_share", 2)

    # Three hours of shifted traffic: the rule needs two drifted windows, and the third lands
    # on the same incident.
    for i in range(3):
        log_hour(client, T0 + i * HOUR, shift=3.0)
        run_hour(client, T0 + i * HOUR)
        if i == 0:
            assert incidents(client) == []
    (opened,) = incidents(client)
    assert opened["status"] == "triggered" and opened["assignee"] == "ana"
    shown = client.get(f"/api/v1/incidents/{opened['id']}").json()
    assert [e["kind"] for e in shown["timeline"]] == ["alert", "status", "alert"]

    sent = backend.notifications.deliver_due()
    assert sent.delivered == 1
    (delivery,) = receiver.wait_for(1)
    headers = {k.lower(): v for k, v in delivery.headers.items()}
    assert verify(
        SECRET.encode(),
        headers[HEADER_TIMESTAMP.lower()],
        delivery.body,
        headers[HEADER_SIGNATURE.lower()],
        now=datetime.now(UTC),
    )
    assert not verify(
        b"not-the-secret",
        headers[HEADER_TIMESTAMP.lower()],
        delivery.body,
        headers[HEADER_SIGNATURE.lower()],
        now=datetime.now(UTC),
    )
    assert headers[HEADER_EVENT.lower()] == "incident.triggered"
    assert headers[HEADER_IDEMPOTENCY_KEY.lower()]
    payload = json.loads(delivery.body)
    assert json.dumps(opened["id"]) in json.dumps(payload)
    assert backend.notifications.deliver_due().delivered == 0  # nothing new: still one

    # The drift clears: the next window's traffic looks like the reference. A full window (as many
    # rows as the reference) keeps its sampling noise far below the drift threshold.
    log_hour(client, T0 + 3 * HOUR, shift=0.0, rows=5000)
    run_hour(client, T0 + 3 * HOUR)
    (resolved,) = incidents(client)
    assert resolved["id"] == opened["id"] and resolved["status"] == "resolved"
    last = client.get(f"/api/v1/incidents/{opened['id']}").json()["timeline"][-1]
    assert last["kind"] == "status" and last["details"]["automatic"] is True
    assert backend.notifications.deliver_due().delivered == 1
    _, closing = receiver.wait_for(2)
    assert {k.lower(): v for k, v in closing.headers.items()}[
        HEADER_EVENT.lower()
    ] == "incident.resolved"
    actions = [e.action for e in backend.audit.events(ADMIN, subject_type="incident")]
    assert actions.count("incident.trigger") == 1 and actions.count("incident.resolve") == 1
