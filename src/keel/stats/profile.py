"""Mergeable column profiles: the small summaries drift and quality checks run on.

A **reference profile** is built once from a dataset (training data, or any later sample) with
:func:`build_reference`. It fixes, per column,

* numeric: the bin edges at the reference's quantiles (default 20 bins, so 21 edges from the
  reference minimum to its maximum), plus one slot below the first edge and one above the last, so
  values outside the reference range are counted too;
* categorical: the top-K categories of the reference (default 50); every other value is counted
  in the profile's separate ``other`` count, never under a category name, so no real category
  (not even one named ``"__other__"``) can collide with it.

**Window profiles** (:func:`profile_like`) count new data on exactly those bins and categories, so
any two profiles of the same reference can be merged (:meth:`DatasetProfile.merge`): counts add,
min/max combine, and mean/variance combine with the parallel update of Chan, Golub and LeVeque
(1979), "Updating formulae and a pairwise algorithm for computing sample variances". Merging is
associative and commutative, so a day's profile is the merge of its hours and a drift query never
rescans raw rows.

Nulls: ``None``, ``NaN`` and (for numeric columns) ``±inf`` count as null: a non-finite value has
no place on a bin scale or in a mean. ``count`` is the number of non-null values of a column and
``null_count`` the number of nulls; their sum is the rows seen for that column.

Numeric profiles also keep their raw values, sorted, while ``count <= SAMPLE_CAP`` so that the
Kolmogorov-Smirnov test can be exact on small windows (see :mod:`keel.stats.drift`).

Categorical columns may be given as NumPy arrays of any dtype (object, str, int, bool) or, fastest,
as :class:`CategoricalCodes` (integer codes into a list of categories, the layout of a pandas
Categorical or an Arrow dictionary array).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from keel.errors import InvalidInput

FORMAT = "keel-profile-v1"
SAMPLE_CAP = 1000
"""Numeric profiles keep their raw values while they hold at most this many (exact KS)."""
OTHER = "__other__"
"""How reports label the ``other`` count (values outside the reference's top-K); profiles never
store it as a category, so a real category of that name is kept apart."""
DEFAULT_BINS = 20
# Extra edges at the reference's 1st and 99th percentiles, beside the equal-frequency ones: the
# outer 1% on each side is its own slot, so a change of the tails inside the reference's range
# (the top 2-3% moving out, more outliers, a heavier tail) shows in the counts. Measured by
# bench/drift_quality.py (docs/monitoring-defaults.md, "tail quantiles").
TAIL_QUANTILES = (0.01, 0.99)
# A reference with more distinct categories than its top-K also keeps a 32-bit hash of each of
# them (up to SEEN_CAP), so a window can count its values from categories the reference never
# saw: new categories in a high-cardinality column land in `other` beside half the rows, where
# the top-K counts cannot tell them apart (issue 11). 5,000 categories cost 20 KB once, in the
# reference; windows keep one count.
SEEN_CAP = 50_000
DEFAULT_TOP_K = 50

ColumnKind = Literal["numeric", "categorical"]
KINDS: tuple[ColumnKind, ...] = ("numeric", "categorical")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CategoricalCodes:
    """A categorical column as integer codes into ``categories`` (code -1 is null).

    This is the layout of ``pandas.Categorical`` (``.codes``, ``.categories``) and of an Arrow
    dictionary array (``.indices``, ``.dictionary``); counting it is one ``np.bincount``.

    >>> CategoricalCodes(np.array([0, 1, 1, -1]), ["a", "b"]).values().tolist()
    ['a', 'b', 'b', None]
    """

    codes: npt.NDArray[np.integer[Any]]
    categories: Sequence[Any]

    def __len__(self) -> int:
        return len(self.codes)

    def values(self) -> npt.NDArray[np.object_]:
        """The column as an object array (None for nulls); for tests and small data."""
        lookup = np.array([*self.categories, None], dtype=object)
        codes = np.asarray(self.codes, dtype=np.int64)
        return lookup[np.where(codes < 0, len(self.categories), codes)]


Column = npt.ArrayLike | CategoricalCodes


@dataclass(eq=False)
class NumericProfile:
    """Binned counts and moments of a numeric column.

    ``counts[0]`` holds values below ``edges[0]``, ``counts[i]`` (``1 <= i < len(edges) - 1``)
    values in ``[edges[i-1], edges[i])``, ``counts[-2]`` values in ``[edges[-2], edges[-1]]`` and
    ``counts[-1]`` values above ``edges[-1]``: ``len(counts) == len(edges) + 1``. ``sums`` holds
    the sum of the values in each slot (so each slot's mean is known: it makes the Wasserstein
    distance from profiles exact for a pure shift).
    """

    edges: FloatArray
    counts: IntArray
    count: int
    null_count: int
    minimum: float  # NaN while count == 0
    maximum: float  # NaN while count == 0
    mean: float
    m2: float  # sum of squared deviations from the mean
    sample: FloatArray | None = field(default=None)  # sorted raw values while count <= SAMPLE_CAP
    sums: FloatArray | None = field(default=None)  # per-slot sum of the values (slot means)

    @property
    def variance(self) -> float:
        """Sample variance (``ddof=1``); NaN with fewer than two values."""
        return self.m2 / (self.count - 1) if self.count > 1 else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation (``ddof=1``)."""
        return math.sqrt(self.variance) if self.count > 1 else math.nan

    @property
    def rows(self) -> int:
        return self.count + self.null_count

    def merge(self, other: NumericProfile) -> NumericProfile:
        """Combine two profiles of the same reference bins (associative and commutative)."""
        if not isinstance(other, NumericProfile):
            raise InvalidInput("cannot merge a numeric profile with a categorical one")
        if self.edges.shape != other.edges.shape or not np.array_equal(self.edges, other.edges):
            raise InvalidInput(
                "cannot merge numeric profiles with different bin edges; "
                "profile both with profile_like() against the same reference"
            )
        n = self.count + other.count
        if n == 0:
            mean, m2 = 0.0, 0.0
        else:
            # Chan et al. (1979) parallel update, written symmetrically so a.merge(b) and
            # b.merge(a) give bit-identical results.
            delta = other.mean - self.mean
            mean = (self.count * self.mean + other.count * other.mean) / n
            m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / n
        sample: FloatArray | None = None
        if self.sample is not None and other.sample is not None and n <= SAMPLE_CAP:
            sample = np.sort(np.concatenate([self.sample, other.sample]))
        return NumericProfile(
            edges=self.edges,
            counts=self.counts + other.counts,
            sums=None if self.sums is None or other.sums is None else self.sums + other.sums,
            count=n,
            null_count=self.null_count + other.null_count,
            minimum=float(np.fmin(self.minimum, other.minimum)),
            maximum=float(np.fmax(self.maximum, other.maximum)),
            mean=float(mean),
            m2=float(m2),
            sample=sample,
        )

    def to_dict(self, *, compact: bool = False) -> dict[str, Any]:
        """JSON-safe dict; ``compact`` writes arrays as base64 of little-endian bytes."""
        encode = _encode_array if compact else _list_array
        return {
            "kind": "numeric",
            "edges": encode(self.edges),
            "counts": encode(self.counts),
            "count": self.count,
            "null_count": self.null_count,
            "min": _json_float(self.minimum),
            "max": _json_float(self.maximum),
            "mean": _json_float(self.mean),
            "m2": _json_float(self.m2),
            "sample": None if self.sample is None else encode(self.sample),
            "sums": None if self.sums is None else encode(self.sums),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NumericProfile:
        sample = d.get("sample")
        return cls(
            edges=_decode_array(d["edges"], np.float64),
            counts=_decode_array(d["counts"], np.int64),
            count=int(d["count"]),
            null_count=int(d["null_count"]),
            minimum=_float(d["min"]),
            maximum=_float(d["max"]),
            mean=_float(d["mean"]),
            m2=_float(d["m2"]),
            sample=None if sample is None else _decode_array(sample, np.float64),
            sums=None if d.get("sums") is None else _decode_array(d["sums"], np.float64),
        )


@dataclass(eq=False)
class CategoricalProfile:
    """Counts of a categorical column over the reference's top-K categories (``counts``), plus
    ``other``: the values outside them."""

    counts: dict[str, int]
    count: int
    null_count: int
    other: int = 0
    seen: frozenset[int] | None = None
    """Reference only: hashes (:func:`category_hash`) of every category it saw, when it saw more
    than its top-K and at most ``SEEN_CAP``; else None."""
    singletons: int = 0
    """Reference only, with ``seen``: how many categories it saw exactly once (Good-Turing:
    ``singletons / count`` estimates the share of new data from categories it never saw)."""
    doubletons: int = 0
    """Reference only, with ``seen``: how many categories it saw exactly twice (for the
    variance of the Good-Turing estimate)."""
    unseen: int | None = None
    """Profiled against a reference with ``seen``: the values of categories it never saw."""

    @property
    def rows(self) -> int:
        return self.count + self.null_count

    @property
    def categories(self) -> list[str]:
        """The reference's categories, in order."""
        return list(self.counts)

    def frequencies(self) -> IntArray:
        """Counts as an array in category order, then ``other``."""
        return np.fromiter(
            [*self.counts.values(), self.other], dtype=np.int64, count=len(self.counts) + 1
        )

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        """Combine two profiles of the same reference categories (associative, commutative)."""
        if not isinstance(other, CategoricalProfile):
            raise InvalidInput("cannot merge a categorical profile with a numeric one")
        if list(self.counts) != list(other.counts):
            raise InvalidInput(
                "cannot merge categorical profiles with different categories; "
                "profile both with profile_like() against the same reference"
            )
        # A reference merged from chunks loses its `seen` set: later chunks' categories are not
        # in it, and its singletons are unknown (build_reference_from_chunks says so).
        seen = self.seen if self.seen == other.seen else None
        return CategoricalProfile(
            counts={k: v + other.counts[k] for k, v in self.counts.items()},
            count=self.count + other.count,
            null_count=self.null_count + other.null_count,
            other=self.other + other.other,
            seen=seen,
            singletons=self.singletons if seen is not None else 0,
            doubletons=self.doubletons if seen is not None else 0,
            unseen=None
            if self.unseen is None or other.unseen is None
            else self.unseen + other.unseen,
        )

    def to_dict(self, *, compact: bool = False) -> dict[str, Any]:
        return {
            "kind": "categorical",
            # A list of pairs keeps the category order through any JSON store.
            "counts": [[k, v] for k, v in self.counts.items()],
            "other": self.other,
            "count": self.count,
            "null_count": self.null_count,
            "seen": None
            if self.seen is None
            else _encode_array(np.array(sorted(self.seen), dtype=np.int64)),
            "singletons": self.singletons,
            "doubletons": self.doubletons,
            "unseen": self.unseen,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CategoricalProfile:
        pairs = [(str(k), int(v)) for k, v in d["counts"]]
        if "other" in d:
            other = int(d["other"])
        else:
            # Profiles stored before ``other`` had its own field kept it as a pair named OTHER.
            other = sum(v for k, v in pairs if k == OTHER)
            pairs = [(k, v) for k, v in pairs if k != OTHER]
        seen = d.get("seen")
        unseen = d.get("unseen")
        return cls(
            counts=dict(pairs),
            count=int(d["count"]),
            null_count=int(d["null_count"]),
            other=other,
            seen=None if seen is None else frozenset(_decode_array(seen, np.int64).tolist()),
            singletons=int(d.get("singletons", 0)),
            doubletons=int(d.get("doubletons", 0)),
            unseen=None if unseen is None else int(unseen),
        )


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass(eq=False)
class DatasetProfile:
    """Profiles of a table's columns, plus its row count."""

    rows: int
    columns: dict[str, ColumnProfile]

    def merge(self, other: DatasetProfile) -> DatasetProfile:
        """Combine two profiles of the same reference (associative and commutative).

        A column present on one side only is kept as it is (a window may lack a column).
        """
        columns: dict[str, ColumnProfile] = {}
        for name in [*self.columns, *(c for c in other.columns if c not in self.columns)]:
            mine, theirs = self.columns.get(name), other.columns.get(name)
            if mine is None or theirs is None:
                kept = mine if mine is not None else theirs
                assert kept is not None
                columns[name] = kept
            elif isinstance(mine, NumericProfile) and isinstance(theirs, NumericProfile):  # noqa: SIM114 (one branch per type keeps mypy's narrowing)
                columns[name] = mine.merge(theirs)
            elif isinstance(mine, CategoricalProfile) and isinstance(theirs, CategoricalProfile):
                columns[name] = mine.merge(theirs)
            else:
                raise InvalidInput(
                    f"column {name!r} is numeric in one profile and categorical in the other"
                )
        return DatasetProfile(rows=self.rows + other.rows, columns=columns)

    def to_dict(self, *, compact: bool = False) -> dict[str, Any]:
        """A JSON-safe dict; floats round-trip exactly through ``json``.

        Numeric arrays are lists of numbers, or with ``compact`` base64 strings of their
        little-endian bytes (what :meth:`to_json` writes: a quarter of the size and several times
        faster to load). :meth:`from_dict` reads both.
        """
        return {
            "format": FORMAT,
            "rows": self.rows,
            "columns": {name: p.to_dict(compact=compact) for name, p in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DatasetProfile:
        if d.get("format") != FORMAT:
            raise InvalidInput(f"profile format must be {FORMAT!r}, got {d.get('format')!r}")
        columns: dict[str, ColumnProfile] = {}
        for name, c in d["columns"].items():
            if c["kind"] == "numeric":
                columns[name] = NumericProfile.from_dict(c)
            elif c["kind"] == "categorical":
                columns[name] = CategoricalProfile.from_dict(c)
            else:
                raise InvalidInput(f"column {name!r}: unknown profile kind {c['kind']!r}")
        return cls(rows=int(d["rows"]), columns=columns)

    def to_json(self) -> str:
        """Compact JSON text (arrays as base64), exact; read back with :meth:`from_json`."""
        return json.dumps(self.to_dict(compact=True), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> DatasetProfile:
        return cls.from_dict(json.loads(text))


def merge_all(profiles: Iterable[DatasetProfile]) -> DatasetProfile | None:
    """Merge any number of profiles of one reference in one pass; None when there are none.

    The same result as merging them pairwise (counts exactly, moments to rounding), but each
    column is combined once over all profiles: a day of hourly windows merges in about a
    millisecond.
    """
    items = list(profiles)
    if not items:
        return None
    if len(items) == 1:
        return items[0]
    names: dict[str, None] = {}
    for p in items:
        names.update(dict.fromkeys(p.columns))
    columns: dict[str, ColumnProfile] = {}
    for name in names:
        parts = [p.columns[name] for p in items if name in p.columns]
        numeric = [c for c in parts if isinstance(c, NumericProfile)]
        categorical = [c for c in parts if isinstance(c, CategoricalProfile)]
        if numeric and categorical:
            raise InvalidInput(
                f"column {name!r} is numeric in one profile and categorical in another"
            )
        columns[name] = _merge_numeric(numeric) if numeric else _merge_categorical(categorical)
    return DatasetProfile(rows=sum(p.rows for p in items), columns=columns)


def _merge_categorical(parts: Sequence[CategoricalProfile]) -> CategoricalProfile:
    keys = list(parts[0].counts)
    if any(list(p.counts) != keys for p in parts[1:]):
        raise InvalidInput(
            "cannot merge categorical profiles with different categories; "
            "profile both with profile_like() against the same reference"
        )
    totals = np.sum(np.stack([p.frequencies() for p in parts]), axis=0).tolist()
    # As CategoricalProfile.merge: a seen set survives only when every part has the same one,
    # and unseen counts add up only when every part counted them.
    seen = parts[0].seen if all(p.seen == parts[0].seen for p in parts[1:]) else None
    unseen = [p.unseen for p in parts]
    return CategoricalProfile(
        counts=dict(zip(keys, totals[:-1], strict=True)),
        count=sum(p.count for p in parts),
        null_count=sum(p.null_count for p in parts),
        other=int(totals[-1]),
        seen=seen,
        singletons=parts[0].singletons if seen is not None else 0,
        doubletons=parts[0].doubletons if seen is not None else 0,
        unseen=None if any(u is None for u in unseen) else sum(u for u in unseen if u is not None),
    )


def _merge_numeric(parts: Sequence[NumericProfile]) -> NumericProfile:
    """Chan et al.'s update generalised to k parts: M2 = sum M2_i + sum n_i (mean_i - mean)^2."""
    first = parts[0]
    for part in parts[1:]:
        if part.edges.shape != first.edges.shape or not np.array_equal(part.edges, first.edges):
            raise InvalidInput(
                "cannot merge numeric profiles with different bin edges; "
                "profile both with profile_like() against the same reference"
            )
    n_i = np.array([p.count for p in parts], dtype=np.float64)
    mean_i = np.array([p.mean for p in parts], dtype=np.float64)
    n = int(sum(p.count for p in parts))
    mean = float(np.dot(n_i, mean_i) / n) if n else 0.0
    deviation = mean_i - mean
    m2 = float(sum(p.m2 for p in parts) + np.dot(n_i, deviation * deviation)) if n else 0.0
    samples = [p.sample for p in parts]
    sample: FloatArray | None = None
    if n <= SAMPLE_CAP and all(s is not None for s in samples):
        sample = np.sort(np.concatenate([s for s in samples if s is not None]))
    sums_list = [p.sums for p in parts]
    sums = None
    if all(s is not None for s in sums_list):
        sums = np.sum(np.stack([s for s in sums_list if s is not None]), axis=0)
    minima = np.array([p.minimum for p in parts])
    maxima = np.array([p.maximum for p in parts])
    return NumericProfile(
        edges=first.edges,
        counts=np.sum(np.stack([p.counts for p in parts]), axis=0),
        count=n,
        null_count=sum(p.null_count for p in parts),
        minimum=float(np.fmin.reduce(minima)),
        maximum=float(np.fmax.reduce(maxima)),
        mean=mean,
        m2=m2,
        sample=sample,
        sums=sums,
    )


# --------------------------------------------------------------------------- building profiles


def build_reference(
    columns: Mapping[str, Column],
    kinds: Mapping[str, str],
    *,
    bins: int = DEFAULT_BINS,
    top_k: int = DEFAULT_TOP_K,
) -> DatasetProfile:
    """Profile a reference dataset: quantile bin edges and top-K categories come from it.

    Numeric columns get ``bins`` equal-frequency bins plus edges at the 1st and 99th
    percentiles (``TAIL_QUANTILES``), so the outer 1% on each side is a slot of its own.

    ``kinds`` maps each column to ``"numeric"`` or ``"categorical"``; every column in ``kinds``
    must be in ``columns`` (other columns are ignored).

    >>> ref = build_reference({"x": np.arange(100.0), "c": np.array(["a", "b", "a", None] * 25)},
    ...                       {"x": "numeric", "c": "categorical"}, bins=4)
    >>> ref.rows, ref.columns["x"].edges.tolist(), ref.columns["x"].counts.tolist()
    (100, [0.0, 0.99, 24.75, 49.5, 74.25, 98.01, 99.0], [0, 1, 24, 25, 25, 24, 1, 0])
    >>> ref.columns["c"].counts, ref.columns["c"].other, ref.columns["c"].null_count
    ({'a': 50, 'b': 25}, 0, 25)
    """
    if bins < 1:
        raise InvalidInput(f"bins must be at least 1, got {bins}")
    if top_k < 1:
        raise InvalidInput(f"top_k must be at least 1, got {top_k}")
    for name, kind in kinds.items():
        if kind not in KINDS:
            raise InvalidInput(
                f"column {name!r}: kind must be 'numeric' or 'categorical', got {kind!r}"
            )
        if name not in columns:
            raise InvalidInput(f"column {name!r} is listed in kinds but missing from the data")
    rows = _row_count({name: columns[name] for name in kinds})

    def one(name: str) -> ColumnProfile:
        if kinds[name] == "numeric":
            values = finite_sorted(name, columns[name])
            return _numeric_profile(values, rows, _quantile_edges(values, bins))
        counts, nulls = category_counts(columns[name])
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]
        return _categorical_profile(counts, nulls, [k for k, _ in top])

    return DatasetProfile(rows=rows, columns=_per_column(list(kinds), rows, one))


def build_reference_from_chunks(
    chunks: Iterable[Mapping[str, Column]],
    kinds: Mapping[str, str],
    *,
    bins: int = DEFAULT_BINS,
    top_k: int = DEFAULT_TOP_K,
) -> DatasetProfile:
    """Profile a reference too large for memory, chunk by chunk.

    Bin edges and top-K categories come from the first chunk (make it large and representative,
    e.g. 1M rows); every later chunk is counted on those bins and merged, so memory stays at one
    chunk whatever the total size. The reference keeps no ``seen`` set of its categories (later
    chunks may hold others), so its windows get no test for new categories.
    """
    reference: DatasetProfile | None = None
    for chunk in chunks:
        if reference is None:
            reference = build_reference(chunk, kinds, bins=bins, top_k=top_k)
        else:
            reference = reference.merge(profile_like(reference, chunk))
    if reference is None:
        raise InvalidInput("no data: the reference needs at least one chunk")
    return reference


def profile_like(reference: DatasetProfile, columns: Mapping[str, Column]) -> DatasetProfile:
    """Profile new data on the reference's bins and categories, ready to merge and compare.

    Only the reference's columns are profiled: columns absent from ``columns`` are absent from
    the result, and columns the reference does not know are ignored.

    >>> ref = build_reference({"x": np.arange(100.0)}, {"x": "numeric"}, bins=4)
    >>> cur = profile_like(ref, {"x": np.array([-5.0, 10.0, 60.0, np.nan, 500.0])})
    >>> cur.rows, cur.columns["x"].counts.tolist(), cur.columns["x"].null_count
    (5, [1, 0, 1, 0, 1, 0, 0, 1], 1)
    """
    present = {name: columns[name] for name in reference.columns if name in columns}
    rows = _row_count(present) if present else _row_count(columns)

    def one(name: str) -> ColumnProfile:
        ref = reference.columns[name]
        if isinstance(ref, NumericProfile):
            return _numeric_profile(finite_sorted(name, present[name]), rows, ref.edges)
        counts, nulls = category_counts(present[name])
        return _categorical_profile(counts, nulls, ref.categories, seen_by=ref)

    return DatasetProfile(rows=rows, columns=_per_column(list(present), rows, one))


def empty_like(reference: DatasetProfile) -> DatasetProfile:
    """A profile of no rows on the reference's bins: the identity of ``merge``."""
    columns: dict[str, ColumnProfile] = {}
    for name, ref in reference.columns.items():
        if isinstance(ref, NumericProfile):
            columns[name] = NumericProfile(
                edges=ref.edges,
                counts=np.zeros_like(ref.counts),
                count=0,
                null_count=0,
                minimum=math.nan,
                maximum=math.nan,
                mean=0.0,
                m2=0.0,
                sample=np.empty(0, dtype=np.float64),
                sums=np.zeros(ref.counts.shape, dtype=np.float64),
            )
        else:
            columns[name] = CategoricalProfile(
                counts=dict.fromkeys(ref.counts, 0),
                count=0,
                null_count=0,
                other=0,
                # Against a reference that kept its seen categories, none of no rows is unseen.
                unseen=None if ref.seen is None else 0,
            )
    return DatasetProfile(rows=0, columns=columns)


# --------------------------------------------------------------------------- kernels

_PARALLEL_ROWS = 200_000
"""From this many rows, columns are profiled on a thread per CPU (NumPy's sort releases the GIL)."""


def _per_column(
    names: list[str], rows: int, profile: Callable[[str], ColumnProfile]
) -> dict[str, ColumnProfile]:
    workers = min(os.cpu_count() or 1, len(names), 8)
    if rows < _PARALLEL_ROWS or workers < 2:
        return {name: profile(name) for name in names}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="keel-profile") as pool:
        return dict(zip(names, pool.map(profile, names), strict=True))


def _row_count(columns: Mapping[str, Column]) -> int:
    lengths = {
        name: len(c) if isinstance(c, CategoricalCodes) else np.shape(c)[0]
        for name, c in columns.items()
    }
    distinct = set(lengths.values())
    if len(distinct) > 1:
        raise InvalidInput(f"columns must all have the same length, got {lengths}")
    return distinct.pop() if distinct else 0


def finite_sorted(name: str, data: Column) -> FloatArray:
    """The column's non-null values as sorted float64 (NaN, None and ±inf dropped)."""
    if isinstance(data, CategoricalCodes):
        raise InvalidInput(f"column {name!r} is numeric; pass its values, not categorical codes")
    if isinstance(data, np.ma.MaskedArray):
        data = np.ma.filled(data.astype(np.float64), np.nan)
    try:
        values = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"column {name!r} is numeric but holds values that are not numbers ({exc}); "
            "fix the data or declare the column categorical"
        ) from None
    if values.ndim != 1:
        raise InvalidInput(f"column {name!r} must be one-dimensional, got shape {values.shape}")
    finite = np.isfinite(values)
    if not finite.all():
        values = values[finite]
    # NumPy's SIMD sort is faster than a quantile or bin search over unsorted data (~6 ms for
    # 1M doubles), and everything after it is a binary search.
    return np.sort(values)


def quantile_positions(n: int, bins: int) -> tuple[IntArray, IntArray, FloatArray]:
    """The ranks (0-based, in sorted order) that the quantile edges of ``n`` values
    interpolate between (``bins`` equal-frequency steps and ``TAIL_QUANTILES``), and the weight
    of the upper one: edge ``j`` is ``v[lo[j]] + (v[hi[j]] - v[lo[j]]) * frac[j]``
    (``np.quantile``'s linear method).

    An engine that cannot sort the whole column (Spark) finds just these order statistics.

    >>> [np.round(a, 2).tolist() for a in quantile_positions(5, 2)]
    [[0, 0, 2, 3, 4], [1, 1, 3, 4, 4], [0.0, 0.04, 0.0, 0.96, 0.0]]
    """
    pos = np.union1d(np.linspace(0.0, 1.0, bins + 1), TAIL_QUANTILES) * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    return lo, hi, pos - lo


def quantile_edges(lower: FloatArray, upper: FloatArray, frac: FloatArray) -> FloatArray:
    """Bin edges from the order statistics at :func:`quantile_positions` (``lower`` at the
    ``lo`` ranks, ``upper`` at the ``hi`` ranks), deduplicated; a constant column gets one
    closed bin ``[c, c]``."""
    with np.errstate(over="ignore", invalid="ignore"):
        edges = lower + (upper - lower) * frac
    if not np.isfinite(edges).all():  # the gap overflowed (values near the largest double)
        edges = lower * (1 - frac) + upper * frac
    edges[0], edges[-1] = lower[0], upper[-1]
    edges = np.unique(edges)
    if edges.shape[0] == 1:  # a constant column: one closed bin [c, c]
        edges = np.array([edges[0], edges[0]])
    return edges


def _quantile_edges(sorted_values: FloatArray, bins: int) -> FloatArray:
    """Quantile edges (linear interpolation, as ``np.quantile``) at ``bins`` equal-frequency
    steps and at ``TAIL_QUANTILES``, deduplicated."""
    n = sorted_values.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.float64)
    lo, hi, frac = quantile_positions(n, bins)
    return quantile_edges(sorted_values[lo], sorted_values[hi], frac)


def _numeric_profile(sorted_values: FloatArray, rows: int, edges: FloatArray) -> NumericProfile:
    n = int(sorted_values.shape[0])
    if edges.shape[0] == 0:
        cumulative = np.array([0, n], dtype=np.int64)
    else:
        inner = np.searchsorted(sorted_values, edges[:-1], side="left")
        last = np.searchsorted(sorted_values, edges[-1:], side="right")
        cumulative = np.concatenate([[0], inner, last, [n]]).astype(np.int64)
    counts = np.diff(cumulative)
    sums = np.zeros(counts.shape, dtype=np.float64)
    filled = counts > 0
    if n:  # reduceat sums each slot on its own: no cancellation between slots
        with np.errstate(
            over="ignore", invalid="ignore"
        ):  # a slot of huge values may sum past the largest double
            sums[filled] = np.add.reduceat(sorted_values, cumulative[:-1][filled])
    if n:
        with np.errstate(over="ignore", invalid="ignore"):
            mean = float(sorted_values.mean())
        if not math.isfinite(mean):  # the sum overflowed: average in units of the largest value
            scale = max(abs(float(sorted_values[0])), abs(float(sorted_values[-1])))
            mean = float((sorted_values / scale).mean()) * scale
        with np.errstate(
            over="ignore", invalid="ignore"
        ):  # values past ~1e154: m2 overflows to inf
            deviations = sorted_values - mean
        # einsum, not np.dot: dot goes through OpenBLAS, whose thread pool turned this 0.06 ms
        # sum into 24 ms per column on a loaded 2-core machine (measured by bench/ingest.py).
        with np.errstate(over="ignore", invalid="ignore"):
            m2 = float(np.einsum("i,i->", deviations, deviations))
        minimum, maximum = float(sorted_values[0]), float(sorted_values[-1])
    else:
        mean, m2, minimum, maximum = 0.0, 0.0, math.nan, math.nan
    return NumericProfile(
        edges=edges,
        counts=counts,
        count=n,
        null_count=rows - n,
        minimum=minimum,
        maximum=maximum,
        mean=mean,
        m2=m2,
        sample=sorted_values.copy() if n <= SAMPLE_CAP else None,
        sums=sums,
    )


def category_hash(category: str) -> int:
    """A category's 32-bit hash, the same in every process and release (not Python's salted
    ``hash``): what a reference's ``seen`` set holds."""
    return int.from_bytes(hashlib.blake2b(category.encode("utf-8"), digest_size=4).digest(), "big")


def _categorical_profile(
    counts: Mapping[str, int],
    nulls: int,
    categories: Sequence[str],
    *,
    seen_by: CategoricalProfile | None = None,
) -> CategoricalProfile:
    """Counts on ``categories``. A reference (``seen_by`` None) with more categories than those
    keeps their hashes; a profile against such a reference counts its unseen values."""
    kept = {c: int(counts.get(c, 0)) for c in categories}
    total = int(sum(counts.values()))
    profile = CategoricalProfile(
        counts=kept, count=total, null_count=nulls, other=total - sum(kept.values())
    )
    if seen_by is None:
        if len(kept) < len(counts) <= SEEN_CAP:
            profile.seen = frozenset(category_hash(c) for c in counts)
            profile.singletons = sum(1 for n in counts.values() if n == 1)
            profile.doubletons = sum(1 for n in counts.values() if n == 2)
    elif seen_by.seen is not None:
        known = seen_by.seen
        profile.unseen = int(
            sum(n for c, n in counts.items() if c not in kept and category_hash(c) not in known)
        )
    return profile


def category_counts(data: Column) -> tuple[dict[str, int], int]:
    """Count each distinct non-null value (as ``str``) and the nulls of a categorical column."""
    if isinstance(data, CategoricalCodes):
        codes = np.asarray(data.codes)
        valid = codes >= 0
        nulls = int(codes.shape[0] - np.count_nonzero(valid))
        binned = np.bincount(codes[valid] if nulls else codes, minlength=len(data.categories))
        if binned.shape[0] > len(data.categories):
            raise InvalidInput(
                f"categorical codes go up to {binned.shape[0] - 1} but only "
                f"{len(data.categories)} categories were given"
            )
        out: dict[str, int] = {}
        for category, n in zip(data.categories, binned.tolist(), strict=True):
            if n and category is not None:
                key = str(category)
                out[key] = out.get(key, 0) + n
            elif n:
                nulls += n
        return out, nulls
    if isinstance(data, np.ma.MaskedArray):
        data = np.ma.filled(data.astype(object), None)
    values = np.asarray(data)
    if values.dtype.kind in "biuf":
        if values.dtype.kind == "f":
            finite = ~np.isnan(values)
            nulls = int(values.shape[0] - np.count_nonzero(finite))
            values = values[finite]
        else:
            nulls = 0
        uniques, counts = np.unique(values, return_counts=True)
        return {
            str(u): int(n) for u, n in zip(uniques.tolist(), counts.tolist(), strict=True)
        }, nulls
    # Object and string arrays: collections.Counter counts in C with hashing (~40 ms per 1M
    # rows), where np.unique has to sort Python objects (~400 ms). pandas.factorize would do the
    # same, but keel.stats imports only NumPy and SciPy.
    if values.dtype.kind == "S":
        values = values.astype(np.str_)
    counted = Counter(values.tolist() if values.dtype.kind == "U" else values)
    out = {}
    nulls = 0
    for value, n in counted.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            nulls += n
        else:
            key = value if isinstance(value, str) else str(value)
            out[key] = out.get(key, 0) + n
    return out, nulls


def _list_array(a: npt.NDArray[Any]) -> list[Any]:
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        return [_json_float(x) for x in a.tolist()]
    return list(a.tolist())


def _encode_array(a: npt.NDArray[Any]) -> str:
    dtype = "<f8" if a.dtype.kind == "f" else "<i8"
    return base64.b64encode(np.ascontiguousarray(a, dtype=dtype).tobytes()).decode("ascii")


def _decode_array(value: Any, dtype: type[np.float64] | type[np.int64]) -> Any:
    if isinstance(value, str):
        little = np.dtype(dtype).newbyteorder("<")
        return np.frombuffer(base64.b64decode(value), dtype=little).astype(dtype)
    if dtype is np.float64:
        return np.array([_float(x) for x in value], dtype=np.float64)
    return np.asarray(value, dtype=dtype)


_INFINITY = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _json_float(x: float) -> float | str | None:
    """``x`` as JSON allows it: NaN (nothing to report) as null, and a sum or a squared
    deviation that overflowed (values near 1e200 square past the largest double) as the
    string "Infinity" or "-Infinity", which `_float` reads back."""
    if math.isnan(x):
        return None
    return _INFINITY.get(x, x)


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)
