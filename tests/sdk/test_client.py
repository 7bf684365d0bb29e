"""The SDK against the real app, in-process: what a data scientist sees from a notebook."""

from __future__ import annotations

import hashlib
import json
import math
from importlib.metadata import version as installed_version
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from keel.domain.signature import ColumnRole, ColumnType
from keel.errors import (
    ArtifactCorrupted,
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
    TransportError,
)
from keel.schemas import ColumnSpec, SignatureSpec
from keel.sdk import Client, ModelVersion


@pytest.fixture(scope="module")
def breast_cancer() -> tuple[LogisticRegression, pd.DataFrame]:
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    estimator = LogisticRegression(max_iter=5000).fit(features, target)
    return estimator, features.assign(target=target)


@pytest.fixture
def churn(keel: Client) -> str:
    keel.create_team("risk", description="Credit risk models")
    keel.create_model("churn", team="risk", owner="ana", tags=["retention"])
    return "churn"


def test_register_a_fitted_estimator_with_its_training_data(
    keel: Client, breast_cancer: tuple[LogisticRegression, pd.DataFrame]
) -> None:
    estimator, data = breast_cancer
    keel.create_team("oncology")
    keel.create_model("tumour-classifier", team="oncology", owner="ana")

    registered = keel.register_version(
        "tumour-classifier",
        estimator,
        training_data=data,
        target="target",
        metrics={"accuracy": 0.95},
        params=estimator.get_params(),
        card={"intended_use": "Second opinion for radiologists."},
    )

    assert isinstance(registered, ModelVersion)
    assert registered.version == 1
    roles = [c.role for c in registered.signature.columns]
    assert roles.count(ColumnRole.FEATURE) == 30
    assert roles.count(ColumnRole.TARGET) == 1
    assert registered.signature.columns[-1].name == "target"
    assert registered.lineage.training_data is not None
    assert registered.lineage.training_data.rows == 569
    assert len(registered.lineage.training_data.sha256) == 64
    assert registered.environment.packages["scikit-learn"] == installed_version("scikit-learn")
    # a scikit-learn estimator that round-trips through skops is saved with it (no pickle)
    assert registered.artifact.filename == "model.skops"
    assert registered.artifact.flavor == "skops"
    assert registered.params["max_iter"] == 5000
    assert registered.card.intended_use == "Second opinion for radiologists."

    downloaded = keel.download_artifact("tumour-classifier", 1)
    assert isinstance(downloaded, bytes)
    assert hashlib.sha256(downloaded).hexdigest() == registered.artifact_sha256
    assert keel.get_version("tumour-classifier", 1) == registered


def test_the_same_data_registered_twice_has_the_same_fingerprint(
    keel: Client, churn: str, breast_cancer: tuple[LogisticRegression, pd.DataFrame]
) -> None:
    estimator, data = breast_cancer
    first = keel.register_version(churn, estimator, training_data=data, capture_git=False)
    shuffled = data.sample(frac=1.0, random_state=0)
    second = keel.register_version(churn, estimator, training_data=shuffled, capture_git=False)
    third = keel.register_version(churn, estimator, training_data=data.copy(), capture_git=False)
    prints = [v.lineage.training_data for v in (first, second, third)]
    assert prints[0] is not None and prints[1] is not None and prints[2] is not None
    assert prints[0].sha256 == prints[2].sha256
    assert prints[0].sha256 != prints[1].sha256  # same rows, another order


def test_register_a_model_file_keeps_its_name(keel: Client, churn: str, tmp_path: Path) -> None:
    model_file = tmp_path / "churn.onnx"
    model_file.write_bytes(b"\x08\x07onnx-ish bytes" * 1000)
    sent: list[int] = []

    registered = keel.register_version(churn, model_file, capture_git=False, progress=sent.append)

    assert registered.artifact.filename == "churn.onnx"
    assert registered.artifact.size == model_file.stat().st_size
    assert sum(sent) >= model_file.stat().st_size
    assert keel.download_artifact(churn, registered.version) == model_file.read_bytes()


def test_an_explicit_signature_wins_over_the_inferred_one(
    keel: Client, churn: str, breast_cancer: tuple[LogisticRegression, pd.DataFrame]
) -> None:
    estimator, data = breast_cancer
    signature = SignatureSpec(columns=[ColumnSpec(name="mean radius", dtype=ColumnType.FLOAT)])
    registered = keel.register_version(
        churn, estimator, training_data=data, signature=signature, capture_git=False
    )
    assert [c.name for c in registered.signature.columns] == ["mean radius"]
    assert registered.lineage.training_data is not None


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_metric_is_refused_before_anything_is_sent(
    keel: Client, churn: str, bad: float
) -> None:
    with pytest.raises(InvalidInput, match="'auc'"):
        keel.register_version(churn, {"weights": [1, 2]}, metrics={"auc": bad, "loss": 0.1})
    assert list(keel.list_versions(churn)) == []


def test_a_non_finite_param_is_refused(keel: Client, churn: str) -> None:
    with pytest.raises(InvalidInput, match="'alpha'"):
        keel.register_version(churn, {"w": 1}, params={"alpha": math.nan})


def test_an_unknown_target_column_is_refused_listing_the_columns(
    keel: Client, churn: str, breast_cancer: tuple[LogisticRegression, pd.DataFrame]
) -> None:
    estimator, data = breast_cancer
    with pytest.raises(InvalidInput, match=r"'label' is not in the training data.*mean radius"):
        keel.register_version(churn, estimator, training_data=data, target="label")


def test_duplicate_model_name_is_a_conflict(keel: Client, churn: str) -> None:
    with pytest.raises(Conflict):
        keel.create_model(churn, team="risk", owner="bob")


def test_unknown_model_is_not_found(keel: Client) -> None:
    with pytest.raises(NotFound):
        keel.get_model("no-such-model")
    with pytest.raises(NotFound):
        keel.get_version("no-such-model", 1)


def test_a_model_needs_an_existing_team(keel: Client) -> None:
    with pytest.raises(InvalidInput):
        keel.create_model("orphan", team="nobody", owner="ana")


def test_listings_follow_cursors_and_filters(keel: Client) -> None:
    keel.create_team("risk")
    keel.create_team("growth")
    for index in range(5):
        keel.create_model(f"risk-{index}", team="risk", owner="ana", tags=["scorecard"])
    keel.create_model("upsell", team="growth", owner="bob")

    assert len(list(keel.list_models(limit=2))) == 6
    assert {m.name for m in keel.list_models(team="growth", limit=1)} == {"upsell"}
    assert len(list(keel.list_models(tag="scorecard", limit=2))) == 5
    assert {t.name for t in keel.list_teams(limit=1)} == {"risk", "growth"}


def test_update_model_changes_only_what_is_given(keel: Client, churn: str) -> None:
    updated = keel.update_model(churn, owner="bob", tags=["retention", "b2c"])
    assert (updated.owner, updated.tags, updated.team) == ("bob", ["retention", "b2c"], "risk")
    with pytest.raises(InvalidInput, match="colour"):
        keel.update_model(churn, colour="blue")


def test_status_and_aliases(keel: Client, churn: str) -> None:
    for _ in range(2):
        keel.register_version(churn, {"w": 1}, capture_git=False)

    assert keel.set_status(churn, 1, "candidate", reason="ready for review").status == "candidate"
    with pytest.raises(IllegalTransition):
        keel.set_status(churn, 2, "retired")
    assert [v.version for v in keel.list_versions(churn, status="candidate")] == [1]

    keel.set_alias(churn, "champion", 1)
    keel.set_alias(churn, "champion", 2)
    keel.set_alias(churn, "challenger", 1)
    assert {(a.alias, a.version) for a in keel.aliases(churn)} == {
        ("champion", 2),
        ("challenger", 1),
    }
    assert "champion" in keel.get_version(churn, 2).aliases
    history = keel.alias_history(churn, "champion")
    assert [a.version for a in history] == [2, 1]
    assert history[1].cleared_at is not None

    keel.delete_alias(churn, "challenger")
    assert [a.alias for a in keel.aliases(churn)] == ["champion"]
    assert len(keel.alias_history(churn)) == 3

    with pytest.raises(Conflict, match="production"):
        keel.set_alias(churn, "production", 2)


def test_download_to_a_path_or_a_folder(keel: Client, churn: str, tmp_path: Path) -> None:
    registered = keel.register_version(churn, {"w": [1.0, 2.0]}, capture_git=False)

    into_file = keel.download_artifact(churn, 1, tmp_path / "copy.joblib")
    assert into_file == tmp_path / "copy.joblib"
    assert hashlib.sha256(into_file.read_bytes()).hexdigest() == registered.artifact_sha256

    folder = tmp_path / "out"
    folder.mkdir()
    assert keel.download_artifact(churn, 1, folder) == folder / "model.joblib"
    assert sorted(p.name for p in folder.iterdir()) == ["model.joblib"]


def tampering(real: httpx.BaseTransport) -> httpx.MockTransport:
    """Passes every request to the real app, but swaps the bytes of artifact downloads."""

    def handle(request: httpx.Request) -> httpx.Response:
        response = real.handle_request(request)
        if not request.url.path.endswith("/artifact"):
            return response
        response.read()
        return httpx.Response(
            200,
            headers={"X-Keel-Artifact-Sha256": response.headers["X-Keel-Artifact-Sha256"]},
            content=b"not the model you registered",
        )

    return httpx.MockTransport(handle)


def test_a_tampered_download_is_detected_and_never_written(
    keel: Client,
    churn: str,
    server_transport: httpx.BaseTransport,
    tmp_path: Path,
    admin_token: str,
) -> None:
    registered = keel.register_version(churn, {"w": 1}, capture_git=False)
    tampered = Client(
        url="http://testserver", token=admin_token, transport=tampering(server_transport)
    )

    with pytest.raises(ArtifactCorrupted) as caught:
        tampered.download_artifact(churn, 1)
    assert registered.artifact_sha256 in caught.value.message

    folder = tmp_path / "downloads"
    folder.mkdir()
    with pytest.raises(ArtifactCorrupted):
        tampered.download_artifact(churn, 1, folder / "model.joblib")
    assert list(folder.iterdir()) == []


def recording(requests: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"status": "ok"})

    return httpx.MockTransport(handle)


def test_the_token_is_sent_as_bearer_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_URL", "http://keel.internal:9000")
    monkeypatch.setenv("KEEL_TOKEN", "s3cret-token")
    requests: list[httpx.Request] = []
    client = Client(transport=recording(requests))

    assert client.health() == {"status": "ok"}
    assert str(requests[0].url) == "http://keel.internal:9000/healthz"
    assert requests[0].headers["Authorization"] == "Bearer s3cret-token"
    assert "s3cret" not in repr(client)
    assert "s3cret" not in repr(requests[0].headers)


def test_no_token_means_no_authorization_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEEL_TOKEN", raising=False)
    monkeypatch.delenv("KEEL_URL", raising=False)
    requests: list[httpx.Request] = []
    client = Client(transport=recording(requests))
    client.health()
    assert "Authorization" not in requests[0].headers
    assert client.url == "http://127.0.0.1:8420"


def test_an_unreachable_server_says_which_url_and_what_to_do() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    client = Client("http://127.0.0.1:9", token="s3cret", transport=httpx.MockTransport(refuse))
    with pytest.raises(TransportError) as caught:
        client.list_models().__next__()
    message = caught.value.message
    assert "http://127.0.0.1:9" in message
    assert "keel up" in message and "KEEL_URL" in message
    assert "s3cret" not in message


def test_a_non_keel_error_page_becomes_a_transport_error() -> None:
    proxy = httpx.MockTransport(lambda request: httpx.Response(502, text="Bad gateway"))
    with pytest.raises(TransportError, match="HTTP 502"):
        Client("http://keel", transport=proxy).get_model("churn")


def test_error_envelopes_keep_their_details() -> None:
    body = {"error": {"code": "not_found", "message": "No model 'x'.", "details": {"name": "x"}}}
    server = httpx.MockTransport(lambda request: httpx.Response(404, content=json.dumps(body)))
    with pytest.raises(NotFound) as caught:
        Client("http://keel", transport=server).get_model("x")
    assert caught.value.message == "No model 'x'."
    assert caught.value.details == {"name": "x"}


def test_names_are_escaped_in_urls() -> None:
    requests: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no"}})

    with pytest.raises(NotFound):
        Client("http://keel", transport=httpx.MockTransport(handle)).get_model("a/../b")
    assert requests[0].url.raw_path == b"/api/v1/models/a%2F..%2Fb"


def test_download_into_a_missing_folder_is_refused(
    keel: Client, churn: str, tmp_path: Path
) -> None:
    keel.register_version(churn, {"w": 1}, capture_git=False)
    with pytest.raises(InvalidInput, match="does not exist"):
        keel.download_artifact(churn, 1, f"{tmp_path / 'missing'}/")
    with pytest.raises(InvalidInput, match="does not exist"):
        keel.download_artifact(churn, 1, tmp_path / "missing" / "model.joblib")
    assert list(tmp_path.iterdir()) == [tmp_path / "keel"]


def test_a_server_that_is_not_keel_is_named() -> None:
    web_page = httpx.MockTransport(
        lambda request: httpx.Response(
            200, text="<html>hello</html>", headers={"content-type": "text/html"}
        )
    )
    with pytest.raises(TransportError, match=r"not JSON.*KEEL_URL"):
        Client("http://intranet", transport=web_page).get_model("churn")
