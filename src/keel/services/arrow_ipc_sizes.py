"""What the batches of an Arrow IPC body will decode to, read from their headers alone.

A compressed (LZ4 or ZSTD) record batch of a few kilobytes can decompress to gigabytes, and
pyarrow has no way to ask a batch's size before decoding it. But every IPC message starts with a
FlatBuffers header (``format/Message.fbs`` in the Arrow repository) that states the batch's row
count and its buffers, and a compressed buffer starts with its uncompressed length (an int64,
-1 when that buffer was left uncompressed). `declared_sizes` reads those few fields, so an upload
can be refused before anything is decompressed. It is our own code because neither pyarrow nor
a maintained FlatBuffers reader for Arrow's schema ships with Keel's dependencies; it reads only
the fields it needs and treats anything out of bounds as a malformed body.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

import pyarrow as pa
import pyarrow.ipc as ipc

_DICTIONARY_BATCH = 2
_RECORD_BATCH = 3
_FILE_MAGIC = b"ARROW1"

Field = Callable[[int], int | None]


class UnreadableHeader(ValueError):
    """An IPC message header that does not hold what Arrow's format says it must."""


def _table(data: bytes, position: int) -> Field:
    """The field locator of the FlatBuffers table at ``position``: field index -> position of its
    value, or None when the field is absent (left at its default)."""
    vtable = position - struct.unpack_from("<i", data, position)[0]
    vtable_size = struct.unpack_from("<H", data, vtable)[0]

    def field(index: int) -> int | None:
        slot = 4 + 2 * index
        if slot >= vtable_size:
            return None
        offset = struct.unpack_from("<H", data, vtable + slot)[0]
        return None if offset == 0 else position + offset

    return field


def _child(data: bytes, at: int) -> int:
    offset: int = struct.unpack_from("<I", data, at)[0]
    return at + offset


def _batch_size(data: bytes, batch: Field, body: memoryview | None) -> tuple[int, int]:
    """(rows, decoded bytes) of a RecordBatch table; ``body`` is needed only when compressed."""
    at = batch(0)
    rows = 0 if at is None else struct.unpack_from("<q", data, at)[0]
    compressed = batch(3) is not None
    total = 0
    at = batch(2)
    if at is not None:
        vector = _child(data, at)
        for index in range(struct.unpack_from("<I", data, vector)[0]):
            offset, length = struct.unpack_from("<qq", data, vector + 4 + 16 * index)
            if compressed and length >= 8:
                assert body is not None
                declared = struct.unpack_from("<q", body, offset)[0]
                total += length - 8 if declared == -1 else declared
            else:
                total += length
    if rows < 0 or total < 0:
        raise UnreadableHeader("negative sizes")
    return rows, total


def declared_sizes(buffer: pa.Buffer) -> Iterator[tuple[int, int]]:
    """(rows, decoded bytes) of each record batch (and dictionary batch, with 0 rows) of an
    Arrow IPC stream or file, in order; `UnreadableHeader` when a header cannot be read."""
    start = 8 if buffer.size >= 8 and buffer.slice(0, 6).to_pybytes() == _FILE_MAGIC else 0
    reader = ipc.MessageReader.open_stream(buffer.slice(start))
    while True:
        try:
            message = reader.read_next_message()
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError):
            return  # a file's footer follows its last message
        if message is None:
            return
        if message.type not in ("record batch", "dictionary"):
            continue
        data = message.metadata.to_pybytes()
        try:
            root = _table(data, _child(data, 0))
            kind_at, header_at = root(1), root(2)
            if kind_at is None or header_at is None:
                raise UnreadableHeader("no header")
            header = _table(data, _child(data, header_at))
            if data[kind_at] == _DICTIONARY_BATCH:
                batch_at = header(1)
                if batch_at is None:
                    raise UnreadableHeader("a dictionary batch without data")
                header = _table(data, _child(data, batch_at))
            elif data[kind_at] != _RECORD_BATCH:
                continue
            body = memoryview(message.body) if header(3) is not None else None
            rows, size = _batch_size(data, header, body)
        except (struct.error, IndexError, AssertionError) as exc:
            raise UnreadableHeader(str(exc) or type(exc).__name__) from None
        yield (0 if message.type == "dictionary" else rows), size
