"""Bytes on the wire to an Arrow table: Parquet, Arrow IPC (stream or file) and CSV bodies.

A small compressed body can hold a huge table (a 665 KiB Parquet file of 50M rows once took a
server to 5.9 GB), so every body is read under `UploadLimits`: a Parquet file's footer (row
count, uncompressed size of each row group) and an Arrow IPC body's batch headers
(`keel.services.arrow_ipc_sizes`) are checked before anything is decompressed, then every format
is read batch by batch, counting rows and decoded bytes, and refused with a 413 naming the
setting as soon as a limit is passed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from keel.domain.telemetry import ARROW_STREAM_MEDIA_TYPE, CSV_MEDIA_TYPE, PARQUET_MEDIA_TYPE
from keel.errors import InvalidInput, MalformedUpload, PayloadTooLarge
from keel.services.arrow_ipc_sizes import declared_sizes

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


DEFAULT_MAX_ROWS = 10_000_000
DEFAULT_MAX_DECOMPRESSED_BYTES = 1024**3
_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class UploadLimits:
    """The most rows, and decoded bytes, one uploaded table may hold."""

    rows: int = DEFAULT_MAX_ROWS
    decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES

    def check(self, rows: int, decoded_bytes: int) -> None:
        """`PayloadTooLarge` (413) naming the limit and its setting once either is passed."""
        if rows > self.rows:
            raise PayloadTooLarge(
                f"The upload holds more than {self.rows:,} rows, the most this server reads "
                "from one upload (KEEL_MAX_UPLOAD_ROWS). Send it in smaller batches (`keel "
                "telemetry import --batch-rows`), or raise KEEL_MAX_UPLOAD_ROWS on the server.",
                {"field": "body", "limit_rows": self.rows, "setting": "KEEL_MAX_UPLOAD_ROWS"},
            )
        if decoded_bytes > self.decompressed_bytes:
            raise PayloadTooLarge(
                f"The upload decompresses to more than {self.decompressed_bytes:,} bytes, the "
                "most this server decodes from one upload (KEEL_MAX_UPLOAD_DECOMPRESSED_BYTES). "
                "Send it in smaller batches, or raise KEEL_MAX_UPLOAD_DECOMPRESSED_BYTES on the "
                "server.",
                {
                    "field": "body",
                    "limit_bytes": self.decompressed_bytes,
                    "setting": "KEEL_MAX_UPLOAD_DECOMPRESSED_BYTES",
                },
            )


def _parquet_batches(
    buffer: pa.Buffer, limits: UploadLimits
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    parquet = pq.ParquetFile(pa.BufferReader(buffer))
    footer = parquet.metadata
    # What the footer declares, checked before a single data page is decompressed.
    declared = sum(footer.row_group(i).total_byte_size for i in range(footer.num_row_groups))
    limits.check(footer.num_rows, declared)
    return parquet.schema_arrow, parquet.iter_batches(batch_size=_BATCH_ROWS)


def _ipc_batches(buffer: pa.Buffer, kind: str) -> Iterator[pa.RecordBatch]:
    """The body's batches, each validated in full: Arrow trusts IPC buffers as they come, and a
    corrupt offset or length would otherwise crash the server when the batch is first read."""
    if kind == ARROW_STREAM_MEDIA_TYPE:
        with ipc.open_stream(buffer) as reader:
            for batch in reader:
                batch.validate(full=True)
                yield batch
        return
    with ipc.open_file(buffer) as file_reader:
        for index in range(file_reader.num_record_batches):
            batch = file_reader.get_batch(index)
            batch.validate(full=True)
            yield batch


def _csv_table(body: bytes, limits: UploadLimits) -> pa.Table:
    # CSV is not compressed, so its size on the wire bounds what it decodes to (a small factor:
    # "1," becomes 8 bytes); its lines bound its rows, counted before it is parsed. It is parsed
    # whole, not with the streaming reader, which fixes each column's type from the first block
    # and then refuses a float that appears after a megabyte of integers.
    limits.check(max(body.count(b"\n") - 1, 0), 0)
    return pacsv.read_csv(pa.BufferReader(body))


def read_limited(body: bytes, kind: str, limits: UploadLimits) -> pa.Table:
    """The table in ``body`` (of media type ``kind``), read batch by batch within ``limits``.

    A Parquet footer and the header of every Arrow IPC batch are checked before anything is
    decompressed; then each batch is counted again as it is decoded, so a body whose headers lie
    is still stopped within one batch of the limit.
    """
    buffer = pa.py_buffer(body)
    if kind == PARQUET_MEDIA_TYPE:
        schema, batches = _parquet_batches(buffer, limits)
    elif kind == CSV_MEDIA_TYPE:
        table = _csv_table(body, limits)
        schema, batches = table.schema, iter(table.to_batches())
    else:
        # Every batch's size, from its header, before any batch is decompressed.
        rows = decoded = 0
        for batch_rows, batch_bytes in declared_sizes(buffer):
            rows, decoded = rows + batch_rows, decoded + batch_bytes
            limits.check(rows, decoded)
        schema = _ipc_schema(buffer, kind)
        batches = _ipc_batches(buffer, kind)
    kept: list[pa.RecordBatch] = []
    rows = decoded = 0
    for batch in batches:
        rows += batch.num_rows
        decoded += batch.nbytes
        limits.check(rows, decoded)
        kept.append(batch)
    return pa.Table.from_batches(kept, schema=schema)


def _ipc_schema(buffer: pa.Buffer, kind: str) -> pa.Schema:
    if kind == ARROW_STREAM_MEDIA_TYPE:
        with ipc.open_stream(buffer) as reader:
            return reader.schema
    with ipc.open_file(buffer) as file_reader:
        return file_reader.schema


def decode_table(body: bytes, content_type: str, limits: UploadLimits | None = None) -> pa.Table:
    """The table in ``body``; `MalformedUpload` (400) naming the format when it cannot be read,
    `PayloadTooLarge` (413) naming the setting when it holds more than ``limits`` allow."""
    kind = media_type(content_type)
    if kind is None:
        raise MalformedUpload(
            f"Cannot read a body of type {content_type!r}. Send Content-Type: "
            f"{', '.join(MEDIA_TYPES)}.",
            {"field": "Content-Type", "accepted": list(MEDIA_TYPES)},
        )
    try:
        return read_limited(body, kind, limits or UploadLimits())
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
