"""MLflow's Model Registry over Keel's registry, with Keel's rules still in force.

- **Teams.** MLflow has none: a model created through MLflow belongs to the ``keel.team`` tag's
  team, else to the caller's only team with write access; otherwise the caller is asked to say.
- **Governance.** The ``production`` alias and the ``Production`` stage are set only through
  Keel's promotion (gates, sign-off); the refusal lists Keel's blockers. The production version's
  stage cannot be changed and it cannot be deleted: promote another version, or roll back.
- **Deletion.** Keel keeps every version for its audit trail: an MLflow delete archives the
  version(s) (final in Keel) and hides them, or the model, from the MLflow API.
- **Stages.** ``Production`` is Keel's production status; a retired (once production) version
  reads ``Archived``; ``Staging``, ``Archived`` and ``None`` are recorded as they are.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlparse

from keel.domain.lifecycle import VersionStatus
from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, Role, authorize
from keel.domain.registry import (
    Lineage,
    Model,
    ModelChanges,
    ModelQuery,
    ModelVersion,
    ParamValue,
    VersionDraft,
)
from keel.errors import Conflict, InvalidInput, NotFound
from keel.services.governance import Governance
from keel.services.mlflow_compat.filters import Clause, parse_filter
from keel.services.mlflow_compat.mlmodel import TARGET_TAG, read_model_directory
from keel.services.mlflow_compat.sources import ModelSources
from keel.services.registry import GOVERNED_ALIASES, MAX_PAGE, Registry
from keel.store.sql import codec
from keel.store.sql.mlflow import MlflowVersionRecord, SqlMlflowStore

TEAM_TAG = "keel.team"
RUN_ID_TAG = "mlflow.run_id"
STAGES = {"none": "None", "staging": "Staging", "production": "Production", "archived": "Archived"}
MAX_MODEL_RESULTS = 1000
MAX_VERSION_RESULTS = 200_000
MAX_TAG_KEY = 250
MAX_TAG_VALUE = 5000

T = TypeVar("T")


class ResourceAlreadyExists(Conflict):
    """MLflow's RESOURCE_ALREADY_EXISTS: a name or number that is taken."""

    code = "resource_already_exists"


@dataclass(frozen=True)
class VersionView:
    name: str
    version: int
    created_at: datetime
    user_id: str
    current_stage: str
    description: str
    source: str
    run_id: str
    run_link: str
    tags: dict[str, str]
    aliases: tuple[str, ...]
    download_uri: str
    status: str = "READY"


@dataclass(frozen=True)
class ModelView:
    name: str
    created_at: datetime
    updated_at: datetime
    user_id: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, int]
    latest_versions: tuple[VersionView, ...] = ()


@dataclass(frozen=True)
class ResultPage(Generic[T]):
    items: tuple[T, ...]
    next_page_token: str = ""


@dataclass
class _Snapshot:
    """Everything about one model the MLflow API shows, read once per request."""

    model: Model
    tags: dict[str, str]
    versions: list[VersionView] = field(default_factory=list)


def _stage(version: ModelVersion, record: MlflowVersionRecord | None) -> str:
    if version.status == VersionStatus.PRODUCTION:
        return "Production"
    if version.status == VersionStatus.RETIRED:
        return "Archived"
    stage = record.stage if record else "None"
    return stage if stage != "Production" else "None"


def _check_tag(key: str, value: str | None = None) -> None:
    if not key or len(key) > MAX_TAG_KEY:
        raise InvalidInput(
            f"A tag key must be 1-{MAX_TAG_KEY} characters. Got {key[:40]!r}.", {"field": "key"}
        )
    if value is not None and len(value) > MAX_TAG_VALUE:
        raise InvalidInput(
            f"A tag value must be at most {MAX_TAG_VALUE} characters.", {"field": "value"}
        )


def _max_results(value: int | None, limit: int, default: int) -> int:
    chosen = default if value is None else value
    if not 1 <= chosen <= limit:
        raise InvalidInput(
            f"The 'max_results' parameter must be between 1 and {limit}. Got {chosen} instead.",
            {"field": "max_results"},
        )
    return chosen


def _offset(page_token: str | None) -> int:
    if not page_token:
        return 0
    try:
        offset = codec.decode_cursor(page_token)
    except InvalidInput:
        offset = None
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInput("The 'page_token' parameter is malformed.", {"field": "page_token"})
    return offset


def _ordered(items: list[T], order_by: list[str], keys: Mapping[str, Callable[[T], Any]]) -> None:
    """Sort ``items`` in place by MLflow ``order_by`` clauses ("name ASC", ...)."""
    for clause in reversed(order_by):
        parts = clause.split()
        column = parts[0].strip("`") if parts else ""
        direction = parts[1].upper() if len(parts) > 1 else "ASC"
        if column not in keys or direction not in ("ASC", "DESC") or len(parts) > 2:
            raise InvalidInput(
                f"Invalid 'order_by' clause {clause!r}: order by one of "
                f"{', '.join(sorted(keys))}, optionally followed by ASC or DESC.",
                {"field": "order_by"},
            )
        items.sort(key=keys[column], reverse=direction == "DESC")


def _page(items: list[T], max_results: int, page_token: str | None) -> ResultPage[T]:
    start = _offset(page_token)
    chosen = items[start : start + max_results]
    more = start + max_results < len(items)
    return ResultPage(tuple(chosen), codec.encode_cursor(start + max_results) if more else "")


class MlflowRegistry:
    """The endpoints of MLflow's ModelRegistryService, in Keel's terms."""

    def __init__(
        self,
        store: SqlMlflowStore,
        registry: Registry,
        governance: Governance,
        sources: ModelSources,
        workdir: Path,
    ) -> None:
        self.store = store
        self.registry = registry
        self.governance = governance
        self.sources = sources
        self.workdir = workdir

    # -- reading -------------------------------------------------------------------------------

    def _visible(self, name: str) -> Model:
        if not name:
            raise InvalidInput("The 'name' field is required.", {"field": "name"})
        try:
            model = self.registry.get_model(name)
        except (NotFound, InvalidInput):
            raise NotFound(
                f"Registered Model with name={name} not found", {"model": name}
            ) from None
        if name in self.store.deleted_models():
            raise NotFound(f"Registered Model with name={name} not found", {"model": name})
        return model

    def _writable(self, by: Principal, name: str) -> Model:
        model = self._visible(name)
        authorize(by, Permission.WRITE, model.team)
        return model

    def _all_versions(self, name: str) -> Iterator[ModelVersion]:
        cursor: str | None = None
        while True:
            page = self.registry.list_versions(name, cursor=cursor, limit=MAX_PAGE)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def _download_uri(self, version: ModelVersion, record: MlflowVersionRecord | None) -> str:
        if record and record.storage_location:
            return record.storage_location
        return f"/api/v1/models/{version.model}/versions/{version.version}/artifact"

    def _view(self, version: ModelVersion, record: MlflowVersionRecord | None) -> VersionView:
        return VersionView(
            name=version.model,
            version=version.version,
            created_at=version.created_at,
            user_id=version.created_by,
            current_stage=_stage(version, record),
            description=version.description,
            source=record.source if record else "",
            run_id=record.run_id if record else "",
            run_link=record.run_link if record else "",
            tags=dict(record.tags) if record else {},
            aliases=version.aliases,
            download_uri=self._download_uri(version, record),
        )

    def _snapshot(self, model: Model, tags: Mapping[str, dict[str, str]]) -> _Snapshot:
        records = self.store.version_records(model.name)
        snapshot = _Snapshot(model, dict(tags.get(model.name, {})))
        for version in self._all_versions(model.name):
            record = records.get((model.name, version.version))
            if record is not None and record.deleted:
                continue
            snapshot.versions.append(self._view(version, record))
        return snapshot

    @staticmethod
    def _latest_by_stage(
        versions: list[VersionView], stages: list[str] | None = None
    ) -> tuple[VersionView, ...]:
        wanted = {_normal_stage(s) for s in stages} if stages else set(STAGES.values())
        latest: dict[str, VersionView] = {}
        for version in versions:
            held = latest.get(version.current_stage)
            if version.current_stage in wanted and (held is None or version.version > held.version):
                latest[version.current_stage] = version
        return tuple(sorted(latest.values(), key=lambda v: v.version))

    def _model_view(self, snapshot: _Snapshot) -> ModelView:
        model = snapshot.model
        return ModelView(
            name=model.name,
            created_at=model.created_at or datetime.min,
            updated_at=model.updated_at or model.created_at or datetime.min,
            user_id=model.owner,
            description=model.description,
            tags=snapshot.tags,
            aliases={a: v.version for v in snapshot.versions for a in v.aliases},
            latest_versions=self._latest_by_stage(snapshot.versions),
        )

    def get_registered_model(self, name: str) -> ModelView:
        model = self._visible(name)
        return self._model_view(self._snapshot(model, self.store.model_tags()))

    def _visible_models(self) -> list[Model]:
        deleted = self.store.deleted_models()
        found: list[Model] = []
        cursor: str | None = None
        while True:
            page = self.registry.list_models(ModelQuery(), cursor=cursor, limit=MAX_PAGE)
            found.extend(m for m in page.items if m.name not in deleted)
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    def search_registered_models(
        self,
        filter_string: str | None,
        max_results: int | None,
        order_by: list[str],
        page_token: str | None,
    ) -> ResultPage[ModelView]:
        """Models matching the filter, in MLflow's order, by pages. The filter is applied here
        rather than in SQL: it reads MLflow tags and names with LIKE semantics of its own."""
        limit = _max_results(max_results, MAX_MODEL_RESULTS, 100)
        clauses = parse_filter(filter_string, frozenset({"name"}))
        tags = self.store.model_tags()
        models = [
            m for m in self._visible_models() if _matches(clauses, m.name, tags.get(m.name, {}))
        ]
        models.sort(key=lambda m: m.name)
        _ordered(
            models,
            order_by,
            {
                "name": lambda m: m.name,
                "creation_timestamp": lambda m: m.created_at,
                "timestamp": lambda m: m.created_at,
                "last_updated_timestamp": lambda m: m.updated_at,
            },
        )
        page = _page(models, limit, page_token)
        views = tuple(self._model_view(self._snapshot(m, tags)) for m in page.items)
        return ResultPage(views, page.next_page_token)

    def get_latest_versions(self, name: str, stages: list[str]) -> tuple[VersionView, ...]:
        model = self._visible(name)
        return self._latest_by_stage(self._snapshot(model, {}).versions, stages)

    def _version(self, name: str, version: int | str) -> VersionView:
        number = _version_number(version)
        model = self._visible(name)
        try:
            found = self.registry.get_version(model.name, number)
        except NotFound:
            raise NotFound(
                f"Model Version (name={name}, version={number}) not found",
                {"model": name, "version": number},
            ) from None
        record = self.store.version_records(name).get((name, number))
        if record is not None and record.deleted:
            raise NotFound(
                f"Model Version (name={name}, version={number}) not found",
                {"model": name, "version": number},
            )
        return self._view(found, record)

    def get_model_version(self, name: str, version: int | str) -> VersionView:
        return self._version(name, version)

    def get_download_uri(self, name: str, version: int | str) -> str:
        return self._version(name, version).download_uri

    def search_model_versions(
        self,
        filter_string: str | None,
        max_results: int | None,
        order_by: list[str],
        page_token: str | None,
    ) -> ResultPage[VersionView]:
        limit = _max_results(max_results, MAX_VERSION_RESULTS, 10_000)
        clauses = parse_filter(
            filter_string, frozenset({"name", "run_id", "source_path", "version_number"})
        )
        named = [c.value for c in clauses if c.field == "name" and c.op == "=" and c.value]
        if named:
            deleted = self.store.deleted_models()
            models = []
            for name in {str(n) for n in named} - deleted:
                try:
                    models.append(self.registry.get_model(name))
                except (NotFound, InvalidInput):
                    continue
        else:
            models = self._visible_models()
        versions = [
            v
            for m in models
            for v in self._snapshot(m, {}).versions
            if _version_matches(clauses, v)
        ]
        versions.sort(key=lambda v: (v.name, -v.version))
        _ordered(
            versions,
            order_by,
            {
                "name": lambda v: v.name,
                "version_number": lambda v: v.version,
                "creation_timestamp": lambda v: v.created_at,
                "timestamp": lambda v: v.created_at,
                "last_updated_timestamp": lambda v: v.created_at,
            },
        )
        return _page(versions, limit, page_token)

    def get_version_by_alias(self, name: str, alias: str) -> VersionView:
        self._visible(name)
        for held in self.registry.current_aliases(name):
            if held.alias == alias:
                return self._version(name, held.version)
        raise NotFound(
            f"Registered model alias {alias} not found.", {"model": name, "alias": alias}
        )

    # -- registered models ---------------------------------------------------------------------

    @staticmethod
    def _team_for(by: Principal, tags: Mapping[str, str]) -> str:
        if tags.get(TEAM_TAG):
            return tags[TEAM_TAG]
        writable = sorted(
            {g.team for g in by.grants if g.team is not None and g.role != Role.VIEWER}
        )
        if len(writable) == 1:
            return writable[0]
        listed = ", ".join(writable) or "none"
        raise InvalidInput(
            f"Say which Keel team owns the model: add the tag {TEAM_TAG}=<team> "
            f"(teams you can write to: {listed}).",
            {"field": f"tags.{TEAM_TAG}"},
        )

    def create_registered_model(
        self, by: Principal, name: str, tags: Mapping[str, str], description: str
    ) -> ModelView:
        if not name:
            raise InvalidInput("The 'name' field is required.", {"field": "name"})
        check_name(name, "name")
        for key, value in tags.items():
            _check_tag(key, value)
        try:
            self.registry.get_model(name)
        except NotFound:
            pass
        else:
            deleted = name in self.store.deleted_models()
            raise ResourceAlreadyExists(
                f"Registered Model (name={name}) already exists."
                + (
                    " It was deleted through the MLflow API, and Keel keeps its record and its "
                    "name for the audit trail: choose another name."
                    if deleted
                    else ""
                ),
                {"model": name},
            )
        model = self.registry.create_model(
            by,
            Model(name=name, team=self._team_for(by, tags), owner=by.name, description=description),
        )
        for key, value in tags.items():
            self.store.set_model_tag(model.name, key, value, by.name)
        return self.get_registered_model(model.name)

    def update_registered_model(self, by: Principal, name: str, description: str) -> ModelView:
        self._writable(by, name)
        self.registry.update_model(by, name, ModelChanges(description=description))
        return self.get_registered_model(name)

    def rename_registered_model(self, by: Principal, name: str, new_name: str) -> ModelView:
        self._writable(by, name)
        if not new_name:
            raise InvalidInput("The 'new_name' field is required.", {"field": "new_name"})
        try:
            self.registry.get_model(new_name)
        except NotFound:
            pass
        else:
            raise ResourceAlreadyExists(
                f"Registered Model (name={new_name}) already exists.", {"model": new_name}
            )
        self.store.rename_model(name, check_name(new_name, "new_name"), by.name)
        return self.get_registered_model(new_name)

    def delete_registered_model(self, by: Principal, name: str) -> None:
        self._writable(by, name)
        self.store.delete_model(name, by.name)

    def set_registered_model_tag(self, by: Principal, name: str, key: str, value: str) -> None:
        self._writable(by, name)
        _check_tag(key, value)
        self.store.set_model_tag(name, key, value, by.name)

    def delete_registered_model_tag(self, by: Principal, name: str, key: str) -> None:
        self._writable(by, name)
        self.store.delete_model_tag(name, key, by.name)

    # -- aliases -------------------------------------------------------------------------------

    def set_alias(self, by: Principal, name: str, alias: str, version: int | str) -> None:
        model = self._writable(by, name)
        number = self._version(name, version).version
        if alias in GOVERNED_ALIASES:
            # The compatible API is no side door: the same gates and sign-off as keel promote.
            self.governance.promote(by, model.name, number)
            return
        self.registry.set_alias(by, model.name, alias, number)

    def delete_alias(self, by: Principal, name: str, alias: str) -> None:
        model = self._writable(by, name)
        if alias in GOVERNED_ALIASES:
            raise Conflict(
                f"The '{alias}' alias is cleared only by governance: roll back "
                f"(keel rollback {model.name} --reason ...) or promote another version.",
                {"alias": alias},
            )
        self.registry.delete_alias(by, model.name, alias)

    # -- model versions ------------------------------------------------------------------------

    def create_model_version(
        self,
        by: Principal,
        name: str,
        source: str,
        *,
        run_id: str = "",
        tags: Mapping[str, str] | None = None,
        run_link: str = "",
        description: str = "",
        number: int | None = None,
    ) -> VersionView:
        """Fetch the source, store and scan it, and register it with the run's lineage."""
        tags = dict(tags or {})
        for key, value in tags.items():
            _check_tag(key, value)
        if not source:
            raise InvalidInput("The 'source' field is required.", {"field": "source"})
        model = self._writable(by, name)
        if number is not None:
            try:
                self.registry.get_version(model.name, number)
            except NotFound:
                pass
            else:
                raise ResourceAlreadyExists(
                    f"Model Version (name={name}, version={number}) already exists.",
                    {"model": name, "version": number},
                )
        parsed = urlparse(source)
        if parsed.scheme == "models" and not parsed.path.strip("/").startswith("m-"):
            created, location, run_id = self._copy_keel_version(
                by, model, source, description, number
            )
        else:
            target = tags.get(TARGET_TAG) or self.store.model_tags().get(name, {}).get(TARGET_TAG)
            self.workdir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=self.workdir, prefix="mlflow-source-") as tmp:
                files = Path(tmp) / "model"
                files.mkdir()
                fetched = self.sources.fetch(source, run_id, files)
                run_id = run_id or fetched.run_id
                understood = read_model_directory(files, target)
                params: dict[str, ParamValue] = {}
                metrics: dict[str, float] = {}
                lineage = Lineage()
                if run_id and self.sources.tracking_uri:
                    run = self.sources.run(run_id, source)
                    params = dict(run.params)
                    metrics = dict(run.metrics)
                    lineage = Lineage(
                        git_commit=run.tags.get("mlflow.source.git.commit") or None,
                        git_repo_url=run.tags.get("mlflow.source.git.repoURL") or None,
                    )
                draft = VersionDraft(
                    signature=understood.signature,
                    description=description,
                    params=params,
                    metrics=metrics,
                    lineage=lineage,
                    environment=understood.environment,
                )
                with understood.artifact.open("rb") as upload:
                    created = self.registry.register_version(
                        by, model.name, upload, understood.filename, draft, number=number
                    )
                location = fetched.location
        if run_id:
            tags.setdefault(RUN_ID_TAG, run_id)
        self.store.record_version(
            model.name,
            created.version,
            source=source,
            storage_location=location,
            run_id=run_id,
            run_link=run_link,
            tags=tags,
            actor=by.name,
        )
        return self._version(model.name, created.version)

    def _copy_keel_version(
        self, by: Principal, model: Model, source: str, description: str, number: int | None
    ) -> tuple[ModelVersion, str, str]:
        """``models:/<name>/<version or alias>`` names a version in this registry: Keel."""
        parts = urlparse(source).path.strip("/").split("/")
        if len(parts) != 2:
            raise InvalidInput(
                f"The source {source!r} must read models:/<name>/<version or alias>.",
                {"field": "source"},
            )
        try:
            original = (
                self.get_model_version(parts[0], parts[1])
                if parts[1].isdigit()
                else self.get_version_by_alias(parts[0], parts[1])
            )
        except NotFound as exc:
            raise InvalidInput(
                f"Keel could not fetch the source {source!r}: {exc.message}", {"field": "source"}
            ) from None
        found, stream = self.registry.open_artifact(original.name, original.version)
        draft = VersionDraft(
            signature=found.signature,
            description=description or found.description,
            params=found.params,
            metrics=found.metrics,
            lineage=found.lineage,
            environment=found.environment,
            card=found.card,
        )
        with stream:
            created = self.registry.register_version(
                by, model.name, stream, found.artifact.filename, draft, number=number
            )
        return created, original.download_uri, original.run_id

    def update_model_version(
        self, by: Principal, name: str, version: int | str, description: str
    ) -> VersionView:
        self._writable(by, name)
        number = self._version(name, version).version
        self.store.set_version_description(name, number, description, by.name)
        return self._version(name, number)

    def delete_model_version(self, by: Principal, name: str, version: int | str) -> None:
        self._writable(by, name)
        self.store.delete_version(name, self._version(name, version).version, by.name)

    def set_model_version_tag(
        self, by: Principal, name: str, version: int | str, key: str, value: str
    ) -> None:
        self._writable(by, name)
        _check_tag(key, value)
        self.store.set_version_tag(name, self._version(name, version).version, key, value, by.name)

    def delete_model_version_tag(
        self, by: Principal, name: str, version: int | str, key: str
    ) -> None:
        self._writable(by, name)
        self.store.delete_version_tag(name, self._version(name, version).version, key, by.name)

    def transition_stage(
        self,
        by: Principal,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool,
    ) -> VersionView:
        model = self._writable(by, name)
        target = _normal_stage(stage)
        current = self._version(name, version)
        if target == "Production":
            if current.current_stage != "Production":
                # Keel retires the previous production version itself (archive_existing).
                self.governance.promote(by, model.name, current.version)
            return self._version(name, current.version)
        if current.current_stage == "Production":
            raise Conflict(
                f"{name} version {current.version} is in production, so its stage moves only "
                "through governance: promote another version, or roll back "
                f"(keel rollback {name} --reason ...).",
                {"model": name, "version": current.version, "stage": target},
            )
        self.store.set_stage(name, current.version, target, by.name)
        if archive_existing_versions and target == "Staging":
            for other in self._snapshot(model, {}).versions:
                if other.version != current.version and other.current_stage == "Staging":
                    self.store.set_stage(name, other.version, "Archived", by.name)
        return self._version(name, current.version)


def _normal_stage(stage: str) -> str:
    found = STAGES.get(stage.strip().lower())
    if found is None:
        raise InvalidInput(
            f"Invalid Model Version stage: {stage}. Value must be one of "
            "None, Staging, Production, Archived.",
            {"field": "stage"},
        )
    return found


def _version_number(version: int | str) -> int:
    try:
        number = int(str(version))
    except ValueError:
        number = 0
    if number < 1:
        raise InvalidInput(
            f"The 'version' field must be a positive whole number. Got {version!r}.",
            {"field": "version"},
        )
    return number


def _matches(clauses: list[Clause], name: str, tags: Mapping[str, str]) -> bool:
    for clause in clauses:
        if clause.field.startswith("tags."):
            if not clause.matches(tags.get(clause.field[5:])):
                return False
        elif not clause.matches(name):
            return False
    return True


def _version_matches(clauses: list[Clause], version: VersionView) -> bool:
    fields: dict[str, str | int] = {
        "name": version.name,
        "run_id": version.run_id,
        "source_path": version.source,
        "version_number": version.version,
    }
    for clause in clauses:
        if clause.field.startswith("tags."):
            if not clause.matches(version.tags.get(clause.field[5:])):
                return False
        elif not clause.matches(fields[clause.field]):
            return False
    return True
