"""Costs and budgets as `Client` methods: import FOCUS bills, read allocations, set budgets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from keel.errors import InvalidInput, TransportError
from keel.schemas.costs import (
    BudgetAlertOut,
    BudgetIn,
    BudgetOut,
    BudgetStatusOut,
    CostImportOut,
    GcOut,
    MonthCostOut,
    TrainingRunCostOut,
    UnitCostOut,
    WasteFindingOut,
)
from keel.sdk.artifacts import Progress

M = TypeVar("M", bound=BaseModel)
_API = "/api/v1"
_MEDIA = {".csv": "text/csv", ".parquet": "application/vnd.apache.parquet"}


def _chunks(handle: IO[bytes], progress: Progress | None) -> Iterator[bytes]:
    """The file in 1 MiB pieces, streamed (a bill can be large), telling ``progress``."""
    while chunk := handle.read(1 << 20):
        if progress is not None:
            progress(len(chunk))
        yield chunk


class CostCalls:
    """Costs and budgets; mixed into `keel.sdk.Client`."""

    if TYPE_CHECKING:

        def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M: ...
        def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...
        def _parse(self, model: type[M], data: Any) -> M: ...
        def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...

    def _list(self, model: type[M], path: str, **kwargs: Any) -> list[M]:
        data = self._json("GET", path, **kwargs)
        if not isinstance(data, list):
            raise TransportError(f"The server answered a list with {data!r:.200}.")
        return [self._parse(model, item) for item in data]

    def import_costs(
        self, path: str | os.PathLike[str], *, progress: Progress | None = None
    ) -> CostImportOut:
        """Import a FOCUS 1.0-1.2 export (``.csv`` or ``.parquet``; admins). The same file again
        imports nothing (``replayed``); a malformed one raises `keel.errors.InvalidInput`
        naming its row and column, and nothing is written. ``progress`` gets bytes sent."""
        file = Path(path)
        media = _MEDIA.get(file.suffix.lower())
        if media is None:
            raise InvalidInput(
                f"{file.name!r}: a FOCUS file must end in .csv or .parquet.", {"field": "path"}
            )
        with file.open("rb") as handle:
            return self._call(
                CostImportOut,
                "POST",
                f"{_API}/costs/imports",
                content=_chunks(handle, progress),
                headers={"Content-Type": media},
                params={"filename": file.name},
            )

    def cost_imports(self) -> list[CostImportOut]:
        return self._list(CostImportOut, f"{_API}/costs/imports")

    def month_cost(
        self, month: str, *, model: str | None = None, team: str | None = None
    ) -> MonthCostOut:
        """The month's (YYYY-MM) cost for a model, a team or everything, with its allocations."""
        params = {"month": month, "model": model, "team": team}
        return self._call(
            MonthCostOut,
            "GET",
            f"{_API}/costs",
            params={k: v for k, v in params.items() if v is not None},
        )

    def cost_settings(self) -> dict[str, str]:
        return dict(self._json("GET", f"{_API}/costs/settings"))

    def configure_costs(self, **settings: str | Decimal) -> dict[str, str]:
        """Tag keys (model_tag, team_tag, pool_tag), currency, or unit prices (vcpu_hour,
        gpu_hour, gb_month, per_thousand_predictions); admins."""
        body = {k: str(v) for k, v in settings.items()}
        return dict(self._json("PUT", f"{_API}/costs/settings", json=body))

    def split_rules(self) -> dict[str, str]:
        return dict(self._json("GET", f"{_API}/costs/split-rules"))

    def set_split_rule(self, pool: str, rule: str | None) -> dict[str, str]:
        """Split ``pool``'s untagged cost by predictions, compute_seconds or even (None: keep
        it unallocated); pool ``*`` covers every pool without a rule."""
        path = f"{_API}/costs/split-rules/{quote(pool, safe='')}"
        return dict(self._json("PUT", path, json={"rule": rule}))

    def cost_per_thousand_predictions(
        self, model: str, day: date, version: int | None = None
    ) -> UnitCostOut:
        params: dict[str, Any] = {"model": model, "day": day.isoformat()}
        if version is not None:
            params["version"] = version
        return self._call(UnitCostOut, "GET", f"{_API}/costs/unit-economics", params=params)

    def training_costs(self, model: str, month: str) -> list[TrainingRunCostOut]:
        path = f"{_API}/models/{quote(model, safe='')}/training-costs"
        return self._list(TrainingRunCostOut, path, params={"month": month})

    def export_metering(self, month: str) -> bytes:
        """Keel's own cost rows of the month as FOCUS CSV bytes."""
        return self._send("GET", f"{_API}/costs/metering.csv", params={"month": month}).content

    def waste(self) -> list[WasteFindingOut]:
        return self._list(WasteFindingOut, f"{_API}/costs/waste")

    def collect_garbage(self, *, dry_run: bool = True, retention_days: int = 7) -> GcOut:
        """Delete (``dry_run``: list) artifact blobs no version references; admins, audited."""
        body = {"dry_run": dry_run, "retention_days": retention_days}
        return self._call(GcOut, "POST", f"{_API}/gc", json=body)

    # -- budgets -------------------------------------------------------------------------------

    def budgets(self) -> list[BudgetOut]:
        return self._list(BudgetOut, f"{_API}/budgets")

    def set_budget(
        self,
        scope: str,
        amount: Decimal | str | int,
        *,
        target: str | None = None,
        thresholds: list[int] | None = None,
    ) -> BudgetOut:
        """A monthly budget for a model, a team or the portfolio (thresholds in %)."""
        body = BudgetIn(
            scope=scope, target=target, amount=Decimal(str(amount)), thresholds=thresholds
        )
        return self._call(BudgetOut, "PUT", f"{_API}/budgets", json=body.model_dump(mode="json"))

    def delete_budget(self, budget_id: int) -> BudgetOut:
        return self._call(BudgetOut, "DELETE", f"{_API}/budgets/{int(budget_id)}")

    def budget_status(self, month: str, *, as_of: date | None = None) -> list[BudgetStatusOut]:
        params = {"month": month} | ({"as_of": as_of.isoformat()} if as_of else {})
        return self._list(BudgetStatusOut, f"{_API}/budgets/status", params=params)

    def check_budgets(self, month: str, *, as_of: date | None = None) -> list[BudgetAlertOut]:
        params = {"month": month} | ({"as_of": as_of.isoformat()} if as_of else {})
        data = self._json("POST", f"{_API}/budgets/check", params=params)
        return [self._parse(BudgetAlertOut, item) for item in data]
