"""The model worker's wire format, shared by the child (`model_worker`) and the parent
(`model_workers`): length-prefixed frames, each an Arrow IPC stream or (once, at start) JSON.

Arrow IPC rather than JSON or pickle: the columns cross the pipe as typed buffers, decoding is a
copy at most, and nothing in a frame can run code when the parent reads the child's answer.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import pyarrow as pa
import pyarrow.ipc as ipc

SIZES_KEY = b"keel.sizes"  # request metadata: JSON list of each request's row count
ERRORS_KEY = b"keel.errors"  # answer metadata: JSON list of each request's error (or null)
PREDICTION = "prediction"
SCORE = "score"
_HEADER = struct.Struct(">I")
# An answer larger than this is refused: a model cannot make the parent allocate without bound.
MAX_FRAME_BYTES = 512 << 20


class BrokenFrame(Exception):
    """The other side sent a frame that is not one (too large, or cut off)."""


def _read_exact(source: BinaryIO, size: int) -> bytes | None:
    chunks: list[bytes] = []
    missing = size
    while missing:
        chunk = source.read(missing)
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def read_frame(source: BinaryIO) -> bytes | None:
    """The next frame's bytes, or None when the stream ended between frames."""
    header = _read_exact(source, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME_BYTES:
        raise BrokenFrame(f"a frame of {size} bytes is larger than {MAX_FRAME_BYTES}")
    body = _read_exact(source, size)
    if body is None:
        raise BrokenFrame("the stream ended inside a frame")
    return body


def write_frame(sink: BinaryIO, body: bytes) -> None:
    sink.write(_HEADER.pack(len(body)) + body)


def table_to_frame(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def table_from_frame(frame: bytes) -> pa.Table:
    return ipc.open_stream(frame).read_all()
