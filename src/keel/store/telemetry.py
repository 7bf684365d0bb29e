"""Raw predictions and labels as Parquet partitions, on local disk or object storage, read with
DuckDB.

Layout under the root, a directory or ``s3://bucket/prefix`` through fsspec (Hive-style; Keel
reads only the columns inside the files, so a feature may share a key's name)::

    <root>/predictions/model=<name>/version=<n>/date=YYYY-MM-DD/part-<batch id>.parquet
    <root>/labels/model=<name>/date=YYYY-MM-DD/part-<batch id>.parquet

A file appears under its final name only once every byte is on disk: it is written under a
hidden temporary name in the same directory, flushed and fsynced, renamed with `os.replace` (atomic
on POSIX), and the directory is fsynced so the rename itself survives a power cut. Readers list
``part-*.parquet`` only, so a crash mid-write leaves at most an ignored ``.part-*.tmp``.
A file is named after its batch id, so storing the same batch again replaces it instead of
duplicating its rows.

On object storage the same contract holds by another means: a batch is serialised in memory and
sent as one object (``pipe_file``: a single PUT, or a multipart upload past 50 MiB); S3 makes an
object visible only once its upload completed, so a killed writer leaves nothing under a final
name (an abandoned multipart upload is invisible; a bucket lifecycle rule aborts it). DuckDB reads
the objects through the same fsspec filesystem (``register_filesystem``), so no DuckDB extension
has to be downloaded; ``pyarrow.dataset`` reads them as well (`TelemetryFiles.filesystem`).
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from keel.domain.names import check_name
from keel.domain.telemetry import TIMESTAMP
from keel.errors import NotReady

_TMP_PREFIX = ".part-"


# Every read goes through this: the files are a parameter ($files), never spliced into SQL. The
# partition keys (model, version, date) are only in the paths and are never read as columns (the
# caller already chose the files by them), so a feature may be named `date`, `model` or `version`;
# union_by_name lets files written before a nullable column existed be read beside newer ones.
def parquet_source(parameter: str = "files") -> str:
    """``read_parquet`` over the file list bound to ``$parameter``."""
    return f"read_parquet(${parameter}, hive_partitioning=false, union_by_name=true)"


PREDICTIONS_SOURCE = parquet_source()
_FILE_GLOB = "part-*.parquet"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents, fsyncing each new entry's parent directory."""
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            continue  # another writer made it first; it fsynced the parent
        _fsync_dir(directory.parent)


def _write_parquet(table: pa.Table, handle: Any) -> None:
    # Snappy: fast to write, and DuckDB reads it natively. One row group per batch keeps files
    # cheap to open.
    pq.write_table(
        table,
        handle,
        compression="snappy",
        row_group_size=1 << 20,
        # Dictionary pages only where they pay: text columns. Tried on every column of 100k
        # random floats they cost 6x the write time for nothing.
        use_dictionary=[f.name for f in table.schema if pa.types.is_string(f.type)],
    )


def write_durably(table: pa.Table, directory: Path, name: str) -> Path:
    """Write ``table`` as ``directory/name`` so the name only ever holds a complete file."""
    _make_dirs(directory)
    final = directory / name
    temporary = directory / f"{_TMP_PREFIX}{uuid.uuid4().hex}.tmp"
    try:
        with temporary.open("wb") as handle:
            _write_parquet(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(final)  # os.replace: atomic on POSIX
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)
    return final


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def split_by_date(table: pa.Table) -> Iterator[tuple[date, pa.Table]]:
    """The rows of ``table`` grouped by the UTC date of their ``ts`` column."""
    if table.num_rows == 0:
        return
    ts = table.column(TIMESTAMP)
    low, high = pc.min_max(ts).values()
    first, last = _day(low.as_py()), _day(high.as_py())
    if first == last:
        yield first, table
        return
    days = pc.cast(pc.cast(ts, pa.timestamp("us", tz="UTC")), pa.date32())
    day = first
    while day <= last:
        chosen = table.filter(pc.equal(days, pa.scalar(day, pa.date32())))
        if chosen.num_rows:
            yield day, chosen
        day += timedelta(days=1)


def is_remote(url: str) -> bool:
    """Whether ``url`` names object storage (``s3://...``) rather than a local directory."""
    return "://" in url and not url.startswith("file://")


class TelemetryFiles:
    """The Parquet partitions under ``root``: ``<data dir>/telemetry``, or an fsspec URL such
    as ``s3://bucket/prefix`` (``storage_options`` go to fsspec; they may hold credentials, so
    ``repr`` names the root only)."""

    def __init__(self, root: Path | str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = str(root)
        self.remote = is_remote(self.url)
        options = dict(storage_options or {})
        if self.remote:
            # No listing cache: a partition another replica wrote or retention deleted must be
            # seen at once.
            options.setdefault("skip_instance_cache", True)
            options.setdefault("use_listings_cache", False)
            self.filesystem, base = fsspec.core.url_to_fs(self.url, **options)
            self._protocol = self.url.split("://", 1)[0]
            self._base: str = base.rstrip("/")
        else:
            self.filesystem = fsspec.filesystem("file")
            self._base = str(Path(self.url.removeprefix("file://")))
        self.root = Path(self._base)  # meaningful for a local root only; see ``url``

    def __repr__(self) -> str:
        return f"TelemetryFiles(root={self.url!r})"

    # -- paths ---------------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/".join((self._base, *parts))

    def _public(self, path: str) -> str:
        """A path as DuckDB and pyarrow name it: remote paths carry their protocol again."""
        return f"{self._protocol}://{path}" if self.remote else path

    def predictions_dir(self, model: str, version: int | None = None) -> str:
        base = self._path("predictions", f"model={check_name(model, 'model')}")
        return base if version is None else f"{base}/version={int(version)}"

    def labels_dir(self, model: str) -> str:
        return self._path("labels", f"model={check_name(model, 'model')}")

    def _children(self, directory: str, pattern: str) -> list[str]:
        """Entries of ``directory`` matching ``pattern``, sorted; none when it does not exist."""
        if not self.remote:
            folder = Path(directory)
            return sorted(str(p) for p in folder.glob(pattern)) if folder.is_dir() else []
        return sorted(str(p) for p in self.filesystem.glob(f"{directory}/{pattern}"))

    def partition_bytes(self, directory: str) -> dict[date, int]:
        """Bytes of the Parquet files under ``directory`` (any depth), per UTC date partition:
        what telemetry storage costs, on local disk or object storage alike."""
        sizes: dict[date, int] = {}
        if not self.remote and not Path(directory).is_dir():
            return sizes
        try:
            found = self.filesystem.find(directory, detail=True)
        except FileNotFoundError:
            return sizes
        for path, info in found.items():
            if not str(path).endswith(".parquet"):
                continue
            for part in str(path).split("/"):
                if part.startswith("date="):
                    try:
                        day = date.fromisoformat(part.removeprefix("date="))
                    except ValueError:
                        break
                    sizes[day] = sizes.get(day, 0) + int(info.get("size") or 0)
                    break
        return sizes

    def versions(self, model: str) -> list[int]:
        """The versions of ``model`` that have prediction partitions."""
        found = []
        for entry in self._children(self.predictions_dir(model), "version=*"):
            number = entry.rsplit("/", 1)[-1].removeprefix("version=")
            if number.isdigit():
                found.append(int(number))
        return sorted(found)

    # -- writing -------------------------------------------------------------------------------

    def _write(self, table: pa.Table, directory: str, name: str) -> str:
        if not self.remote:
            return str(write_durably(table, Path(directory), name))
        buffer = io.BytesIO()
        _write_parquet(table, buffer)
        final = f"{directory}/{name}"
        # One object, sent whole: S3 shows it only once the upload completed (see the module
        # docstring), so there is no temporary name to rename from.
        self.filesystem.pipe_file(final, buffer.getvalue())
        return self._public(final)

    def write_predictions(
        self, model: str, version: int, table: pa.Table, batch_id: str
    ) -> list[tuple[date, str]]:
        """Store a validated batch, one file per UTC date of its rows."""
        base = self.predictions_dir(model, version)
        return [
            (day, self._write(part, f"{base}/date={day.isoformat()}", f"part-{batch_id}.parquet"))
            for day, part in split_by_date(table)
        ]

    def write_labels(self, model: str, table: pa.Table, batch_id: str) -> list[tuple[date, str]]:
        base = self.labels_dir(model)
        return [
            (day, self._write(part, f"{base}/date={day.isoformat()}", f"part-{batch_id}.parquet"))
            for day, part in split_by_date(table)
        ]

    # -- listing -------------------------------------------------------------------------------

    def _partitions(self, base: str) -> list[tuple[date, str]]:
        """``base``'s date partitions, oldest first (entries not named ``date=YYYY-MM-DD`` are
        skipped)."""
        found = []
        for partition in self._children(base, "date=*"):
            try:
                day = date.fromisoformat(partition.rsplit("/", 1)[-1].removeprefix("date="))
            except ValueError:
                continue
            found.append((day, partition))
        return found

    def _dated_files(self, base: str, start: date | None, end: date | None) -> list[str]:
        """Files under ``base``'s date partitions with start <= date <= end (either open)."""
        return [
            self._public(path)
            for day, partition in self._partitions(base)
            if (start is None or day >= start) and (end is None or day <= end)
            for path in self._children(partition, _FILE_GLOB)
        ]

    def prediction_files(
        self, model: str, version: int, start: datetime | None = None, end: datetime | None = None
    ) -> list[str]:
        """Prediction files whose date partition may hold rows in [start, end)."""
        return self._dated_files(
            self.predictions_dir(model, version),
            None if start is None else _day(start),
            None if end is None else _day(end),
        )

    def all_prediction_files(self, model: str, since: datetime | None = None) -> list[str]:
        """Prediction files of every version of ``model`` whose partition may hold rows at or
        after ``since``."""
        first = None if since is None else _day(since)
        return [
            path
            for version in self.versions(model)
            for path in self._dated_files(self.predictions_dir(model, version), first, None)
        ]

    def label_files(self, model: str) -> list[str]:
        return self._dated_files(self.labels_dir(model), None, None)

    # -- reading -------------------------------------------------------------------------------

    def query(self, sql: str, params: dict[str, Any]) -> pa.Table:
        """Run ``sql`` in a fresh in-memory DuckDB; file lists and values go in as parameters."""
        with duckdb.connect() as con:
            if self.remote:
                con.register_filesystem(self.filesystem)
            return con.sql(sql, params=params).to_arrow_table()

    def read_predictions(
        self,
        model: str,
        version: int,
        start: datetime,
        end: datetime,
        columns: Sequence[str] = (),
    ) -> pa.Table:
        """Rows with start <= ts < end (all columns, or only ``columns``), oldest first."""
        files = self.prediction_files(model, version, start, end)
        if not files:
            return pa.table({})
        wanted = "*"
        if columns:
            wanted = ", ".join(quote_identifier(c) for c in columns)
        return self.query(
            f"SELECT {wanted} FROM {PREDICTIONS_SOURCE} "  # noqa: S608 - names quoted
            f"WHERE {TIMESTAMP} >= $start AND {TIMESTAMP} < $end ORDER BY {TIMESTAMP}",
            {"files": files, "start": start, "end": end},
        )

    # -- readiness -----------------------------------------------------------------------------

    def check(self) -> None:
        """Readiness of object storage: write and remove a probe object under the root, or raise
        ``NotReady`` naming the URL (never the credentials). A local root is made on demand."""
        if not self.remote:
            return
        probe = f"{self._base}/ready-{uuid.uuid4().hex}"
        try:
            self.filesystem.pipe_file(probe, b"ready")
            self.filesystem.rm_file(probe)
        except Exception as exc:  # whatever the cause, telemetry cannot be stored: report it
            raise NotReady(
                f"Telemetry store {self.url} is not usable ({type(exc).__name__}). Check the "
                "bucket, KEEL_S3_ENDPOINT_URL and the AWS_* credentials.",
                {"component": "telemetry", "url": self.url},
            ) from None

    # -- leftovers -----------------------------------------------------------------------------

    def remove_leftovers(self, before: datetime) -> list[str]:
        """Delete the hidden ``.part-*.tmp`` files a killed writer left in any partition, last
        written before ``before``; finished ``part-*.parquet`` files are never touched. Object
        storage has no such files (an abandoned multipart upload is the bucket's lifecycle
        rule's to abort)."""
        if self.remote or not self.root.is_dir():
            return []
        removed: list[str] = []
        for path in self.root.rglob(f"{_TMP_PREFIX}*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                if path.is_file() and path.stat().st_mtime < before.timestamp():
                    path.unlink()
                    removed.append(str(path))
        return removed

    # -- retention -----------------------------------------------------------------------------

    def delete_before(self, model: str, cutoff: date) -> list[str]:
        """Delete ``model``'s date partitions (predictions of every version, and labels) dated
        before ``cutoff``; return the partitions removed, relative to the root."""
        removed: list[str] = []
        bases = [self.labels_dir(model)]
        bases.extend(self.predictions_dir(model, v) for v in self.versions(model))
        for base in bases:
            expired = [partition for day, partition in self._partitions(base) if day < cutoff]
            for partition in expired:
                self._delete_partition(partition)
                removed.append(partition.removeprefix(self._base + "/"))
            if expired and not self.remote:
                _fsync_dir(Path(base))
        return removed

    def _delete_partition(self, partition: str) -> None:
        if self.remote:
            with contextlib.suppress(FileNotFoundError):  # another replica deleted it first
                self.filesystem.rm(partition, recursive=True)
            return
        folder = Path(partition)
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()


def quote_identifier(identifier: str) -> str:
    """A DuckDB identifier, quoted (column names come from signatures, not from SQL)."""
    return '"' + identifier.replace('"', '""') + '"'
