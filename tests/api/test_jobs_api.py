"""Jobs over REST: long work answers 202 with a job a worker runs; bad input queues nothing;
unknown jobs are 404s; cancelling a finished job is a 409 naming its state; the queue is on
/metrics."""

from __future__ import annotations

import re

from fastapi import FastAPI
from starlette.testclient import TestClient
from tests.api.conftest import bearer
from tests.job_runner import finished_job

from keel.services.backend import Backend

API = "/api/v1"


def _jobs(client: TestClient) -> list[dict[str, object]]:
    listed = client.get(f"{API}/jobs")
    assert listed.status_code == 200, listed.text
    jobs: list[dict[str, object]] = listed.json()
    return jobs


def test_a_retrain_request_is_queued_run_by_the_worker_and_followed(
    client: TestClient, team_and_model: str
) -> None:
    assert client.put(f"{API}/models/churn/retraining-job", json={"webhook": True}).is_success
    queued = client.post(f"{API}/models/churn/retrain", json={})
    assert queued.status_code == 202, queued.text
    assert queued.json()["kind"] == "retrain"
    assert queued.json()["state"] in ("queued", "running", "succeeded")
    job = finished_job(client, queued.json()["id"])
    assert (job["state"], job["attempts"], job["error"]) == ("succeeded", 1, None)
    # The job succeeded in running the retraining job; the run it recorded says how that went
    # (here: no version has traffic to send, so the run failed, and says why).
    runs = client.get(f"{API}/models/churn/retrain-runs").json()
    result = job["result"]
    assert [(r["id"], r["status"], r["reason"]) for r in runs] == [
        (result["retrain_run"], result["status"], result["reason"])
    ]
    assert [j["id"] for j in _jobs(client)] == [job["id"]]


def test_bad_requests_queue_nothing(client: TestClient, team_and_model: str) -> None:
    no_job = client.post(f"{API}/models/churn/retrain", json={})
    assert no_job.status_code == 404, no_job.text
    assert "retraining job" in no_job.json()["error"]["message"]
    no_version = client.post(f"{API}/models/churn/versions/7/gates/run")
    assert no_version.status_code == 404, no_version.text
    no_model = client.post(f"{API}/models/nope/versions/1/gates/run")
    assert no_model.status_code == 404, no_model.text
    assert _jobs(client) == []


def test_an_unknown_job_is_a_404_and_a_finished_one_cannot_be_cancelled(
    client: TestClient, team_and_model: str
) -> None:
    for method, path in (("GET", f"{API}/jobs/424242"), ("POST", f"{API}/jobs/424242/cancel")):
        missing = client.request(method, path)
        assert missing.status_code == 404, missing.text
        assert missing.json()["error"]["code"] == "not_found"
        assert missing.json()["error"]["details"] == {"job_id": 424242}
    assert client.put(f"{API}/models/churn/retraining-job", json={"webhook": True}).is_success
    job = finished_job(client, client.post(f"{API}/models/churn/retrain", json={}).json()["id"])
    refused = client.post(f"{API}/jobs/{job['id']}/cancel")
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "conflict"
    assert error["details"] == {"job_id": job["id"], "state": "succeeded"}
    assert "already succeeded" in error["message"]
    assert client.get(f"{API}/jobs/{job['id']}").json()["state"] == "succeeded"


def test_listing_rejects_an_unknown_state_and_a_bad_limit(client: TestClient) -> None:
    state = client.get(f"{API}/jobs", params={"state": "stuck"})
    assert state.status_code == 422, state.text
    assert state.json()["error"]["details"] == {"field": "state"}
    assert "queued, running" in state.json()["error"]["message"]
    limit = client.get(f"{API}/jobs", params={"limit": 0})
    assert limit.status_code == 422, limit.text
    assert limit.json()["error"]["details"] == {"field": "limit"}


def _without_worker(app: FastAPI, admin_token: str) -> TestClient:
    """A client of an app with no worker beside it: queued jobs stay queued."""
    alone = TestClient(app, headers=bearer(admin_token))
    assert alone.post(f"{API}/teams", json={"name": "risk"}).status_code == 201
    made = alone.post(f"{API}/models", json={"name": "churn", "team": "risk", "owner": "ana"})
    assert made.status_code == 201, made.text
    return alone


def test_a_queued_job_can_be_cancelled_and_never_runs(
    app: FastAPI, backend: Backend, admin_token: str
) -> None:
    with _without_worker(app, admin_token) as alone:
        assert alone.put(f"{API}/models/churn/retraining-job", json={"webhook": True}).is_success
        job = alone.post(f"{API}/models/churn/retrain", json={}).json()
        cancelled = alone.post(f"{API}/jobs/{job['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["state"] == "cancelled"
    assert backend.jobs.run_next("late-worker") is None
    assert backend.retraining.store.retrain_runs("churn") == []


def test_metrics_export_queue_depth_and_oldest_age_per_kind(app: FastAPI, admin_token: str) -> None:
    with _without_worker(app, admin_token) as alone:
        assert alone.put(f"{API}/models/churn/retraining-job", json={"webhook": True}).is_success
        for _ in range(2):
            assert alone.post(f"{API}/models/churn/retrain", json={}).status_code == 202
        text = alone.get("/metrics").text
    assert 'keel_jobs_queued{kind="retrain"} 2.0' in text
    assert 'keel_jobs_queued{kind="gate-run"} 0.0' in text
    age = re.search(r'keel_job_oldest_age_seconds\{kind="retrain"\} ([0-9.e+-]+)', text)
    assert age is not None and float(age.group(1)) >= 0.0
    assert "# TYPE keel_job_oldest_age_seconds gauge" in text
