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
| largest bulk upload  | ``KEEL_MAX_UPLOAD_BYTES``  | 512 MiB (Parquet/Arrow/CSV data) |
| webhook attempts     | ``KEEL_WEBHOOK_MAX_ATTEMPTS`` | 8 (then the delivery is dead)  |
| rows per bulk upload | ``KEEL_MAX_UPLOAD_ROWS``   | 10,000,000 (decoded, any format) |
| decoded upload bytes | ``KEEL_MAX_UPLOAD_DECOMPRESSED_BYTES`` | 1 GiB (after decompression) |
"""

from __future__ import annotations

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
DEFAULT_MAX_UPLOAD_ROWS = 10_000_000
DEFAULT_MAX_UPLOAD_DECOMPRESSED_BYTES = 1024**3


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
    max_upload_rows: int = DEFAULT_MAX_UPLOAD_ROWS
    max_upload_decompressed_bytes: int = DEFAULT_MAX_UPLOAD_DECOMPRESSED_BYTES

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
            max_upload_rows=_int_env(
                env, "KEEL_MAX_UPLOAD_ROWS", DEFAULT_MAX_UPLOAD_ROWS, unit="rows"
            ),
            max_upload_decompressed_bytes=_int_env(
                env, "KEEL_MAX_UPLOAD_DECOMPRESSED_BYTES", DEFAULT_MAX_UPLOAD_DECOMPRESSED_BYTES
            ),
        )
