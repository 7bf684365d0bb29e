"""`keel teams|models|versions|alias` as a user (or a script reading JSON) runs them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import joblib
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner, Result

from keel.cli import registry
from keel.cli.main import app
from keel.sdk import Client
from keel.services.backend import Backend

Keel = Callable[..., Result]


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def churn(keel_cli: Keel) -> str:
    ok(keel_cli("teams", "create", "risk", "--description", "Credit risk"))
    ok(keel_cli("models", "create", "churn", "--team", "risk", "--owner", "ana", "--tag", "b2c"))
    return "churn"


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    path = tmp_path / "tumour.joblib"
    joblib.dump(LogisticRegression(max_iter=5000).fit(features, target), path)
    return path


def test_models_list_json_lists_a_registered_model(keel_cli: Keel, churn: str) -> None:
    listed = json.loads(ok(keel_cli("models", "list", "--json")).stdout)
    assert [(m["name"], m["team"], m["owner"], m["tags"]) for m in listed] == [
        ("churn", "risk", "ana", ["b2c"])
    ]


def test_models_list_json_shows_a_version_registered_from_python(
    keel_cli: Keel, server_transport: httpx.BaseTransport, admin_token: str
) -> None:
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    estimator = LogisticRegression(max_iter=5000).fit(features, target)
    with Client(url="http://testserver", token=admin_token, transport=server_transport) as keel:
        keel.create_team("oncology")
        keel.create_model("tumour-classifier", team="oncology", owner="ana")
        keel.register_version(
            "tumour-classifier", estimator, training_data=features.assign(target=target),
            target="target",
        )  # fmt: skip

    listed = json.loads(ok(keel_cli("models", "list", "--json")).stdout)
    assert [(m["name"], m["latest_version"]) for m in listed] == [("tumour-classifier", 1)]
    shown = json.loads(ok(keel_cli("versions", "show", "tumour-classifier", "1")).stdout)
    assert shown["lineage"]["training_data"]["rows"] == 569


def test_output_is_plain_json_when_stdout_is_not_a_terminal(keel_cli: Keel, churn: str) -> None:
    shown = ok(keel_cli("models", "show", churn)).stdout
    assert "\x1b[" not in shown
    assert json.loads(shown)["name"] == churn
    assert json.loads(ok(keel_cli("teams", "list")).stdout)[0]["description"] == "Credit risk"


def test_models_list_filters(keel_cli: Keel, churn: str) -> None:
    ok(keel_cli("teams", "create", "growth"))
    ok(keel_cli("models", "create", "upsell", "--team", "growth", "--owner", "bob"))
    by_team = json.loads(ok(keel_cli("models", "list", "--team", "growth")).stdout)
    assert [m["name"] for m in by_team] == ["upsell"]
    by_tag = json.loads(ok(keel_cli("models", "list", "--tag", "b2c")).stdout)
    assert [m["name"] for m in by_tag] == ["churn"]


def test_register_show_and_download_a_model_file(
    keel_cli: Keel, churn: str, model_file: Path, tmp_path: Path
) -> None:
    metadata = tmp_path / "metadata.json"
    metadata.write_text(
        json.dumps({"description": "from file", "card": {"intended_use": "Retention offers"}})
    )
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("scikit-learn==1.5.2\nnumpy==2.1.0\n")
    registered = json.loads(
        ok(
            keel_cli(
                "versions", "register", churn, str(model_file),
                "--metadata", str(metadata), "--environment", str(requirements),
                "--metric", "auc=0.97", "--param", "C=1.0", "--param", "solver=lbfgs",
            )
        ).stdout
    )  # fmt: skip
    assert registered["version"] == 1
    assert registered["artifact"]["filename"] == "tumour.joblib"
    assert registered["metrics"] == {"auc": 0.97}
    assert registered["params"] == {"C": 1.0, "solver": "lbfgs"}
    assert registered["description"] == "from file"
    assert registered["card"]["intended_use"] == "Retention offers"
    # The model's environment, from its requirements file; never the CLI's own packages.
    assert registered["environment"]["packages"] == {"scikit-learn": "==1.5.2", "numpy": "==2.1.0"}

    shown = json.loads(ok(keel_cli("versions", "show", churn, "1")).stdout)
    assert shown["artifact"]["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    listed = json.loads(ok(keel_cli("versions", "list", churn)).stdout)
    assert [v["version"] for v in listed] == [1]

    target = tmp_path / "copy.joblib"
    downloaded = ok(keel_cli("versions", "download", churn, "1", "-o", str(target)))
    assert target.read_bytes() == model_file.read_bytes()
    assert "SHA-256 verified" in downloaded.stderr


def test_aliases_from_the_command_line(keel_cli: Keel, churn: str, model_file: Path) -> None:
    for _ in range(2):
        ok(keel_cli("versions", "register", churn, str(model_file)))
    ok(keel_cli("alias", "set", churn, "champion", "1"))
    ok(keel_cli("alias", "set", churn, "champion", "2"))

    history = json.loads(ok(keel_cli("alias", "history", churn, "--alias", "champion")).stdout)
    assert [(a["version"], a["cleared_at"] is None) for a in history] == [(2, True), (1, False)]
    current = json.loads(ok(keel_cli("alias", "list", churn)).stdout)
    assert [(a["alias"], a["version"]) for a in current] == [("champion", 2)]


def test_an_unknown_model_is_one_line_on_stderr_and_exit_1(keel_cli: Keel) -> None:
    result = keel_cli("models", "show", "ghost")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert "ghost" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_a_duplicate_model_is_refused(keel_cli: Keel, churn: str) -> None:
    result = keel_cli("models", "create", churn, "--team", "risk", "--owner", "bob")
    assert result.exit_code == 1
    assert "Error:" in result.stderr


def test_production_alias_is_refused_with_the_server_reason(
    keel_cli: Keel, churn: str, model_file: Path
) -> None:
    ok(keel_cli("versions", "register", churn, str(model_file)))
    result = keel_cli("alias", "set", churn, "production", "1")
    assert result.exit_code == 1
    assert "governance" in result.stderr


def test_a_malformed_metric_is_a_usage_error(keel_cli: Keel, churn: str, model_file: Path) -> None:
    result = keel_cli("versions", "register", churn, str(model_file), "--metric", "auc")
    assert result.exit_code == 1
    assert "KEY=VALUE" in result.output


def test_a_non_finite_metric_names_it(keel_cli: Keel, churn: str, model_file: Path) -> None:
    result = keel_cli("versions", "register", churn, str(model_file), "--metric", "auc=nan")
    assert result.exit_code == 1
    assert "'auc'" in result.stderr


def test_a_broken_metadata_file_is_reported(
    keel_cli: Keel, churn: str, model_file: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "metadata.json"
    bad.write_text("{not json")
    result = keel_cli("versions", "register", churn, str(model_file), "--metadata", str(bad))
    assert result.exit_code == 1
    assert "not valid JSON" in result.stderr


def test_an_unreachable_server_tells_how_to_start_one() -> None:
    result = CliRunner().invoke(
        app, ["--url", "http://127.0.0.1:9", "--token", "s3cret", "teams", "list"]
    )
    assert result.exit_code == 1
    assert "http://127.0.0.1:9" in result.stderr
    assert "keel up" in result.stderr
    assert "s3cret" not in result.output


def test_url_and_token_come_from_options_or_the_environment(
    keel_cli: Keel, monkeypatch: pytest.MonkeyPatch, admin_token: str
) -> None:
    seen: list[tuple[str | None, str | None]] = []
    real = registry.client_factory

    def record(url: str | None, token: str | None) -> Client:
        seen.append((url, token))
        return real(url, token)

    monkeypatch.setattr(registry, "client_factory", record)
    runner = CliRunner()
    ok(
        runner.invoke(
            app, ["--url", "http://keel.internal", "--token", admin_token, "teams", "list"]
        )
    )
    ok(
        runner.invoke(
            app, ["teams", "list"], env={"KEEL_URL": "http://from-env", "KEEL_TOKEN": admin_token}
        )
    )
    assert seen == [("http://keel.internal", admin_token), ("http://from-env", admin_token)]


def test_register_takes_the_signature_and_reference_from_training_data(
    keel_cli: Keel, keel_backend: Backend, churn: str, model_file: Path, tmp_path: Path
) -> None:
    """Without a signature a version can never pass its gates; without --environment the CLI
    records none (its own interpreter is Keel's, not the model's)."""
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    train = tmp_path / "train.csv"
    features.iloc[:, :3].assign(gender=["f", "m"] * 284 + ["f"], target=target).to_csv(
        train, index=False
    )
    registered = json.loads(
        ok(
            keel_cli(
                "versions", "register", churn, str(model_file), "--training-data", str(train),
                "--target", "target", "--protected", "gender",
            )
        ).stdout
    )  # fmt: skip
    columns = {c["name"]: c for c in registered["signature"]["columns"]}
    assert list(columns) == [*features.columns[:3], "gender", "target"]
    assert columns["target"]["role"] == "target"
    assert columns["gender"]["role"] == "protected_attribute"
    assert registered["lineage"]["training_data"]["rows"] == 569
    assert registered["environment"]["packages"] == {}
    reference = keel_backend.telemetry.reference_profile(churn, 1)
    assert reference is not None and reference.rows == 569


def test_register_refuses_target_without_training_data_and_a_bad_requirements_file(
    keel_cli: Keel, churn: str, model_file: Path, tmp_path: Path
) -> None:
    alone = keel_cli("versions", "register", churn, str(model_file), "--target", "y")
    assert alone.exit_code == 1
    assert "--training-data" in alone.output and "Traceback" not in alone.output
    bad = tmp_path / "requirements.txt"
    bad.write_text("scikit-learn==1.5.2\nthis is not a requirement\n")
    refused = keel_cli("versions", "register", churn, str(model_file), "--environment", str(bad))
    assert refused.exit_code == 1
    assert "line 2" in refused.output and "Traceback" not in refused.output
    listed = json.loads(ok(keel_cli("versions", "list", churn)).stdout)
    assert listed == []  # nothing was registered
