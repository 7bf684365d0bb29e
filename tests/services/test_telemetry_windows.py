"""Window profiles as stored at ingest: merging the hours equals profiling the whole window at
once, concurrent writers lose no row (SQLite and PostgreSQL), and a reference set later rebuilds
the windows from the raw files."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from keel.domain.permissions import Grant, Principal, PrincipalKind, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.services.backend import Backend
from keel.services.telemetry_profiles import stats_columns
from keel.stats.profile import DatasetProfile, profile_like

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
START = datetime(2024, 5, 1, tzinfo=UTC)
SIGNATURE = Signature(
    (
        Column("x", ColumnType.FLOAT),
        Column("n", ColumnType.INTEGER),
        Column("city", ColumnType.CATEGORICAL),
        Column("sex", ColumnType.STRING, ColumnRole.PROTECTED_ATTRIBUTE),
    )
)


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    opened = empty_backend
    opened.identity.store.create_principal("root", PrincipalKind.USER, "test")
    opened.registry.create_team(ADMIN, "risk")
    opened.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    opened.registry.register_version(
        ADMIN, "churn", io.BytesIO(b"w"), "m.bin", VersionDraft(signature=SIGNATURE)
    )
    return opened


def rows(count: int, seed: int, start: datetime = START, hours: int = 6) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=count)
    x[rng.random(count) < 0.05] = np.nan  # missing values count as nulls
    offsets = rng.integers(0, hours * 3_600_000_000, count)
    return pa.table(
        {
            "ts": pa.array(
                np.datetime64(start.replace(tzinfo=None), "us") + offsets.astype("timedelta64[us]")
            ).cast(pa.timestamp("us", tz="UTC")),
            "x": x,
            "n": rng.integers(0, 100, count),
            "city": rng.choice(["oslo", "rome", "lima", "kyiv"], count),
            "sex": rng.choice(["f", "m"], count),
            "prediction": rng.integers(0, 2, count),
        }
    )


def _same(a: DatasetProfile, b: DatasetProfile) -> None:
    assert a.rows == b.rows
    assert a.columns.keys() == b.columns.keys()
    for name, mine in a.columns.items():
        theirs = b.columns[name].to_dict()
        ours = mine.to_dict()
        for key in ("counts", "count", "null_count", "min", "max", "edges"):
            assert ours.get(key) == theirs.get(key), (name, key)
        if "mean" in ours:
            assert ours["mean"] == pytest.approx(theirs["mean"], rel=1e-12)
            assert ours["m2"] == pytest.approx(theirs["m2"], rel=1e-9)


def test_merged_hourly_profiles_equal_profiling_the_whole_window(backend: Backend) -> None:
    telemetry = backend.telemetry
    reference = telemetry.set_reference(ADMIN, "churn", 1, rows(5_000, seed=1))
    batches = [rows(3_000, seed=s) for s in range(2, 7)]
    for batch in batches:
        telemetry.log_predictions(ADMIN, "churn", 1, batch)
    end = START + timedelta(hours=6)
    hourly = telemetry.window_profiles("churn", 1, START, end)
    assert len(hourly) == 6
    merged = telemetry.merged_profile("churn", 1, START, end)
    assert merged is not None
    everything = pa.concat_tables(batches)
    at_once = profile_like(reference, stats_columns(everything, reference.columns))
    at_once.rows = everything.num_rows
    _same(merged, at_once)
    counts = telemetry.hourly_row_counts("churn", 1, START, end)
    assert sum(n for _, n in counts) == 15_000
    # A window of two hours is the merge of just those two.
    two = telemetry.merged_profile(
        "churn", 1, START + timedelta(hours=2), START + timedelta(hours=4)
    )
    assert two is not None and two.rows == sum(n for h, n in counts[2:4])


def test_concurrent_writers_lose_no_row(backend: Backend) -> None:
    telemetry = backend.telemetry
    telemetry.set_reference(ADMIN, "churn", 1, rows(2_000, seed=1))
    errors: list[BaseException] = []

    def ingest(seed: int) -> None:
        try:
            for k in range(4):
                telemetry.log_predictions(ADMIN, "churn", 1, rows(500, seed=seed * 10 + k))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=ingest, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    end = START + timedelta(hours=6)
    merged = telemetry.merged_profile("churn", 1, START, end)
    assert merged is not None and merged.rows == 4 * 4 * 500
    assert sum(n for _, n in telemetry.hourly_row_counts("churn", 1, START, end)) == 8_000
    stored = telemetry.files.read_predictions("churn", 1, START, end)
    assert stored.num_rows == 8_000


def test_a_reference_set_later_rebuilds_the_windows_from_raw_files(backend: Backend) -> None:
    telemetry = backend.telemetry
    batch = rows(4_000, seed=3)
    telemetry.log_predictions(ADMIN, "churn", 1, batch)
    end = START + timedelta(hours=6)
    assert telemetry.window_profiles("churn", 1, START, end) == []  # no reference: counts only
    assert sum(n for _, n in telemetry.hourly_row_counts("churn", 1, START, end)) == 4_000
    reference = telemetry.set_reference(ADMIN, "churn", 1, rows(5_000, seed=1))
    merged = telemetry.merged_profile("churn", 1, START, end)
    assert merged is not None
    at_once = profile_like(reference, stats_columns(batch, reference.columns))
    at_once.rows = batch.num_rows
    _same(merged, at_once)


def test_a_rejected_batch_is_counted_in_its_hour_and_writes_nothing(backend: Backend) -> None:
    telemetry = backend.telemetry
    bad = rows(100, seed=4).set_column(1, "x", pa.array(["high"] * 100))
    with pytest.raises(Exception, match="Column 'x' must hold float values, got string"):
        telemetry.log_predictions(ADMIN, "churn", 1, bad)
    now = datetime.now(UTC)
    assert (
        telemetry.rejected_rows("churn", 1, now - timedelta(hours=1), now + timedelta(hours=1))
        == 100
    )
    assert telemetry.files.prediction_files("churn", 1) == []
