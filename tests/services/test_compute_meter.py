"""The serving compute meter: gathered in memory per (model, version, hour), written in one
batch; two replicas' flushes of the same hour add up; a failed flush keeps its seconds; closing
writes what is left."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from keel.services.backend import Backend
from keel.services.costs.compute_meter import ComputeMeter
from keel.store.sql import make_engine
from keel.store.sql.compute_usage import SqlComputeUsage

AT = datetime(2026, 11, 30, 5, 42, tzinfo=UTC)
HOUR = AT.replace(minute=0)
DAY = (HOUR - timedelta(hours=5), HOUR + timedelta(hours=19))


def _meter(store: SqlComputeUsage | None) -> ComputeMeter:
    return ComputeMeter(store, flush_s=3600, clock=lambda: AT)


def test_replicas_add_up_and_closing_writes_what_is_left(empty_backend: Backend) -> None:
    store = empty_backend.costs.compute_usage
    assert store is not None
    first, second = _meter(store), _meter(store)
    try:
        for seconds in (0.25, 0.5):
            first.add("churn", 1, seconds)
        second.add("churn", 1, 1.0)
        second.add("churn", 2, 2.0)
        assert (first.pending, second.pending) == (1, 2)
        assert store.usage(*DAY) == []
        assert first.flush() == 1
    finally:
        first.close()
        second.close()
    got = {(u.model, u.version, u.hour): (u.seconds, u.events) for u in store.usage(*DAY)}
    assert got == {("churn", 1, HOUR): (1.75, 3), ("churn", 2, HOUR): (2.0, 1)}


def test_a_failed_flush_keeps_its_seconds_for_the_next(
    empty_backend: Backend, tmp_path: Path
) -> None:
    store = empty_backend.costs.compute_usage
    assert store is not None
    # A database without Keel's tables: the write fails as a real database error would.
    broken = SqlComputeUsage(make_engine(f"sqlite:///{tmp_path / 'empty.db'}"))
    meter = _meter(broken)
    try:
        meter.add("churn", 1, 0.5)
        assert meter.flush() == 0
        meter.add("churn", 1, 0.25)
        assert meter.pending == 1
        meter.store = store
        assert meter.flush() == 1
    finally:
        meter.close()
    [row] = store.usage(*DAY)
    assert (row.seconds, row.events) == (0.75, 2)


def test_too_many_waiting_entries_wake_the_flush(empty_backend: Backend) -> None:
    store = empty_backend.costs.compute_usage
    assert store is not None
    meter = ComputeMeter(store, flush_s=3600, max_keys=2, clock=lambda: AT)
    try:
        meter.add("churn", 1, 0.1)
        meter.add("churn", 2, 0.1)
        deadline = time.monotonic() + 60
        while len(store.usage(*DAY)) < 2:
            assert time.monotonic() < deadline, "the full meter was not flushed"
            time.sleep(0.01)  # spaces out the polls; the deadline above decides
    finally:
        meter.close()
    assert {u.version for u in store.usage(*DAY)} == {1, 2}
