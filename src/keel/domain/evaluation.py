"""Evaluation vocabulary: artifact scans, evaluation datasets, what to evaluate and the report.

Keel computes a version's metrics itself, in a separate process, on the evaluation dataset
attached to the version; these types are what goes in and what comes back. Stdlib only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from keel.domain.signature import ColumnRole, ColumnType, Signature
from keel.errors import InvalidInput

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "mape", "r2")


class TaskType(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


@dataclass(frozen=True)
class ScanFinding:
    """One thing the scanner reports; ``severity`` is named as the scanner names it."""

    severity: str
    message: str


@dataclass(frozen=True)
class ScanReport:
    """The static scan of one artifact's bytes (by SHA-256), made once at upload."""

    sha256: str
    scanner: str
    scanner_version: str
    safe: bool
    findings: tuple[ScanFinding, ...]
    scanned_at: datetime


@dataclass(frozen=True)
class EvaluationDataset:
    """The labelled data a version is evaluated on, stored by its SHA-256."""

    model: str
    version: int
    sha256: str
    format: str
    rows: int
    columns: tuple[str, ...]
    uploaded_by: str
    uploaded_at: datetime


@dataclass(frozen=True)
class EvaluationSpec:
    """What to compute: the task, the label column, and the groups to break results down by."""

    task: TaskType
    target: str
    protected: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    positive_label: str | None = None  # None: the larger label when binary
    min_group_size: int = 30
    time_limit_s: float = 300.0
    memory_limit_mb: int = 2048

    def __post_init__(self) -> None:
        if not self.target.strip():
            raise InvalidInput("The evaluation 'target' must name a column.", {"field": "target"})
        if self.min_group_size < 1:
            raise InvalidInput("'min_group_size' must be at least 1.", {"field": "min_group_size"})
        if self.time_limit_s <= 0:
            raise InvalidInput("'time_limit_s' must be positive.", {"field": "time_limit_s"})
        if self.memory_limit_mb < 64:
            raise InvalidInput(
                "'memory_limit_mb' must be at least 64 (the interpreter and scikit-learn need it).",
                {"field": "memory_limit_mb"},
            )

    @classmethod
    def from_signature(
        cls,
        signature: Signature,
        *,
        segments: Sequence[str] = (),
        min_group_size: int = 30,
        positive_label: str | None = None,
        time_limit_s: float = 300.0,
        memory_limit_mb: int = 2048,
    ) -> EvaluationSpec:
        """The spec a signature implies: its target column, its protected attributes.

        The task is regression when the target is a float column, classification otherwise.

        >>> from keel.domain.signature import Column
        >>> sig = Signature((Column("age", ColumnType.INTEGER),
        ...                  Column("sex", ColumnType.STRING, ColumnRole.PROTECTED_ATTRIBUTE),
        ...                  Column("y", ColumnType.BOOLEAN, ColumnRole.TARGET)))
        >>> spec = EvaluationSpec.from_signature(sig)
        >>> spec.task, spec.target, spec.protected
        (<TaskType.CLASSIFICATION: 'classification'>, 'y', ('sex',))
        """
        targets = signature.with_role(ColumnRole.TARGET)
        if not targets:
            raise InvalidInput(
                "The version's signature has no target column, so Keel cannot tell what to "
                "score predictions against. Register the version with one column whose role is "
                "'target'.",
                {"field": "signature.columns", "role": "target"},
            )
        if len(targets) > 1:
            raise InvalidInput(
                "The version's signature has several target columns "
                f"({', '.join(c.name for c in targets)}); evaluation needs exactly one.",
                {"field": "signature.columns", "role": "target"},
            )
        target = targets[0]
        known = {c.name for c in signature.columns}
        for segment in segments:
            if segment not in known:
                raise InvalidInput(
                    f"The segment column {segment!r} is not in the version's signature. "
                    f"Choose one of: {', '.join(sorted(known))}.",
                    {"field": "segments", "column": segment},
                )
        regression = target.dtype == ColumnType.FLOAT
        return cls(
            task=TaskType.REGRESSION if regression else TaskType.CLASSIFICATION,
            target=target.name,
            protected=tuple(c.name for c in signature.with_role(ColumnRole.PROTECTED_ATTRIBUTE)),
            segments=tuple(segments),
            positive_label=positive_label,
            min_group_size=min_group_size,
            time_limit_s=time_limit_s,
            memory_limit_mb=memory_limit_mb,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": str(self.task),
            "target": self.target,
            "protected": list(self.protected),
            "segments": list(self.segments),
            "positive_label": self.positive_label,
            "min_group_size": self.min_group_size,
            "time_limit_s": self.time_limit_s,
            "memory_limit_mb": self.memory_limit_mb,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvaluationSpec:
        return cls(
            task=TaskType(d["task"]),
            target=str(d["target"]),
            protected=tuple(d.get("protected", ())),
            segments=tuple(d.get("segments", ())),
            positive_label=d.get("positive_label"),
            min_group_size=int(d.get("min_group_size", 30)),
            time_limit_s=float(d.get("time_limit_s", 300.0)),
            memory_limit_mb=int(d.get("memory_limit_mb", 2048)),
        )


@dataclass(frozen=True)
class GroupRates:
    """One group of a protected attribute: its size and rates (None where undefined)."""

    group: str
    count: int
    selection_rate: float | None
    tpr: float | None
    fpr: float | None
    too_small: bool


@dataclass(frozen=True)
class FairnessResult:
    """Group rates and the disparities between them, for one protected attribute.

    Groups below ``min_group_size`` are listed in ``too_small_groups`` and left out of the three
    differences: reported, never silently passed.
    """

    attribute: str
    groups: tuple[GroupRates, ...]
    demographic_parity_difference: float | None
    equalized_odds_difference: float | None
    disparate_impact_ratio: float | None  # min selection rate / max selection rate
    too_small_groups: tuple[str, ...]


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class EvaluationReport:
    """What Keel measured: overall metrics, per-segment metrics and fairness per attribute."""

    task: TaskType
    rows: int
    metrics: Mapping[str, float]
    segments: Mapping[str, Mapping[str, Mapping[str, float]]]  # column -> group -> metric -> value
    fairness: tuple[FairnessResult, ...]
    duration_s: float
    sandbox: str = ""  # what isolated the model while it ran ("bubblewrap", "none")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (round-trips through `from_dict`)."""
        return {
            "task": str(self.task),
            "rows": self.rows,
            "metrics": dict(self.metrics),
            "segments": {
                col: {grp: dict(vals) for grp, vals in groups.items()}
                for col, groups in self.segments.items()
            },
            "fairness": [
                {
                    "attribute": f.attribute,
                    "groups": [
                        {
                            "group": g.group,
                            "count": g.count,
                            "selection_rate": g.selection_rate,
                            "tpr": g.tpr,
                            "fpr": g.fpr,
                            "too_small": g.too_small,
                        }
                        for g in f.groups
                    ],
                    "demographic_parity_difference": f.demographic_parity_difference,
                    "equalized_odds_difference": f.equalized_odds_difference,
                    "disparate_impact_ratio": f.disparate_impact_ratio,
                    "too_small_groups": list(f.too_small_groups),
                }
                for f in self.fairness
            ],
            "duration_s": self.duration_s,
            "sandbox": self.sandbox,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvaluationReport:
        return cls(
            task=TaskType(d["task"]),
            rows=int(d["rows"]),
            metrics={str(k): float(v) for k, v in d["metrics"].items()},
            segments={
                str(col): {
                    str(grp): {str(m): float(v) for m, v in vals.items()}
                    for grp, vals in groups.items()
                }
                for col, groups in d.get("segments", {}).items()
            },
            fairness=tuple(
                FairnessResult(
                    attribute=str(f["attribute"]),
                    groups=tuple(
                        GroupRates(
                            group=str(g["group"]),
                            count=int(g["count"]),
                            selection_rate=_opt(g.get("selection_rate")),
                            tpr=_opt(g.get("tpr")),
                            fpr=_opt(g.get("fpr")),
                            too_small=bool(g["too_small"]),
                        )
                        for g in f["groups"]
                    ),
                    demographic_parity_difference=_opt(f.get("demographic_parity_difference")),
                    equalized_odds_difference=_opt(f.get("equalized_odds_difference")),
                    disparate_impact_ratio=_opt(f.get("disparate_impact_ratio")),
                    too_small_groups=tuple(str(g) for g in f.get("too_small_groups", ())),
                )
                for f in d.get("fairness", ())
            ),
            duration_s=float(d.get("duration_s", 0.0)),
            sandbox=str(d.get("sandbox", "")),
        )
