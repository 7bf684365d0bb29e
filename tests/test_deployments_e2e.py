"""Issue 12, "What it must show", stories 1, 2, 3, 5 and 6: deployments end to end.

One real `keel up` on loopback (API, gateway and worker with its deployment job, on the real
clock); real scikit-learn models registered through the SDK; predictions through the gateway's
MLflow scoring route over real HTTP; the CLI as a user runs it. Each story has its own model, so
they share the server without sharing state. Nothing sleeps: every wait polls with a deadline.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from tests.running_keel import Server, keel_up
from tests.webhook_receiver import Receiver

from keel.domain.webhooks import verify
from keel.sdk import Client

SECURITY_ONLY = "tier: unassessed\nchecks:\n  security:\n    max_artifact_mb: 10\n"
DEADLINE_S = 90.0


def data(seed: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    y = (1.5 * x1 - x2 + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "y": y})


def fitted(seed: int, *, flipped: bool = False) -> LogisticRegression:
    train = data(seed, 600)
    target = 1 - train["y"] if flipped else train["y"]
    return LogisticRegression().fit(train[["x1", "x2"]], target)


def wait_for(
    what: str,
    check: Callable[[], Any],
    deadline_s: float = DEADLINE_S,
    explain: Callable[[], str] = str,
) -> Any:
    """Poll ``check`` until it returns something truthy (returned), or fail after the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}: {explain()}")
        threading.Event().wait(0.2)  # a pause between polls, not a wait for the outcome


@dataclass
class Keel:
    server: Server
    client: Client
    http: httpx.Client

    def register(self, model: str, estimator: LogisticRegression, *, gates: bool = True) -> int:
        train = data(1, 200)
        version = self.client.register_version(
            model, estimator, training_data=train, target="y", capture_git=False, format="skops"
        ).version
        if gates:
            status = self.client.run_gates(model, version)
            assert status.promotable, status.blockers
        return version

    def new_model(self, name: str) -> None:
        self.client.create_model(name, team="risk", owner="ana")
        self.register(name, fitted(1))
        self.server.ok("deploy", name, "1", "--strategy", "direct")

    def predict(self, model: str, rows: pd.DataFrame) -> httpx.Response:
        body = {
            "dataframe_split": {"columns": ["x1", "x2"], "data": rows[["x1", "x2"]].values.tolist()}
        }
        return self.http.post(f"/models/{model}/invocations", json=body)


@pytest.fixture(scope="module")
def keel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keel]:
    with keel_up(tmp_path_factory.mktemp("deployments")) as server:
        token = (server.data_dir / "admin-token").read_text(encoding="utf-8").strip()
        headers = {"Authorization": f"Bearer {token}"}
        with (
            Client(server.url, token=token) as client,
            httpx.Client(base_url=server.url, headers=headers, timeout=60) as http,
        ):
            client.create_team("risk")
            client.apply_policy("unassessed.yaml", source=SECURITY_ONLY)
            yield Keel(server, client, http)


@dataclass
class Load:
    """A steady load of 5-row requests in a thread, counting every answer by status and version;
    ``labels`` also sends each answered row's true label (labels arriving as they would)."""

    keel: Keel
    model: str
    seed: int
    labels: bool = False
    statuses: Counter[int] = field(default_factory=Counter)
    versions: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        rng_seed = self.seed
        while not self._stop.is_set():
            rows = data(rng_seed, 5)
            rng_seed += 1
            answer = self.keel.predict(self.model, rows)
            self.statuses[answer.status_code] += 1
            if answer.status_code != 200:
                continue
            self.versions.append(int(answer.headers["X-Keel-Version"]))
            if self.labels:
                ids = answer.headers["X-Keel-Prediction-Ids"].split(",")
                self.keel.client.log_labels(self.model, ids=ids, labels=rows["y"].tolist())

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=120)
        assert not self._thread.is_alive()

    def served(self) -> int:
        return len(self.versions)


def state(keel: Keel, model: str) -> str:
    return keel.client.deployment(model).state


def timeline(keel: Keel, model: str) -> Callable[[], str]:
    return lambda: keel.client.deployment(model).model_dump_json()


def write_plan(tmp_path: Path, plan: dict[str, Any]) -> str:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan), encoding="utf-8")
    return str(path)


def test_story_1_a_canary_that_predicts_worse_aborts_by_itself(keel: Keel, tmp_path: Path) -> None:
    model = "credit-bad"
    keel.new_model(model)
    keel.register(model, fitted(2, flipped=True))  # v2 passes its gates but predicts backwards
    receiver = Receiver().start()
    try:
        hook = keel.client.add_webhook(
            receiver.url, events=["deployment.aborted", "incident.triggered"]
        )
        plan = {
            "steps": [
                {
                    "weight": 50,
                    "minDuration": "10m",
                    "checks": [
                        {"metric": "error_rate", "absolute": 0.05},
                        {"metric": "live_accuracy", "relative": 0.2},
                    ],
                }
            ],
            "analysis": {"interval": "2s", "minSamples": 20},
        }
        with Load(keel, model, seed=100, labels=True) as load:
            keel.server.ok("deploy", model, "2", "--plan", write_plan(tmp_path, plan))
            wait_for(
                "the canary to abort",
                lambda: state(keel, model) == "aborted",
                explain=timeline(keel, model),
            )
            aborted_at = load.served()
            # All traffic back on v1 within the step's interval (+ the gateway's 1 s cache).
            wait_for(
                "20 answers in a row from v1",
                lambda: len(load.versions) >= aborted_at + 20 and set(load.versions[-20:]) == {1},
                deadline_s=30,
            )
        assert set(load.statuses) == {200}
        shown = keel.client.deployment(model)
        assert "live_accuracy" in shown.reason and shown.step == 0
        assert shown.incident_id is not None
        incidents = keel.client.list_incidents(model=model)
        assert [i.id for i in incidents] == [shown.incident_id]
        wait_for("two webhooks", lambda: len(receiver.received) >= 2, deadline_s=60)
        events = sorted(json.loads(r.body)["type"] for r in receiver.received)
        assert events == ["deployment.aborted", "incident.triggered"]
        assert hook.secret is not None
        for got in receiver.received:
            assert verify(
                hook.secret.encode(),
                got.headers["X-Keel-Timestamp"],
                got.body,
                got.headers["X-Keel-Signature"],
                now=datetime.now(UTC),
            )
    finally:
        receiver.stop()
    trail = [e.action for e in keel.client.audit_log(subject_id=model, limit=1000)]
    assert "deployment.start" in trail and "deployment.aborted" in trail
    assert keel.client.deployment(model).serving.live[0].version == 1  # type: ignore[union-attr]


def test_story_2_a_good_canary_goes_through_every_step_and_promotes_itself(
    keel: Keel, tmp_path: Path
) -> None:
    model = "credit-good"
    keel.new_model(model)
    keel.register(model, fitted(3))
    checks = [
        {"metric": "error_rate", "absolute": 0.05},
        {"metric": "prediction_drift", "absolute": 0.5},
    ]
    plan = {
        "steps": [
            {"weight": 30, "minDuration": "2s", "minRequests": 15, "checks": checks},
            {"weight": 100, "minDuration": "2s", "minRequests": 15, "checks": checks},
        ],
        "analysis": {"interval": "1s", "minSamples": 10, "inconclusiveLimit": 2},
    }
    with Load(keel, model, seed=200) as load:
        keel.server.ok(
            "deploy", model, "2", "--strategy", "canary", "--plan", write_plan(tmp_path, plan)
        )
        wait_for(
            "the canary to promote itself",
            lambda: state(keel, model) == "promoted",
            explain=timeline(keel, model),
        )
    assert set(load.statuses) == {200}
    assert {1, 2} <= set(load.versions)
    kinds = [e.kind for e in keel.client.deployment(model).events]
    assert kinds[0] == "started" and kinds[-1] == "promoted" and kinds.count("advanced") == 1
    production = [a for a in keel.client.aliases(model) if a.alias == "production"]
    assert [a.version for a in production] == [2]
    assert [a.version for a in keel.client.alias_history(model, "production")][:2] == [2, 1]
    promotions = keel.client.promotions(model)
    assert [(p.version, p.promoted_by) for p in promotions][-1] == (2, "keel-deployments")


def test_story_3_blue_green_switches_under_load_with_no_failed_request(keel: Keel) -> None:
    model = "credit-bg"
    keel.new_model(model)
    version = keel.register(model, fitted(4))
    keel.client.attach_evaluation_data(model, version, data(9, 300))
    with Load(keel, model, seed=300) as load:
        wait_for("a few answers from blue", lambda: load.served() >= 5)
        keel.client.deploy(model, version, strategy="blue-green", plan={"keepBlueSeconds": 60})
        wait_for(
            "the switch", lambda: state(keel, model) == "promoted", explain=timeline(keel, model)
        )
        switched = load.served()
        wait_for(
            "green answering (within the gateway's 1 s plan cache)",
            lambda: load.served() >= switched + 10 and set(load.versions[-10:]) == {2},
            deadline_s=30,
        )
    failed = sum(n for status, n in load.statuses.items() if status != 200)
    assert failed == 0, load.statuses
    assert load.statuses[200] == load.served() > 15
    # The switch is atomic: blue answered until green took over, and blue never after.
    first_green = load.versions.index(2)
    assert set(load.versions[:first_green]) == {1}
    assert set(load.versions[first_green:]) == {2}
    serving = keel.client.deployment(model).serving
    assert serving is not None
    assert [(a.name, a.version) for a in serving.live] == [("green", 2), ("blue", 1)]


def test_story_5_a_version_without_passed_gates_gets_a_409_for_live_traffic(keel: Keel) -> None:
    model = "credit-gov"
    keel.new_model(model)
    keel.register(model, fitted(5), gates=False)
    refused = keel.server.keel("deploy", model, "2", "--strategy", "canary")
    assert refused.returncode == 1
    assert "cannot be promoted" in refused.stderr and "security gate pending" in refused.stderr
    answer = keel.http.post(
        f"/api/v1/models/{model}/deployments", json={"version": 2, "strategy": "blue-green"}
    )
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["code"] == "conflict"
    assert any("security gate pending" in b for b in error["details"]["blockers"])
    assert [d.strategy for d in keel.client.deployments(model)] == ["direct"]  # nothing written


def test_story_6_a_shadow_records_pairs_and_reports_their_agreement(keel: Keel) -> None:
    model = "credit-shadow"
    keel.new_model(model)
    keel.register(model, fitted(6))
    keel.server.ok("deploy", model, "2", "--strategy", "shadow")
    rows = data(600, 40)
    ids: list[str] = []
    for start in range(0, 40, 5):
        answer = keel.predict(model, rows.iloc[start : start + 5])
        assert answer.status_code == 200 and answer.headers["X-Keel-Version"] == "1"
        ids += answer.headers["X-Keel-Prediction-Ids"].split(",")
    keel.client.log_labels(model, ids=ids, labels=rows["y"].tolist())
    report = wait_for(
        "40 pairs with their labels",
        lambda: (r := keel.client.shadow_report(model)).labelled_pairs == 40 and r,
    )
    features = rows[["x1", "x2"]]
    live, shadow = fitted(1).predict(features), fitted(6).predict(features)
    assert report.pairs == 40
    assert report.agreement == pytest.approx(float(np.mean(live == shadow)))
    assert report.performance_metric == "accuracy"
    assert report.stable_performance == pytest.approx(float(np.mean(live == rows["y"])))
    assert report.shadow_performance == pytest.approx(float(np.mean(shadow == rows["y"])))
    assert report.latency_difference_ms is not None
    shown = keel.server.ok("deployments", "shadow", model, "--json")
    assert json.loads(shown)["pairs"] == 40
