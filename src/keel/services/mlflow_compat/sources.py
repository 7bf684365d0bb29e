"""Fetch an MLflow model's files, and its run, from where an MLflow ``source`` URI points.

| source                        | fetched from                                                   |
|-------------------------------|----------------------------------------------------------------|
| ``runs:/<run_id>/<path>``     | the run's artifacts, else its logged model named ``<path>``    |
| ``models:/m-<model_id>``      | the MLflow logged model's artifacts                            |
| ``mlflow-artifacts:/<path>``  | the tracking server's artifact proxy                           |
| ``s3://bucket/key``           | object storage (fsspec; ``KEEL_S3_ENDPOINT_URL``)              |
| a local path or ``file://``   | only below a directory listed in ``KEEL_MLFLOW_LOCAL_ROOTS``   |

Keel talks to the MLflow tracking server it is configured to trust (``KEEL_MLFLOW_TRACKING_URI``)
over its REST API with httpx: the control plane never needs the ``mlflow`` package, and never
runs model code. A source Keel cannot fetch is `InvalidInput` naming the source and the fix.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

import fsspec
import httpx

from keel.errors import InvalidInput, PayloadTooLarge

_API = "/api/2.0/mlflow"
_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
_MAX_FILES = 10_000


@dataclass(frozen=True)
class RunFacts:
    """What a training run recorded: the lineage Keel keeps with the version."""

    run_id: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FetchedModel:
    directory: Path
    location: str  # the URI the files were read from
    run_id: str


def _bad_source(source: str, why: str) -> InvalidInput:
    return InvalidInput(
        f"Keel could not fetch the model version's source {source!r}: {why}",
        {"field": "source", "source": source},
    )


def _safe_relative(path: str, source: str) -> PurePosixPath:
    relative = PurePosixPath(path.strip("/"))
    if any(part in ("..", "") for part in relative.parts) and str(relative) != ".":
        raise _bad_source(source, "a path may not contain '..'.")
    return relative


class ModelSources:
    """Reads MLflow sources for the registry API and for ``keel import mlflow``."""

    def __init__(
        self,
        tracking_uri: str | None,
        *,
        max_bytes: int,
        storage_options: Mapping[str, Any] | None = None,
        local_roots: tuple[Path, ...] = (),
        transport: httpx.BaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri.rstrip("/") if tracking_uri else None
        self.max_bytes = max_bytes
        self._storage_options = dict(storage_options or {})
        self._local_roots = tuple(p.resolve() for p in local_roots)
        self._transport = transport
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    def __repr__(self) -> str:
        return f"ModelSources(tracking_uri={self.tracking_uri!r})"

    # -- the tracking server -------------------------------------------------------------------

    def _client(self, source: str) -> httpx.Client:
        if not self.tracking_uri:
            raise _bad_source(
                source,
                "Keel reads runs and MLflow artifacts only from the tracking server it trusts, "
                "and none is configured. Set KEEL_MLFLOW_TRACKING_URI on the Keel server.",
            )
        return httpx.Client(
            base_url=self.tracking_uri,
            timeout=60.0,
            transport=self._transport,
            headers=self._headers,
        )

    def _get(
        self, client: httpx.Client, source: str, path: str, params: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            response = client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise _bad_source(
                source, f"the MLflow server at {self.tracking_uri} did not answer ({exc!s:.200})."
            ) from None
        if response.status_code == 404:
            raise _bad_source(source, f"the MLflow server has no {path} for it (404).")
        if response.status_code >= 400:
            raise _bad_source(
                source, f"the MLflow server answered {response.status_code} to {path}."
            )
        try:
            return response.json()
        except ValueError:
            raise _bad_source(
                source, f"the MLflow server's answer to {path} is not JSON."
            ) from None

    def run(self, run_id: str, source: str = "") -> RunFacts:
        """The run's parameters, metrics (latest values) and tags."""
        with self._client(source or f"runs:/{run_id}") as client:
            found = self._get(client, source or run_id, f"{_API}/runs/get", {"run_id": run_id})
        data = found.get("run", {}).get("data", {})
        return RunFacts(
            run_id=run_id,
            params={p["key"]: str(p.get("value", "")) for p in data.get("params", [])},
            metrics={m["key"]: float(m.get("value", 0.0)) for m in data.get("metrics", [])},
            tags={t["key"]: str(t.get("value", "")) for t in data.get("tags", [])},
        )

    def _list(self, client: httpx.Client, source: str, path: str) -> list[tuple[str, int]]:
        """Every file below ``path`` in the artifact proxy, with its size."""
        found: list[tuple[str, int]] = []
        pending = [path]
        while pending:
            here = pending.pop()
            listing = self._get(client, source, _ARTIFACTS, {"path": here})
            for entry in listing.get("files", []):
                child = f"{here}/{entry['path']}" if here else str(entry["path"])
                if entry.get("is_dir"):
                    pending.append(child)
                else:
                    found.append((child, int(entry.get("file_size") or 0)))
                if len(found) > _MAX_FILES:
                    raise _bad_source(source, f"it holds more than {_MAX_FILES} files.")
        return found

    def _download_proxied(self, source: str, path: str, into: Path) -> bool:
        """Copy the files below ``path``; False when there are none."""
        relative = _safe_relative(path, source)
        with self._client(source) as client:
            files = self._list(client, source, str(relative))
            if not files:
                return False
            total = 0
            for name, _ in files:
                target = into / PurePosixPath(name).relative_to(relative)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with (
                        client.stream("GET", f"{_ARTIFACTS}/{name}") as response,
                        target.open("wb") as out,
                    ):
                        if response.status_code >= 400:
                            raise _bad_source(
                                source, f"downloading {name} answered {response.status_code}."
                            )
                        for chunk in response.iter_bytes(1 << 20):
                            total += len(chunk)
                            if total > self.max_bytes:
                                raise PayloadTooLarge(
                                    f"The model at {source!r} is larger than this Keel accepts "
                                    f"({self.max_bytes} bytes; KEEL_MAX_ARTIFACT_BYTES).",
                                    {"field": "source", "limit": self.max_bytes},
                                )
                            out.write(chunk)
                except httpx.HTTPError as exc:
                    raise _bad_source(
                        source, f"downloading {name} failed ({exc!s:.200})."
                    ) from None
        return True

    def _proxied_path(self, artifact_uri: str, source: str) -> str:
        parsed = urlparse(artifact_uri)
        if parsed.scheme != "mlflow-artifacts":
            raise _bad_source(
                source,
                f"its files are at {artifact_uri!r}; Keel reads MLflow artifacts through the "
                "tracking server's artifact proxy (mlflow server --serve-artifacts, the default).",
            )
        return unquote(parsed.path).lstrip("/")

    # -- each kind of source -------------------------------------------------------------------

    def fetch(self, source: str, run_id: str, into: Path) -> FetchedModel:
        """Copy the model's files into the empty directory ``into``."""
        parsed = urlparse(source)
        if parsed.scheme == "runs":
            return self._fetch_run(source, into)
        if parsed.scheme == "models":
            return self._fetch_logged_model(source, into)
        if parsed.scheme == "mlflow-artifacts":
            path = unquote(parsed.path).lstrip("/")
            if not self._download_proxied(source, path, into):
                raise _bad_source(source, "the MLflow server lists no files there.")
            return FetchedModel(into, source, run_id)
        if parsed.scheme == "s3":
            return FetchedModel(self._fetch_fsspec(source, source, into), source, run_id)
        if parsed.scheme in ("", "file"):
            return FetchedModel(self._fetch_local(source, into), source, run_id)
        raise _bad_source(
            source,
            "Keel fetches runs:/, models:/, mlflow-artifacts:/, s3:// and local sources only.",
        )

    def _fetch_run(self, source: str, into: Path) -> FetchedModel:
        parsed = urlparse(source)
        run_id = parsed.netloc or parsed.path.strip("/").split("/", 1)[0]
        path = parsed.path.strip("/")
        if not parsed.netloc:
            path = path.split("/", 1)[1] if "/" in path else ""
        if not run_id:
            raise _bad_source(source, "expected runs:/<run_id>/<path>.")
        with self._client(source) as client:
            info = self._get(client, source, f"{_API}/runs/get", {"run_id": run_id})["run"]["info"]
            base = self._proxied_path(str(info.get("artifact_uri", "")), source)
            if self._download_proxied(source, f"{base}/{path}" if path else base, into):
                return FetchedModel(into, f"{info['artifact_uri']}/{path}", run_id)
            # MLflow 3 keeps a model logged by a run as a logged model, named by its path.
            found = client.post(
                f"{_API}/logged-models/search",
                json={
                    "experiment_ids": [str(info.get("experiment_id", "0"))],
                    "filter": f"source_run_id = '{run_id}' AND name = '{path}'",
                },
            )
        models = found.json().get("models", []) if found.status_code == 200 else []
        if not models:
            raise _bad_source(source, f"run {run_id} has no artifacts or logged model at {path!r}.")
        location = str(models[0]["info"]["artifact_uri"])
        if not self._download_proxied(source, self._proxied_path(location, source), into):
            raise _bad_source(source, f"the logged model at {location!r} has no files.")
        return FetchedModel(into, location, run_id)

    def _fetch_logged_model(self, source: str, into: Path) -> FetchedModel:
        model_id = urlparse(source).path.strip("/") or urlparse(source).netloc
        if not model_id.startswith("m-") or "/" in model_id:
            raise _bad_source(source, "expected models:/m-<model_id> (a logged model).")
        with self._client(source) as client:
            info = self._get(client, source, f"{_API}/logged-models/{model_id}")["model"]["info"]
        location = str(info["artifact_uri"])
        if not self._download_proxied(source, self._proxied_path(location, source), into):
            raise _bad_source(source, f"the logged model at {location!r} has no files.")
        return FetchedModel(into, location, str(info.get("source_run_id") or ""))

    def _fetch_fsspec(self, url: str, source: str, into: Path) -> Path:
        try:
            fs, root = fsspec.core.url_to_fs(url, **self._storage_options)
            files = [f for f in fs.find(root) if not fs.isdir(f)] if fs.isdir(root) else [root]
            if not files:
                raise _bad_source(source, "nothing is stored there.")
            total = sum(int(fs.size(f) or 0) for f in files)
            if total > self.max_bytes:
                raise PayloadTooLarge(
                    f"The model at {source!r} is larger than this Keel accepts "
                    f"({self.max_bytes} bytes; KEEL_MAX_ARTIFACT_BYTES).",
                    {"field": "source", "limit": self.max_bytes},
                )
            for name in files:
                relative = PurePosixPath(name).relative_to(root) if name != root else None
                target = into / (str(relative) if relative else PurePosixPath(name).name)
                target.parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(name, str(target))
        except (OSError, ValueError) as exc:
            raise _bad_source(source, f"{type(exc).__name__}: {exc!s:.200}") from None
        return into

    def _fetch_local(self, source: str, into: Path) -> Path:
        path = Path(unquote(urlparse(source).path) if source.startswith("file:") else source)
        resolved = path.resolve()
        if not any(resolved.is_relative_to(root) for root in self._local_roots):
            raise _bad_source(
                source,
                "Keel reads local paths only below the directories listed in "
                "KEEL_MLFLOW_LOCAL_ROOTS on the Keel server (none contains this one). Use a "
                "runs:/ or models:/ source, or list the directory there.",
            )
        if not resolved.exists():
            raise _bad_source(source, "no such file or directory on the Keel server.")
        if resolved.is_file():
            shutil.copy2(resolved, into / resolved.name)
            return into
        return self._fetch_fsspec(str(resolved), source, into)
