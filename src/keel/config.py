"""Where Keel keeps its state, read once from flags and the environment.

Precedence: explicit argument > environment variable > default.

| setting              | environment                | default                          |
|----------------------|----------------------------|----------------------------------|
| data directory       | ``KEEL_HOME``              | ``./.keel``                      |
| metadata database    | ``KEEL_DATABASE_URL``      | ``sqlite:///<data dir>/keel.db`` |
| artifact store       | ``KEEL_ARTIFACT_URL``      | ``<data dir>/artifacts``         |
| S3 endpoint          | ``KEEL_S3_ENDPOINT_URL``   | AWS                              |
| largest artifact     | ``KEEL_MAX_ARTIFACT_BYTES``| 2 GiB                            |
| largest JSON request | ``KEEL_MAX_REQUEST_BYTES`` | 8 MiB                            |
| telemetry directory  | ``KEEL_TELEMETRY_DIR``     | ``<data dir>/telemetry``         |
| telemetry on S3      | ``KEEL_TELEMETRY_URL``     | unset: ``s3://bucket/prefix`` |
| largest bulk upload  | ``KEEL_MAX_UPLOAD_BYTES``  | 512 MiB (Parquet/Arrow/CSV data) |
| webhook attempts     | ``KEEL_WEBHOOK_MAX_ATTEMPTS`` | 8 (then the delivery is dead)  |
| late-label horizon   | ``KEEL_LABEL_HORIZON_DAYS`` | 7 (windows re-judged for labels) |
| audit signing key    | ``KEEL_AUDIT_KEY_FILE``    | ``<data dir>/audit-key`` (made at start) |
| audit checkpoints    | ``KEEL_AUDIT_CHECKPOINT_DIR`` | ``<data dir>/audit-checkpoints`` |
| checkpoint interval  | ``KEEL_AUDIT_CHECKPOINT_MINUTES`` | 15                       |
| rows per bulk upload | ``KEEL_MAX_UPLOAD_ROWS``   | 10,000,000 (decoded, any format) |
| decoded upload bytes | ``KEEL_MAX_UPLOAD_DECOMPRESSED_BYTES`` | 1 GiB (after decompression) |
| MLflow server trusted | ``KEEL_MLFLOW_TRACKING_URI`` | none (runs:/, models:/ refused) |
| local MLflow sources | ``KEEL_MLFLOW_LOCAL_ROOTS`` | none (directories, ``:``-separated) |
| job lease            | ``KEEL_JOB_LEASE_SECONDS`` | 60 (a silent worker's job is retried after) |
| job attempts         | ``KEEL_JOB_MAX_ATTEMPTS``  | 3 (then the job is dead-lettered) |
| monitor check period | ``KEEL_MONITOR_CHECK_SECONDS`` | 30 (how often workers run due monitors) |
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput

# The first admin's token, written by the first `keel up` (mode 0600) and read by the CLI/SDK.
ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name
DEFAULT_MAX_ARTIFACT_BYTES = 2 * 1024**3
DEFAULT_MAX_REQUEST_BYTES = 8 * 1024**2
DEFAULT_MAX_UPLOAD_BYTES = 512 * 1024**2
DEFAULT_WEBHOOK_MAX_ATTEMPTS = 8
DEFAULT_LABEL_HORIZON_DAYS = 7
DEFAULT_AUDIT_CHECKPOINT_MINUTES = 15
DEFAULT_MAX_UPLOAD_ROWS = 10_000_000
DEFAULT_MAX_UPLOAD_DECOMPRESSED_BYTES = 1024**3
DEFAULT_JOB_LEASE_SECONDS = 60
DEFAULT_JOB_MAX_ATTEMPTS = 3
DEFAULT_MONITOR_CHECK_SECONDS = 30


def _int_env(env: Mapping[str, str], name: str, default: int, unit: str = "bytes") -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(
            f"{name} must be a whole number of {unit}. Got {raw!r} instead."
        ) from None
    if value <= 0:
        raise InvalidInput(f"{name} must be > 0. Got {value} instead.")
    return value


# Where `keel up` notes, per local port, which data directory it serves (see local_server_data_dir).
LOCAL_SERVERS_FILE = "local-servers.json"


def state_dir(env: Mapping[str, str]) -> Path:
    """This user's Keel state: ``$XDG_STATE_HOME/keel``, default ``~/.local/state/keel``."""
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser() / "keel"


def remember_local_server(env: Mapping[str, str], port: int, data_dir: Path) -> None:
    """Note that the Keel on this machine's ``port`` keeps its state in ``data_dir``.

    The CLI and SDK read it back (`local_server_data_dir`) to find the admin token when they run
    from another directory than ``keel up`` did, or with another ``--data-dir``. The note holds a
    path only, never a token; failing to write it only costs that convenience.
    """
    path = state_dir(env) / LOCAL_SERVERS_FILE
    try:
        known = _local_servers(path)
        known[str(port)] = str(data_dir.resolve())
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(known, indent=1, sort_keys=True), encoding="utf-8")
        partial.replace(path)
    except OSError:
        return


def local_server_data_dir(env: Mapping[str, str], port: int) -> Path | None:
    """The data directory that ``keel up`` on this machine's ``port`` last said it serves."""
    found = _local_servers(state_dir(env) / LOCAL_SERVERS_FILE).get(str(port))
    return Path(found) if found else None


def _local_servers(path: Path) -> dict[str, str]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {str(k): v for k, v in loaded.items() if isinstance(v, str)}


def _path_env(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name)
    return Path(raw).expanduser().resolve() if raw else None


def data_dir_from(env: Mapping[str, str], data_dir: Path | str | None = None) -> Path:
    """The data directory: ``data_dir`` if given, else ``$KEEL_HOME``, else ``./.keel``."""
    return Path(data_dir or env.get("KEEL_HOME") or ".keel").expanduser()


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    artifact_url: str
    s3_endpoint_url: str | None = None
    max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    extra: Mapping[str, Any] = field(default_factory=dict)
    telemetry_dir: Path | None = None  # None: <data dir>/telemetry
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    webhook_max_attempts: int = DEFAULT_WEBHOOK_MAX_ATTEMPTS
    label_horizon_days: int = DEFAULT_LABEL_HORIZON_DAYS
    audit_key_file: Path | None = None  # None: <data dir>/audit-key, created on first start
    audit_checkpoint_dir: Path | None = None  # None: <data dir>/audit-checkpoints
    audit_checkpoint_minutes: int = DEFAULT_AUDIT_CHECKPOINT_MINUTES

    @property
    def audit_key_path(self) -> Path:
        """The key that signs audit events and checkpoints; never in the database."""
        return self.audit_key_file or self.data_dir / "audit-key"

    @property
    def audit_checkpoint_path(self) -> Path:
        """Where signed audit checkpoints are appended (audit-checkpoints.jsonl)."""
        return self.audit_checkpoint_dir or self.data_dir / "audit-checkpoints"

    max_upload_rows: int = DEFAULT_MAX_UPLOAD_ROWS
    max_upload_decompressed_bytes: int = DEFAULT_MAX_UPLOAD_DECOMPRESSED_BYTES
    telemetry_url: str | None = None  # e.g. s3://bucket/prefix; None: telemetry_path

    @property
    def telemetry_location(self) -> str:
        """Where telemetry partitions live: ``telemetry_url``, else the local directory."""
        return self.telemetry_url or str(self.telemetry_path)

    @property
    def telemetry_storage_options(self) -> dict[str, Any]:
        if self.telemetry_url and self.telemetry_url.startswith("s3://") and self.s3_endpoint_url:
            return {"client_kwargs": {"endpoint_url": self.s3_endpoint_url}}
        return {}

    # The MLflow tracking server whose runs and artifacts Keel fetches model sources from.
    mlflow_tracking_uri: str | None = None
    # Directories below which an MLflow `source` may be a path on the Keel server.
    mlflow_local_roots: tuple[Path, ...] = ()
    job_lease_seconds: int = DEFAULT_JOB_LEASE_SECONDS
    job_max_attempts: int = DEFAULT_JOB_MAX_ATTEMPTS
    monitor_check_seconds: int = DEFAULT_MONITOR_CHECK_SECONDS

    @property
    def telemetry_path(self) -> Path:
        """Where raw predictions and labels are kept as Parquet partitions."""
        return self.telemetry_dir or self.data_dir / "telemetry"

    @property
    def embedded(self) -> bool:
        """True when metadata lives in the SQLite file inside the data directory."""
        return self.database_url.startswith("sqlite")

    @property
    def artifact_storage_options(self) -> dict[str, Any]:
        if self.artifact_url.startswith("s3://") and self.s3_endpoint_url:
            return {"client_kwargs": {"endpoint_url": self.s3_endpoint_url}}
        return {}

    @classmethod
    def load(
        cls,
        data_dir: Path | str | None = None,
        database_url: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Settings:
        env = os.environ if env is None else env
        home = data_dir_from(env, data_dir).resolve()
        db = database_url or env.get("KEEL_DATABASE_URL") or f"sqlite:///{home / 'keel.db'}"
        return cls(
            data_dir=home,
            database_url=db,
            artifact_url=env.get("KEEL_ARTIFACT_URL") or str(home / "artifacts"),
            s3_endpoint_url=env.get("KEEL_S3_ENDPOINT_URL") or None,
            max_artifact_bytes=_int_env(env, "KEEL_MAX_ARTIFACT_BYTES", DEFAULT_MAX_ARTIFACT_BYTES),
            max_request_bytes=_int_env(env, "KEEL_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES),
            telemetry_dir=Path(env["KEEL_TELEMETRY_DIR"]).expanduser().resolve()
            if env.get("KEEL_TELEMETRY_DIR")
            else None,
            max_upload_bytes=_int_env(env, "KEEL_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
            webhook_max_attempts=_int_env(
                env, "KEEL_WEBHOOK_MAX_ATTEMPTS", DEFAULT_WEBHOOK_MAX_ATTEMPTS, unit="attempts"
            ),
            label_horizon_days=_int_env(
                env, "KEEL_LABEL_HORIZON_DAYS", DEFAULT_LABEL_HORIZON_DAYS, unit="days"
            ),
            audit_key_file=_path_env(env, "KEEL_AUDIT_KEY_FILE"),
            audit_checkpoint_dir=_path_env(env, "KEEL_AUDIT_CHECKPOINT_DIR"),
            audit_checkpoint_minutes=_int_env(
                env,
                "KEEL_AUDIT_CHECKPOINT_MINUTES",
                DEFAULT_AUDIT_CHECKPOINT_MINUTES,
                unit="minutes",
            ),
            max_upload_rows=_int_env(
                env, "KEEL_MAX_UPLOAD_ROWS", DEFAULT_MAX_UPLOAD_ROWS, unit="rows"
            ),
            max_upload_decompressed_bytes=_int_env(
                env, "KEEL_MAX_UPLOAD_DECOMPRESSED_BYTES", DEFAULT_MAX_UPLOAD_DECOMPRESSED_BYTES
            ),
            telemetry_url=_telemetry_url(env),
            mlflow_tracking_uri=env.get("KEEL_MLFLOW_TRACKING_URI") or None,
            mlflow_local_roots=tuple(
                Path(p).expanduser().resolve()
                for p in (env.get("KEEL_MLFLOW_LOCAL_ROOTS") or "").split(os.pathsep)
                if p
            ),
            job_lease_seconds=_int_env(
                env, "KEEL_JOB_LEASE_SECONDS", DEFAULT_JOB_LEASE_SECONDS, unit="seconds"
            ),
            job_max_attempts=_int_env(
                env, "KEEL_JOB_MAX_ATTEMPTS", DEFAULT_JOB_MAX_ATTEMPTS, unit="attempts"
            ),
            monitor_check_seconds=_int_env(
                env, "KEEL_MONITOR_CHECK_SECONDS", DEFAULT_MONITOR_CHECK_SECONDS, unit="seconds"
            ),
        )


def _telemetry_url(env: Mapping[str, str]) -> str | None:
    raw = (env.get("KEEL_TELEMETRY_URL") or "").strip()
    if not raw:
        return None
    scheme, sep, rest = raw.partition("://")
    if scheme != "s3" or not sep or not rest.strip("/"):
        raise InvalidInput(
            "KEEL_TELEMETRY_URL must be an object storage URL such as s3://bucket/prefix "
            f"(for a local directory, set KEEL_TELEMETRY_DIR). Got {raw!r} instead."
        )
    return raw.rstrip("/")
