"""Helpers shared by the bench scripts: memory measurement, child processes, the JSON last line.

Extra peak memory is measured per process from Linux's /proc: a worker resets its peak
resident set (``VmHWM``, by writing 5 to /proc/self/clear_refs) once its inputs are in memory,
reads ``VmRSS`` as the baseline, runs the tool, and reports ``VmHWM - baseline``: the most memory
the tool needed on top of its input data. Each tool runs in its own child process so one tool's
allocations (or allocator caches) never count against the other.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def rss_mb() -> float:
    """Current resident set size, MiB."""
    return _status_kb("VmRSS") / 1024


def peak_rss_mb() -> float:
    """Peak resident set size since the process started or since reset_peak(), MiB."""
    return _status_kb("VmHWM") / 1024


def reset_peak() -> None:
    """Reset the kernel's peak-RSS counter for this process to the current RSS."""
    _CLEAR_REFS.write_text("5")


class PeakMemory:
    """``with PeakMemory() as m: ...`` then ``m.extra_mb``: peak RSS above the start, MiB."""

    def __enter__(self) -> PeakMemory:
        import gc

        gc.collect()
        reset_peak()
        self.baseline_mb = rss_mb()
        self.extra_mb = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.extra_mb = max(0.0, peak_rss_mb() - self.baseline_mb)


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn`` once; return its result and the wall time in seconds."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def emit(figures: dict[str, Any]) -> None:
    """Print the figures as ONE line of JSON: the last line of a bench's (or worker's) output."""
    print(json.dumps(figures, sort_keys=True), flush=True)


def run_worker(script: Path, args: Sequence[str], *, timeout: float = 3600) -> dict[str, Any]:
    """Run ``python script *args`` in a child process; return the JSON object on its last line.

    The child's other output (progress, messages) is passed through to our stderr.
    """
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    for line in lines[:-1]:
        print(f"  | {line}", file=sys.stderr)
    if proc.stderr.strip():
        for line in proc.stderr.strip().splitlines()[-20:]:
            print(f"  ! {line}", file=sys.stderr)
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker {args} failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result
