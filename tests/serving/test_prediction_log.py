"""A prediction row that cannot be logged is counted and reported, never silently lost."""

from __future__ import annotations

import pyarrow as pa

from keel.errors import InvalidInput
from keel.serving.prediction_log import MAX_ATTEMPTS, PredictionLog


def _rows(n: int) -> pa.Table:
    return pa.table({"prediction": pa.array([1.0] * n)})


def test_rows_are_written_per_model_and_version_in_batches() -> None:
    written: list[tuple[str, int, int]] = []
    log = PredictionLog(lambda m, v, t: written.append((m, v, t.num_rows)), lambda *a: None)
    try:
        for _ in range(3):
            log.record("churn", 1, _rows(2))
        log.record("churn", 2, _rows(1))
        assert log.flush()
    finally:
        log.close()
    assert sorted(written) == [("churn", 1, 6), ("churn", 2, 1)]


def test_a_store_that_keeps_failing_is_retried_then_reported() -> None:
    attempts: list[int] = []
    failures: list[tuple[str, int, int, str]] = []

    def broken(model: str, version: int, table: pa.Table) -> None:
        attempts.append(table.num_rows)
        raise OSError("disk full")

    log = PredictionLog(broken, lambda *a: failures.append(a), flush_s=0.01)
    try:
        log.record("churn", 1, _rows(3))
        assert log.flush(timeout_s=60)
    finally:
        log.close()
    assert attempts == [3] * MAX_ATTEMPTS
    assert failures == [("churn", 1, 3, "write_error")]


def test_rows_telemetry_refuses_are_reported_at_once() -> None:
    failures: list[tuple[str, int, int, str]] = []

    def refuses(model: str, version: int, table: pa.Table) -> None:
        raise InvalidInput("Column 'x' is missing.")

    log = PredictionLog(refuses, lambda *a: failures.append(a))
    try:
        log.record("churn", 1, _rows(2))
        assert log.flush()
    finally:
        log.close()
    assert failures == [("churn", 1, 2, "invalid")]


def test_a_full_buffer_counts_what_it_cannot_hold() -> None:
    failures: list[tuple[str, int, int, str]] = []
    log = PredictionLog(lambda *a: None, lambda *a: failures.append(a), max_rows=5)
    log.close()  # nothing is written from here on, so the buffer only fills
    log.record("churn", 1, _rows(4))
    log.record("churn", 1, _rows(4))
    assert failures == [("churn", 1, 4, "overflow")]
    assert log.queued_rows == 4
