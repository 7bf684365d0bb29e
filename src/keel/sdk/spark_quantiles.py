"""Exact order statistics of a distributed numeric column, by radix selection.

A reference profile's bin edges are exact quantiles (`keel.stats.profile.quantile_positions`), so
the Spark profile of a dataset can equal the in-process one only if Spark finds the very values at
those ranks. Sorting a billion rows per column would do it at the price of a shuffle each; Spark's
``percentile_approx`` is not exact; Spark's exact ``percentile`` keeps every distinct value in
one task's memory. So we select instead, on the 64-bit order-preserving key of each double:

1. every partition counts its values per top-16-bit bucket of the key; the driver adds the
   counts and finds the bucket (prefix) holding each wanted rank, and the rank inside it;
2. while the wanted prefixes still hold more than `COLLECT_CAP` values of a column, the next
   pass counts the next 16 bits inside them only (at most 4 levels: 64 bits decide a double);
3. then one pass sends the values of the wanted prefixes (sorted per partition) to the driver,
   which sorts them and reads the ranks off.

Each pass is a scan that sends back at most 65,536 counts per prefix, so its cost grows with the
rows, not with their distinct values. This module holds the driver's arithmetic and the
per-partition kernels; `keel.sdk.spark` runs the passes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from keel.stats.profile import FloatArray

BITS = 16
"""Key bits decided per counting pass."""
COLLECT_CAP = 2_000_000
"""Values of one column that may travel to the driver in the final pass (16 MB)."""

UInt64Array = npt.NDArray[np.uint64]
_SIGN = np.uint64(1 << 63)


def order_keys(values: FloatArray) -> UInt64Array:
    """Unsigned keys that sort as the (finite) doubles do; -0.0 counts as 0.0."""
    bits = (values + 0.0).view(np.uint64)
    negative = (bits & _SIGN) != 0
    return np.where(negative, ~bits, bits | _SIGN)


def key_value(key: int) -> float:
    """The double an order key stands for."""
    bits = np.uint64(key)
    raw = bits & ~_SIGN if bits & _SIGN else ~bits
    return float(np.array([raw], dtype=np.uint64).view(np.float64)[0])


def prefix_counts(
    keys: UInt64Array, depth: int, prefixes: Iterable[int]
) -> Iterable[tuple[int, int, int]]:
    """(prefix, next 16-bit bucket, count) of the sorted ``keys`` under each wanted prefix of
    ``depth`` bits (depth 0: the one empty prefix, 0)."""
    for prefix, begin, end in _under(keys, depth, prefixes):
        if begin == end:
            continue
        part = keys[begin:end]
        shift = np.uint64(64 - depth - BITS)
        buckets = (part >> shift) & np.uint64((1 << BITS) - 1)
        found, counts = np.unique(buckets, return_counts=True)
        for bucket, n in zip(found.tolist(), counts.tolist(), strict=True):
            yield prefix, int(bucket), int(n)


def prefix_values(
    values: FloatArray, keys: UInt64Array, depth: int, prefixes: Iterable[int]
) -> Iterable[tuple[int, FloatArray]]:
    """The sorted values under each wanted prefix of ``depth`` bits."""
    for prefix, begin, end in _under(keys, depth, prefixes):
        yield prefix, values[begin:end]


def _under(
    keys: UInt64Array, depth: int, prefixes: Iterable[int]
) -> Iterable[tuple[int, int, int]]:
    """Where the sorted ``keys`` under each prefix begin and end (contiguous, since sorted)."""
    if depth == 0:
        yield 0, 0, int(keys.shape[0])
        return
    shift = np.uint64(64 - depth)
    for prefix in sorted(prefixes):
        lo = np.uint64(prefix) << shift
        hi = lo + (np.uint64(1) << shift) - np.uint64(1)
        begin = int(np.searchsorted(keys, lo, side="left"))
        end = int(np.searchsorted(keys, hi, side="right"))
        yield prefix, begin, end


@dataclass
class Target:
    """A wanted rank of one column, narrowed pass by pass to a prefix and a rank inside it."""

    wanted: int  # the rank in the whole column
    rank: int  # the rank under ``prefix``
    prefix: int = 0
    value: float | None = None


@dataclass
class Selection:
    """The wanted ranks of one numeric column and how far the passes have narrowed them."""

    count: int
    targets: list[Target]
    depth: int = 0
    sizes: dict[int, int] = field(default_factory=dict)  # values under each wanted prefix

    @classmethod
    def of(cls, count: int, ranks: Iterable[int]) -> Selection:
        return cls(count, [Target(int(r), int(r)) for r in sorted(set(ranks))], sizes={0: count})

    @property
    def done(self) -> bool:
        return all(t.value is not None for t in self.targets)

    @property
    def prefixes(self) -> set[int]:
        return {t.prefix for t in self.targets if t.value is None}

    def collect_next(self) -> bool:
        """Whether the next pass should send the values (not count another 16 bits)."""
        return sum(self.sizes.get(p, 0) for p in self.prefixes) <= COLLECT_CAP

    def narrow(self, counts: Mapping[tuple[int, int], int]) -> None:
        """Descend one level, given the summed (prefix, bucket) counts of a counting pass."""
        by_prefix: dict[int, list[tuple[int, int]]] = {}
        for (prefix, bucket), n in counts.items():
            by_prefix.setdefault(prefix, []).append((bucket, n))
        self.depth += BITS
        self.sizes = {}
        for target in self.targets:
            if target.value is not None:
                continue
            ordered = sorted(by_prefix[target.prefix])
            cumulative = np.cumsum([n for _, n in ordered])
            i = int(np.searchsorted(cumulative, target.rank, side="right"))
            target.rank -= int(cumulative[i - 1]) if i else 0
            target.prefix = (target.prefix << BITS) | ordered[i][0]
            self.sizes[target.prefix] = ordered[i][1]
            if self.depth == 64:  # the key is the value
                target.value = key_value(target.prefix)

    def pick(self, values: Mapping[int, FloatArray]) -> None:
        """Read the ranks off the values sent under each prefix (sorted here)."""
        ordered = {p: np.sort(v) for p, v in values.items()}
        for target in self.targets:
            if target.value is None:
                target.value = float(ordered[target.prefix][target.rank])

    def at(self, ranks: npt.NDArray[np.int64]) -> FloatArray:
        """The selected values at ``ranks`` (each one of the wanted ranks)."""
        found = {t.wanted: t.value for t in self.targets}
        return np.array([found[int(r)] for r in ranks], dtype=np.float64)
