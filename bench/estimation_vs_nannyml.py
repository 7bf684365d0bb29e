"""Performance estimation without labels, Keel against NannyML 0.13 (CBPE and DLE).

    .venv/bin/python bench/estimation_vs_nannyml.py --rows 1000000
    .venv/bin/python bench/estimation_vs_nannyml.py --rows 100000 --skip-nannyml

NannyML runs in its own environment, bench/nannyml-env (pandas<3; NannyML 0.13 pins plotly<6,
Keel needs plotly 6, so Keel is not installed there): create it once with
``uv sync --locked --project bench/nannyml-env``. Keel runs with Keel's own environment.

Data (fixed seeds, nothing downloaded), written once to a temporary .npz that both tools read:

* classification: two features, P(y=1 | x) a logistic of them; the model's score is an
  over-confident logistic of the same features (calibration has work to do). --reference-rows
  reference rows, then --rows analysis rows whose feature means move steadily (covariate shift),
  cut into chunks of --chunk-rows rows;
* regression: y = 3 x1 + noise, the noise growing with |x1| and with category "c" of x2
  (heteroscedastic); the prediction is 3 x1; x1's mean moves across the analysis chunks.

The labels of the analysis rows are known, so every chunk's realized metric is computed exactly
(`keel.stats.performance`, equal to scikit-learn's). Per method and metric the bench reports the
mean absolute error of each tool's estimate against the realized values over the chunks, the mean
|Keel - NannyML|, and each tool's wall time (fit on the reference + estimate every chunk), each
tool in its own child process.

Targets: Keel's estimation error <= NannyML's + 0.005 per metric; Keel >= 10x faster per method
at 1M rows, judged on CPU seconds (wall seconds are printed too; on a busy shared machine they
stretch with the load, which the bench prints). NannyML's LightGBM may use both cores, so its
CPU seconds can exceed its wall seconds. The last line of the output is one JSON object with
the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import emit

SCRIPT = Path(__file__).resolve()
NANNYML_PYTHON = SCRIPT.parent / "nannyml-env" / ".venv" / "bin" / "python"
SEED = 20261130
CBPE_METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]
DLE_METRICS = ["mae", "rmse"]
MAX_SHIFT = 1.5


def make_data(reference_rows: int, rows: int) -> dict[str, np.ndarray]:
    """Both methods' reference and analysis arrays (analysis shifted progressively)."""
    rng = np.random.default_rng(SEED)
    out: dict[str, np.ndarray] = {}
    for part, n, top in (("ref", reference_rows, 0.0), ("ana", rows, MAX_SHIFT)):
        shift = np.linspace(0.0, top, n)
        x = rng.normal(0.0, 1.0, (n, 2)) + np.column_stack([shift, -shift / 2])
        logit = 1.5 * x[:, 0] - x[:, 1] - 0.3
        out[f"{part}_label"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
        out[f"{part}_score"] = 1 / (1 + np.exp(-(2.2 * x[:, 0] - 1.4 * x[:, 1])))
        out[f"{part}_prediction"] = (out[f"{part}_score"] > 0.5).astype(np.int64)
        x1 = rng.normal(0.0, 1.0, n) + shift
        x2 = rng.choice(np.array(["a", "b", "c"]), n)
        noise = (0.2 + np.abs(x1)) * rng.normal(size=n) * np.where(x2 == "c", 2.0, 1.0)
        out[f"{part}_x1"], out[f"{part}_x2"] = x1, x2
        out[f"{part}_reg_prediction"] = 3.0 * x1
        out[f"{part}_y"] = 3.0 * x1 + noise
    return out


def chunk_bounds(rows: int, chunk_rows: int) -> list[tuple[int, int]]:
    return [(s, min(s + chunk_rows, rows)) for s in range(0, rows, chunk_rows)]


def realized(data: dict[str, np.ndarray], chunk_rows: int) -> dict[str, list[float]]:
    from keel.stats.performance import classification_metrics, regression_metrics

    out: dict[str, list[float]] = {m: [] for m in [*CBPE_METRICS, *DLE_METRICS]}
    for start, end in chunk_bounds(data["ana_label"].size, chunk_rows):
        part = slice(start, end)
        cls = classification_metrics(
            data["ana_label"][part], data["ana_prediction"][part], data["ana_score"][part]
        )
        reg = regression_metrics(data["ana_y"][part], data["ana_reg_prediction"][part])
        for m in CBPE_METRICS:
            out[m].append(cls[m])
        for m in DLE_METRICS:
            out[m].append(reg[m])
    return out


# -- workers -----------------------------------------------------------------------------------


def worker_keel(path: str, chunk_rows: int) -> dict[str, Any]:
    from keel.services.estimation.dle_model import fit_error_model
    from keel.stats.estimation.cbpe import estimate_cbpe, fit_cbpe
    from keel.stats.estimation.dle import estimate_dle

    data = dict(np.load(path, allow_pickle=False))
    bounds = chunk_bounds(data["ana_label"].size, chunk_rows)
    estimates: dict[str, list[float]] = {m: [] for m in [*CBPE_METRICS, *DLE_METRICS]}

    start, cpu = time.perf_counter(), time.process_time()
    fitted = fit_cbpe(data["ref_label"], data["ref_score"])
    for lo, hi in bounds:
        result = estimate_cbpe(fitted, data["ana_prediction"][lo:hi], data["ana_score"][lo:hi])
        for m in CBPE_METRICS:
            estimates[m].append(result.estimates[m].value)
    cbpe_s, cbpe_cpu_s = time.perf_counter() - start, time.process_time() - cpu

    start, cpu = time.perf_counter(), time.process_time()
    model = fit_error_model(
        {"x1": data["ref_x1"], "x2": data["ref_x2"].astype(object)},
        data["ref_reg_prediction"],
        data["ref_y"],
    )
    for lo, hi in bounds:
        columns = {"x1": data["ana_x1"][lo:hi], "x2": data["ana_x2"][lo:hi].astype(object)}
        absolute, squared = model.predict(columns, data["ana_reg_prediction"][lo:hi])
        result = estimate_dle(model.reference, absolute, squared)
        for m in DLE_METRICS:
            estimates[m].append(result.estimates[m].value)
    dle_s, dle_cpu_s = time.perf_counter() - start, time.process_time() - cpu
    return {
        "estimates": estimates,
        "cbpe_s": cbpe_s,
        "dle_s": dle_s,
        "cbpe_cpu_s": cbpe_cpu_s,
        "dle_cpu_s": dle_cpu_s,
    }


def worker_nannyml(path: str, chunk_rows: int) -> dict[str, Any]:
    os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"  # no usage analytics, offline
    import warnings

    warnings.filterwarnings("ignore")
    import nannyml as nml  # type: ignore[import-not-found]
    import pandas as pd  # type: ignore[import-untyped]

    data = dict(np.load(path, allow_pickle=False))
    reference = pd.DataFrame(
        {
            "score": data["ref_score"],
            "prediction": data["ref_prediction"],
            "label": data["ref_label"],
        }
    )
    analysis = pd.DataFrame({"score": data["ana_score"], "prediction": data["ana_prediction"]})
    estimates: dict[str, list[float]] = {}

    start, cpu = time.perf_counter(), time.process_time()
    cbpe = nml.CBPE(
        y_pred_proba="score",
        y_pred="prediction",
        y_true="label",
        metrics=CBPE_METRICS,
        chunk_size=chunk_rows,
        problem_type="classification_binary",
    )
    cbpe.fit(reference)
    found = cbpe.estimate(analysis).filter(period="analysis").to_df()
    cbpe_s, cbpe_cpu_s = time.perf_counter() - start, time.process_time() - cpu
    for m in CBPE_METRICS:
        estimates[m] = [float(v) for v in found[(m, "value")]]

    reference = pd.DataFrame(
        {
            "x1": data["ref_x1"],
            "x2": pd.Categorical(data["ref_x2"]),
            "prediction": data["ref_reg_prediction"],
            "y": data["ref_y"],
        }
    )
    analysis = pd.DataFrame(
        {
            "x1": data["ana_x1"],
            "x2": pd.Categorical(data["ana_x2"]),
            "prediction": data["ana_reg_prediction"],
        }
    )
    start, cpu = time.perf_counter(), time.process_time()
    dle = nml.DLE(
        feature_column_names=["x1", "x2"],
        y_pred="prediction",
        y_true="y",
        metrics=DLE_METRICS,
        chunk_size=chunk_rows,
    )
    dle.fit(reference)
    found = dle.estimate(analysis).filter(period="analysis").to_df()
    dle_s, dle_cpu_s = time.perf_counter() - start, time.process_time() - cpu
    for m in DLE_METRICS:
        estimates[m] = [float(v) for v in found[(m, "value")]]
    return {
        "estimates": estimates,
        "cbpe_s": cbpe_s,
        "dle_s": dle_s,
        "cbpe_cpu_s": cbpe_cpu_s,
        "dle_cpu_s": dle_cpu_s,
        "version": nml.__version__,
    }


def run_peer(python: Path, args: list[str]) -> dict[str, Any]:
    """Run this script under ``python`` (a worker); return the JSON on its last line."""
    proc = subprocess.run(
        [str(python), str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=7200,
        check=False,
        env={**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"},
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        for line in proc.stderr.strip().splitlines()[-20:]:
            print(f"  ! {line}", file=sys.stderr)
        raise RuntimeError(f"worker {args} failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# -- main --------------------------------------------------------------------------------------


def mean_abs(a: list[float], b: list[float]) -> float:
    return float(np.nanmean(np.abs(np.asarray(a) - np.asarray(b))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="analysis rows")
    parser.add_argument("--reference-rows", type=int, default=50_000)
    parser.add_argument("--chunk-rows", type=int, default=10_000)
    parser.add_argument("--skip-nannyml", action="store_true")
    parser.add_argument("--nannyml-python", type=Path, default=NANNYML_PYTHON)
    parser.add_argument("--worker", choices=["keel", "nannyml"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker == "keel":
        emit(worker_keel(args.data, args.chunk_rows))
        return
    if args.worker == "nannyml":
        emit(worker_nannyml(args.data, args.chunk_rows))
        return

    chunks = -(-args.rows // args.chunk_rows)
    print(
        f"estimation_vs_nannyml: {args.reference_rows:,} reference rows, {args.rows:,} analysis "
        f"rows in {chunks} chunks of {args.chunk_rows:,}; covariate shift up to {MAX_SHIFT} sd"
    )
    load = os.getloadavg()[0]
    print(f"  machine: {os.cpu_count()} CPUs, load average {load:.1f} at start")
    data = make_data(args.reference_rows, args.rows)
    truth = realized(data, args.chunk_rows)
    with tempfile.TemporaryDirectory(prefix="keel-bench-") as tmp:
        path = str(Path(tmp) / "data.npz")
        np.savez(path, **data)
        worker_args = ["--data", path, "--chunk-rows", str(args.chunk_rows)]
        keel = run_peer(Path(sys.executable), [*worker_args, "--worker", "keel"])
        nml = None
        if not args.skip_nannyml:
            nml = run_peer(args.nannyml_python, [*worker_args, "--worker", "nannyml"])

    figures: dict[str, Any] = {
        "rows": args.rows,
        "reference_rows": args.reference_rows,
        "chunk_rows": args.chunk_rows,
        "chunks": chunks,
        "load_avg": load,
        "keel_cbpe_s": keel["cbpe_s"],
        "keel_dle_s": keel["dle_s"],
        "keel_cbpe_cpu_s": keel["cbpe_cpu_s"],
        "keel_dle_cpu_s": keel["dle_cpu_s"],
        "nannyml_version": nml["version"] if nml else None,
        "nannyml_cbpe_s": nml["cbpe_s"] if nml else None,
        "nannyml_dle_s": nml["dle_s"] if nml else None,
        "nannyml_cbpe_cpu_s": nml["cbpe_cpu_s"] if nml else None,
        "nannyml_dle_cpu_s": nml["dle_cpu_s"] if nml else None,
        "metrics": {},
    }
    print(f"\n{'metric':<10} {'Keel MAE':>10} {'NannyML MAE':>12} {'|Keel-NannyML|':>15}")
    checks: list[tuple[str, bool]] = []
    for metric in [*CBPE_METRICS, *DLE_METRICS]:
        row: dict[str, float | None] = {
            "keel_mae": mean_abs(keel["estimates"][metric], truth[metric]),
            "nannyml_mae": None,
            "keel_vs_nannyml": None,
        }
        if nml:
            row["nannyml_mae"] = mean_abs(nml["estimates"][metric], truth[metric])
            row["keel_vs_nannyml"] = mean_abs(keel["estimates"][metric], nml["estimates"][metric])
            checks.append(
                (
                    f"{metric}: Keel error <= NannyML's + 0.005",
                    row["keel_mae"] <= row["nannyml_mae"] + 0.005,  # type: ignore[operator]
                )
            )
        figures["metrics"][metric] = row
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        print(
            f"{metric:<10} {fmt(row['keel_mae']):>10} {fmt(row['nannyml_mae']):>12} "
            f"{fmt(row['keel_vs_nannyml']):>15}"
        )
    print(
        f"\nKeel:    CBPE {keel['cbpe_s']:.2f} s ({keel['cbpe_cpu_s']:.2f} s CPU), "
        f"DLE {keel['dle_s']:.2f} s ({keel['dle_cpu_s']:.2f} s CPU); fit + every chunk"
    )
    if nml:
        speedups = {
            key: nml[key] / keel[key] for key in ("cbpe_s", "dle_s", "cbpe_cpu_s", "dle_cpu_s")
        }
        figures.update(
            speedup_cbpe=speedups["cbpe_s"],
            speedup_dle=speedups["dle_s"],
            speedup_cbpe_cpu=speedups["cbpe_cpu_s"],
            speedup_dle_cpu=speedups["dle_cpu_s"],
        )
        print(
            f"NannyML {nml['version']}: CBPE {nml['cbpe_s']:.2f} s ({nml['cbpe_cpu_s']:.2f} s "
            f"CPU), DLE {nml['dle_s']:.2f} s ({nml['dle_cpu_s']:.2f} s CPU)"
        )
        print(
            f"Keel faster by: CBPE {speedups['cbpe_s']:.1f}x wall, {speedups['cbpe_cpu_s']:.1f}x "
            f"CPU; DLE {speedups['dle_s']:.1f}x wall, {speedups['dle_cpu_s']:.1f}x CPU"
        )
        if args.rows >= 1_000_000:
            # Judged on CPU time: on a shared machine wall times stretch with the load (printed
            # at the start); CPU seconds much less. Both are reported.
            checks += [
                ("CBPE: Keel >= 10x faster at 1M rows (CPU)", speedups["cbpe_cpu_s"] >= 10),
                ("DLE: Keel >= 10x faster at 1M rows (CPU)", speedups["dle_cpu_s"] >= 10),
            ]
    print("\nTargets:")
    for label, ok in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {label}")
    figures["targets_met"] = all(ok for _, ok in checks)
    emit(figures)


if __name__ == "__main__":
    main()
