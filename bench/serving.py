"""Serving: Keel's gateway against in-process predict and `mlflow models serve`, one run.

The same fitted scikit-learn model (a logistic regression on 8 features, saved by MLflow as
skops) is served by:

1. nobody: ``model.predict`` on a one-row DataFrame in this process (the floor);
2. Keel's gateway (``build_gateway_app``, a direct plan for the model) in its own process, with
   prediction logging on, and again with it off (``KEEL_PREDICTION_LOGGING=off``);
3. ``mlflow models serve --env-manager local`` (one uvicorn worker, its default) on the same
   model directory, from Keel's dev environment.

Each server is measured by the same client in this process: single-row requests one at a time
(p50 and p99 of 300), then 16 concurrent clients for a fixed time with 1-row and with 100-row
bodies (requests per second). The last line is JSON.

    uv run python bench/serving.py [--seconds 5] [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit

FEATURES = [f"f{i}" for i in range(8)]
MLFLOW = Path(sys.executable).parent / "mlflow"


def _data(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)


def _fit() -> Any:
    from sklearn.linear_model import LogisticRegression

    x = _data(2000, 1)
    y = (x["f0"] - x["f1"] + 0.5 * x["f2"] > 0).astype(int)
    return LogisticRegression().fit(x, y)


def _save(model: Any, where: Path) -> Path:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    example = _data(5, 2)
    mlflow.sklearn.save_model(
        model,
        str(where),
        signature=infer_signature(example, model.predict(example)),
        pip_requirements=["scikit-learn"],
    )
    (found,) = [p for p in where.iterdir() if p.stem == "model" and p.suffix in (".skops", ".pkl")]
    return found


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 300
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited ({process.returncode})")
        with suppress(httpx.TransportError):
            if httpx.get(url + path, timeout=5).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not start")
        time.sleep(0.2)


@contextmanager
def _process(argv: list[str], env: dict[str, str], url: str, path: str) -> Iterator[str]:
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait(url, process, path)
        yield url
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


# -- Keel's side --------------------------------------------------------------------------------


def _prepare_keel(data_dir: Path, artifact: Path) -> str:
    """A Keel data directory with model ``bench`` v1 registered; returns a predictor's token."""
    from keel.config import Settings
    from keel.domain.permissions import Grant, Principal, PrincipalKind, Role
    from keel.domain.registry import Model, VersionDraft
    from keel.domain.signature import Column, ColumnType, Signature
    from keel.services.backend import Backend

    admin = Principal("bench", grants=(Grant(Role.ADMIN),))
    backend = Backend.open(Settings.load(data_dir=data_dir, env={}))
    try:
        backend.migrate()
        backend.registry.create_team(admin, "bench")
        backend.registry.create_model(admin, Model(name="bench", team="bench", owner="bench"))
        # No gate asked for: the scan at upload (skops, trusted types) is what lets it load.
        backend.governance.apply_policy(admin, "tier: unassessed\nchecks: {}\n")
        signature = Signature(tuple(Column(f, ColumnType.FLOAT, nullable=False) for f in FEATURES))
        backend.registry.register_version(
            admin,
            "bench",
            io.BytesIO(artifact.read_bytes()),
            artifact.name,
            VersionDraft(signature=signature),
        )
        backend.identity.store.create_principal("bench-app", PrincipalKind.SERVICE, "bench")
        backend.identity.store.grant("bench-app", Role.PREDICTOR, "bench", "bench")
        token, _ = backend.identity.create_token(admin, principal="bench-app", name="bench")
    finally:
        backend.close()
    return token


def serve_keel(data_dir: str, port: str) -> None:
    """Run Keel's gateway for model ``bench`` v1 (a direct plan) until killed."""
    import uvicorn

    from keel.config import Settings
    from keel.domain.traffic import Arm, ArmName, ServingPlan
    from keel.server import build_gateway_app
    from keel.services.backend import Backend
    from keel.serving.plans import FixedPlans

    backend = Backend.open(Settings.load(data_dir=Path(data_dir)))
    app = build_gateway_app(backend)
    plan = ServingPlan("bench", (Arm(ArmName.STABLE, 1, 1.0),))
    app.state.gateway.use_plans(FixedPlans({"bench": plan}))
    try:
        uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", access_log=False)
    finally:
        app.state.gateway.close()
        backend.close()


# -- the client ---------------------------------------------------------------------------------


def _body(rows: int) -> dict[str, Any]:
    return {"dataframe_split": _data(rows, 3 + rows).to_dict(orient="split")}


def _sequential(url: str, headers: dict[str, str], requests: int) -> list[float]:
    body = _body(1)
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for _ in range(20):  # warm up (the first request loads the model)
            client.post("/invocations", json=body).raise_for_status()
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            client.post("/invocations", json=body).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return times


async def _concurrent(url: str, headers: dict[str, str], rows: int, seconds: float) -> float:
    body = _body(rows)
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=60, limits=limits
    ) as client:
        done = 0
        stop = time.perf_counter() + seconds

        async def one() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                answer = await client.post("/invocations", json=body)
                answer.raise_for_status()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(16)))
        return done / (time.perf_counter() - started)


def _measure(url: str, headers: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    times = _sequential(url, headers, args.requests)
    quantiles = np.percentile(times, [50, 99])
    return {
        "p50_ms": float(quantiles[0]),
        "p99_ms": float(quantiles[1]),
        "rps_1": asyncio.run(_concurrent(url, headers, 1, args.seconds)),
        "rps_100": asyncio.run(_concurrent(url, headers, 100, args.seconds)),
    }


def _keel(data_dir: Path, token: str, logging: bool, args: argparse.Namespace) -> dict[str, float]:
    port = _free_port()
    env = {**os.environ, "KEEL_PREDICTION_LOGGING": "on" if logging else "off"}
    argv = [sys.executable, __file__, "--serve-keel", str(data_dir), str(port)]
    base = f"http://127.0.0.1:{port}"
    with _process(argv, env, base, "/healthz"):
        # The MLflow route of Keel is /models/NAME/invocations: the client posts to
        # BASE/invocations, so BASE names the model.
        return _measure(f"{base}/models/bench", {"Authorization": f"Bearer {token}"}, args)


def _mlflow(model_dir: Path, args: argparse.Namespace) -> dict[str, float]:
    port = _free_port()
    env = {
        **os.environ,
        "PATH": f"{MLFLOW.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": f"file://{model_dir.parent / 'mlruns'}",
    }
    argv = [str(MLFLOW), "models", "serve", "-m", str(model_dir), "-h", "127.0.0.1"]
    argv += ["-p", str(port), "--env-manager", "local"]
    base = f"http://127.0.0.1:{port}"
    with _process(argv, env, base, "/ping"):
        return _measure(base, {}, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per concurrency-16 run")
    parser.add_argument("--requests", type=int, default=300, help="sequential requests")
    parser.add_argument(
        "--serve-keel", nargs=2, metavar=("DATA_DIR", "PORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_keel:
        serve_keel(*args.serve_keel)
        return
    model = _fit()
    one = _data(1, 5)
    floor = []
    for _ in range(args.requests):
        started = time.perf_counter()
        model.predict(one)
        floor.append((time.perf_counter() - started) * 1000)
    with tempfile.TemporaryDirectory(prefix="keel-bench-serving-") as tmp:
        root = Path(tmp)
        artifact = _save(model, root / "model")
        token = _prepare_keel(root / "keel", artifact)
        keel = _keel(root / "keel", token, True, args)
        print(f"keel (logging on):  {keel}")
        quiet = _keel(root / "keel", token, False, args)
        print(f"keel (logging off): {quiet}")
        theirs = _mlflow(root / "model", args)
        print(f"mlflow models serve: {theirs}")
    floor_p50 = statistics.median(floor)
    figures = {
        "floor_p50_ms": round(floor_p50, 3),
        "keel_p50_ms": round(keel["p50_ms"], 3),
        "keel_p99_ms": round(keel["p99_ms"], 3),
        "keel_overhead_p50_ms": round(keel["p50_ms"] - floor_p50, 3),
        "mlflow_p50_ms": round(theirs["p50_ms"], 3),
        "mlflow_p99_ms": round(theirs["p99_ms"], 3),
        "keel_rps_1": round(keel["rps_1"], 1),
        "mlflow_rps_1": round(theirs["rps_1"], 1),
        "keel_rps_100": round(keel["rps_100"], 1),
        "mlflow_rps_100": round(theirs["rps_100"], 1),
        "keel_nolog_rps_1": round(quiet["rps_1"], 1),
        "keel_nolog_rps_100": round(quiet["rps_100"], 1),
        "logging_cost_pct": round(100 * (quiet["rps_1"] - keel["rps_1"]) / quiet["rps_1"], 1),
        "throughput_ratio_1": round(keel["rps_1"] / theirs["rps_1"], 2),
        "throughput_ratio_100": round(keel["rps_100"] / theirs["rps_100"], 2),
    }
    emit(figures)


if __name__ == "__main__":
    main()
