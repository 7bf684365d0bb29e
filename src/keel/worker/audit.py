"""The worker's audit checkpoint job: sign the chain's head every few minutes and export it.

A checkpoint bounds what an attacker with write access to the database can hide: deleting events
up to the newest checkpoint is caught by `keel audit verify`, so the interval
(``KEEL_AUDIT_CHECKPOINT_MINUTES``) is the window in which the newest events could vanish unseen.
"""

from __future__ import annotations

import logging

from keel.errors import Conflict
from keel.services.audit import AuditTrail
from keel.worker.scheduled import Job

log = logging.getLogger("keel.worker.audit")


def checkpoint_job(audit: AuditTrail, *, every_minutes: int) -> Job:
    """A `Job` that writes a signed checkpoint when the head moved since the last one."""

    def run() -> None:
        try:
            checkpoint = audit.checkpoint_if_moved()
        except Conflict as refused:
            # A chain that does not verify gets no checkpoint: signing it would launder the
            # tampering. Said loudly, every interval, until someone runs `keel audit verify`.
            log.error("audit checkpoint refused: %s", refused.message)
            return
        if checkpoint is not None:
            log.info("audit checkpoint at event %d", checkpoint.seq)

    return Job("audit-checkpoint", every_minutes * 60.0, run)
