"""Issue 10, section 3, against a real `keel up` process: a team contributor cannot turn the
retraining job into a shell on the server, and an admin-defined job runs in the sandbox, where
it reads the data window but not the admin token, the database, the server's environment or the
network; its output is redacted and readable by the model's team only."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from tests.running_keel import keel_up

from keel.errors import PermissionDenied
from keel.sdk import Client

SERVER_SECRET = "aws-secret-value-0123456789"
ROWS = 200

PROBE = textwrap.dedent(
    """
    import os, pathlib, socket, sys
    import pyarrow.parquet as pq

    data_dir, port, data = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

    def attempt(what, action):
        try:
            print(what, "GOT", action(), flush=True)
        except Exception as exc:
            print(what, "DENIED", type(exc).__name__, flush=True)

    attempt("admin-token", lambda: (data_dir / "admin-token").read_text())
    attempt("database", lambda: len((data_dir / "keel.db").read_bytes()))
    attempt("listing", lambda: sorted(os.listdir(data_dir)))
    attempt("network", lambda: socket.create_connection(("127.0.0.1", port), timeout=5))
    attempt("write-outside", lambda: (data_dir / "pwned").write_text("x"))
    attempt("server-environ", lambda: pathlib.Path(f"/proc/{os.getppid()}/environ").read_bytes())
    print("environment", " ".join(f"{k}={v}" for k, v in sorted(os.environ.items())))
    print("baked into the code:", pathlib.Path(sys.argv[0]).with_name("leak.txt").read_text())
    print("rows", pq.read_table(data).num_rows)
    """
)


def _frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 10, ROWS)
    debt = rng.normal(20, 5, ROWS)
    return pd.DataFrame({"income": income, "debt": debt, "repaid": (income > 2 * debt + 9)})


def _user(admin: Client, name: str, role: str, team: str) -> str:
    admin.create_user(name)
    admin.grant(name, role, team)
    return admin.create_token("e2e", principal=name).token


def test_a_contributor_cannot_reach_the_admin_token_through_retraining(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Secrets in the server's own environment (the `keel up` below inherits them).
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SERVER_SECRET)
    monkeypatch.setenv("KEEL_TEST_SERVICE_TOKEN", "service-token-value-0123456789")
    with keel_up(tmp_path) as server:
        admin_token = (server.data_dir / "admin-token").read_text().strip()
        port = server.url.rsplit(":", 1)[1]
        with Client(server.url, token=admin_token) as admin:
            admin.create_team("risk")
            admin.create_team("growth")
            admin.create_model("credit", team="risk", owner="dana")
            dana_token = _user(admin, "dana", "contributor", "risk")
            otto_token = _user(admin, "otto", "contributor", "growth")
            vera_token = _user(admin, "vera", "viewer", "risk")
            training = _frame(1)
            model = LogisticRegression().fit(training[["income", "debt"]], training["repaid"])
            admin.register_version(
                "credit", model, training_data=training, target="repaid", capture_git=False
            )

        with Client(server.url, token=dana_token) as dana:
            window = _frame(2)
            ids = dana.log_predictions(
                "credit", 1, window[["income", "debt"]], model.predict(window[["income", "debt"]])
            )
            assert dana.flush()
            dana.log_labels("credit", ids=ids, labels=window["repaid"].tolist())

            # 1. A contributor may not define a command, and the refusal writes nothing.
            with pytest.raises(PermissionDenied, match="Only an admin may define a command"):
                dana.set_retraining_job("credit", command=["sh", "-c", "cat ~/.keel/admin-token"])
            with pytest.raises(Exception, match="no retraining job"):
                dana.retraining_job("credit")
            # A webhook job runs nothing on the server: the team's writers may set it.
            assert dana.set_retraining_job("credit", webhook=True).kind == "webhook"

        # 2. An admin defines the command; its code directory is all it may read besides the
        # data window. Pretend a secret leaked into the code, to see it redacted.
        code = tmp_path / "code"
        code.mkdir()
        (code / "probe.py").write_text(PROBE)
        (code / "leak.txt").write_text(f"{admin_token} {SERVER_SECRET}")
        with Client(server.url, token=admin_token) as admin:
            command = [sys.executable, str(code / "probe.py"), str(server.data_dir), port, "{data}"]
            job = admin.set_retraining_job(
                "credit", command=command, code_paths=[str(code)], timeout_s=120
            )
            assert (job.kind, job.code_paths, job.updated_by) == ("command", [str(code)], "admin")

        # 3. The contributor runs it (write in the team): it gets none of the secrets.
        with Client(server.url, token=dana_token) as dana:
            run = dana.retrain("credit")
        tail = run.output_tail
        for what in ("admin-token", "database", "network", "write-outside"):
            assert f"{what} DENIED" in tail, tail
        # Of the data directory, only the way down to the run's own output directory exists.
        assert "listing GOT ['retraining']" in tail, tail
        assert not (server.data_dir / "pwned").exists()
        assert f"rows {ROWS}" in tail, tail  # the data window itself was readable
        assert admin_token not in tail
        assert SERVER_SECRET not in tail
        assert "KEEL_TEST_SERVICE_TOKEN" not in tail and "AWS_SECRET_ACCESS_KEY" not in tail
        assert "KEEL_RETRAIN_MODEL=credit" in tail
        assert "baked into the code: [REDACTED] [REDACTED]" in tail
        # It wrote no artifact, so it did not succeed.
        assert (run.status, run.exit_code, run.registered_version) == ("failed", 0, None)
        assert run.reason == f"the job wrote no artifact to {run.data_dir}/output"

        # 4. The output is the model team's: another team's contributor cannot read it.
        with Client(server.url, token=otto_token) as otto:
            with pytest.raises(PermissionDenied, match="visible to team 'risk' only"):
                otto.retrain_runs("credit")
            with pytest.raises(PermissionDenied):
                otto.retrain("credit")
            with pytest.raises(PermissionDenied):
                otto.set_retraining_job("credit", webhook=True)
        with Client(server.url, token=vera_token) as vera:
            (seen,) = vera.retrain_runs("credit")
            assert seen.output_tail == tail
