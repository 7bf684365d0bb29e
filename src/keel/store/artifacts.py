"""The content-addressed artifact store: bytes kept under their SHA-256, on a local disk or S3.

Layout under the root URL: ``<root>/sha256/<first 2 hex>/<64 hex>``. Uploads are written under
``<root>/incoming/`` and appear at their final address only once complete, so no reader ever sees
a partial object there. Every read is verified against its address before it is handed out.

>>> import tempfile
>>> home = tempfile.TemporaryDirectory()
>>> store = ArtifactStore(home.name)
>>> stored = store.put_bytes(b"model weights", max_bytes=1024)
>>> stored.size
13
>>> with store.open_verified(stored.sha256) as f:
...     f.read()
b'model weights'
>>> home.cleanup()
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import fsspec
from fsspec.implementations.local import LocalFileSystem

from keel.errors import ArtifactCorrupted, InvalidInput, NotFound, NotReady, PayloadTooLarge

__all__ = ["ArtifactStore", "StoredArtifact"]

_CHUNK = 1 << 20
# Verified copies up to this size stay in memory; larger ones spill to a local temporary file.
_SPOOL_IN_MEMORY = 16 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SECRET_WORDS = ("key", "secret", "token", "password", "credential")


@dataclass(frozen=True)
class StoredArtifact:
    """Where an artifact landed: its address (lowercase hex SHA-256) and its size in bytes."""

    sha256: str
    size: int


class ArtifactStore:
    """Keep and hand back artifacts by SHA-256 under ``url`` (a directory or ``s3://bucket/prefix``).

    ``storage_options`` go to fsspec as they are (for S3, e.g.
    ``{"client_kwargs": {"endpoint_url": ...}}``); they may hold credentials, so the store never
    shows them: ``repr`` and error messages name the URL only.
    """

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        options = dict(storage_options or {})
        self._url = url
        self._secrets = _secret_values(options)
        # This store owns its filesystem object, with no listing cache: an object replaced or
        # deleted behind our back (tampering, retention in another process) must be seen at once.
        options.setdefault("skip_instance_cache", True)
        options.setdefault("use_listings_cache", False)
        self._fs, root = fsspec.core.url_to_fs(url, **options)
        self._root: str = root.rstrip("/")
        self._local = isinstance(self._fs, LocalFileSystem)

    @property
    def url(self) -> str:
        """The root URL, as configured."""
        return self._url

    def __repr__(self) -> str:
        return f"ArtifactStore({self._url!r})"

    def put(self, stream: BinaryIO, *, max_bytes: int) -> StoredArtifact:
        """Store what ``stream`` yields, reading it in chunks; same content, same address.

        Raises ``PayloadTooLarge`` once more than ``max_bytes`` arrive (nothing is kept) and
        ``InvalidInput`` for an empty stream. Storing content that is already there is a no-op.
        """
        if max_bytes <= 0:
            raise InvalidInput(f"max_bytes must be > 0. Got {max_bytes} instead.")
        if self._local:
            return self._put_local(stream, max_bytes)
        tmp = f"{self._root}/incoming/{uuid.uuid4().hex}.part"
        # On failure the with-block still closes (so uploads) the partial temporary object; it only
        # ever lives under incoming/, and the finally-clause removes it.
        try:
            with self._fs.open(tmp, "wb") as out:
                stored = _copy_hashing(stream, out, max_bytes)
            final = self._object_path(stored.sha256)
            if not self._fs.exists(final):
                # A server-side copy publishes the object whole or not at all; if two uploads of
                # the same content race here, both write identical bytes.
                self._fs.cp_file(tmp, final)
            return stored
        finally:
            with contextlib.suppress(FileNotFoundError):
                self._fs.rm_file(tmp)

    def put_bytes(self, data: bytes, *, max_bytes: int) -> StoredArtifact:
        """Store ``data``; see :meth:`put`."""
        return self.put(io.BytesIO(data), max_bytes=max_bytes)

    def _put_local(self, stream: BinaryIO, max_bytes: int) -> StoredArtifact:
        # The temporary file lives under the root so os.replace stays on one filesystem (atomic).
        tmp_dir = Path(self._root) / "incoming"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                stored = _copy_hashing(stream, out, max_bytes)
                out.flush()
                # Durable before it is visible: a crash after the rename must not expose a hole.
                os.fsync(out.fileno())
            final = Path(self._object_path(stored.sha256))
            if not final.exists():
                final.parent.mkdir(parents=True, exist_ok=True)
                tmp.replace(final)
                _fsync_dir(final.parent)
            return stored
        finally:
            tmp.unlink(missing_ok=True)

    def remove_leftovers(self, before: datetime) -> list[str]:
        """Delete what a killed process left under ``incoming/``: partial uploads (``*.part``)
        and readiness probes (``ready-*``) last written before ``before``; nothing else is
        touched. Local stores only: on S3, give ``incoming/`` a lifecycle rule."""
        incoming = Path(self._root) / "incoming"
        if not self._local or not incoming.is_dir():
            return []
        removed: list[str] = []
        for path in incoming.iterdir():
            if not (path.name.endswith(".part") or path.name.startswith("ready-")):
                continue
            with contextlib.suppress(FileNotFoundError):
                if path.is_file() and path.stat().st_mtime < before.timestamp():
                    path.unlink()
                    removed.append(str(path))
        return removed

    def objects(self) -> Iterator[tuple[str, int, datetime]]:
        """Every stored object: (sha256, size in bytes, last written, UTC)."""
        base = f"{self._root}/sha256"
        if not self._fs.exists(base):
            return
        for path, info in sorted(self._fs.find(base, detail=True).items()):
            name = str(path).rsplit("/", 1)[-1]
            if not _SHA256.fullmatch(name):
                continue
            modified = info.get("mtime", info.get("LastModified", info.get("created")))
            if isinstance(modified, int | float):
                modified = datetime.fromtimestamp(modified, UTC)
            elif isinstance(modified, datetime) and modified.tzinfo is None:
                modified = modified.replace(tzinfo=UTC)
            if not isinstance(modified, datetime):
                continue  # no age known: never old enough to collect
            yield name, int(info.get("size", 0)), modified

    def exists(self, sha256: str) -> bool:
        """Whether an object is stored under ``sha256`` (its content is not checked)."""
        return bool(self._fs.exists(self._object_path(sha256)))

    def open_verified(self, sha256: str) -> BinaryIO:
        """A readable copy of the artifact, at position 0, already checked to hash to ``sha256``.

        Raises ``NotFound`` when nothing is stored there and ``ArtifactCorrupted`` when the stored
        bytes hash to something else. The caller closes the returned file.
        """
        path = self._object_path(sha256)
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
        try:
            digest = hashlib.sha256()
            try:
                with self._fs.open(path, "rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        spool.write(chunk)
            except FileNotFoundError:
                raise self._not_found(sha256) from None
            actual = digest.hexdigest()
            if actual != sha256:
                address = self._address(sha256)
                raise ArtifactCorrupted(
                    f"Artifact {address} is corrupted: expected sha256 {sha256}, "
                    f"but the stored bytes hash to {actual}.",
                    {"address": address, "expected_sha256": sha256, "actual_sha256": actual},
                )
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        # SpooledTemporaryFile is a binary file object; typeshed just does not declare it BinaryIO.
        return cast(BinaryIO, spool)

    def iter_verified(self, sha256: str, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        """The artifact's bytes in chunks of at most ``chunk_size``, from a verified copy.

        The whole artifact is verified before this returns, so ``NotFound`` and
        ``ArtifactCorrupted`` surface here, never halfway through a download.
        """
        if chunk_size <= 0:
            raise InvalidInput(f"chunk_size must be > 0. Got {chunk_size} instead.")
        return _chunks(self.open_verified(sha256), chunk_size)

    def delete(self, sha256: str) -> None:
        """Remove the artifact (for retention); ``NotFound`` when nothing is stored there."""
        path = self._object_path(sha256)
        if not self._fs.exists(path):
            raise self._not_found(sha256)
        # A concurrent delete may win the race; the outcome the caller asked for holds either way.
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm_file(path)

    def check(self) -> None:
        """Readiness: write, read back and remove a probe under the root, or raise ``NotReady``."""
        probe = f"{self._root}/incoming/ready-{uuid.uuid4().hex}"
        try:
            if self._local:
                (Path(self._root) / "incoming").mkdir(parents=True, exist_ok=True)
            self._fs.pipe_file(probe, b"ready")
            if self._fs.cat_file(probe) != b"ready":
                raise OSError("a probe object read back different bytes than were written")
            self._fs.rm_file(probe)
        except Exception as exc:  # whatever the cause, the store cannot serve: report, not crash
            reason = f"{type(exc).__name__}: {exc}"
            for secret in self._secrets:  # a driver may echo what it was given
                reason = reason.replace(secret, "***")
            raise NotReady(
                f"Artifact store {self._url} is not usable: {reason}", {"url": self._url}
            ) from None

    def _object_path(self, sha256: str) -> str:
        # Validating here, for every caller, also keeps '../' and friends out of paths.
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise InvalidInput(
                f"sha256 must be 64 lowercase hexadecimal characters. Got {sha256!r:.80} instead.",
                {"field": "sha256"},
            )
        return f"{self._root}/sha256/{sha256[:2]}/{sha256}"

    def address(self, sha256: str) -> str:
        """Where the artifact lives (a path or an s3:// URL), e.g. for a KServe storageUri."""
        return self._address(sha256)

    def _address(self, sha256: str) -> str:
        return f"{self._url.rstrip('/')}/sha256/{sha256[:2]}/{sha256}"

    def _not_found(self, sha256: str) -> NotFound:
        return NotFound(
            f"No artifact with sha256 {sha256} in {self._url}.",
            {"sha256": sha256, "address": self._address(sha256)},
        )


def _copy_hashing(stream: BinaryIO, out: IO[bytes], max_bytes: int) -> StoredArtifact:
    digest = hashlib.sha256()
    size = 0
    # Ask for at most one byte past the limit: an oversized stream is refused without draining it.
    while chunk := stream.read(min(_CHUNK, max_bytes + 1 - size)):
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(
                f"Artifact is larger than the limit of {max_bytes} bytes. Raise the limit with "
                "the KEEL_MAX_ARTIFACT_BYTES environment variable.",
                {"max_bytes": max_bytes},
            )
        digest.update(chunk)
        out.write(chunk)
    if size == 0:
        raise InvalidInput("artifact is empty")
    return StoredArtifact(sha256=digest.hexdigest(), size=size)


def _chunks(verified: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    with verified:
        while chunk := verified.read(chunk_size):
            yield chunk


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable. (Windows cannot open a directory like this.)
    if os.name == "posix":
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _secret_values(options: Mapping[str, Any]) -> list[str]:
    # Strings under credential-like keys, at any depth: scrubbed from any message we build.
    found: list[str] = []
    for key, value in options.items():
        if isinstance(value, Mapping):
            found += _secret_values(value)
        elif isinstance(value, str) and value and any(w in key.lower() for w in _SECRET_WORDS):
            found.append(value)
    return found
