"""Bytes on the wire to an Arrow table: Parquet, Arrow IPC (stream or file) and CSV bodies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from keel.domain.telemetry import ARROW_STREAM_MEDIA_TYPE, CSV_MEDIA_TYPE, PARQUET_MEDIA_TYPE
from keel.errors import InvalidInput, MalformedUpload

ARROW_FILE_MEDIA_TYPE = "application/vnd.apache.arrow.file"
MEDIA_TYPES = (PARQUET_MEDIA_TYPE, ARROW_STREAM_MEDIA_TYPE, ARROW_FILE_MEDIA_TYPE, CSV_MEDIA_TYPE)
_NAMES = {
    PARQUET_MEDIA_TYPE: "Parquet",
    ARROW_STREAM_MEDIA_TYPE: "an Arrow IPC stream",
    ARROW_FILE_MEDIA_TYPE: "an Arrow IPC file",
    CSV_MEDIA_TYPE: "CSV",
}


def media_type(content_type: str | None) -> str | None:
    """The bare media type of a Content-Type header, if Keel can read it."""
    bare = (content_type or "").split(";", 1)[0].strip().lower()
    return bare if bare in MEDIA_TYPES else None


def decode_table(body: bytes, content_type: str) -> pa.Table:
    """The table in ``body``; `MalformedUpload` (400) naming the format when it cannot be read."""
    kind = media_type(content_type)
    if kind is None:
        raise MalformedUpload(
            f"Cannot read a body of type {content_type!r}. Send Content-Type: "
            f"{', '.join(MEDIA_TYPES)}.",
            {"field": "Content-Type", "accepted": list(MEDIA_TYPES)},
        )
    buffer = pa.py_buffer(body)
    try:
        if kind == PARQUET_MEDIA_TYPE:
            return pq.read_table(pa.BufferReader(buffer))
        if kind == ARROW_STREAM_MEDIA_TYPE:
            with ipc.open_stream(buffer) as reader:
                return reader.read_all()
        if kind == ARROW_FILE_MEDIA_TYPE:
            with ipc.open_file(buffer) as file_reader:
                return file_reader.read_all()
        return pacsv.read_csv(pa.BufferReader(buffer))
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise MalformedUpload(
            f"The body is not readable as {_NAMES[kind]} ({reason}). Check that the file is "
            "complete and that Content-Type matches its format.",
            {"field": "body", "content_type": kind, "reason": reason},
        ) from None


def rows_to_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """JSON rows as a table: one column per key seen in any row (absent keys are null), each
    column's type inferred by Arrow; a column mixing kinds of values is a 422 naming it."""
    names = list(dict.fromkeys(key for row in rows for key in row))
    columns: dict[str, pa.Array] = {}
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            kinds = sorted({type(v).__name__ for v in values if v is not None})
            raise InvalidInput(
                f"Column {name!r} mixes values of different kinds ({', '.join(kinds)}). "
                "Send one kind per column, as the signature declares.",
                {"field": name, "column": name, "got": kinds},
            ) from None
    return pa.table(columns)
