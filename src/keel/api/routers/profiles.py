"""Profiles computed where the data lives (Spark) and uploaded ready: a version's reference, or
one hour's window on the reference's bins.

Both need ``write`` in the model's team, like any telemetry ingest. The profile is untrusted input:
`keel.services.profile_checks` refuses one whose counts do not add up or whose bins are not the
reference's, naming the field.
"""

from __future__ import annotations

from fastapi import APIRouter

from keel.api.deps import Writer
from keel.api.routers import API_PREFIX
from keel.api.routers.telemetry import TelemetryDep
from keel.schemas.base import Id
from keel.schemas.profiles import ReferenceProfileIn, WindowProfileIn, WindowProfileOut
from keel.schemas.telemetry import ReferenceOut
from keel.services.profile_checks import parse_profile

router = APIRouter(prefix=API_PREFIX + "/models/{name}/versions/{version}", tags=["telemetry"])


@router.put(
    "/reference/profile",
    summary="Set the version's reference from a ready profile (e.g. computed on Spark)",
)
def set_reference_profile(
    name: str, version: Id, body: ReferenceProfileIn, telemetry: TelemetryDep, caller: Writer
) -> ReferenceOut:
    telemetry.authorize_write(caller, name)
    reference = telemetry.set_reference_profile(
        caller, name, version, parse_profile(body.profile), source=body.source or "profile upload"
    )
    return ReferenceOut(
        model=name,
        version=version,
        rows=reference.rows,
        columns=list(reference.columns),
        profile=reference.to_dict(),
    )


@router.post(
    "/window-profiles",
    summary="Merge a ready window profile (on the reference's bins) into one hour",
)
def add_window_profile(
    name: str, version: Id, body: WindowProfileIn, telemetry: TelemetryDep, caller: Writer
) -> WindowProfileOut:
    telemetry.authorize_write(caller, name)
    receipt = telemetry.add_window_profile(
        caller, name, version, body.hour, parse_profile(body.profile), batch_id=body.batch_id
    )
    return WindowProfileOut(
        model=name,
        version=version,
        hour=body.hour,
        batch_id=receipt.batch_id,
        rows=receipt.rows,
        replayed=receipt.replayed,
    )
