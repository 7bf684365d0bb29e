"""Arrow columns to `keel.stats.profile` inputs, and a batch split into per-hour profiles.

Numeric columns go to NumPy float64 (nulls as NaN, zero-copy when there are none); datetime
columns too, as seconds since the Unix epoch (so their drift, range and missing values are
watched like a number's); categorical ones as `CategoricalCodes` from Arrow's dictionary
encoding, which the profile counts with one ``np.bincount``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keel.domain.telemetry import TIMESTAMP
from keel.stats.profile import CategoricalCodes, Column, DatasetProfile, profile_like

_MICROS_PER_HOUR = 3_600_000_000


def profile_kind(dtype: pa.DataType) -> str | None:
    """``"numeric"`` or ``"categorical"`` for a stored column type; None: not profiled."""
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_timestamp(dtype):
        return "numeric"
    if pa.types.is_string(dtype) or pa.types.is_boolean(dtype):
        return "categorical"
    return None


def stats_column(values: pa.ChunkedArray | pa.Array) -> Column:
    """One stored column in the form the profile kernels read fastest."""
    kind = profile_kind(values.type)
    if kind == "numeric":
        if pa.types.is_timestamp(values.type):
            micros = values.cast(pa.timestamp("us")).cast(pa.int64())
            values = pc.divide(micros.cast(pa.float64()), 1e6)
        if values.type != pa.float64():
            values = values.cast(pa.float64())
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
        numbers: np.ndarray[Any, np.dtype[np.float64]] = values.to_numpy(zero_copy_only=False)
        return numbers
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.unify_dictionaries().combine_chunks()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    return CategoricalCodes(codes, encoded.dictionary.to_pylist())


def stats_columns(table: pa.Table, names: Any) -> dict[str, Column]:
    """The named columns of ``table`` that exist and can be profiled."""
    return {
        name: stats_column(table.column(name))
        for name in names
        if name in table.column_names and profile_kind(table.schema.field(name).type)
    }


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def by_hour(table: pa.Table) -> list[tuple[datetime, pa.Table]]:
    """The rows of a stored batch grouped by the UTC hour of ``ts``, oldest first."""
    if table.num_rows == 0:
        return []
    micros = table.column(TIMESTAMP).cast(pa.int64()).to_numpy()
    hours = micros // _MICROS_PER_HOUR
    first, last = int(hours.min()), int(hours.max())
    if first == last:
        return [(_hour(first), table)]
    order = np.argsort(hours, kind="stable")
    sorted_hours = hours[order]
    bounds = np.flatnonzero(np.diff(sorted_hours)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(order)]])
    return [
        (_hour(int(sorted_hours[s])), table.take(pa.array(order[s:e])))
        for s, e in zip(starts, ends, strict=True)
    ]


def _hour(index: int) -> datetime:
    return datetime.fromtimestamp(index * 3600, UTC)


def hourly_profiles(
    table: pa.Table, reference: DatasetProfile | None
) -> dict[datetime, tuple[int, DatasetProfile | None]]:
    """Per hour of ``table``: its row count and, with a reference, its profile on those bins."""
    result: dict[datetime, tuple[int, DatasetProfile | None]] = {}
    for hour, rows in by_hour(table):
        profile = None
        if reference is not None:
            profile = profile_like(reference, stats_columns(rows, reference.columns))
            profile.rows = rows.num_rows
        result[hour] = (rows.num_rows, profile)
    return result


def kinds_of(columns: Mapping[str, pa.ChunkedArray]) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for name, values in columns.items():
        kind = profile_kind(values.type)
        if kind is not None:
            kinds[name] = kind
    return kinds
