"""The audit key file and the checkpoint file: the two things that must live outside the database.

- The key: 64 hex characters (32 random bytes) in a file of mode 0600, created on the first start
  at the default place, ``<data dir>/audit-key``, or read from ``KEEL_AUDIT_KEY_FILE``.
- The checkpoints: one signed checkpoint per line (JSON) in ``audit-checkpoints.jsonl``, only
  ever appended to, in ``<data dir>/audit-checkpoints/`` or ``KEEL_AUDIT_CHECKPOINT_DIR``.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from keel.domain.audit_checkpoints import KEY_BYTES, AuditKey, Checkpoint
from keel.errors import KeelError

CHECKPOINT_FILE = "audit-checkpoints.jsonl"


class AuditKeyUnusable(KeelError):
    """The audit key file is missing or unreadable: the server cannot sign or verify."""

    code = "audit_key_unusable"
    status = 500


class CheckpointFileDamaged(KeelError):
    """A line of the checkpoint file is not a checkpoint at all (edited by hand)."""

    code = "audit_checkpoint_damaged"
    status = 500


def create_key(path: Path) -> AuditKey:
    """Write a new random key; refuses to overwrite one (``FileExistsError``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created with 0600 from the start: no moment where another user could read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    secret = secrets.token_bytes(KEY_BYTES)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret.hex() + "\n")
    return AuditKey(secret)


def read_key(path: Path) -> AuditKey:
    """The key in ``path``; `AuditKeyUnusable` says what is wrong and how to fix it."""
    fix = (
        "Point KEEL_AUDIT_KEY_FILE at the key file this Keel signed its audit trail with "
        "(64 hex characters), or unset it to use <data dir>/audit-key."
    )
    try:
        raw = path.read_text().strip()
    except FileNotFoundError:
        raise AuditKeyUnusable(
            f"The audit key file {path} does not exist. {fix}", {"path": str(path)}
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditKeyUnusable(
            f"The audit key file {path} cannot be read ({exc.__class__.__name__}). {fix}",
            {"path": str(path)},
        ) from None
    try:
        secret = bytes.fromhex(raw)
    except ValueError:
        secret = b""
    if len(secret) < KEY_BYTES:
        raise AuditKeyUnusable(
            f"The audit key file {path} does not hold a key of at least {KEY_BYTES} bytes "
            f"written as hex. {fix}",
            {"path": str(path)},
        )
    return AuditKey(secret)


def open_key(path: Path, *, create: bool) -> AuditKey:
    """Read the key, or create it first when ``create`` and there is none yet."""
    if create and not path.exists():
        try:
            return create_key(path)
        except FileExistsError:  # another process created it first
            pass
    return read_key(path)


class CheckpointFile:
    """Signed checkpoints, appended one JSON line at a time and never rewritten by Keel."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / CHECKPOINT_FILE

    def append(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(checkpoint.to_json(), sort_keys=True) + "\n").encode()
        # One write to an O_APPEND file: concurrent writers (API and worker) never interleave.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[Checkpoint]:
        """Every checkpoint, oldest first; `CheckpointFileDamaged` names a line that is not one."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        checkpoints = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                checkpoints.append(Checkpoint.from_json(json.loads(line)))
            except ValueError as exc:
                raise CheckpointFileDamaged(
                    f"Line {number} of {self.path} is not a checkpoint ({exc}): the checkpoint "
                    "file was edited.",
                    {"path": str(self.path), "line": number},
                ) from None
        return checkpoints
