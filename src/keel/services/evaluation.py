"""Evaluation: the data a version is judged on, its security scan, and Keel's own metrics.

Skeleton first (names fixed for governance); the bodies follow.
"""

from __future__ import annotations

from typing import BinaryIO

from keel.domain.evaluation import EvaluationDataset, EvaluationReport, EvaluationSpec, ScanReport
from keel.domain.permissions import Principal


class Evaluation:
    """Evaluation datasets, scan reports and sandboxed evaluation runs."""

    def scan_report(self, sha256: str) -> ScanReport | None:
        """The stored security scan of the artifact with this SHA-256, if any."""
        raise NotImplementedError

    def dataset(self, model: str, version: int) -> EvaluationDataset | None:
        """The evaluation dataset attached to a version, if any."""
        raise NotImplementedError

    def attach_dataset(
        self, by: Principal, model: str, version: int, stream: BinaryIO, filename: str
    ) -> EvaluationDataset:
        """Validate a Parquet or CSV file against the version's signature and attach it."""
        raise NotImplementedError

    def evaluate(
        self,
        model: str,
        version: int,
        spec: EvaluationSpec,
        *,
        data_of_version: int | None = None,
    ) -> EvaluationReport:
        """Run ``version``'s artifact on the evaluation data of ``data_of_version`` (default: the
        same version) in a separate process under ``spec``'s time and memory limits.

        Raises `UnsafeArtifact` when the artifact has no scan or an unsafe one (it is never
        loaded), `EvaluationFailed` with the child's error otherwise.
        """
        raise NotImplementedError
