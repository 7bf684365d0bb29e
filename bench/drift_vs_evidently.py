"""Data drift, N reference + N current rows x 25 columns: Keel against Evidently's DataDriftPreset.

    uv run --project bench/evidently-env python bench/drift_vs_evidently.py --rows 1000000
    uv run python bench/drift_vs_evidently.py --rows 10000000 --skip-evidently

Data: 20 numeric and 5 categorical columns, generated with a fixed seed (nothing is downloaded).
The current data has a known shift in 5 numeric columns (num_00..num_04) and 1 categorical column
(cat_0); the other 19 columns come from the same distributions as the reference.

Timed, each tool in its own child process (so memory is measured per tool, see _common.py):

* Evidently: ``Report([DataDriftPreset()]).run(current, reference)`` on pandas DataFrames.
* Keel from raw arrays: build_reference on the reference + profile_like on the current data +
  dataset_drift, in chunks of --chunk-rows rows (one chunk at 1M rows).
* Keel's drift query from stored window profiles: the current data is profiled as 24 hourly
  window profiles and stored as JSON files (the text Keel keeps per window); the query loads the
  reference and the 24 windows, merges them and runs dataset_drift (median of --query-repeats).

The last line of the output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from _common import PeakMemory, emit, peak_rss_mb, reset_peak, rss_mb, run_worker

os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")  # no usage telemetry, offline

SCRIPT = Path(__file__).resolve()
SEED = 20240605
NUMERIC = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
SHIFTED = [*NUMERIC[:5], CATEGORICAL[0]]
CARDINALITY = [8, 12, 20, 30, 45]
HOURS = 24


def make_chunk(rows: int, chunk: int, current: bool, seed: int = SEED) -> dict[str, np.ndarray]:
    """One chunk of the table: numeric float64 arrays, categorical object arrays of str."""
    rng = np.random.default_rng([seed, int(current), chunk])
    cols: dict[str, np.ndarray] = {}
    for i, name in enumerate(NUMERIC):
        shifted = current and i < 5
        kind = i % 4
        if kind == 0:  # normal
            mu = 0.5 if shifted else 0.0
            cols[name] = rng.normal(10.0 + mu * 2.0, 2.0, rows)
        elif kind == 1:  # lognormal (skewed), wider when shifted
            cols[name] = rng.lognormal(1.0, 0.8 if shifted else 0.5, rows)
        elif kind == 2:  # uniform, moved by a fifth of its range when shifted
            lo = 20.0 if shifted else 0.0
            cols[name] = rng.uniform(lo, lo + 100.0, rows)
        else:  # exponential, heavier when shifted
            cols[name] = rng.exponential(1.6 if shifted else 1.0, rows)
        # a few missing values everywhere
        cols[name][rng.random(rows) < 0.01] = np.nan
    for j, name in enumerate(CATEGORICAL):
        k = CARDINALITY[j]
        labels = np.array([f"{name}_v{v:02d}" for v in range(k)], dtype=object)
        weights = np.linspace(1.0, 2.0, k)
        if current and name in SHIFTED:
            weights = weights[::-1] ** 3  # the frequent values become rare and vice versa
        cols[name] = labels[rng.choice(k, rows, p=weights / weights.sum())]
    return cols


def chunks(rows: int, chunk_rows: int, current: bool) -> Iterator[dict[str, np.ndarray]]:
    for index, start in enumerate(range(0, rows, chunk_rows)):
        yield make_chunk(min(chunk_rows, rows - start), index, current)


KINDS = {**dict.fromkeys(NUMERIC, "numeric"), **dict.fromkeys(CATEGORICAL, "categorical")}


# --------------------------------------------------------------------------- workers


def worker_keel(rows: int, chunk_rows: int, query_repeats: int) -> dict[str, Any]:
    from keel.stats.drift import dataset_drift
    from keel.stats.profile import DatasetProfile, build_reference, profile_like

    in_memory = rows <= chunk_rows
    elapsed = 0.0
    if in_memory:
        # Inputs first, then measure only what Keel needs on top of them.
        reference_data = make_chunk(rows, 0, False)
        current_data = make_chunk(rows, 0, True)
        with PeakMemory() as memory:
            start, cpu_start = time.perf_counter(), time.process_time()
            reference = build_reference(reference_data, KINDS)
            current = profile_like(reference, current_data)
            result = dataset_drift(reference, current)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        extra_mb = memory.extra_mb
        memory_note = "peak RSS above the in-memory input data"
    else:
        # Streaming: a chunk is generated, profiled and dropped; the figure includes one chunk
        # of generated input data (both sides) on top of the interpreter.
        import gc

        gc.collect()
        reset_peak()
        baseline = rss_mb()
        cpu = 0.0
        reference_profile: DatasetProfile | None = None
        for data in chunks(rows, chunk_rows, False):
            start, cpu_start = time.perf_counter(), time.process_time()
            if reference_profile is None:
                reference_profile = build_reference(data, KINDS)
            else:
                reference_profile = reference_profile.merge(profile_like(reference_profile, data))
            elapsed += time.perf_counter() - start
            cpu += time.process_time() - cpu_start
            del data
        assert reference_profile is not None
        reference = reference_profile
        current_profile: DatasetProfile | None = None
        for data in chunks(rows, chunk_rows, True):
            start, cpu_start = time.perf_counter(), time.process_time()
            window = profile_like(reference, data)
            current_profile = window if current_profile is None else current_profile.merge(window)
            elapsed += time.perf_counter() - start
            cpu += time.process_time() - cpu_start
            del data
        assert current_profile is not None
        current = current_profile
        start, cpu_start = time.perf_counter(), time.process_time()
        result = dataset_drift(reference, current)
        elapsed += time.perf_counter() - start
        cpu += time.process_time() - cpu_start
        extra_mb = max(0.0, peak_rss_mb() - baseline)
        memory_note = "peak RSS of the whole streaming run (incl. one generated chunk per side)"

    query_ms, query_cpu_ms, query_flagged = profile_query(
        reference, rows, chunk_rows, query_repeats
    )
    return {
        "keel_s": elapsed,
        "keel_cpu_s": cpu,
        "keel_extra_mb": extra_mb,
        "keel_memory_note": memory_note,
        "keel_flagged": result.drifted_columns,
        "keel_share": result.share,
        "keel_methods": sorted({c.method for c in result.columns}),
        "profile_query_ms": query_ms,
        "profile_query_cpu_ms": query_cpu_ms,
        "profile_query_flagged": query_flagged,
        "reference_rows": reference.rows,
        "current_rows": current.rows,
        "profile_json_bytes": len(current.to_json()),
    }


def profile_query(
    reference: Any, rows: int, chunk_rows: int, repeats: int
) -> tuple[float, float, list[str]]:
    """Store 24 hourly window profiles as JSON, then time load + merge + dataset_drift."""
    from keel.stats.drift import dataset_drift
    from keel.stats.profile import DatasetProfile, merge_all, profile_like

    with tempfile.TemporaryDirectory(prefix="keel-bench-profiles-") as tmp:
        store = Path(tmp)
        (store / "reference.json").write_text(reference.to_json())
        per_hour = max(1, -(-rows // HOURS))
        offset = 0
        for data in chunks(rows, chunk_rows, True):
            n = len(data[NUMERIC[0]])
            lo = 0
            while lo < n:
                hour = (offset + lo) // per_hour
                hi = min(n, (hour + 1) * per_hour - offset)
                window = profile_like(reference, {k: v[lo:hi] for k, v in data.items()})
                path = store / f"window-{hour:02d}.json"
                if path.exists():  # an hour split across chunks: merge, as ingest does
                    window = window.merge(DatasetProfile.from_json(path.read_text()))
                path.write_text(window.to_json())
                lo = hi
            offset += n
            del data
        timings, cpu_timings = [], []
        flagged: list[str] = []
        for _ in range(repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            ref = DatasetProfile.from_json((store / "reference.json").read_text())
            windows = [
                DatasetProfile.from_json(p.read_text()) for p in sorted(store.glob("window-*.json"))
            ]
            merged = merge_all(windows)
            assert merged is not None
            flagged = dataset_drift(ref, merged).drifted_columns
            timings.append((time.perf_counter() - start) * 1000)
            cpu_timings.append((time.process_time() - cpu_start) * 1000)
    return statistics.median(timings), statistics.median(cpu_timings), flagged


def worker_evidently(rows: int) -> dict[str, Any]:
    import evidently
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference = pd.DataFrame(make_chunk(rows, 0, False))
    current = pd.DataFrame(make_chunk(rows, 0, True))
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    with PeakMemory() as memory:
        start, cpu_start = time.perf_counter(), time.process_time()
        report = Report([DataDriftPreset()], include_tests=True)
        snapshot = report.run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
        result = snapshot.dict()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    flagged = []
    methods = set()
    for metric in result["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            methods.add(config.get("method"))
    for test in result.get("tests", []):
        name = test.get("name", "")
        if name.startswith("Value Drift for column ") and test.get("status") == "FAIL":
            flagged.append(name.removeprefix("Value Drift for column "))
    return {
        "evidently_s": elapsed,
        "evidently_cpu_s": cpu,
        "evidently_extra_mb": memory.extra_mb,
        "evidently_flagged": sorted(flagged),
        "evidently_methods": sorted(m for m in methods if m),
        "evidently_version": evidently.__version__,
    }


# --------------------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per side")
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    parser.add_argument("--query-repeats", type=int, default=20)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--worker", choices=["keel", "evidently"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker == "keel":
        figures = worker_keel(args.rows, args.chunk_rows, args.query_repeats)
        emit({k: v for k, v in figures.items() if not k.startswith("_")})
        return
    if args.worker == "evidently":
        emit(worker_evidently(args.rows))
        return

    common = ["--rows", str(args.rows), "--chunk-rows", str(args.chunk_rows)]
    print(f"drift_vs_evidently: {args.rows:,} reference + {args.rows:,} current rows x 25 columns")
    print(f"  shifted columns (ground truth): {SHIFTED}")
    load = os.getloadavg()[0]
    print(
        f"  machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"load average {load:.1f} at start (wall times stretch on a busy machine; CPU times less)"
    )
    keel = run_worker(
        SCRIPT, [*common, "--query-repeats", str(args.query_repeats), "--worker", "keel"]
    )
    figures: dict[str, Any] = {"rows": args.rows, "shifted": SHIFTED, "load_avg": load, **keel}
    print(f"\nKeel ({', '.join(keel['keel_methods'])}):")
    print(f"  flagged:            {keel['keel_flagged']}")
    print(
        f"  wall time:          {keel['keel_s']:.3f} s, {keel['keel_cpu_s']:.3f} s CPU "
        "(profile reference + profile current + drift)"
    )
    print(f"  extra peak memory:  {keel['keel_extra_mb']:.0f} MiB ({keel['keel_memory_note']})")
    print(
        f"  profile query:      {keel['profile_query_ms']:.1f} ms, "
        f"{keel['profile_query_cpu_ms']:.1f} ms CPU (load {HOURS} stored hourly "
        f"window profiles + reference from JSON, merge, drift; median), "
        f"flagged {keel['profile_query_flagged']}"
    )
    print(f"  window profile size: {keel['profile_json_bytes']:,} bytes of JSON")

    if args.skip_evidently:
        figures.update(
            evidently_s=None,
            evidently_extra_mb=None,
            evidently_flagged=None,
            speedup_vs_evidently=None,
            memory_ratio=None,
        )
    else:
        ev = run_worker(SCRIPT, [*common, "--worker", "evidently"])
        figures.update(ev)
        speedup = ev["evidently_s"] / keel["keel_s"]
        memory_ratio = keel["keel_extra_mb"] / max(ev["evidently_extra_mb"], 1e-9)
        figures.update(speedup_vs_evidently=speedup, memory_ratio=memory_ratio)
        print(
            f"\nEvidently {ev['evidently_version']} DataDriftPreset "
            f"({', '.join(ev['evidently_methods'])}):"
        )
        print(f"  flagged:            {ev['evidently_flagged']}")
        print(f"  wall time:          {ev['evidently_s']:.3f} s, {ev['evidently_cpu_s']:.3f} s CPU")
        print(
            f"  extra peak memory:  {ev['evidently_extra_mb']:.0f} MiB "
            "(peak RSS above the input DataFrames)"
        )
        print(
            f"\nKeel vs Evidently: {speedup:.1f}x faster, {memory_ratio:.3f}x the extra memory "
            f"(1/{1 / max(memory_ratio, 1e-9):.0f})"
        )

    print("\nTargets:")
    checks = [
        (
            "Keel flags exactly the 6 shifted columns",
            sorted(keel["keel_flagged"]) == sorted(SHIFTED),
        ),
        ("profile query < 50 ms", keel["profile_query_ms"] < 50),
    ]
    if not args.skip_evidently:
        checks += [
            ("Keel >= 50x faster than Evidently", figures["speedup_vs_evidently"] >= 50),
            ("Keel extra memory <= 1/10 of Evidently's", figures["memory_ratio"] <= 0.1),
        ]
    if args.rows >= 10_000_000:
        checks.append(("10M rows: Keel extra memory < 1 GB", keel["keel_extra_mb"] < 1024))
    for label, ok in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {label}")
    emit(figures)


if __name__ == "__main__":
    main()
