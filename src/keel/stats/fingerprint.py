"""A dataset's fingerprint: SHA-256 over a canonical encoding of its columns.

Two tables with the same column names, the same canonical types and the same values in the same
row order have the same fingerprint, whatever library, version or platform produced them. It is
how a model version says "I was trained on exactly this data".

Canonical encoding, version 1 (all integers little-endian)::

    b"keel-dataset-v1\\x00"
    u64 number of columns, u64 number of rows
    for each column, in the given order:
        u32 byte length + UTF-8 name
        u32 byte length + ASCII canonical type (integer, float, boolean, string, categorical,
                                                datetime)
        values, by type:
            integer      int64 per row (0 where null), then one validity byte per row (1 = valid)
            float        float64 per row; every NaN and null is the quiet NaN 0x7FF8000000000000,
                         -0.0 is written as 0.0 (so NaN/None and -0.0/0.0 hash alike)
            boolean      one byte per row: 0 false, 1 true, 2 null
            string,      per row: u32 byte length + UTF-8 bytes; null is the length 0xFFFFFFFF
            categorical  with no bytes (categories are encoded by their value, not their code,
                         and values that are not strings by ``str(value)``)
            datetime     int64 nanoseconds since the Unix epoch, UTC (0 where null), then one
                         validity byte per row

Nulls are passed as a ``numpy.ma.MaskedArray`` mask, ``None`` in object arrays, NaN in float
arrays or NaT in datetime arrays. The row index is not part of the data.

Why not ``pandas.util.hash_pandas_object`` or the bytes of an Arrow IPC stream: neither promises
the same output across library versions (hash seeds, metadata, padding and buffer layout have
changed before), and a fingerprint that moves when someone upgrades pandas would report a data
change that never happened. This encoding is ours, versioned in its header, and only NumPy
primitives with a fixed byte layout go into it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from keel.errors import InvalidInput

HEADER = b"keel-dataset-v1\x00"
CANONICAL_TYPES = ("integer", "float", "boolean", "string", "categorical", "datetime")

# Rows per slice: bounds the temporary buffers (~8 MiB per numeric slice) on any table size.
_CHUNK_ROWS = 1 << 20
_NULL_LENGTH = 0xFFFFFFFF
_INT64_MAX = np.iinfo(np.int64).max


def dataset_fingerprint(
    columns: Mapping[str, npt.ArrayLike], dtypes: Mapping[str, str]
) -> tuple[str, int]:
    """Return ``(sha256 hex, row count)`` of the table ``columns`` typed by ``dtypes``.

    Parameters
    ----------
    columns
        Column name -> 1-D array, in the order that the table has them.
    dtypes
        Column name -> canonical type, one of ``CANONICAL_TYPES``.

    Examples
    --------
    >>> import numpy as np
    >>> cols = {"age": np.array([31, 47]), "score": np.array([0.5, -0.0])}
    >>> digest, rows = dataset_fingerprint(cols, {"age": "integer", "score": "float"})
    >>> rows, len(digest)
    (2, 64)
    >>> same = {"age": np.array([31, 47], dtype=np.int8), "score": np.array([0.5, 0.0])}
    >>> dataset_fingerprint(same, {"age": "integer", "score": "float"})[0] == digest
    True
    """
    arrays = {name: _as_1d(name, values) for name, values in columns.items()}
    _check_types(arrays, dtypes)
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        shapes = ", ".join(f"{name!r}: {len(a)}" for name, a in arrays.items())
        raise InvalidInput(f"All columns of a dataset must have the same length. Got {shapes}.")
    rows = lengths.pop() if lengths else 0

    digest = hashlib.sha256(HEADER)
    digest.update(struct.pack("<QQ", len(arrays), rows))
    for name, values in arrays.items():
        dtype = dtypes[name]
        digest.update(_length_prefixed(name.encode("utf-8")))
        digest.update(_length_prefixed(dtype.encode("ascii")))
        for block in _ENCODERS[dtype](name, values):
            digest.update(block)
    return digest.hexdigest(), rows


def _as_1d(name: str, values: npt.ArrayLike) -> np.ndarray[Any, Any]:
    array = values if isinstance(values, np.ndarray) else np.asarray(values)
    if array.ndim != 1:
        raise InvalidInput(f"Column {name!r} must be one-dimensional. Got shape {array.shape}.")
    return array


def _check_types(arrays: Mapping[str, object], dtypes: Mapping[str, str]) -> None:
    for name in arrays:
        if name not in dtypes:
            raise InvalidInput(f"Column {name!r} has no canonical type in dtypes.")
        if dtypes[name] not in CANONICAL_TYPES:
            raise InvalidInput(
                f"Column {name!r} has the type {dtypes[name]!r}; "
                f"the canonical types are {', '.join(CANONICAL_TYPES)}."
            )


def _unreadable(name: str, kind: str, noun: str, exc: Exception) -> InvalidInput:
    return InvalidInput(
        f"Column {name!r} is typed {kind} but its values cannot be read as {noun} ({exc}).",
        {"column": name, "dtype": kind},
    )


def _length_prefixed(data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + data


def _chunks(values: np.ndarray[Any, Any]) -> Iterator[np.ndarray[Any, Any]]:
    for start in range(0, len(values), _CHUNK_ROWS):
        yield values[start : start + _CHUNK_ROWS]


def _split_mask(values: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], npt.NDArray[np.bool_]]:
    """The raw data and a null mask (True = null) from a masked or plain array."""
    if isinstance(values, np.ma.MaskedArray):
        return np.asarray(values.data), np.ma.getmaskarray(values)
    return values, np.zeros(len(values), dtype=np.bool_)


def _object_nulls(values: np.ndarray[Any, Any]) -> npt.NDArray[np.bool_]:
    return np.fromiter(
        (v is None or (isinstance(v, float) and v != v) for v in values),
        dtype=np.bool_,
        count=len(values),
    )


def _integers(name: str, values: np.ndarray[Any, Any]) -> Iterator[bytes]:
    data, null = _split_mask(values)
    if data.dtype.kind == "O":
        null = null | _object_nulls(data)
        data = np.where(null, 0, data)
    if data.dtype.kind == "f":
        null = null | np.isnan(data)
        data = np.where(null, 0.0, data)
        if not np.all(np.mod(data, 1) == 0):
            raise InvalidInput(f"Column {name!r} is typed integer but holds fractional values.")
    if data.dtype.kind == "u" and data.size and int(data.max()) > _INT64_MAX:
        raise InvalidInput(f"Column {name!r} holds integers too large for int64.")
    try:
        ints = np.where(null, 0, data).astype("<i8", casting="unsafe")
    except (TypeError, ValueError, OverflowError) as exc:
        raise _unreadable(name, "integer", "integers", exc) from None
    yield from (chunk.tobytes() for chunk in _chunks(ints))
    yield from (chunk.tobytes() for chunk in _chunks((~null).astype(np.uint8)))


def _floats(name: str, values: np.ndarray[Any, Any]) -> Iterator[bytes]:
    data, null = _split_mask(values)
    for start in range(0, len(data), _CHUNK_ROWS):
        part = data[start : start + _CHUNK_ROWS]
        try:
            chunk = np.array(part, dtype="<f8")
        except (TypeError, ValueError) as exc:
            raise _unreadable(name, "float", "numbers", exc) from None
        chunk[null[start : start + _CHUNK_ROWS] | np.isnan(chunk)] = np.nan
        chunk[chunk == 0.0] = 0.0  # also turns -0.0 into +0.0
        yield chunk.tobytes()


def _booleans(name: str, values: np.ndarray[Any, Any]) -> Iterator[bytes]:
    data, null = _split_mask(values)
    if data.dtype.kind == "O":
        null = null | _object_nulls(data)
        if not all(isinstance(v, bool | np.bool_) for v in data[~null].tolist()):
            raise InvalidInput(f"Column {name!r} is typed boolean but holds other values.")
        data = np.where(null, False, data).astype(np.bool_)
    if data.dtype.kind == "f":
        null = null | np.isnan(data)
        data = np.where(null, 0.0, data)
    if data.dtype.kind not in "biuf":
        raise InvalidInput(f"Column {name!r} is typed boolean but holds {data.dtype} values.")
    codes = np.where(null, 2, data.astype(np.bool_)).astype(np.uint8)
    yield from (chunk.tobytes() for chunk in _chunks(codes))


def _strings(name: str, values: np.ndarray[Any, Any]) -> Iterator[bytes]:
    data, null = _split_mask(values)
    for start in range(0, len(data), _CHUNK_ROWS):
        part = data[start : start + _CHUNK_ROWS]
        part_null = null[start : start + _CHUNK_ROWS]
        is_null = (part_null | _object_nulls(part)) if part.dtype.kind == "O" else part_null
        encoded = [
            b"" if missing else _utf8(v)
            for v, missing in zip(part.tolist(), is_null.tolist(), strict=True)
        ]
        yield _interleave(encoded, is_null)


def _utf8(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return (value if isinstance(value, str) else str(value)).encode("utf-8")


def _interleave(encoded: list[bytes], is_null: npt.NDArray[np.bool_]) -> bytes:
    """``u32 length + bytes`` for every value, built with array operations rather than a loop."""
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    prefixes = np.where(is_null, _NULL_LENGTH, lengths).astype("<u4").view(np.uint8)
    sizes = lengths + 4
    starts = np.cumsum(sizes) - sizes
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    prefix_positions = (starts[:, None] + np.arange(4)).ravel()
    is_payload = np.ones(len(out), dtype=np.bool_)
    is_payload[prefix_positions] = False
    out[prefix_positions] = prefixes
    out[is_payload] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return out.tobytes()


def _datetimes(name: str, values: np.ndarray[Any, Any]) -> Iterator[bytes]:
    data, null = _split_mask(values)
    if data.dtype.kind != "M":
        try:
            data = data.astype("datetime64[ns]")
        except (TypeError, ValueError) as exc:
            raise _unreadable(name, "datetime", "datetimes", exc) from None
    null = null | np.isnat(data)
    nanos = data.astype("datetime64[ns]").view(np.int64)
    ints = np.where(null, 0, nanos).astype("<i8")
    yield from (chunk.tobytes() for chunk in _chunks(ints))
    yield from (chunk.tobytes() for chunk in _chunks((~null).astype(np.uint8)))


_ENCODERS = {
    "integer": _integers,
    "float": _floats,
    "boolean": _booleans,
    "string": _strings,
    "categorical": _strings,
    "datetime": _datetimes,
}
