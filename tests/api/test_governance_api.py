"""Governance routes refuse bad input with the field and the fix, and write nothing."""

from __future__ import annotations

from starlette.testclient import TestClient

VERSION = "/api/v1/models/churn/versions/1"


def _version(client: TestClient) -> None:
    created = client.post(
        "/api/v1/models/churn/versions", files={"artifact": ("m.bin", b"weights")}
    )
    assert created.status_code == 201, created.text


def test_bad_governance_requests_name_the_field(client: TestClient, team_and_model: str) -> None:
    _version(client)
    note = client.post(f"{VERSION}/promote", json={"justification": "just because"})
    assert note.status_code == 422
    assert note.json()["error"]["details"]["field"] == "justification"
    unknown = client.post(f"{VERSION}/approvals", json={"decision": "maybe", "comment": "x"})
    assert unknown.status_code == 422
    assert "decision" in unknown.text
    silent = client.post(f"{VERSION}/approvals", json={"decision": "reject", "comment": ""})
    assert silent.status_code == 422
    assert silent.json()["error"]["details"]["field"] == "comment"
    assert client.get(f"{VERSION}/approvals").json() == []
    tier = client.get("/api/v1/policies/extreme")
    assert tier.status_code == 422
    assert "unassessed, minimal, limited, high, prohibited" in tier.json()["error"]["message"]
    missing = client.get("/api/v1/models/churn/versions/9/gates")
    assert missing.status_code == 404
    assert client.get("/api/v1/models/churn/promotions").json() == []


def test_a_blocked_promotion_lists_every_gate_and_what_would_pass_it(
    client: TestClient, team_and_model: str
) -> None:
    _version(client)
    status = client.get(f"{VERSION}/gates").json()
    assert (status["tier"], status["policy_version"], status["promotable"]) == (
        "unassessed",
        0,
        False,
    )
    refused = client.post(f"{VERSION}/promote")
    assert refused.status_code == 409
    gates = {g["gate"]: g for g in refused.json()["error"]["details"]["gates"]}
    assert set(gates) == {"performance", "security", "fairness", "signoff"}
    assert all(g["outcome"] == "pending" for g in gates.values())
    assert "keel gates run churn 1" in gates["security"]["to_pass"]
    assert client.get("/api/v1/models/churn/aliases").json() == []
    policies = {p["tier"]: p["version"] for p in client.get("/api/v1/policies").json()}
    assert policies == {t: 0 for t in ("unassessed", "minimal", "limited", "high", "prohibited")}
