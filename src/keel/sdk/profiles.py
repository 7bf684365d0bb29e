"""Upload profiles computed where the data lives (`keel.spark`): methods of `keel.sdk.Client`.

::

    import keel.spark
    reference = keel.spark.profile(spark.read.parquet("training/"))
    keel.upload_reference_profile("churn", 3, reference, source="training/")
    window = keel.spark.profile(spark.table("scored"), reference=keel.reference_profile("churn", 3))
    keel.upload_window_profile("churn", 3, datetime(2026, 5, 1, 13, tzinfo=UTC), window)
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from keel.schemas.profiles import ReferenceProfileIn, WindowProfileIn, WindowProfileOut
from keel.schemas.telemetry import ReferenceOut
from keel.stats.profile import DatasetProfile

M = TypeVar("M", bound=BaseModel)


def _version_path(model: str, version: int) -> str:
    return f"/api/v1/models/{quote(model, safe='')}/versions/{int(version)}"


class ProfileCalls:
    """Ready profiles in and out; mixed into `keel.sdk.Client`."""

    if TYPE_CHECKING:

        def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M: ...

    def upload_reference_profile(
        self, model: str, version: int, profile: DatasetProfile, *, source: str = ""
    ) -> ReferenceOut:
        """Make ``profile`` the version's reference for drift (its stored windows are rebuilt on
        the new bins from their raw rows)."""
        body = ReferenceProfileIn(profile=profile.to_dict(compact=True), source=source)
        path = f"{_version_path(model, version)}/reference/profile"
        return self._call(ReferenceOut, "PUT", path, json=body.model_dump(mode="json"))

    def upload_window_profile(
        self,
        model: str,
        version: int,
        hour: datetime,
        profile: DatasetProfile,
        *,
        batch_id: str | None = None,
    ) -> WindowProfileOut:
        """Merge ``profile`` (made on the current reference's bins) into the window of ``hour``
        (a whole UTC hour). A retry with the same ``batch_id`` (one is made if not given) adds
        nothing twice."""
        body = WindowProfileIn(
            hour=hour, profile=profile.to_dict(compact=True), batch_id=batch_id or uuid.uuid4().hex
        )
        path = f"{_version_path(model, version)}/window-profiles"
        return self._call(WindowProfileOut, "POST", path, json=body.model_dump(mode="json"))

    def reference_profile(self, model: str, version: int) -> DatasetProfile:
        """The version's reference profile, ready for ``keel.spark.profile(df, reference=...)``."""
        found = self._call(ReferenceOut, "GET", f"{_version_path(model, version)}/reference")
        return DatasetProfile.from_dict(found.profile)
