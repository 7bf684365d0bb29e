"""Evaluation data and artifact scans, as `Client` methods."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from keel.errors import InvalidInput
from keel.schemas.evaluation import EvaluationDatasetOut, ScanReportOut

if TYPE_CHECKING:
    import pandas as pd

M = TypeVar("M", bound=BaseModel)
_API = "/api/v1"


def _version_path(model: str, version: int) -> str:
    return f"{_API}/models/{quote(model, safe='')}/versions/{version}"


class EvaluationMixin:
    """Evaluation data and scans; mixed into `keel.sdk.Client`."""

    if TYPE_CHECKING:

        def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M: ...
        def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...

    def attach_evaluation_data(
        self, model: str, version: int, data: pd.DataFrame | str | os.PathLike[str]
    ) -> EvaluationDatasetOut:
        """Attach the labelled data ``version`` is evaluated on: a DataFrame (sent as Parquet)
        or the path of a ``.parquet`` / ``.csv`` file. Its columns must be the signature's
        features, target and protected attributes; the server refuses anything else (422)."""
        if isinstance(data, str | os.PathLike):
            path = Path(data)
            try:
                content = path.read_bytes()
            except OSError as exc:
                raise InvalidInput(
                    f"Cannot read the evaluation data file {str(path)!r}: {exc.strerror}.",
                    {"field": "data"},
                ) from None
            name = path.name
        elif hasattr(data, "to_parquet"):
            buffer = io.BytesIO()
            data.to_parquet(buffer, index=False)
            content, name = buffer.getvalue(), "evaluation.parquet"
        else:
            raise InvalidInput(
                "data must be a pandas DataFrame or the path of a .parquet or .csv file.",
                {"field": "data"},
            )
        return self._call(
            EvaluationDatasetOut,
            "PUT",
            f"{_version_path(model, version)}/evaluation-data",
            files={"file": (name, content, "application/octet-stream")},
        )

    def evaluation_data(self, model: str, version: int) -> EvaluationDatasetOut:
        """The record of the evaluation data attached to ``version`` (`NotFound` if none)."""
        return self._call(
            EvaluationDatasetOut, "GET", f"{_version_path(model, version)}/evaluation-data"
        )

    def scan_report(self, model: str, version: int) -> ScanReportOut:
        """The security scan made when ``version``'s artifact was uploaded."""
        return self._call(ScanReportOut, "GET", f"{_version_path(model, version)}/scan")
