"""Telemetry: predictions and labels in, profiles and DuckDB queries out.

An ingested batch is validated against the version's signature (a rejected batch writes nothing
and is counted), written durably as Parquet (`keel.store.telemetry`), and folded into the version's
hourly window profiles, all before it is acknowledged. The Parquet write, the profile merge and
the batch's record happen under the version's write lock, in one SQL transaction: a crash before
the commit leaves at most a file that a retry of the same batch id overwrites.

Ingested rows are not audit events (they are data, like a metrics scrape; the audit chain would
serialise every writer); what changes Keel's behaviour is: setting a reference, setting retention
and purging expired partitions.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, authorize
from keel.domain.telemetry import (
    ERROR,
    LABEL,
    LATENCY_MS,
    PREDICTION,
    PREDICTION_ID,
    SCORE,
    TIMESTAMP,
    IngestReceipt,
    OperationsStats,
    RetentionPolicy,
)
from keel.errors import Conflict, InvalidInput, NotReady
from keel.services.profile_checks import check_reference, check_same_bins
from keel.services.registry import Registry
from keel.services.telemetry_counts import IngestCounters
from keel.services.telemetry_io import UploadLimits, decode_table
from keel.services.telemetry_profiles import (
    by_hour,
    hour_of,
    hourly_profiles,
    kinds_of,
    stats_columns,
)
from keel.services.telemetry_validation import (
    reference_columns,
    validate_labels,
    validate_predictions,
)
from keel.stats.profile import DatasetProfile, build_reference, merge_all, profile_like
from keel.store.sql.profiles import SqlTelemetryStore, StoredBatch
from keel.store.telemetry import (
    PREDICTIONS_SOURCE,
    TelemetryFiles,
    parquet_source,
    quote_identifier,
)

__all__ = ["IngestReceipt", "OperationsStats", "RetentionPolicy", "Telemetry"]

log = logging.getLogger("keel.telemetry")
# After a labels batch is stored: the model and the batch's label files.
LabelsHook = Callable[[str, list[str]], None]
_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
MAX_RETENTION_DAYS = 36_500
SYSTEM_ACTOR = "keel-worker"
WINDOW_PROFILE = "window-profile"  # the batch kind of an uploaded window profile


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _merge_json(stored: str, new: str) -> str:
    return DatasetProfile.from_json(stored).merge(DatasetProfile.from_json(new)).to_json()


def _receipt(batch: StoredBatch) -> IngestReceipt:
    return IngestReceipt(batch.batch_id, batch.rows, batch.partitions, replayed=True)


def _batch_id(given: str | None) -> str:
    if given is None:
        return uuid.uuid4().hex
    if not _BATCH_ID.fullmatch(given):
        raise InvalidInput(
            "A batch id must be 8-64 letters, digits, '_' or '-' (a uuid4 hex is ideal). "
            f"Got {given!r}.",
            {"field": "batch_id"},
        )
    return given


class Telemetry:
    """Ingest and query a model's predictions, labels and profiles."""

    def __init__(
        self,
        store: SqlTelemetryStore,
        files: TelemetryFiles,
        registry: Registry,
        *,
        upload_limits: UploadLimits | None = None,
    ) -> None:
        self.store = store
        self.files = files
        self.registry = registry
        self._labels_hooks: list[LabelsHook] = []
        self.upload_limits = upload_limits or UploadLimits()
        self.counters = IngestCounters()

    def __repr__(self) -> str:
        return f"Telemetry(store={self.store!r}, files={self.files!r})"

    # -- ingest --------------------------------------------------------------------------------

    def decode(self, body: bytes, content_type: str) -> pa.Table:
        """An uploaded body as a table, within this server's upload limits (413 past them)."""
        return decode_table(body, content_type, self.upload_limits)

    @contextlib.contextmanager
    def _storing(self, model: str, kind: str) -> Iterator[None]:
        """Count a batch the telemetry storage did not take, and answer 503: nothing was
        acknowledged, so the client retries with the same batch id."""
        try:
            yield
        # Broad on purpose: a disk, s3fs, botocore or network error alike means "not stored",
        # and the client's retry with the same batch id is the remedy for each of them.
        except Exception as exc:
            self.counters.write_failed(model, kind)
            log.warning("telemetry storage %s refused a %s batch of %s", self.files, kind, model)
            raise NotReady(
                f"The telemetry storage {self.files.url} did not take the {kind} batch "
                f"({type(exc).__name__}); nothing was acknowledged. Retry with the same batch "
                "id once the storage is reachable.",
                {"url": self.files.url, "kind": kind},
            ) from exc

    def authorize_write(self, by: Principal, model: str) -> None:
        """Raise unless ``by`` may log telemetry for ``model`` (write in its team)."""
        found = self.registry.get_model(check_name(model, "model"))
        authorize(by, Permission.WRITE, found.team)

    def _replayed(self, batch_id: str, kind: str, model: str) -> IngestReceipt | None:
        stored = self.store.batch(batch_id)
        if stored is None:
            return None
        if stored.kind != kind:
            raise Conflict(
                f"Batch id {batch_id!r} was already used for {stored.kind}; give each batch "
                "its own id.",
                {"field": "batch_id", "batch_id": batch_id},
            )
        return _receipt(stored)

    def log_predictions(
        self,
        by: Principal,
        model: str,
        version: int,
        batch: pa.Table,
        *,
        batch_id: str | None = None,
    ) -> IngestReceipt:
        """Validate, store durably and profile one batch of ``model``/``version``'s predictions.

        ``batch_id`` makes a retry safe: a batch id already stored is answered with its first
        receipt (``replayed=True``) and nothing is written again.
        """
        self.authorize_write(by, model)
        signature = self.registry.get_version(model, version).signature
        batch_id = _batch_id(batch_id)
        replayed = self._replayed(batch_id, "predictions", model)
        if replayed is not None:
            return replayed
        now = datetime.now(UTC)
        try:
            table = validate_predictions(batch, signature, now=now, batch_id=batch_id)
        except InvalidInput:
            self.store.count_rejected(model, version, hour_of(now), batch.num_rows)
            raise
        stored_reference = self.store.reference(model, version)
        hours = hourly_profiles(table, self._profile(stored_reference))
        with self.store.ingest(model, version) as tx:
            again = tx.seen(batch_id)
            if again is not None:
                return _receipt(again)
            current = tx.reference()
            if current != stored_reference:  # replaced meanwhile: profile on the new bins
                hours = hourly_profiles(table, self._profile(current))
            with self._storing(model, "predictions"):
                written = self.files.write_predictions(model, version, table, batch_id)
            for hour, (rows, profile) in hours.items():
                text = None if profile is None else profile.to_json()
                tx.add_to_window(hour, rows, text, _merge_json)
            partitions = [day.isoformat() for day, _ in written]
            tx.record_batch(batch_id, "predictions", version, table.num_rows, partitions)
        errors = 0
        if ERROR in table.column_names:
            errors = pc.count(table.column(ERROR), mode="only_valid").as_py()
        self.counters.acknowledged(model, version, "predictions", table.num_rows, errors)
        return IngestReceipt(batch_id, table.num_rows, tuple(partitions))

    def log_labels(
        self, by: Principal, model: str, batch: pa.Table, *, batch_id: str | None = None
    ) -> IngestReceipt:
        """Store ground truth for earlier predictions, joined later by ``prediction_id``."""
        self.authorize_write(by, model)
        batch_id = _batch_id(batch_id)
        replayed = self._replayed(batch_id, "labels", model)
        if replayed is not None:
            return replayed
        table = validate_labels(batch, now=datetime.now(UTC))
        with self._storing(model, "labels"):
            written = self.files.write_labels(model, table, batch_id)
        partitions = [day.isoformat() for day, _ in written]
        self.store.record_labels(model, batch_id, table.num_rows, partitions)
        self.counters.acknowledged(model, None, "labels", table.num_rows)
        for hook in self._labels_hooks:
            try:
                hook(model, [path for _, path in written])
            except Exception:  # the labels are stored; a failed re-judge mark must not undo that
                log.exception("late-label hook failed for a labels batch of %s", model)
        return IngestReceipt(batch_id, table.num_rows, tuple(partitions))

    def on_labels(self, hook: LabelsHook) -> None:
        """Call ``hook(model, label_files)`` after a labels batch is stored (late labels)."""
        self._labels_hooks.append(hook)

    def labelled_span(
        self, model: str, label_files: Sequence[str], since: datetime
    ) -> tuple[datetime, datetime] | None:
        """The earliest and latest time of ``model``'s predictions at or after ``since`` that
        ``label_files`` label (any version); None when they label none of them."""
        predictions = self.files.all_prediction_files(model, since)
        if not predictions or not label_files:
            return None
        sql = f"""
            SELECT min(p.{TIMESTAMP}) AS first_ts, max(p.{TIMESTAMP}) AS last_ts
            FROM {parquet_source("predictions")} AS p
            WHERE p.{TIMESTAMP} >= $since AND p.{PREDICTION_ID} IN (
                SELECT {PREDICTION_ID} FROM {parquet_source("labels")})
        """  # noqa: S608 - constants only; paths and times are parameters
        found = self.files.query(
            sql, {"predictions": predictions, "labels": list(label_files), "since": _utc(since)}
        ).to_pylist()
        if not found or found[0]["first_ts"] is None:
            return None
        return _utc(found[0]["first_ts"]), _utc(found[0]["last_ts"])

    # -- reference -----------------------------------------------------------------------------

    def set_reference(
        self,
        by: Principal,
        model: str,
        version: int,
        table: pa.Table,
        *,
        source: str = "upload",
        bins: int = 20,
        top_k: int = 50,
    ) -> DatasetProfile:
        """Profile ``table`` as the version's reference, and rebuild its window profiles on the
        new bins from the raw Parquet files (so every stored window stays comparable)."""
        self.authorize_write(by, model)
        signature = self.registry.get_version(model, version).signature
        if table.num_rows == 0:
            raise InvalidInput(
                "The reference data has no rows; send the training data (or a sample of it).",
                {"field": "data"},
            )
        columns = reference_columns(table, signature)
        kinds = kinds_of(columns)
        reference = build_reference(
            stats_columns(pa.table(columns), kinds), kinds, bins=bins, top_k=top_k
        )
        self._install_reference(by, model, version, reference, source)
        return reference

    def set_reference_profile(
        self, by: Principal, model: str, version: int, reference: DatasetProfile, *, source: str
    ) -> DatasetProfile:
        """Store a reference profiled elsewhere (``keel profiles build --engine spark``), once it
        passes `check_reference`; window profiles are rebuilt on its bins from the raw files.
        Window profiles uploaded without raw rows cannot be recounted and are dropped."""
        self.authorize_write(by, model)
        check_reference(reference, self.registry.get_version(model, version).signature)
        self._install_reference(by, model, version, reference, source)
        return reference

    def add_window_profile(
        self,
        by: Principal,
        model: str,
        version: int,
        hour: datetime,
        profile: DatasetProfile,
        *,
        batch_id: str | None = None,
    ) -> IngestReceipt:
        """Merge a window profiled elsewhere into ``hour``'s profile, as if its rows had been
        ingested then (no raw rows are stored). Sending the same ``batch_id`` again adds nothing."""
        self.authorize_write(by, model)
        batch = _batch_id(batch_id)
        hour = _utc(hour)
        if hour != hour_of(hour):
            raise InvalidInput(
                f"hour must be a whole UTC hour, like {hour_of(hour).isoformat()}; got "
                f"{hour.isoformat()}.",
                {"field": "hour"},
            )
        with self.store.ingest(model, version) as tx:
            seen = tx.seen(batch)
            if seen is not None:
                if seen.kind != WINDOW_PROFILE:
                    raise Conflict(
                        f"Batch id {batch!r} was already used for {seen.kind}; give each "
                        "upload its own id.",
                        {"field": "batch_id", "batch_id": batch},
                    )
                return _receipt(seen)
            stored = self._profile(tx.reference())
            if stored is None:
                raise Conflict(
                    f"Version {version} of {model!r} has no reference profile: set one first "
                    f"(`keel profiles build --as reference`), then profile windows on its bins.",
                    {"model": model, "version": version},
                )
            check_same_bins(profile, stored)
            tx.add_to_window(hour, profile.rows, profile.to_json(), _merge_json)
            tx.record_batch(batch, WINDOW_PROFILE, version, profile.rows, [])
        return IngestReceipt(batch, profile.rows, ())

    def _install_reference(
        self, by: Principal, model: str, version: int, reference: DatasetProfile, source: str
    ) -> None:
        with self.store.ingest(model, version) as tx:
            windows: dict[datetime, tuple[int, str | None]] = {}
            for path in self.files.prediction_files(model, version):
                stored = self.files.query(
                    f"SELECT * FROM {PREDICTIONS_SOURCE}",  # noqa: S608 - constant
                    {"files": [path]},
                )
                for hour, rows in by_hour(stored):
                    profile = profile_like(reference, stats_columns(rows, reference.columns))
                    profile.rows = rows.num_rows
                    before = windows.get(hour)
                    if before is not None and before[1] is not None:
                        profile = DatasetProfile.from_json(before[1]).merge(profile)
                    windows[hour] = (profile.rows, profile.to_json())
            tx.replace_reference(
                rows=reference.rows,
                profile=reference.to_json(),
                source=source,
                actor=by.name,
                model=model,
                version=version,
                windows=windows,
            )

    @staticmethod
    def _profile(stored: object) -> DatasetProfile | None:
        text = getattr(stored, "profile", None)
        return None if text is None else DatasetProfile.from_json(text)

    def reference_profile(self, model: str, version: int) -> DatasetProfile | None:
        """The version's reference profile, or None before one is set."""
        return self._profile(self.store.reference(check_name(model, "model"), version))

    # -- windows -------------------------------------------------------------------------------

    def window_profiles(
        self, model: str, version: int, start: datetime, end: datetime
    ) -> list[tuple[datetime, DatasetProfile]]:
        """The hourly profiles with start <= hour < end (hours without a profile are left out:
        they hold rows ingested before a reference existed)."""
        stored = self.store.windows(check_name(model, "model"), version, _utc(start), _utc(end))
        return [(w.hour, DatasetProfile.from_json(w.profile)) for w in stored if w.profile]

    def merged_profile(
        self, model: str, version: int, start: datetime, end: datetime
    ) -> DatasetProfile | None:
        """One profile of the whole window, merged from its hours (no raw row is read)."""
        return merge_all(p for _, p in self.window_profiles(model, version, start, end))

    def hourly_row_counts(
        self, model: str, version: int, start: datetime, end: datetime
    ) -> list[tuple[datetime, int]]:
        """Rows ingested per hour with start <= hour < end, oldest first."""
        stored = self.store.windows(check_name(model, "model"), version, _utc(start), _utc(end))
        return [(w.hour, w.rows) for w in stored]

    def rejected_rows(self, model: str, version: int, start: datetime, end: datetime) -> int:
        """Rows refused at ingest (wrong type, unknown or missing column) in [start, end)."""
        return self.store.rejected(check_name(model, "model"), version, _utc(start), _utc(end))

    # -- raw queries ---------------------------------------------------------------------------

    def labelled_predictions(
        self,
        model: str,
        version: int,
        start: datetime,
        end: datetime,
        columns: Sequence[str] = (),
        *,
        include_unlabelled: bool = False,
    ) -> pa.Table:
        """Predictions with start <= ts < end that have a label, joined on ``prediction_id``:
        prediction_id, ts, prediction, score, label, then ``columns``. When a prediction was
        labelled more than once, the newest label counts. With ``include_unlabelled`` every
        prediction of the window is returned, its label null until one arrives."""
        check_name(model, "model")
        start, end = _utc(start), _utc(end)
        extra = "".join(f", p.{quote_identifier(c)}" for c in columns)
        empty = pa.table(
            {
                PREDICTION_ID: pa.array([], pa.string()),
                TIMESTAMP: pa.array([], pa.timestamp("us", tz="UTC")),
                PREDICTION: pa.array([], pa.float64()),
                SCORE: pa.array([], pa.float64()),
                LABEL: pa.array([], pa.float64()),
                **{c: pa.array([], pa.null()) for c in columns},
            }
        )
        predictions = self.files.prediction_files(model, version, start, end)
        labels = self.files.label_files(model)
        if not predictions or not (labels or include_unlabelled):
            return empty
        if labels:
            latest_labels = f"""
                SELECT {PREDICTION_ID}, arg_max({LABEL}, {TIMESTAMP}) AS {LABEL}
                FROM {parquet_source("labels")}
                GROUP BY {PREDICTION_ID}"""  # noqa: S608 - constants only
        else:  # nothing labelled yet: an empty label table keeps one query shape
            latest_labels = (
                f"SELECT NULL::VARCHAR AS {PREDICTION_ID}, NULL::DOUBLE AS {LABEL} LIMIT 0"
            )
        join = "LEFT JOIN" if include_unlabelled else "JOIN"
        sql = f"""
            WITH l AS ({latest_labels})
            SELECT p.{PREDICTION_ID}, p.{TIMESTAMP}, p.{PREDICTION}, p.{SCORE}, l.{LABEL}{extra}
            FROM {parquet_source("predictions")} AS p
            {join} l USING ({PREDICTION_ID})
            WHERE p.{TIMESTAMP} >= $start AND p.{TIMESTAMP} < $end
            ORDER BY p.{TIMESTAMP}, p.{PREDICTION_ID}
        """  # noqa: S608 - identifiers are constants or quoted; paths and times are parameters
        sources: dict[str, Any] = {"predictions": predictions, "start": start, "end": end}
        if labels:
            sources["labels"] = labels
        return self.files.query(sql, sources)

    def operations(
        self, model: str, version: int, start: datetime, end: datetime
    ) -> OperationsStats:
        """Rows, latency p50/p95/p99 (linear interpolation, as NumPy's default quantile), the
        share of rows with an error, and rows per second over [start, end)."""
        check_name(model, "model")
        start, end = _utc(start), _utc(end)
        seconds = max((end - start).total_seconds(), 1e-9)
        files = self.files.prediction_files(model, version, start, end)
        if not files:
            return OperationsStats(0, None, None, None, None, 0.0)
        sql = f"""
            SELECT count(*) AS rows,
                   quantile_cont({LATENCY_MS}, [0.5, 0.95, 0.99]) AS q,
                   avg(CASE WHEN {ERROR} IS NULL THEN 0.0 ELSE 1.0 END) AS error_rate
            FROM {PREDICTIONS_SOURCE}
            WHERE {TIMESTAMP} >= $start AND {TIMESTAMP} < $end
        """  # noqa: S608 - constants only; paths and times are parameters
        row = self.files.query(sql, {"files": files, "start": start, "end": end}).to_pylist()[0]
        quantiles = row["q"] or [None, None, None]
        rows = int(row["rows"])
        return OperationsStats(
            rows=rows,
            latency_p50_ms=quantiles[0],
            latency_p95_ms=quantiles[1],
            latency_p99_ms=quantiles[2],
            error_rate=row["error_rate"],
            throughput_per_s=rows / seconds,
        )

    def request_counts(
        self, model: str, start: datetime, end: datetime, *, latency_bound_ms: float | None = None
    ) -> tuple[int, int]:
        """(requests, bad requests) of every version of ``model`` over [start, end), for SLOs.

        Bad means "carries an error" or, with ``latency_bound_ms``, "took longer than the bound"
        (then only rows with a latency count as requests)."""
        check_name(model, "model")
        start, end = _utc(start), _utc(end)
        files = [
            path
            for version in self.files.versions(model)
            for path in self.files.prediction_files(model, version, start, end)
        ]
        if not files:
            return 0, 0
        if latency_bound_ms is None:
            counted, bad = "true", f"{ERROR} IS NOT NULL"
        else:
            counted, bad = f"{LATENCY_MS} IS NOT NULL", f"{LATENCY_MS} > $bound"
        sql = f"""
            SELECT count(*) AS total, count(*) FILTER (WHERE {bad}) AS bad
            FROM {PREDICTIONS_SOURCE}
            WHERE {TIMESTAMP} >= $start AND {TIMESTAMP} < $end AND {counted}
        """  # noqa: S608 - constants only; paths, times and the bound are parameters
        params: dict[str, object] = {"files": files, "start": start, "end": end}
        if latency_bound_ms is not None:
            params["bound"] = float(latency_bound_ms)
        row = self.files.query(sql, params).to_pylist()[0]
        return int(row["total"]), int(row["bad"] or 0)

    # -- retention -----------------------------------------------------------------------------

    def retention(self, model: str) -> int | None:
        """Days of raw telemetry kept for ``model``; None: kept until a retention is set."""
        return self.store.retention_days(check_name(model, "model"))

    def set_retention(
        self, by: Principal, model: str, days: int, *, now: datetime | None = None
    ) -> tuple[RetentionPolicy, list[str]]:
        """Keep ``days`` of ``model``'s raw predictions and labels; older date partitions are
        deleted now and by the worker from then on. Profiles are kept (they are small, and
        they are the history drift is measured over). Returns the policy and what was deleted."""
        self.authorize_write(by, model)
        if not 1 <= days <= MAX_RETENTION_DAYS:
            raise InvalidInput(
                f"Retention must be between 1 and {MAX_RETENTION_DAYS} days. Got {days}.",
                {"field": "days"},
            )
        at = self.store.set_retention(model, days, by.name)
        removed = self._purge(model, days, by.name, now)
        return RetentionPolicy(model, days, by.name, at), removed

    def _purge(self, model: str, days: int, actor: str, now: datetime | None) -> list[str]:
        cutoff = (_utc(now or datetime.now(UTC)) - timedelta(days=days)).date()
        removed = self.files.delete_before(model, cutoff)
        if removed:
            self.store.record_purge(model, actor, cutoff.isoformat(), removed)
        return removed

    def apply_retention(self, now: datetime | None = None) -> dict[str, list[str]]:
        """Delete every model's expired date partitions (the worker runs this daily)."""
        return {
            model: removed
            for model, days in self.store.retention_by_model().items()
            if (removed := self._purge(model, days, SYSTEM_ACTOR, now))
        }
