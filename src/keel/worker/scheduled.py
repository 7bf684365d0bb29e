"""A piece of scheduled work: a name, a period, and what to run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Job:
    name: str
    every_seconds: float
    run: Callable[[], None]
