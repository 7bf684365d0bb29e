"""Explaining a version: permutation importance and TreeSHAP, measured in the model sandbox.

`Explainer.explain` hands the version's artifact and a labelled dataset (its features and the
target) to `keel.services.explanation_runner` in the sandbox, under a compute budget, and reads
back an `Explanation`. It never raises for the model's sake: whatever stops it (no clean scan,
a crash, the wall clock, an unreadable result) comes back as an explanation that was not
computed, with the reason as its fallback, so a policy can decide what that means.

The budget is the policy's ``budget_s``, else ``KEEL_EXPLAIN_BUDGET_S``, else 60 seconds. The
child keeps to it itself; the sandbox kills it at the budget plus the evaluation's time limit
(loading the model and the data is not counted in the budget).

Gate 1 explains the version on its evaluation data (`keel.services.governance.gate_runs`); the
``explanation_drift`` monitor check explains it again on a recent labelled window and compares
the rankings (`keel.services.explanation_drift`).
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from keel.domain.evaluation import TaskType
from keel.domain.explainability import Explanation, not_computed
from keel.domain.policy import DEFAULT_EXPLAIN_BUDGET_S, MIN_REPEATS
from keel.domain.registry import ModelVersion
from keel.errors import InvalidInput, KeelError
from keel.services.evaluation import EVALUABLE_FLAVORS, Evaluation, child_env
from keel.services.evaluation_runner import EXIT_OUT_OF_MEMORY, sha256_file
from keel.services.leftovers import workdir_prefix
from keel.services.sandbox import SandboxLimits, run_sandboxed

BUDGET_ENV = "KEEL_EXPLAIN_BUDGET_S"
_OUTPUT_LIMIT = 64 * 1024
_RESULT_LIMIT = 1 << 20


def default_budget(env: Mapping[str, str] | None = None) -> float:
    """``KEEL_EXPLAIN_BUDGET_S`` when set, else 60 seconds; `InvalidInput` naming the variable
    when it is not a positive number."""
    raw = (os.environ if env is None else env).get(BUDGET_ENV, "").strip()
    if not raw:
        return DEFAULT_EXPLAIN_BUDGET_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise InvalidInput(
            f"{BUDGET_ENV} must be a number of seconds above 0, not {raw!r}. Fix it in the "
            "server's environment, or unset it for the default of 60.",
            {"field": BUDGET_ENV},
        )
    return value


def _env() -> dict[str, str]:
    """One thread for every math library the child may load (BLAS, OpenMP, numba)."""
    threads = ("VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS")
    return {**child_env(), **dict.fromkeys(threads, "1")}


class Explainer:
    """Runs the explanation child for a version on a labelled dataset."""

    def __init__(self, evaluation: Evaluation) -> None:
        self.evaluation = evaluation

    def explain(
        self,
        found: ModelVersion,
        data: pd.DataFrame,
        *,
        task: TaskType,
        target: str,
        n_repeats: int = MIN_REPEATS,
        budget_s: float | None = None,
        shap: bool = True,
        memory_limit_mb: int = 2048,
        load_time_s: float = 300.0,
    ) -> Explanation:
        """Permutation importance (and TreeSHAP) of ``found`` on ``data`` (features + target)."""
        scoring = "accuracy" if task == TaskType.CLASSIFICATION else "r2"
        budget = 0.0
        try:
            budget = default_budget() if budget_s is None else budget_s
        except InvalidInput as exc:
            return not_computed(exc.message, n_repeats=n_repeats, budget_s=0.0, scoring=scoring)

        def failed(reason: str) -> Explanation:
            return not_computed(reason, n_repeats=n_repeats, budget_s=budget, scoring=scoring)

        scan = self.evaluation.scan_report(found.artifact.sha256)
        if scan is None or not scan.safe:
            return failed("the artifact has no clean security scan, so Keel did not load it")
        if found.artifact.flavor not in EVALUABLE_FLAVORS:
            return failed(f"Keel cannot run artifacts of flavor {found.artifact.flavor}")
        if target not in data.columns or data.empty:
            return failed(f"the data has no rows or no target column {target!r}")
        try:
            result = self._run(
                found, data, task, target, n_repeats, budget, shap, memory_limit_mb, load_time_s
            )
        except KeelError as exc:  # a corrupt artifact, no sandbox here: recorded, not raised
            return failed(exc.message)
        if isinstance(result, str):
            return failed(result)
        if result.get("ok") is not True:
            return failed(f"the explanation failed: {str(result.get('message', ''))[:500]}")
        return _checked(result.get("explanation"), set(data.columns), failed)

    def _run(
        self,
        found: ModelVersion,
        data: pd.DataFrame,
        task: TaskType,
        target: str,
        n_repeats: int,
        budget: float,
        shap: bool,
        memory_limit_mb: int,
        load_time_s: float,
    ) -> dict[str, Any] | str:
        """The child's result, or why there is none."""
        with tempfile.TemporaryDirectory(prefix=workdir_prefix("explain")) as tmp:
            workdir = Path(tmp)
            artifacts = self.evaluation.registry.artifacts
            with (workdir / "model.bin").open("wb") as out:
                for chunk in artifacts.iter_verified(found.artifact.sha256):
                    out.write(chunk)
            data.to_parquet(workdir / "data.bin", index=False)
            request = {
                "model_sha256": found.artifact.sha256,
                "data_sha256": sha256_file(workdir / "data.bin"),
                "flavor": str(found.artifact.flavor),
                "features": [c.name for c in found.signature.features],
                "task": str(task),
                "target": target,
                "n_repeats": n_repeats,
                "budget_s": budget,
                "shap": shap,
                "memory_limit_mb": memory_limit_mb,
            }
            (workdir / "request.json").write_text(json.dumps(request))
            ran = run_sandboxed(
                [sys.executable, "-m", "keel.services.explanation_runner", str(workdir)],
                workdir=workdir,
                limits=SandboxLimits(wall_seconds=budget + load_time_s, memory_mb=memory_limit_mb),
                env=_env(),
                output_limit_bytes=_OUTPUT_LIMIT,
            )
            if ran.timed_out:
                return (
                    f"the explanation process was stopped after {budget + load_time_s:g} s "
                    f"(budget {budget:g} s plus {load_time_s:g} s to load the model and data)"
                )
            result = _read_result(workdir / "result.json")
        if result is not None:
            return result
        if ran.returncode == EXIT_OUT_OF_MEMORY:
            return f"the explanation process ran out of memory ({memory_limit_mb} MB)"
        return f"the explanation process died (exit code {ran.returncode}) without a result"


def _read_result(path: Path) -> dict[str, Any] | None:
    """The child's result.json, read as untrusted data (None when missing or unreadable)."""
    try:
        raw = path.read_bytes()[: _RESULT_LIMIT + 1]
        result = json.loads(raw) if len(raw) <= _RESULT_LIMIT else None
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def _checked(raw: Any, columns: set[str], failed: Any) -> Explanation:
    """The child's explanation if it is well-formed: known columns, finite numbers."""
    bad: Explanation = failed("the explanation process handed back malformed evidence")
    if not isinstance(raw, dict):
        return bad
    try:
        explanation = Explanation.from_dict(raw)
    except (KeyError, TypeError, ValueError):
        return bad
    numbers = [v for f in explanation.features for v in (f.mean, f.std, f.shap) if v is not None]
    names = [f.feature for f in explanation.features]
    if (
        not all(math.isfinite(v) for v in numbers)
        or len(set(names)) != len(names)
        or not set(names) <= columns
        or len(explanation.fallbacks) > 10
    ):
        return bad
    return explanation
