"""Values no store can keep get a 422 naming the field on every route, never a 500.

Integers of 2^63 or more, lone UTF-16 surrogates and non-finite numbers pass a naive ``int`` or
``str`` field and used to fail inside the database driver. These tests walk the app's own route
table, so a route added later is covered without anyone remembering to add it here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.testclient import TestClient

TOO_BIG = 2**63
MAX = 2**63 - 1
PLACEHOLDERS = {"name": "churn", "tier": "high", "alias": "staging"}


def _error(response: Any) -> dict[str, Any]:
    request = response.request
    assert response.status_code == 422, (request.method, request.url, response.text)
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return dict(body["error"])


def _routes(app: FastAPI) -> Iterator[tuple[str, str, APIRoute]]:
    """(method, full path, route) for every API route the app serves."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path:
            for method in sorted(set(context.methods or ()) - {"HEAD"}):
                yield method, context.path, route


def _int_path_params(route: APIRoute) -> list[str]:
    return [p.name for p in route.dependant.path_params if p.field_info.annotation is int]


def _fill(path: str, **values: str) -> str:
    return re.sub(r"{(\w+)}", lambda m: values.get(m[1], PLACEHOLDERS.get(m[1], "1")), path)


def test_every_integer_path_parameter_refuses_what_no_store_holds(
    app: FastAPI, client: TestClient, team_and_model: str
) -> None:
    checked = 0
    for method, path, route in _routes(app):
        for param in _int_path_params(route):
            for value in (str(TOO_BIG), "99999999999999999999999", "0", "-1"):
                err = _error(client.request(method, _fill(path, **{param: value})))
                assert err["details"]["problems"][0]["field"] == param
                assert f"Invalid '{param}'" in err["message"]
                assert f"from 1 to {MAX}" in err["message"]
            checked += 1
    # versions, incidents, alert rules, monitors, tokens, webhooks, deliveries, SLOs...
    assert checked >= 30


def _ordinary(annotation: object, model: str) -> str:
    if annotation is date:
        return "2026-11-01"
    if annotation is int:
        return "1"
    return model


def test_every_integer_query_parameter_refuses_what_no_store_holds(
    app: FastAPI, client: TestClient, team_and_model: str
) -> None:
    checked = 0
    for method, path, route in _routes(app):
        for param in route.dependant.query_params:
            if param.field_info.annotation not in (int, int | None):
                continue
            # The route's other required query parameters get ordinary values, so the request
            # fails on this one alone.
            others = "".join(
                f"&{other.name}={_ordinary(other.field_info.annotation, team_and_model)}"
                for other in route.dependant.query_params
                if other.name != param.name and other.field_info.is_required()
            )
            for value in (str(TOO_BIG), "-99999999999999999999"):
                url = f"{_fill(path)}?{param.name}={value}{others}"
                answer = client.request(method, url)
                if path.startswith("/api/2.0/mlflow/"):
                    # MLflow's protocol: 400 INVALID_PARAMETER_VALUE, the field in Keel's details.
                    assert answer.status_code == 400, (url, answer.text)
                    body = answer.json()
                    assert body["error_code"] == "INVALID_PARAMETER_VALUE", body
                    assert body["error"]["details"]["field"] == param.name, body
                    continue
                details = _error(answer)["details"]
                # Request validation lists problems; a route's own check names its one field.
                named = (
                    details["problems"][0]["field"] if "problems" in details else details["field"]
                )
                assert named == param.name, url
            checked += 1
    assert checked >= 8  # limits, versions, bins, top_k...


BODIES = {
    # (raw JSON, the field the error must name)
    b'{"deep": [1, {"n": 9223372036854775808}]}': "deep.1.n",
    b'{"n": -9223372036854775809}': "n",
    b'{"name": "a\\ud800b"}': "name",
    b'{"tags": {"\\udfff": "x"}}': "tags",
    b'{"x": NaN}': "x",
    b'{"x": 1e400}': "x",
    b'{"x": -Infinity}': "x",
}


# FastAPI decodes a body as JSON under any of these, so the check must too.
CONTENT_TYPES = ["application/json", None, "application/merge-patch+json"] * 3


def test_every_json_body_refuses_what_no_store_holds(
    app: FastAPI, client: TestClient, team_and_model: str
) -> None:
    checked = 0
    for method, path, route in _routes(app):
        if route.body_field is None:
            continue
        for (body, field), content_type in zip(BODIES.items(), CONTENT_TYPES, strict=False):
            headers = {"content-type": content_type} if content_type else {}
            err = _error(client.request(method, _fill(path), content=body, headers=headers))
            assert err["details"]["problems"][0]["field"] == field
            assert f"Invalid '{field}'" in err["message"]
        checked += 1
    assert checked >= 30
    assert [m["name"] for m in client.get("/api/v1/models").json()["items"]] == ["churn"]


def test_the_limits_are_the_64_bit_ones(client: TestClient, team_and_model: str) -> None:
    # The largest storable values are accepted (and then simply not found).
    assert client.get(f"/api/v1/models/churn/versions/{MAX}").status_code == 404
    assert client.get(f"/api/v1/incidents/{MAX}").status_code == 404
    assert client.delete(f"/api/v1/tokens/{MAX}").status_code == 404


def test_realistic_bodies(client: TestClient, team_and_model: str) -> None:
    client.post("/api/v1/models/churn/versions", files={"artifact": ("m.bin", b"x")})
    alias = "/api/v1/models/churn/aliases/staging"
    err = _error(client.put(alias, json={"version": TOO_BIG}))
    assert "'version'" in err["message"] and "64 bits" in err["message"]
    err = _error(client.put(alias, json={"version": 0}))
    assert "'version'" in err["message"] and f"from 1 to {MAX}" in err["message"]
    surrogate = b'{"description": "caf\\udce9"}'
    err = _error(client.patch("/api/v1/models/churn", content=surrogate))
    assert "'description'" in err["message"] and "surrogate" in err["message"]
    rows = {"rows": [{"prediction": 1, "age": 3}, {"prediction": 1, "age": TOO_BIG}]}
    err = _error(client.post("/api/v1/models/churn/versions/1/predictions", json=rows))
    assert "'rows.1.age'" in err["message"] and "64 bits" in err["message"]
    assert client.get("/api/v1/models/churn").json()["description"] == ""
    assert client.get("/api/v1/models/churn/aliases").json() == []


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/audit?cursor=99999999999999999999",
        "/api/v1/webhooks/deliveries?limit=99999999999999999999",
        "/api/v1/webhooks/deliveries?limit=-1",
        "/api/v1/policies/high?version=99999999999999999999",
        "/api/v1/models/churn/documents?version=99999999999999999999",
        # Forged cursors: {"k": 2**64} and {"k": "\ud800"}, base64url without padding.
        "/api/v1/models/churn/versions?cursor=eyJrIjogMTg0NDY3NDQwNzM3MDk1NTE2MTZ9",
        "/api/v1/models?cursor=eyJrIjogIlx1ZDgwMCJ9",
        "/api/v1/teams?cursor=eyJrIjogIlx1ZDgwMCJ9",
    ],
)
def test_query_parameters_out_of_range(client: TestClient, team_and_model: str, url: str) -> None:
    _error(client.get(url))
