"""Upload bodies decoded under limits: sizes read from Arrow IPC headers match what the batches
decode to, and corrupt bodies of every format are a clear 400, never a crash or a raw error."""

from __future__ import annotations

import contextlib
import io
import random

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from keel.errors import MalformedUpload, PayloadTooLarge
from keel.services.arrow_ipc_sizes import declared_sizes
from keel.services.telemetry_io import UploadLimits, decode_table

TABLE = pa.table(
    {
        "x": np.arange(1_000.0),
        "plan": pa.array(["free", "gold"] * 500).dictionary_encode(),
        "n": pa.array([1, None] * 500),
    }
)


def ipc_body(compression: str | None, *, file: bool = False) -> bytes:
    sink = io.BytesIO()
    options = ipc.IpcWriteOptions(compression=compression)
    open_writer = ipc.new_file if file else ipc.new_stream
    with open_writer(sink, TABLE.schema, options=options) as writer:
        writer.write_table(TABLE, max_chunksize=300)
    return sink.getvalue()


@pytest.mark.parametrize("compression", [None, "lz4", "zstd"])
@pytest.mark.parametrize("file", [False, True])
def test_ipc_headers_tell_rows_and_decoded_bytes_before_decompressing(
    compression: str | None, file: bool
) -> None:
    sizes = list(declared_sizes(pa.py_buffer(ipc_body(compression, file=file))))
    assert [rows for rows, _ in sizes] == [0, 300, 300, 300, 100]  # the dictionary, then batches
    batches = TABLE.to_batches(max_chunksize=300)
    # Every buffer's declared length, as the batch holds it once decoded (the dictionary apart).
    decoded = sum(b.nbytes for b in batches) - TABLE.column("plan").chunk(0).dictionary.nbytes
    assert sum(size for _, size in sizes[1:]) == pytest.approx(decoded, abs=64)


def test_a_compressed_batch_over_the_limit_is_refused_from_its_header() -> None:
    body = ipc_body("zstd")
    with pytest.raises(PayloadTooLarge) as caught:
        decode_table(body, "application/vnd.apache.arrow.stream", UploadLimits(rows=299))
    assert caught.value.details["setting"] == "KEEL_MAX_UPLOAD_ROWS"
    with pytest.raises(PayloadTooLarge) as caught:
        decode_table(
            body, "application/vnd.apache.arrow.stream", UploadLimits(decompressed_bytes=1_000)
        )
    assert caught.value.details["setting"] == "KEEL_MAX_UPLOAD_DECOMPRESSED_BYTES"


def parquet_body() -> bytes:
    sink = io.BytesIO()
    pq.write_table(TABLE, sink, row_group_size=300)
    return sink.getvalue()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/vnd.apache.arrow.stream", ipc_body("zstd")),
        ("application/vnd.apache.arrow.file", ipc_body("lz4", file=True)),
        ("application/vnd.apache.parquet", parquet_body()),
    ],
)
def test_corrupt_bodies_are_malformed_uploads_never_crashes(content_type: str, body: bytes) -> None:
    # Arrow trusts IPC buffers as they come: before each batch was validated, a flipped byte
    # could crash the whole server (a segmentation fault) when the batch was first read.
    rng = random.Random(0)
    for _ in range(300):
        mutant = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            mutant[rng.randrange(len(mutant))] = rng.randrange(256)
        with contextlib.suppress(MalformedUpload, PayloadTooLarge):
            decode_table(bytes(mutant), content_type, UploadLimits(10**6, 10**9))
