"""Temporary files a killed Keel process left behind, removed when Keel starts.

A process killed mid-write (``kill -9``, out of memory, power loss) cannot clean up after
itself. At start-up `remove_leftovers` deletes only Keel's own temporary names, and only those
last written before this process started, so a file another live process is writing is left
alone:

- partial artifact uploads and readiness probes under the artifact store's ``incoming/``;
- hidden ``.part-*.tmp`` files in telemetry partitions;
- evaluation, explanation and model-worker directories (``keel-eval-<pid>-*``,
  ``keel-explain-<pid>-*``, ``keel-serve-<pid>-*``) in the system temporary directory, and only
  when process ``<pid>`` is gone (another Keel may be evaluating or serving right now).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from keel.store.artifacts import ArtifactStore
from keel.store.telemetry import TelemetryFiles

log = logging.getLogger("keel.leftovers")
_WORKDIR = re.compile(r"keel-(?:eval|serve|explain)-(\d+)-")


def workdir_prefix(kind: str) -> str:
    """The prefix of a work directory this process makes (``keel-eval-<pid>-``)."""
    return f"keel-{kind}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_workdirs(before: datetime, root: Path | None = None) -> list[str]:
    """Delete work directories of dead Keel processes, last written before ``before``."""
    base = Path(root or tempfile.gettempdir())
    removed: list[str] = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for path in entries:
        found = _WORKDIR.match(path.name)
        if found is None or int(found.group(1)) == os.getpid() or _alive(int(found.group(1))):
            continue
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if not path.is_dir() or info.st_uid != os.getuid() or info.st_mtime >= before.timestamp():
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(str(path))
    return removed


def remove_leftovers(
    artifacts: ArtifactStore, telemetry: TelemetryFiles, before: datetime
) -> list[str]:
    """Every leftover temporary file or directory removed (see the module docstring)."""
    removed = [
        *artifacts.remove_leftovers(before),
        *telemetry.remove_leftovers(before),
        *remove_workdirs(before),
    ]
    if removed:
        log.warning("removed %d temporary files left by a stopped Keel process", len(removed))
    return removed
