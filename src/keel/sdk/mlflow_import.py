"""Bring an MLflow Model Registry into Keel without losing anything (``keel import mlflow``).

Both ends speak MLflow's registry REST API: the MLflow server being left, and Keel's compatible
API. Keel fetches each version's files itself, from the MLflow server it trusts
(``KEEL_MLFLOW_TRACKING_URI``), and stores, scans and records them like any registration, with
the run's parameters, metrics and git commit. What comes over: models, descriptions, tags on
models and versions, versions with **their own numbers**, source URIs and run ids, stages and
aliases. Running it again imports nothing twice: it compares and reports what changed.

**Production history.** An imported version enters Keel's lifecycle as ``registered``, never as
``production``: a version reaches production in Keel only through its gates, and an import that
promoted would be the side door the compatible API refuses to be. What MLflow said is kept: the
version gets the tags ``keel.import.mlflow_stage`` and ``keel.import.mlflow_aliases``, and the
summary lists the versions to take through the gates (``keel gates run``, ``keel promote``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

_API = "/api/2.0/mlflow"
GOVERNED_ALIAS = "production"
STAGE_TAG = "keel.import.mlflow_stage"
ALIASES_TAG = "keel.import.mlflow_aliases"


class MlflowApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


class MlflowRest:
    """The few calls of MLflow's registry REST API the import needs, at either end."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            if method == "GET":
                response = self.http.request(method, _API + path, params=body)
            else:
                response = self.http.request(method, _API + path, json=body or {})
        except httpx.HTTPError as exc:
            raise MlflowApiError(0, "UNREACHABLE", f"{self.http.base_url}: {exc}") from None
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code >= 400:
            raise MlflowApiError(
                response.status_code,
                str(payload.get("error_code", "HTTP_ERROR")),
                str(payload.get("message", response.text[:200])),
            )
        return payload

    def _pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self.call("GET", path, {**params, **({"page_token": token} if token else {})})
            yield from page.get(key, [])
            token = page.get("next_page_token")
            if not token:
                return

    def models(self) -> Iterator[dict[str, Any]]:
        yield from self._pages(
            "/registered-models/search", "registered_models", {"max_results": 100}
        )

    def model(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.call("GET", "/registered-models/get", {"name": name})
        except MlflowApiError as exc:
            if exc.code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        model: dict[str, Any] = found["registered_model"]
        return model

    def versions(self, name: str) -> list[dict[str, Any]]:
        escaped = name.replace("'", "\\'")
        found = self._pages(
            "/model-versions/search",
            "model_versions",
            {"filter": f"name = '{escaped}'", "max_results": 1000},
        )
        return sorted(found, key=lambda v: int(v["version"]))


def _tags(entity: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in entity.get("tags", [])}


@dataclass
class ImportReport:
    """What one run did (or, with ``dry_run``, would do)."""

    dry_run: bool = False
    models_created: list[str] = field(default_factory=list)
    versions_imported: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    to_promote: list[str] = field(default_factory=list)

    @property
    def nothing_to_do(self) -> bool:
        return not (self.models_created or self.versions_imported or self.changes)


Progress = Callable[[str], None]


class MlflowImport:
    """One import from ``source`` (an MLflow server) into ``target`` (Keel)."""

    def __init__(
        self,
        source: MlflowRest,
        target: MlflowRest,
        *,
        dry_run: bool = False,
        team: str | None = None,
        progress: Progress = lambda _: None,
    ) -> None:
        self.source, self.target = source, target
        self.team, self.progress = team, progress
        self.report = ImportReport(dry_run=dry_run)

    def _write(self, what: str, method: str, path: str, body: dict[str, Any]) -> None:
        self.report.changes.append(what)
        if not self.report.dry_run:
            self.target.call(method, path, body)

    def run(self, names: list[str] | None = None) -> ImportReport:
        models = (
            [m for m in (self.source.model(n) for n in names) if m is not None]
            if names
            else list(self.source.models())
        )
        missing = sorted(set(names or ()) - {m["name"] for m in models})
        for name in missing:
            self.report.failures.append((name, "no such registered model in MLflow"))
        for index, model in enumerate(models, 1):
            self.progress(f"[{index}/{len(models)}] {model['name']}")
            try:
                self._model(model)
            except MlflowApiError as exc:
                self.report.failures.append((model["name"], f"{exc.code}: {exc.message}"))
        return self.report

    def _model(self, model: dict[str, Any]) -> None:
        name = model["name"]
        tags = _tags(model)
        existing = self.target.model(name)
        if existing is None:
            self.report.models_created.append(name)
            if not self.report.dry_run:
                body_tags = dict(tags)
                if self.team:
                    body_tags.setdefault("keel.team", self.team)
                self.target.call(
                    "POST",
                    "/registered-models/create",
                    {
                        "name": name,
                        "description": model.get("description", ""),
                        "tags": [{"key": k, "value": v} for k, v in body_tags.items()],
                    },
                )
            existing = {"name": name, "description": model.get("description", ""), "tags": []}
            if self.report.dry_run:
                existing["tags"] = model.get("tags", [])
        else:
            if existing.get("description", "") != model.get("description", ""):
                self._write(
                    f"{name}: description",
                    "PATCH",
                    "/registered-models/update",
                    {"name": name, "description": model.get("description", "")},
                )
        have = _tags(existing)
        for key, value in tags.items():
            if have.get(key) != value:
                self._write(
                    f"{name}: tag {key}",
                    "POST",
                    "/registered-models/set-tag",
                    {"name": name, "key": key, "value": value},
                )
        imported: set[int] = set()
        # Search results may omit a version's aliases; the model lists them all.
        held: dict[str, list[str]] = {}
        for entry in model.get("aliases", []):
            held.setdefault(str(entry["version"]), []).append(entry["alias"])
        for version in self.source.versions(name):
            version = {**version, "aliases": held.get(str(version["version"]), [])}
            if self._version(name, version):
                imported.add(int(version["version"]))
        self._aliases(name, model, imported)

    def _version(self, name: str, version: dict[str, Any]) -> bool:
        """Import or update one version; False when it is not in Keel (failed)."""
        number = int(version["version"])
        label = f"{name} v{number}"
        tags = _tags(version)
        stage = version.get("current_stage", "None")
        aliases = sorted(version.get("aliases", []))
        if stage == "Production" or GOVERNED_ALIAS in aliases:
            self.report.to_promote.append(label)
        if stage == "Production":
            tags[STAGE_TAG] = stage
        if GOVERNED_ALIAS in aliases:
            tags[ALIASES_TAG] = ",".join(aliases)
        if version.get("run_id"):
            tags.setdefault("mlflow.run_id", version["run_id"])
        try:
            existing = self.target.call(
                "GET", "/model-versions/get", {"name": name, "version": str(number)}
            )["model_version"]
        except MlflowApiError as exc:
            if exc.code != "RESOURCE_DOES_NOT_EXIST":
                raise
            existing = None
        if existing is None:
            self.progress(f"  importing {label} from {version.get('source', '')}")
            self.report.versions_imported.append(label)
            if self.report.dry_run:
                return True
            try:
                self.target.call(
                    "POST",
                    "/model-versions/create",
                    {
                        "name": name,
                        "source": version.get("source", ""),
                        "run_id": version.get("run_id", ""),
                        "run_link": version.get("run_link", ""),
                        "description": version.get("description", ""),
                        "tags": [{"key": k, "value": v} for k, v in tags.items()],
                        "keel_version": number,
                    },
                )
            except MlflowApiError as exc:
                self.report.versions_imported.remove(label)
                self.report.failures.append((label, f"{exc.code}: {exc.message}"))
                return False
            existing = {"tags": [{"key": k, "value": v} for k, v in tags.items()]}
            existing["description"] = version.get("description", "")
            existing["current_stage"] = "None"
        key = {"name": name, "version": str(number)}
        if existing.get("description", "") != version.get("description", ""):
            self._write(
                f"{label}: description",
                "PATCH",
                "/model-versions/update",
                {**key, "description": version.get("description", "")},
            )
        have = _tags(existing)
        for tag, value in tags.items():
            if have.get(tag) != value:
                self._write(
                    f"{label}: tag {tag}",
                    "POST",
                    "/model-versions/set-tag",
                    {**key, "key": tag, "value": value},
                )
        if stage in ("Staging", "Archived") and existing.get("current_stage") != stage:
            self._write(
                f"{label}: stage {stage}",
                "POST",
                "/model-versions/transition-stage",
                {**key, "stage": stage, "archive_existing_versions": False},
            )
        return True

    def _aliases(self, name: str, model: dict[str, Any], imported: set[int]) -> None:
        current = {} if self.report.dry_run else (self.target.model(name) or {})
        have = {a["alias"]: a["version"] for a in current.get("aliases", [])}
        for entry in model.get("aliases", []):
            alias, version = entry["alias"], str(entry["version"])
            if alias == GOVERNED_ALIAS or int(version) not in imported:
                continue
            if have.get(alias) != version:
                try:
                    self._write(
                        f"{name}: alias {alias} -> v{version}",
                        "POST",
                        "/registered-models/alias",
                        {"name": name, "alias": alias, "version": version},
                    )
                except MlflowApiError as exc:
                    self.report.changes.pop()
                    self.report.failures.append((f"{name} alias {alias}", exc.message))
