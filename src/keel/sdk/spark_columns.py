"""Arrow batches from Spark to `keel.stats.profile` inputs, as the server reads stored telemetry.

This is the twin of ``keel.services.telemetry_profiles.stats_column`` (the SDK may not import
services): numbers and timestamps become float64 (timestamps as seconds since the Unix epoch),
text and booleans become `CategoricalCodes` from Arrow's dictionary encoding, so a category is
named exactly as the server names it (``True``, not ``true``). ``tests/sdk/test_spark.py`` checks
that both give the same columns.

Only NumPy and PyArrow run here: Spark's Python workers never convert to pandas, so the pandas
version Spark supports does not matter to the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keel.stats.profile import CategoricalCodes, Column

NUMERIC = "numeric"
CATEGORICAL = "categorical"


def arrow_kind(dtype: pa.DataType) -> str | None:
    """``"numeric"`` or ``"categorical"`` for an Arrow type; None: not profiled."""
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_timestamp(dtype):
        return NUMERIC
    if pa.types.is_decimal(dtype):
        return NUMERIC
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_boolean(dtype):
        return CATEGORICAL
    return None


def stats_column(values: pa.Array | pa.ChunkedArray, kind: str) -> Column:
    """One column of a batch in the form the profile kernels read fastest."""
    if kind == NUMERIC:
        if pa.types.is_timestamp(values.type):
            micros = values.cast(pa.timestamp("us")).cast(pa.int64())
            values = pc.divide(micros.cast(pa.float64()), 1e6)
        if values.type != pa.float64():
            values = values.cast(pa.float64())
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        numbers: np.ndarray[Any, np.dtype[np.float64]] = values.to_numpy(zero_copy_only=False)
        return numbers
    if not (pa.types.is_string(values.type) or pa.types.is_boolean(values.type)):
        values = values.cast(pa.string())
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.unify_dictionaries().combine_chunks()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    return CategoricalCodes(codes, encoded.dictionary.to_pylist())


def stats_columns(table: pa.Table, kinds: Mapping[str, str]) -> dict[str, Column]:
    """The columns of ``table`` named in ``kinds``."""
    return {
        name: stats_column(table.column(name), kind)
        for name, kind in kinds.items()
        if name in table.column_names
    }
