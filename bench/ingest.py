"""Ingest throughput through the real HTTP API, and the SDK's per-call cost of log_predictions.

Starts a real `keel up` (uvicorn on loopback, SQLite, a temporary data directory), registers a
model whose signature has 25 columns (20 float, 5 categorical), sets a reference profile, then
uploads ``--rows`` rows as Arrow IPC streams of ``--batch-rows`` rows through
``POST /api/v1/models/{name}/versions/1/predictions/upload``. Each request is acknowledged only
after validation against the signature, the durable Parquet write (temp file, fsync, rename,
directory fsync) and the merge into the hourly window profile, so the figure covers all three.

Then it times ``Client.log_predictions`` for a single row (25 features): the call only enqueues,
the network is on the SDK's background thread.

    uv run python bench/ingest.py                 # 1M rows x 25 columns
    uv run python bench/ingest.py --rows 200000   # quicker

Ends with one JSON line: rows_per_s, sdk_log_us, and the details.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from keel.config import Settings
from keel.sdk import Client
from keel.services.backend import Backend
from keel.stats.drift import dataset_drift

KEEL = Path(sys.executable).parent / "keel"
NUMERIC = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
CATEGORIES = np.array([f"c{i}" for i in range(12)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def features(rows: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {
        name: rng.normal(i, 1.0 + i / 10, rows) for i, name in enumerate(NUMERIC)
    }
    for name in CATEGORICAL:
        data[name] = CATEGORIES[rng.integers(0, len(CATEGORIES), rows)]
    return data


def prediction_batch(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed + 10_000)
    data = features(rows, seed)
    data["prediction"] = rng.integers(0, 2, rows)
    data["score"] = rng.random(rows)
    data["latency_ms"] = rng.gamma(2.0, 2.0, rows)
    return pa.table(data)


def arrow_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


class KeelUp:
    """A real `keel up` on a free loopback port, in a temporary data directory."""

    def __init__(self, workdir: Path) -> None:
        self.data_dir = workdir / "data"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(KEEL), "up", "--data-dir", str(self.data_dir), "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=workdir,
        )
        assert self.process.stdout is not None
        log: list[str] = []
        for line in self.process.stdout:
            log.append(line)
            if "Uvicorn running on" in line:
                break
        if self.process.poll() is not None:
            raise SystemExit("keel up exited:\n" + "".join(log))
        threading.Thread(
            target=lambda: [None for _ in self.process.stdout or ()], daemon=True
        ).start()
        self.token = (self.data_dir / "admin-token").read_text().strip()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def stored_drift_query_ms(data_dir: Path, repeats: int = 7) -> tuple[float, int]:
    """Median ms of the drift query a monitor makes: the stored hourly window profiles of the
    last day merged (`Telemetry.merged_profile`, read from the server's SQLite) and judged against
    the reference (`dataset_drift`); and how many rows those profiles summarise."""
    backend = Backend.open(Settings.load(data_dir=data_dir, env={}))
    try:
        end = datetime.now(UTC) + timedelta(hours=1)
        start = end - timedelta(days=1)
        reference = backend.telemetry.reference_profile("scorer", 1)
        assert reference is not None
        times: list[float] = []
        rows = 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            merged = backend.telemetry.merged_profile("scorer", 1, start, end)
            assert merged is not None
            dataset_drift(reference, merged)
            times.append((time.perf_counter() - t0) * 1000)
            rows = merged.rows
        return statistics.median(times), rows
    finally:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--streams", type=int, default=2, help="concurrent upload connections")
    parser.add_argument("--sdk-calls", type=int, default=50_000)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="keel-bench-ingest-"))
    server = KeelUp(workdir)
    try:
        headers = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=600) as http:
            http.post("/api/v1/teams", json={"name": "bench"}).raise_for_status()
            http.post(
                "/api/v1/models", json={"name": "scorer", "team": "bench", "owner": "bench"}
            ).raise_for_status()
            signature = {
                "columns": [{"name": n, "dtype": "float"} for n in NUMERIC]
                + [{"name": n, "dtype": "categorical"} for n in CATEGORICAL]
            }
            http.post(
                "/api/v1/models/scorer/versions",
                files={"artifact": ("m.bin", b"weights")},
                data={"metadata": json.dumps({"signature": signature})},
            ).raise_for_status()
            reference = io.BytesIO()
            pq.write_table(pa.table(features(200_000, seed=1)), reference)
            http.put(
                "/api/v1/models/scorer/versions/1/reference",
                content=reference.getvalue(),
                headers={"Content-Type": "application/vnd.apache.parquet"},
            ).raise_for_status()

            batches = max(1, args.rows // args.batch_rows)
            bodies = [
                arrow_stream(prediction_batch(args.batch_rows, seed=100 + i))
                for i in range(batches)
            ]
            total_rows = batches * args.batch_rows
            upload_mb = sum(len(b) for b in bodies) / 1024**2
            # Warm up the server's imports and caches with one small batch (not counted).
            http.post(
                "/api/v1/models/scorer/versions/1/predictions/upload",
                content=arrow_stream(prediction_batch(1_000, seed=7)),
                headers={"Content-Type": "application/vnd.apache.arrow.stream"},
            ).raise_for_status()

        query_small_ms, small_rows = stored_drift_query_ms(server.data_dir)
        latencies: list[float] = []

        def upload(body: bytes) -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=600) as conn:
                started = time.perf_counter()
                response = conn.post(
                    "/api/v1/models/scorer/versions/1/predictions/upload",
                    content=body,
                    headers={"Content-Type": "application/vnd.apache.arrow.stream"},
                )
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.streams) as pool:
            list(pool.map(upload, bodies))
        elapsed = time.perf_counter() - started
        rows_per_s = total_rows / elapsed

        # Check the server really has it all: raw rows on disk and in the window profiles.
        parts = list((server.data_dir / "telemetry" / "predictions").rglob("part-*.parquet"))
        stored_rows = sum(pq.read_metadata(p).num_rows for p in parts)
        if stored_rows != total_rows + 1_000:
            raise SystemExit(f"expected {total_rows + 1_000} stored rows, found {stored_rows}")
        query_large_ms, large_rows = stored_drift_query_ms(server.data_dir)
        with Client(server.url, token=server.token) as keel:
            one_row: dict[str, float | str] = {name: float(i) for i, name in enumerate(NUMERIC)}
            one_row.update({name: "c1" for name in CATEGORICAL})
            for _ in range(1_000):  # warm-up: the logger thread starts, Arrow is imported
                keel.log_predictions("scorer", 1, one_row, 1, scores=0.5)
            keel.flush()
            samples: list[float] = []
            for _ in range(5):
                n = args.sdk_calls // 5
                t0 = time.perf_counter_ns()
                for _ in range(n):
                    keel.log_predictions("scorer", 1, one_row, 1, scores=0.5)
                samples.append((time.perf_counter_ns() - t0) / n / 1000)
            flushed = keel.flush(timeout=120)
            sdk_stats = keel.telemetry_stats()
        sdk_log_us = statistics.median(samples)

        print(f"keel up at {server.url}, data dir {server.data_dir}")
        print(
            f"upload: {total_rows:,} rows x 25 columns in {batches} Arrow IPC batches of "
            f"{args.batch_rows:,} ({upload_mb:.0f} MiB), {args.streams} connections"
        )
        print(f"  wall {elapsed:.2f} s -> {rows_per_s:,.0f} rows/s (target >= 200,000)")
        print(
            f"  per request: median {statistics.median(latencies) * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms; rows stored in Parquet: {stored_rows:,} "
            f"(incl. 1,000 warm-up)"
        )
        print(
            f"sdk log_predictions, one row of 25 features: {sdk_log_us:.1f} us per call "
            f"(median of 5 x {args.sdk_calls // 5:,}; target < 50 us); after flush: "
            f"sent {sdk_stats.sent_rows:,}, dropped {sdk_stats.dropped_rows}, "
            f"failed {sdk_stats.failed_rows}, flushed={flushed}"
        )
        print(
            f"drift query over stored window profiles (merge + drift, median of 7): "
            f"{query_small_ms:.1f} ms over {small_rows:,} rows, "
            f"{query_large_ms:.1f} ms over {large_rows:,} rows (target < 50 ms)"
        )
        print(
            json.dumps(
                {
                    "rows_per_s": round(rows_per_s),
                    "profile_query_ms": round(query_large_ms, 2),
                    "profile_query_rows": large_rows,
                    "profile_query_small_ms": round(query_small_ms, 2),
                    "profile_query_small_rows": small_rows,
                    "sdk_log_us": round(sdk_log_us, 2),
                    "rows": total_rows,
                    "columns": 25,
                    "batch_rows": args.batch_rows,
                    "streams": args.streams,
                    "wall_s": round(elapsed, 3),
                    "upload_mib": round(upload_mb, 1),
                    "request_median_ms": round(statistics.median(latencies) * 1000, 1),
                    "stored_rows": stored_rows,
                    "sdk_sent_rows": sdk_stats.sent_rows,
                    "sdk_dropped_rows": sdk_stats.dropped_rows,
                    "cpus": os.cpu_count(),
                    "at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
        )
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
