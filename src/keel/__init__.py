"""Keel: the MLOps control plane.

The Python client is here: ``keel.Client`` (see `keel.sdk`). It is imported on first use, so
that the server and the CLI do not pay for the client's dependencies when they do not use it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.sdk import Client, ModelVersion

try:
    __version__ = version("keel-mlops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["Client", "ModelVersion", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Client", "ModelVersion"):
        from keel import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'keel' has no attribute {name!r}")
