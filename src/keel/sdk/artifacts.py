"""Artifact files on the client side: what is uploaded, and downloads checked before they land."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import httpx

from keel.domain.model_formats import TRUSTED_SKOPS_TYPES, keel_untrusted
from keel.errors import ArtifactCorrupted, InvalidInput

_CHUNK = 1024 * 1024

Progress = Callable[[int], None]
"""Called with the number of artifact bytes just sent, as an upload goes."""


class ReportingReader:
    """A binary file that tells ``progress`` how many bytes each read handed to the upload."""

    def __init__(self, handle: IO[bytes], progress: Progress) -> None:
        self._handle = handle
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        if chunk:
            self._progress(len(chunk))
        return chunk

    def fileno(self) -> int:  # lets httpx announce the Content-Length
        return self._handle.fileno()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()


ArtifactFormat = Literal["skops", "joblib"]
ARTIFACT_FORMATS: tuple[str, ...] = ("skops", "joblib")


@contextlib.contextmanager
def artifact_file(artifact: object, format: ArtifactFormat | None = None) -> Iterator[Path]:
    """The artifact as a file on disk: the path given, or the object saved in ``format``.

    ``format=None`` (the default) saves a scikit-learn estimator with skops when it round-trips
    with the types Keel trusts, so the server can load it without running code; anything else
    is saved with joblib (a pickle, which Keel loads only inside its sandbox), with a warning.
    """
    if format is not None and format not in ARTIFACT_FORMATS:
        raise InvalidInput(
            f"format must be one of {', '.join(ARTIFACT_FORMATS)}, not {format!r}.",
            {"field": "format"},
        )
    if isinstance(artifact, str | os.PathLike):
        path = Path(artifact)
        if not path.is_file():
            raise InvalidInput(
                f"The artifact {str(path)!r} is not a file. Pass a fitted model or a model file.",
                {"field": "artifact"},
            )
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="keel-artifact-") as tmp:
        if format != "joblib":
            problem = _skops_problem(artifact)
            if problem is None:
                path = Path(tmp) / "model.skops"
                import skops.io  # type: ignore[import-untyped,unused-ignore]

                skops.io.dump(artifact, path)
                yield path
                return
            if format == "skops":
                raise InvalidInput(
                    f"The artifact cannot be saved with skops: {problem}. Use format='joblib' "
                    "(Keel then loads it only inside its sandbox).",
                    {"field": "format"},
                )
            warnings.warn(
                f"Saving the model with joblib, not skops ({problem}): Keel will load it only "
                "inside its sandbox. Save it with skops or as ONNX to have it load without "
                "running code.",
                stacklevel=4,
            )
        path = Path(tmp) / "model.joblib"
        import joblib  # only when an object (not a file) is registered: it pulls in NumPy

        try:
            joblib.dump(artifact, path)
        except Exception as exc:  # pickling runs arbitrary user code; any failure means the same
            raise InvalidInput(
                f"The artifact ({type(artifact).__name__}) could not be serialised with joblib: "
                f"{exc}",
                {"field": "artifact"},
            ) from exc
        yield path


def _skops_problem(artifact: object) -> str | None:
    """Why ``artifact`` does not round-trip through skops with Keel's trusted types (or None)."""
    module = type(artifact).__module__
    if not module.startswith("sklearn."):
        return f"{type(artifact).__name__} is not a scikit-learn estimator"
    try:
        import skops.io  # type: ignore[import-untyped,unused-ignore]

        data = skops.io.dumps(artifact)
        untrusted = keel_untrusted(skops.io.get_untrusted_types(data=data))
        if untrusted:
            return f"it holds types Keel does not trust ({', '.join(untrusted)})"
        loaded = skops.io.loads(data, trusted=list(TRUSTED_SKOPS_TYPES))
    except Exception as exc:  # skops raises many kinds for objects it cannot represent
        return f"skops could not save it ({type(exc).__name__}: {exc})"
    if type(loaded) is not type(artifact):
        return f"it came back as {type(loaded).__name__}"
    return None


def file_sha256(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(_CHUNK), b""):
        digest.update(chunk)
    handle.seek(0)
    return digest.hexdigest()


def download_target(path: str | os.PathLike[str], filename: str) -> Path:
    target = Path(path)
    wants_folder = os.fspath(path).endswith(("/", os.sep))
    if target.is_dir():
        # The registered filename came from a client; keep only its last component.
        return target / (Path(filename).name or "artifact")
    if wants_folder or not target.parent.is_dir():
        folder = target if wants_folder else target.parent
        raise InvalidInput(
            f"Cannot write the artifact to {os.fspath(path)!r}: "
            f"the folder {str(folder)!r} does not exist.",
            {"field": "path"},
        )
    return target


@dataclass(frozen=True)
class ExpectedHash:
    """What a downloaded artifact must hash to: the registry's record and the server's header."""

    model: str
    version: int
    recorded: str
    served: str | None = None

    def check(self, actual: str) -> None:
        """Raise `ArtifactCorrupted` unless ``actual`` matches both."""
        if actual == self.recorded and (self.served is None or self.served.lower() == actual):
            return
        announced = f" and the server announced {self.served}" if self.served is not None else ""
        raise ArtifactCorrupted(
            f"The artifact of {self.model} version {self.version} failed its integrity check: "
            f"the bytes received hash to {actual}, the registry recorded {self.recorded}"
            f"{announced}. Nothing was kept; try again, and report it if it persists.",
            {
                "model": self.model,
                "version": self.version,
                "expected": self.recorded,
                "actual": actual,
            },
        )


def read_verified(response: httpx.Response, expected: ExpectedHash) -> bytes:
    data = response.read()
    expected.check(hashlib.sha256(data).hexdigest())
    return data


def write_verified(response: httpx.Response, target: Path, expected: ExpectedHash) -> Path:
    """Stream the body to ``target`` through a temporary file renamed only once it checks out."""
    digest = hashlib.sha256()
    # Opened like any new file (so it gets the usual permissions), under a name no one else uses.
    temp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.part")
    try:
        with temp.open("xb") as out:
            for chunk in response.iter_bytes(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        expected.check(digest.hexdigest())
        temp.replace(target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target
