"""Drift verdict quality: how often Keel (and Evidently) flag material, negligible and no shifts.

    uv run --project bench/evidently-env python bench/drift_quality.py        # Keel + Evidently
    uv run python bench/drift_quality.py --skip-evidently                     # Keel only
    uv run python bench/drift_quality.py --skip-evidently --with-1m           # adds 1M rows

Data: generated with a fixed seed (nothing is downloaded). Each *case* is one column: a family
(normal, lognormal, uniform, bimodal, integer, low-cardinality integer, Cauchy, Pareto, outliers,
mostly null, constant; categoricals with 5, 50 and 5,000 levels; boolean) and a shift of the
current data against the reference, labelled

* ``material``: a change a model owner wants to hear about (recall counts these),
* ``negligible``: a real but tiny change (flagging it is noise),
* ``none``: the same distribution (flagging it is a false alarm).

For every size (rows per side) and repetition, all cases are columns of one table; Keel runs the
monitors' code path (Arrow columns -> ``stats_columns`` -> ``build_reference`` / ``profile_like``
-> ``dataset_drift`` with the monitor's default ``drift_config``), and Evidently
``Report([DataDriftPreset()])`` on the same data (its failed "Value Drift" tests, up to 100k rows,
each in a child process of this script run by the bench environment's interpreter).

Small windows: a 100k-row reference against windows of 30, 100 and 300 rows (Keel only).

The last line of the output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import emit, run_worker

os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")

SCRIPT = Path(__file__).resolve()
SEED = 20261130
Array = np.ndarray
Rng = np.random.Generator

# --------------------------------------------------------------------------- families


def _zipf(k: int, s: float) -> Array:
    w = 1.0 / np.arange(1, k + 1) ** s
    return np.asarray(w / w.sum())


CAT5 = np.array([0.35, 0.25, 0.2, 0.12, 0.08])
CAT50 = _zipf(50, 0.8)
CAT5000 = _zipf(5000, 1.0)
LOWCARD = np.array([0.1, 0.2, 0.4, 0.2, 0.1])


def _labels(prefix: str, k: int) -> Array:
    return np.array([f"{prefix}{i:04d}" for i in range(k)], dtype=object)


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # "float", "int", "str", "bool"
    sample: Callable[[Rng, int], Array]
    scale: float  # a typical spread, for the numeric shifts


def _outliers(rng: Rng, n: int, rate: float = 0.01) -> Array:
    x = rng.normal(0.0, 1.0, n)
    hit = rng.random(n) < rate
    x[hit] = rng.normal(0.0, 20.0, int(hit.sum()))
    return x


def _mostly_null(rng: Rng, n: int) -> Array:
    x = rng.normal(0.0, 1.0, n)
    x[rng.random(n) < 0.9] = np.nan
    return x


def _categories(p: Array, prefix: str) -> Callable[[Rng, int], Array]:
    labels = _labels(prefix, len(p))
    return lambda rng, n: labels[rng.choice(len(p), n, p=p)]


FAMILIES = {
    f.name: f
    for f in [
        Family("normal", "float", lambda r, n: r.normal(50.0, 10.0, n), 10.0),
        Family("lognormal", "float", lambda r, n: r.lognormal(0.0, 0.6, n), 0.7),
        Family("uniform", "float", lambda r, n: r.uniform(0.0, 100.0, n), 28.9),
        Family(
            "bimodal",
            "float",
            lambda r, n: r.normal(0.0, 1.0, n) + np.where(r.random(n) < 0.5, -2.0, 2.0),
            2.2,
        ),
        Family("integer", "int", lambda r, n: r.poisson(20.0, n), 4.47),
        Family("lowcard_int", "int", lambda r, n: r.choice(5, n, p=LOWCARD), 1.1),
        Family("cauchy", "float", lambda r, n: r.standard_cauchy(n), 1.0),
        Family("pareto", "float", lambda r, n: r.pareto(3.0, n) + 1.0, 0.5),
        Family("outliers", "float", _outliers, 1.0),
        Family("mostly_null", "float", _mostly_null, 1.0),
        Family("constant", "float", lambda r, n: np.full(n, 7.0), 1.0),
        Family("cat5", "str", _categories(CAT5, "c"), 1.0),
        Family("cat50", "str", _categories(CAT50, "c"), 1.0),
        Family("cat5000", "str", _categories(CAT5000, "c"), 1.0),
        Family("boolean", "bool", lambda r, n: r.random(n) < 0.3, 1.0),
    ]
}


def _move_share(rng: Rng, x: Array, source: Any, target: Any, points: float) -> Array:
    """Move ``points`` of the rows' share from category ``source`` to ``target``."""
    x = x.copy()
    idx = np.flatnonzero(x == source)
    k = min(len(idx), round(points * len(x)))
    x[rng.choice(idx, k, replace=False)] = target
    return x


def _new_category(rng: Rng, x: Array, share: float, levels: int) -> Array:
    x = x.copy()
    hit = rng.random(len(x)) < share
    x[hit] = _labels("new", levels)[rng.integers(0, levels, int(hit.sum()))]
    return x


def _scale(x: Array, factor: float) -> Array:
    centre = np.nanmedian(x)
    return centre + (x - centre) * factor


def _tail(x: Array, family: Family) -> Array:
    """The top 3% of the values move out by three typical spreads."""
    cut = np.nanquantile(x, 0.97)
    return np.where(x > cut, x + 3.0 * family.scale, x)


def _reshuffle_tail(rng: Rng, n: int) -> Array:
    p = CAT5000.copy()
    tail = p[500:].copy()
    rng2 = np.random.default_rng(7)  # the same reshuffle in every repetition
    p[500:] = tail[rng2.permutation(len(tail))]
    return _labels("c", len(p))[rng.choice(len(p), n, p=p)]


Shift = Callable[[Rng, Array, Family, int], Array]
# name -> (label, shift, families); ``None`` for families means every family of the kinds given.
NUMERIC = ["normal", "lognormal", "uniform", "bimodal", "integer", "cauchy", "pareto", "outliers"]
CASES: list[tuple[str, str, str, Shift]] = []


def _case(family: str, shift: str, label: str, fn: Shift) -> None:
    CASES.append((family, shift, label, fn))


for _name in FAMILIES:
    for _copy in ("a", "b"):  # two unshifted copies: false alarms need many trials
        _case(_name, f"none_{_copy}", "none", lambda r, x, f, n: x)
for _name in NUMERIC:
    _case(_name, "mean_small", "negligible", lambda r, x, f, n: x + 0.02 * f.scale)
    _case(_name, "mean_large", "material", lambda r, x, f, n: x + 0.5 * f.scale)
    if _name != "integer":
        _case(_name, "variance", "material", lambda r, x, f, n: _scale(x, 1.5))
    if _name not in ("cauchy", "pareto"):
        _case(_name, "tail_only", "material", lambda r, x, f, n: _tail(x, f))
_case("integer", "variance", "material", lambda r, x, f, n: np.round(_scale(x, 1.5)))
_case(
    "outliers",
    "outlier_rate",
    "material",
    lambda r, x, f, n: _outliers(r, n, 0.05),
)
_case("mostly_null", "mean_large", "material", lambda r, x, f, n: x + 0.5)
_case("mostly_null", "mean_small", "negligible", lambda r, x, f, n: x + 0.02)
_case("constant", "new_value", "material", lambda r, x, f, n: np.where(r.random(n) < 0.1, 8.0, x))
_case("lowcard_int", "share_change", "material", lambda r, x, f, n: _move_share(r, x, 2, 4, 0.1))
_case("lowcard_int", "share_small", "negligible", lambda r, x, f, n: _move_share(r, x, 2, 4, 0.01))
_case(
    "cat5", "share_change", "material", lambda r, x, f, n: _move_share(r, x, "c0000", "c0003", 0.1)
)
_case(
    "cat5",
    "share_small",
    "negligible",
    lambda r, x, f, n: _move_share(r, x, "c0000", "c0003", 0.01),
)
_case("cat5", "new_category", "material", lambda r, x, f, n: _new_category(r, x, 0.1, 1))
_case(
    "cat50", "share_change", "material", lambda r, x, f, n: _move_share(r, x, "c0000", "c0030", 0.1)
)
_case(
    "cat50",
    "share_small",
    "negligible",
    lambda r, x, f, n: _move_share(r, x, "c0000", "c0030", 0.01),
)
_case("cat50", "new_category", "material", lambda r, x, f, n: _new_category(r, x, 0.1, 5))
_case(
    "cat5000",
    "top_share",
    "material",
    lambda r, x, f, n: _top_double(r, x),
)
_case("cat5000", "share_small", "negligible", lambda r, x, f, n: _move_share_any(r, x, 0.01))
_case("cat5000", "new_category", "material", lambda r, x, f, n: _new_category(r, x, 0.1, 1000))
_case("cat5000", "tail_reshuffle", "material", lambda r, x, f, n: _reshuffle_tail(r, n))
_case("boolean", "share_change", "material", lambda r, x, f, n: r.random(n) < 0.4)
_case("boolean", "share_small", "negligible", lambda r, x, f, n: r.random(n) < 0.31)


def _top_double(rng: Rng, x: Array) -> Array:
    """The top category's share doubles (taken evenly from the others)."""
    x = x.copy()
    top = "c0000"
    others = np.flatnonzero(x != top)
    k = round(CAT5000[0] * len(x))
    x[rng.choice(others, min(k, len(others)), replace=False)] = top
    return x


def _move_share_any(rng: Rng, x: Array, points: float) -> Array:
    """One point of share moves from the other categories to the top one."""
    x = x.copy()
    others = np.flatnonzero(x != "c0000")
    k = round(points * len(x))
    x[rng.choice(others, min(k, len(others)), replace=False)] = "c0000"
    return x


def column_name(family: str, shift: str) -> str:
    return f"{family}__{shift}"


def make_tables(rows: int, rep: int) -> tuple[dict[str, Array], dict[str, Array]]:
    """The reference and current columns of every case, for one size and repetition."""
    reference: dict[str, Array] = {}
    current: dict[str, Array] = {}
    for index, (family, shift, _label, fn) in enumerate(CASES):
        f = FAMILIES[family]
        rng = np.random.default_rng([SEED, rows, rep, index])
        name = column_name(family, shift)
        reference[name] = f.sample(rng, rows)
        current[name] = fn(rng, f.sample(rng, rows), f, rows)
    return reference, current


def kinds() -> dict[str, str]:
    return {column_name(fam, s): FAMILIES[fam].kind for fam, s, _, _ in CASES}


def labels() -> dict[str, str]:
    return {column_name(fam, s): label for fam, s, label, _ in CASES}


# --------------------------------------------------------------------------- Keel


def _arrow(columns: dict[str, Array]) -> Any:
    import pyarrow as pa

    out = {}
    types = kinds()
    for name, values in columns.items():
        kind = types[name]
        if kind == "float":
            out[name] = pa.array(values, type=pa.float64(), from_pandas=True)
        elif kind == "int":
            out[name] = pa.array(np.asarray(values, dtype=np.int64), type=pa.int64())
        elif kind == "bool":
            out[name] = pa.array(np.asarray(values, dtype=bool), type=pa.bool_())
        else:
            out[name] = pa.array(values.tolist(), type=pa.string())
    return pa.table(out)


def keel_flagged(reference: dict[str, Array], current: dict[str, Array]) -> list[str]:
    """The monitors' code path: Arrow columns to profiles, then the default drift config."""
    from keel.domain.monitoring import Thresholds
    from keel.services.monitoring_checks import drift_config
    from keel.services.telemetry_profiles import kinds_of, stats_columns
    from keel.stats.drift import dataset_drift
    from keel.stats.profile import build_reference, profile_like

    ref_table, cur_table = _arrow(reference), _arrow(current)
    profile_kinds = kinds_of({n: ref_table.column(n) for n in ref_table.column_names})
    ref = build_reference(stats_columns(ref_table, profile_kinds), profile_kinds)
    cur = profile_like(ref, stats_columns(cur_table, ref.columns))
    return dataset_drift(ref, cur, drift_config(Thresholds())).drifted_columns


# --------------------------------------------------------------------------- Evidently


def worker_evidently(rows: int, rep: int) -> dict[str, Any]:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference, current = make_tables(rows, rep)
    types = kinds()
    numeric = [n for n in reference if types[n] in ("float", "int")]
    categorical = [n for n in reference if n not in numeric]
    for side in (reference, current):
        for name in categorical:
            side[name] = np.asarray(side[name]).astype(str).astype(object)
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    report = Report([DataDriftPreset()], include_tests=True)
    snapshot = report.run(
        Dataset.from_pandas(pd.DataFrame(current), data_definition=definition),
        Dataset.from_pandas(pd.DataFrame(reference), data_definition=definition),
    )
    result = snapshot.dict()
    flagged = []
    for test in result.get("tests", []):
        name = test.get("name", "")
        if name.startswith("Value Drift for column ") and test.get("status") == "FAIL":
            flagged.append(name.removeprefix("Value Drift for column "))
    return {"flagged": sorted(flagged)}


# --------------------------------------------------------------------------- small windows

WINDOW_SHIFTS = {  # one material shift per family for the small-window recall
    "normal": "mean_large",
    "lognormal": "variance",
    "uniform": "mean_large",
    "bimodal": "mean_large",
    "integer": "mean_large",
    "lowcard_int": "share_change",
    "cauchy": "mean_large",
    "pareto": "variance",
    "outliers": "outlier_rate",
    "cat5": "share_change",
    "cat50": "new_category",
    "cat5000": "top_share",
    "boolean": "share_change",
}


def small_windows(reference_rows: int, sizes: list[int], windows: int) -> dict[str, Any]:
    from keel.domain.monitoring import Thresholds
    from keel.services.monitoring_checks import drift_config
    from keel.services.telemetry_profiles import kinds_of, stats_columns
    from keel.stats.drift import column_drift
    from keel.stats.profile import build_reference, profile_like

    config = drift_config(Thresholds())
    shift_of = {(fam, s): fn for fam, s, _, fn in CASES}
    out: dict[str, Any] = {}
    for size in sizes:
        alarms = trials = hits = material = 0
        for index, (family, shift) in enumerate(WINDOW_SHIFTS.items()):
            f = FAMILIES[family]
            rng = np.random.default_rng([SEED, 7, size, index])
            name = column_name(family, "none_a")
            ref_table = _arrow({name: f.sample(rng, reference_rows)})
            kinds_ = kinds_of({name: ref_table.column(name)})
            ref = build_reference(stats_columns(ref_table, kinds_), kinds_)
            fn = shift_of[(family, shift)]
            for _ in range(windows):
                for shifted in (False, True):
                    x = f.sample(rng, size)
                    if shifted:
                        x = fn(rng, x, f, size)
                    cur = profile_like(ref, stats_columns(_arrow({name: x}), ref.columns))
                    verdict = column_drift(name, ref.columns[name], cur.columns[name], config)
                    if shifted:
                        material += 1
                        hits += verdict.drifted
                    else:
                        trials += 1
                        alarms += verdict.drifted
        out[str(size)] = {
            "false_alarm_rate": alarms / trials,
            "recall": hits / material,
            "trials": trials,
        }
    return out


# --------------------------------------------------------------------------- report


def rates(flagged: list[set[str]]) -> dict[str, float]:
    lab = labels()
    counts = {"material": [0, 0], "negligible": [0, 0], "none": [0, 0]}
    for run in flagged:
        for name, label in lab.items():
            counts[label][0] += name in run
            counts[label][1] += 1
    return {
        "recall": counts["material"][0] / counts["material"][1],
        "false_alarm_rate": counts["none"][0] / counts["none"][1],
        "negligible_flagged": counts["negligible"][0] / counts["negligible"][1],
    }


def per_case(flagged: list[set[str]]) -> dict[str, float]:
    return {name: sum(name in run for run in flagged) / len(flagged) for name in labels()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="rows per side, comma list")
    parser.add_argument("--with-1m", action="store_true", help="add 1,000,000 rows (Keel only)")
    parser.add_argument("--reps", type=int, default=4, help="repetitions per size")
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--evidently-max-rows", type=int, default=100_000)
    parser.add_argument(
        "--evidently-reps", type=int, default=2, help="repetitions Evidently runs (slow)"
    )
    parser.add_argument("--window-sizes", default="30,100,300")
    parser.add_argument("--windows", type=int, default=40, help="windows per family and size")
    parser.add_argument("--details", action="store_true", help="print the rate of every case")
    parser.add_argument("--worker", choices=["evidently"], help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rep", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker == "evidently":
        emit(worker_evidently(args.rows, args.rep))
        return

    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.with_1m:
        sizes.append(1_000_000)
    evidently = not args.skip_evidently
    if evidently:
        try:
            import evidently as _ev  # noqa: F401
        except ImportError:
            print(
                "  (Evidently is not installed here: run with uv run --project bench/evidently-env)"
            )
            evidently = False
    lab = labels()
    n_by_label = {k: sum(v == k for v in lab.values()) for k in ("material", "negligible", "none")}
    print(
        f"drift_quality: {len(CASES)} cases per table ({n_by_label['material']} material, "
        f"{n_by_label['negligible']} negligible, {n_by_label['none']} unshifted), "
        f"{args.reps} repetitions per size"
    )
    figures: dict[str, Any] = {"cases": len(CASES), "reps": args.reps, "sizes": {}}
    details: dict[str, dict[str, float]] = {}
    print(
        f"\n{'rows/side':>10} | {'tool':9} | {'recall':>7} | {'false alarms':>12} | "
        f"{'negligible flagged':>18} | {'seconds':>7}"
    )
    for rows in sizes:
        runs: dict[str, list[set[str]]] = {"keel": [], "evidently": []}
        seconds = {"keel": 0.0, "evidently": 0.0}
        for rep in range(args.reps):
            reference, current = make_tables(rows, rep)
            start = time.perf_counter()
            runs["keel"].append(set(keel_flagged(reference, current)))
            seconds["keel"] += time.perf_counter() - start
            del reference, current
            if evidently and rows <= args.evidently_max_rows and rep < args.evidently_reps:
                start = time.perf_counter()
                ev = run_worker(
                    SCRIPT, ["--worker", "evidently", "--rows", str(rows), "--rep", str(rep)]
                )
                seconds["evidently"] += time.perf_counter() - start
                runs["evidently"].append(set(ev["flagged"]))
        entry: dict[str, Any] = {}
        for tool in ("keel", "evidently"):
            if not runs[tool]:
                continue
            r = rates(runs[tool])
            entry[tool] = r
            details[f"{tool}@{rows}"] = per_case(runs[tool])
            print(
                f"{rows:>10,} | {tool:9} | {r['recall']:>7.1%} | {r['false_alarm_rate']:>12.1%} | "
                f"{r['negligible_flagged']:>18.1%} | {seconds[tool]:>7.1f}"
            )
        figures["sizes"][str(rows)] = entry

    window_sizes = [int(s) for s in args.window_sizes.split(",") if s]
    if window_sizes:
        windows = small_windows(100_000, window_sizes, args.windows)
        figures["small_windows"] = windows
        print(f"\nSmall windows against a 100,000-row reference ({args.windows} per family, Keel):")
        for size, w in windows.items():
            print(
                f"  {int(size):>4} rows: false alarms {w['false_alarm_rate']:.1%} "
                f"({w['trials']} windows), recall {w['recall']:.1%}"
            )

    if args.details:
        print("\nShare flagged per case (label, then each tool@size):")
        keys = sorted(details)
        print(f"  {'case':34} {'label':10} " + " ".join(f"{k:>16}" for k in keys))
        for name, label in lab.items():
            cells = " ".join(f"{details[k][name]:>16.0%}" for k in keys)
            print(f"  {name:34} {label:10} {cells}")
        figures["per_case"] = details
    targets = []
    for entry in figures["sizes"].values():
        k = entry["keel"]
        targets.append(
            k["recall"] >= 0.9 and k["false_alarm_rate"] <= 0.02 and k["negligible_flagged"] <= 0.05
        )
    figures["keel_meets_targets"] = all(targets)
    print(
        f"\nKeel meets recall >= 90%, false alarms <= 2%, negligible <= 5% at every size: "
        f"{figures['keel_meets_targets']}"
    )
    print(f"  machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    emit(figures)


if __name__ == "__main__":
    main()
