"""Check a profile computed elsewhere (Spark, a notebook) before it is stored.

An uploaded profile is untrusted input: it decides drift verdicts, so one with negative counts,
counts that do not add up, unsorted bin edges or bins other than the reference's would make every
later check wrong rather than fail. Each rule below names the field and the fix.
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from keel.domain.signature import ColumnType, Signature
from keel.errors import InvalidInput
from keel.services.telemetry_validation import logged_columns
from keel.stats.profile import (
    FORMAT,
    SAMPLE_CAP,
    SEEN_CAP,
    CategoricalProfile,
    ColumnProfile,
    DatasetProfile,
    NumericProfile,
)

MAX_EDGES = 1001  # bins <= 1000, as the reference route allows
MAX_CATEGORIES = 10_000  # top_k <= 10,000, as the reference route allows
MAX_COLUMNS = 2_000
_NUMERIC_TYPES = (ColumnType.INTEGER, ColumnType.FLOAT, ColumnType.DATETIME)


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", {"field": field})


def parse_profile(document: Mapping[str, Any], field: str = "profile") -> DatasetProfile:
    """The profile in ``document`` (``DatasetProfile.to_dict()``), checked for consistency."""
    if document.get("format") != FORMAT:
        raise _bad(f"{field}.format", f"must be {FORMAT!r}, got {document.get('format')!r}")
    rows, columns = document.get("rows"), document.get("columns")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        raise _bad(f"{field}.rows", f"must be a whole number >= 0, got {rows!r}")
    if not isinstance(columns, dict) or not columns:
        raise _bad(f"{field}.columns", "must be a non-empty object of column profiles")
    if len(columns) > MAX_COLUMNS:
        raise _bad(f"{field}.columns", f"at most {MAX_COLUMNS} columns, got {len(columns)}")
    parsed: dict[str, ColumnProfile] = {}
    for name, column in columns.items():
        where = f"{field}.columns.{name}"
        if not name or len(name) > 256:
            raise _bad(where, "a column name must have 1 to 256 characters")
        if not isinstance(column, dict) or column.get("kind") not in ("numeric", "categorical"):
            raise _bad(f"{where}.kind", "must be 'numeric' or 'categorical'")
        _check_whole_numbers(where, column)
        try:
            if column["kind"] == "numeric":
                parsed[name] = NumericProfile.from_dict(column)
            else:
                parsed[name] = CategoricalProfile.from_dict(column)
        except KeyError as exc:
            raise _bad(where, f"misses the field {exc.args[0]!r}") from None
        except (TypeError, ValueError, OverflowError, binascii.Error) as exc:
            raise _bad(where, f"holds a value of the wrong type ({exc})") from None
        _check_column(where, parsed[name], rows)
    return DatasetProfile(rows=rows, columns=parsed)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_whole_numbers(where: str, column: Mapping[str, Any]) -> None:
    """Counts are whole numbers: ``int()`` in ``from_dict`` would also take 2.5 or "2"."""
    for key in ("count", "null_count", "other", "singletons", "doubletons"):
        if key in column and not _is_whole(column[key]):
            raise _bad(f"{where}.{key}", f"must be a whole number, got {column[key]!r}")
    if column.get("unseen") is not None and not _is_whole(column["unseen"]):
        raise _bad(where + ".unseen", f"must be a whole number or null, got {column['unseen']!r}")
    counts = column.get("counts")
    listed: list[Any] = counts if isinstance(counts, list) else []
    if column["kind"] == "numeric" and not all(_is_whole(n) for n in listed):
        raise _bad(f"{where}.counts", "must be whole numbers")
    if column["kind"] == "categorical":
        pairs = listed
        good = [isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in pairs]
        if not isinstance(counts, list) or not all(good) or not all(_is_whole(p[1]) for p in pairs):
            raise _bad(f"{where}.counts", 'must be a list of ["category", count] pairs')


def _check_column(where: str, p: ColumnProfile, rows: int) -> None:
    if p.count < 0 or p.null_count < 0:
        raise _bad(where, "count and null_count must be >= 0")
    if p.count + p.null_count != rows:
        raise _bad(
            where,
            f"count + null_count must equal the profile's rows ({rows}), got "
            f"{p.count} + {p.null_count}",
        )
    if isinstance(p, CategoricalProfile):
        if len(p.counts) > MAX_CATEGORIES:
            raise _bad(f"{where}.counts", f"at most {MAX_CATEGORIES} categories")
        if p.other < 0 or any(n < 0 for n in p.counts.values()):
            raise _bad(f"{where}.counts", "category counts and other must be >= 0")
        if sum(p.counts.values()) + p.other != p.count:
            raise _bad(f"{where}.counts", "the category counts plus other must add up to count")
        if p.unseen is not None and not 0 <= p.unseen <= p.other:
            raise _bad(f"{where}.unseen", "must be between 0 and other (unseen values are other)")
        if p.seen is not None:
            if len(p.seen) > SEEN_CAP:
                raise _bad(f"{where}.seen", f"at most {SEEN_CAP} category hashes")
            if any(not 0 <= h < 2**32 for h in p.seen):
                raise _bad(f"{where}.seen", "must hold 32-bit category hashes")
            if not 0 <= p.singletons + p.doubletons <= len(p.seen):
                raise _bad(
                    f"{where}.singletons",
                    "singletons and doubletons must be >= 0 and at most the categories seen",
                )
        return
    _check_numeric(where, p)


def _check_numeric(where: str, p: NumericProfile) -> None:
    edges = p.edges
    if edges.shape[0] > MAX_EDGES:
        raise _bad(f"{where}.edges", f"at most {MAX_EDGES} edges, got {edges.shape[0]}")
    if not np.isfinite(edges).all():
        raise _bad(f"{where}.edges", "must be finite numbers")
    constant = edges.shape[0] == 2 and edges[0] == edges[1]
    if edges.shape[0] == 1 or (not constant and not (np.diff(edges) > 0).all()):
        raise _bad(f"{where}.edges", "must be strictly increasing (or [c, c] for a constant)")
    if p.counts.shape[0] != edges.shape[0] + 1:
        raise _bad(f"{where}.counts", "must have one more slot than edges (len(edges) + 1)")
    if (p.counts < 0).any() or int(p.counts.sum()) != p.count:
        raise _bad(f"{where}.counts", "must be >= 0 and add up to count")
    if p.count == 0:
        if not (math.isnan(p.minimum) and math.isnan(p.maximum)):
            raise _bad(where, "a column with no values has no min or max (null)")
    elif not (math.isfinite(p.minimum) and math.isfinite(p.maximum) and p.minimum <= p.maximum):
        raise _bad(where, "min and max must be finite numbers with min <= max")
    if not math.isfinite(p.mean) or math.isnan(p.m2) or p.m2 < 0:
        raise _bad(where, "mean must be a finite number and m2 a number >= 0")
    if p.sums is not None and (p.sums.shape != p.counts.shape or np.isnan(p.sums).any()):
        raise _bad(f"{where}.sums", "must hold one number per slot of counts")
    if p.sample is not None:
        sample = p.sample
        if p.count > SAMPLE_CAP or sample.shape[0] != p.count:
            raise _bad(f"{where}.sample", f"must hold all values when count <= {SAMPLE_CAP}")
        if not np.isfinite(sample).all() or (np.diff(sample) < 0).any():
            raise _bad(f"{where}.sample", "must be finite values in ascending order")


def check_reference(reference: DatasetProfile, signature: Signature) -> None:
    """A reference must have rows and, when the signature lists features, profile exactly them
    with a kind that matches their type."""
    if reference.rows == 0:
        raise _bad("profile.rows", "the reference has no rows; profile the training data")
    logged = logged_columns(signature)
    if not logged:
        return
    expected = {c.name: c for c in logged}
    for name, column in reference.columns.items():
        if name not in expected:
            raise _bad(
                f"profile.columns.{name}",
                f"is not a feature or protected attribute of the signature "
                f"(expected some of {sorted(expected)})",
            )
        numeric = expected[name].dtype in _NUMERIC_TYPES
        if numeric != isinstance(column, NumericProfile):
            want = "numeric" if numeric else "categorical"
            raise _bad(
                f"profile.columns.{name}.kind",
                f"the signature types it {expected[name].dtype.value}, so it must be {want}",
            )
    for name, wanted in expected.items():
        if name not in reference.columns and not wanted.nullable:
            raise _bad("profile.columns", f"misses the signature's column {name!r}")


def check_same_bins(window: DatasetProfile, reference: DatasetProfile) -> None:
    """A window must be profiled on the reference's bins and categories, or it cannot merge."""
    for name, column in window.columns.items():
        where = f"profile.columns.{name}"
        ref = reference.columns.get(name)
        if ref is None:
            raise _bad(where, f"is not in the reference (its columns: {list(reference.columns)})")
        if isinstance(ref, NumericProfile):
            if not isinstance(column, NumericProfile):
                raise _bad(f"{where}.kind", "the reference profiles it as numeric")
            if not np.array_equal(column.edges, ref.edges):
                raise _bad(
                    f"{where}.edges",
                    "differ from the reference's; profile the window with "
                    "keel.spark.profile(df, reference=...) of the current reference",
                )
        elif not isinstance(column, CategoricalProfile):
            raise _bad(f"{where}.kind", "the reference profiles it as categorical")
        elif list(column.counts) != ref.categories:
            raise _bad(
                f"{where}.counts",
                "categories differ from the reference's; profile the window on the current "
                "reference",
            )
