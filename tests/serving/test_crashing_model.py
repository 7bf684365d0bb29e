"""Story 4: kill -9 a model's worker during a load. The API and the other models keep answering,
the failed requests are counted and bounded, and the worker comes back."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from tests.serving.live_server import live
from tests.serving.serving_fixtures import (
    ADMIN,
    direct,
    fitted_model,
    joblib_bytes,
    open_backend,
    register,
    token_for,
)

from keel.domain.permissions import Role
from keel.domain.registry import Model
from keel.server import build_app
from keel.serving.plans import FixedPlans

CLIENTS = 4
BODY = {"instances": [[0.5, -0.5]]}


def test_a_killed_worker_fails_a_bounded_few_requests_and_comes_back(tmp_path: Path) -> None:
    backend = open_backend(tmp_path)
    backend.registry.create_model(ADMIN, Model(name="fraud", team="risk", owner="ana"))
    churn = register(backend, "churn", joblib_bytes(fitted_model(seed=3)))
    fraud = register(backend, "fraud", joblib_bytes(fitted_model(seed=4)))
    app = build_app(backend)
    gateway = app.state.gateway
    gateway.use_plans(
        FixedPlans({"churn": direct("churn", churn), "fraud": direct("fraud", fraud)})
    )
    app_token = token_for(backend, "apps", Role.PREDICTOR, "risk")
    ops_token = token_for(backend, "ops", Role.ADMIN, None)
    predict = {"Authorization": f"Bearer {app_token}"}
    try:
        with live(app) as url, httpx.Client(base_url=url, timeout=120) as client:
            for model in ("churn", "fraud"):  # both loaded before the load starts
                first = client.post(f"/models/{model}/invocations", json=BODY, headers=predict)
                assert first.status_code == 200, first.text
            statuses: Counter[int] = Counter()
            causes: Counter[str] = Counter()
            stop = threading.Event()
            lock = threading.Lock()

            def load() -> None:
                with httpx.Client(base_url=url, timeout=120) as own:
                    while not stop.is_set():
                        answer = own.post("/models/churn/invocations", json=BODY, headers=predict)
                        with lock:
                            statuses[answer.status_code] += 1
                            if answer.status_code == 503:
                                causes[answer.json()["error"]["details"]["cause"]] += 1

            threads = [threading.Thread(target=load) for _ in range(CLIENTS)]
            for thread in threads:
                thread.start()
            worker = gateway.workers.loaded("churn", churn)
            deadline = time.monotonic() + 60
            while statuses[200] < 20:  # the load is running
                assert time.monotonic() < deadline
                time.sleep(0.01)
            killed = worker.pid
            os.kill(killed, signal.SIGKILL)
            # Meanwhile the API and the other model answer.
            models = client.get("/api/v1/models", headers={"Authorization": f"Bearer {ops_token}"})
            assert models.status_code == 200
            other = client.post("/models/fraud/invocations", json=BODY, headers=predict)
            assert other.status_code == 200, other.text
            # The worker comes back and the load succeeds again.
            while not (worker.ready and worker.pid != killed):
                assert time.monotonic() < deadline + 120, "the worker did not come back"
                time.sleep(0.05)
            with lock:
                served_before = statuses[200]
            while True:
                with lock:
                    if statuses[200] >= served_before + 20:
                        break
                assert time.monotonic() < deadline + 240
                time.sleep(0.01)
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
            metrics = client.get("/metrics").text
    finally:
        gateway.close()
        backend.close()
    failed = statuses[503]
    # Only the batch in flight when the worker died fails; later requests wait for the new one.
    assert 1 <= failed <= CLIENTS, statuses
    assert set(causes) == {"crashed"}, causes
    assert set(statuses) <= {200, 503}, statuses
    errors = f'keel_prediction_errors_total{{arm="stable",model="churn",version="{churn}"}}'
    assert f"{errors} {float(failed)}" in metrics
