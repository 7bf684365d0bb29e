"""Raw predictions and labels as Parquet partitions in the data directory, read with DuckDB.

Layout (Hive-style directories; Keel reads only the columns inside the files, so a feature may
share a key's name)::

    <root>/predictions/model=<name>/version=<n>/date=YYYY-MM-DD/part-<batch id>.parquet
    <root>/labels/model=<name>/date=YYYY-MM-DD/part-<batch id>.parquet

A file appears under its final name only once every byte is on disk: it is written under a
hidden temporary name in the same directory, flushed and fsynced, renamed with `os.replace` (atomic
on POSIX), and the directory is fsynced so the rename itself survives a power cut. Readers list
``part-*.parquet`` only, so a crash mid-write leaves at most an ignored ``.part-*.tmp``.
A file is named after its batch id, so storing the same batch again replaces it instead of
duplicating its rows.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from keel.domain.names import check_name
from keel.domain.telemetry import TIMESTAMP

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


def write_durably(table: pa.Table, directory: Path, name: str) -> Path:
    """Write ``table`` as ``directory/name`` so the name only ever holds a complete file."""
    _make_dirs(directory)
    final = directory / name
    temporary = directory / f"{_TMP_PREFIX}{uuid.uuid4().hex}.tmp"
    try:
        with temporary.open("wb") as handle:
            # Snappy: fast to write, and DuckDB reads it natively. One row group per batch keeps
            # files cheap to open.
            pq.write_table(
                table,
                handle,
                compression="snappy",
                row_group_size=1 << 20,
                # Dictionary pages only where they pay: text columns. Tried on every column of
                # 100k random floats they cost 6x the write time for nothing.
                use_dictionary=[f.name for f in table.schema if pa.types.is_string(f.type)],
            )
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


class TelemetryFiles:
    """The Parquet partitions under ``root`` (``<data dir>/telemetry``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"TelemetryFiles(root={str(self.root)!r})"

    # -- paths ---------------------------------------------------------------------------------

    def predictions_dir(self, model: str, version: int | None = None) -> Path:
        base = self.root / "predictions" / f"model={check_name(model, 'model')}"
        return base if version is None else base / f"version={int(version)}"

    def labels_dir(self, model: str) -> Path:
        return self.root / "labels" / f"model={check_name(model, 'model')}"

    # -- writing -------------------------------------------------------------------------------

    def write_predictions(
        self, model: str, version: int, table: pa.Table, batch_id: str
    ) -> list[tuple[date, Path]]:
        """Store a validated batch, one file per UTC date of its rows."""
        base = self.predictions_dir(model, version)
        return [
            (day, write_durably(part, base / f"date={day.isoformat()}", f"part-{batch_id}.parquet"))
            for day, part in split_by_date(table)
        ]

    def write_labels(self, model: str, table: pa.Table, batch_id: str) -> list[tuple[date, Path]]:
        base = self.labels_dir(model)
        return [
            (day, write_durably(part, base / f"date={day.isoformat()}", f"part-{batch_id}.parquet"))
            for day, part in split_by_date(table)
        ]

    # -- listing -------------------------------------------------------------------------------

    @staticmethod
    def _dated_files(base: Path, start: date | None, end: date | None) -> list[str]:
        """Files under ``base``'s date partitions with start <= date <= end (either open)."""
        if not base.is_dir():
            return []
        found: list[str] = []
        for partition in sorted(base.glob("date=*")):
            try:
                day = date.fromisoformat(partition.name.removeprefix("date="))
            except ValueError:
                continue
            if (start is None or day >= start) and (end is None or day <= end):
                found.extend(str(p) for p in sorted(partition.glob(_FILE_GLOB)))
        return found

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
        base = self.predictions_dir(model)
        if not base.is_dir():
            return []
        first = None if since is None else _day(since)
        return [
            path
            for version in sorted(base.glob("version=*"))
            for path in self._dated_files(version, first, None)
        ]

    def label_files(self, model: str) -> list[str]:
        return self._dated_files(self.labels_dir(model), None, None)

    # -- reading -------------------------------------------------------------------------------

    def query(self, sql: str, params: dict[str, Any]) -> pa.Table:
        """Run ``sql`` in a fresh in-memory DuckDB; file lists and values go in as parameters."""
        with duckdb.connect() as con:
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

    # -- leftovers -----------------------------------------------------------------------------

    def remove_leftovers(self, before: datetime) -> list[str]:
        """Delete the hidden ``.part-*.tmp`` files a killed writer left in any partition, last
        written before ``before``; finished ``part-*.parquet`` files are never touched."""
        if not self.root.is_dir():
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
        versions = self.predictions_dir(model)
        if versions.is_dir():
            bases.extend(sorted(versions.glob("version=*")))
        for base in bases:
            if not base.is_dir():
                continue
            for partition in sorted(base.glob("date=*")):
                try:
                    day = date.fromisoformat(partition.name.removeprefix("date="))
                except ValueError:
                    continue
                if day < cutoff:
                    for child in partition.iterdir():
                        child.unlink()
                    partition.rmdir()
                    removed.append(str(partition.relative_to(self.root)))
            _fsync_dir(base)
        return removed


def quote_identifier(identifier: str) -> str:
    """A DuckDB identifier, quoted (column names come from signatures, not from SQL)."""
    return '"' + identifier.replace('"', '""') + '"'
