"""`RegistryStore` over SQLAlchemy Core: SQLite for one machine, PostgreSQL for teams."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, and_, exists, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from keel.domain.lifecycle import VersionStatus, check_transition
from keel.domain.registry import (
    AliasAssignment,
    Artifact,
    Model,
    ModelChanges,
    ModelQuery,
    ModelVersion,
    Page,
    RiskTier,
    Team,
    VersionDraft,
)
from keel.errors import Conflict, InvalidInput, NotFound, NotReady
from keel.store.registry_store import RegistryStore
from keel.store.sql import audit, codec
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables import (
    alias_assignments,
    model_tags,
    model_versions,
    models,
    teams,
    version_status_changes,
)


def _now() -> datetime:
    return datetime.now(UTC)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def move_version_status(
    conn: Connection,
    row: Any,
    model: str,
    target: VersionStatus,
    actor: str,
    reason: str,
    now: datetime,
) -> None:
    """Move the version ``row`` (with ``id``, ``version`` and ``status``) to ``target`` if the
    lifecycle allows it: its status, the status history and the audit event, in ``conn``'s
    transaction. Governance moves versions through here too."""
    current = VersionStatus(row.status)
    check_transition(current, target)
    conn.execute(
        update(model_versions)
        .where(model_versions.c.id == row.id)
        .values(status=str(target), updated_at=now)
    )
    conn.execute(
        version_status_changes.insert().values(
            version_id=row.id,
            from_status=str(current),
            to_status=str(target),
            actor=actor,
            reason=reason,
            changed_at=now,
        )
    )
    audit.append(
        conn,
        actor=actor,
        action="version.status",
        subject_type="model_version",
        subject_id=f"{model}/{row.version}",
        details={"from": str(current), "to": str(target), "reason": reason},
    )


class SqlRegistryStore(RegistryStore):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        # The URL may hold a password; name only the backend.
        return f"SqlRegistryStore(backend={self._engine.dialect.name!r})"

    def ping(self) -> None:
        try:
            with read_transaction(self._engine) as conn:
                conn.execute(select(func.count()).select_from(teams)).scalar_one()
        except (OperationalError, ProgrammingError) as exc:
            raise NotReady(
                "The metadata database is not reachable or not migrated. "
                "Run `keel db upgrade` (or check KEEL_DATABASE_URL).",
                {"reason": type(exc.orig).__name__ if exc.orig else type(exc).__name__},
            ) from None

    # -- teams ---------------------------------------------------------------------------------

    def create_team(self, name: str, description: str, actor: str) -> Team:
        created = _now()
        try:
            with write_transaction(self._engine) as conn:
                if conn.execute(select(teams.c.id).where(teams.c.name == name)).first():
                    raise Conflict(f"A team named {name!r} already exists.", {"team": name})
                conn.execute(
                    teams.insert().values(name=name, description=description, created_at=created)
                )
                audit.append(
                    conn, actor=actor, action="team.create", subject_type="team", subject_id=name
                )
        except IntegrityError:
            raise Conflict(f"A team named {name!r} already exists.", {"team": name}) from None
        return Team(name=name, description=description, created_at=created)

    def get_team(self, name: str) -> Team:
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(teams).where(teams.c.name == name)).first()
        if row is None:
            raise NotFound(f"No team named {name!r}.", {"team": name})
        return Team(row.name, row.description, codec.utc(row.created_at))

    def list_teams(self, *, cursor: str | None, limit: int) -> Page[Team]:
        query = select(teams).order_by(teams.c.name).limit(limit + 1)
        if cursor:
            query = query.where(teams.c.name > str(codec.decode_cursor(cursor)))
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query).all()
        items = [Team(r.name, r.description, codec.utc(r.created_at)) for r in rows[:limit]]
        return Page(
            tuple(items), codec.encode_cursor(items[-1].name) if len(rows) > limit else None
        )

    # -- models --------------------------------------------------------------------------------

    def _team_id(self, conn: Connection, team: str) -> int:
        team_id = conn.execute(select(teams.c.id).where(teams.c.name == team)).scalar()
        if team_id is None:
            raise InvalidInput(
                f"The 'team' field names a team that does not exist: {team!r}. "
                "Create it first (POST /api/v1/teams or `keel teams create`).",
                {"field": "team", "team": team},
            )
        return int(team_id)

    def _model_row(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        if lock:
            # Touching the row takes its lock on PostgreSQL, so writes to one model serialise.
            conn.execute(update(models).where(models.c.name == name).values(updated_at=_now()))
        row = conn.execute(select(models).where(models.c.name == name)).first()
        if row is None:
            raise NotFound(f"No model named {name!r}.", {"model": name})
        return row

    def _to_model(self, conn: Connection, row: Any) -> Model:
        tags = conn.execute(
            select(model_tags.c.tag)
            .where(model_tags.c.model_id == row.id)
            .order_by(model_tags.c.position)
        ).scalars()
        team = conn.execute(select(teams.c.name).where(teams.c.id == row.team_id)).scalar_one()
        return Model(
            name=row.name,
            team=team,
            owner=row.owner,
            description=row.description,
            use_case=row.use_case,
            tags=tuple(tags),
            risk_tier=RiskTier(row.risk_tier),
            created_at=codec.utc(row.created_at),
            updated_at=codec.utc(row.updated_at),
            latest_version=row.latest_version,
        )

    @staticmethod
    def _write_tags(conn: Connection, model_id: int, tags: Sequence[str]) -> None:
        conn.execute(model_tags.delete().where(model_tags.c.model_id == model_id))
        unique = list(dict.fromkeys(tags))
        if unique:
            conn.execute(
                model_tags.insert(),
                [{"model_id": model_id, "tag": t, "position": i} for i, t in enumerate(unique)],
            )

    def create_model(self, model: Model, actor: str) -> Model:
        now = _now()
        try:
            with write_transaction(self._engine) as conn:
                team_id = self._team_id(conn, model.team)
                if conn.execute(select(models.c.id).where(models.c.name == model.name)).first():
                    raise self._duplicate_model(model.name)
                model_id = conn.execute(
                    models.insert()
                    .values(
                        name=model.name,
                        team_id=team_id,
                        owner=model.owner,
                        description=model.description,
                        use_case=model.use_case,
                        risk_tier=str(model.risk_tier),
                        latest_version=0,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(models.c.id)
                ).scalar_one()
                self._write_tags(conn, model_id, model.tags)
                created = self._to_model(conn, self._model_row(conn, model.name))
                audit.append(
                    conn,
                    actor=actor,
                    action="model.create",
                    subject_type="model",
                    subject_id=model.name,
                    details={"team": model.team, "owner": model.owner, "tags": list(created.tags)},
                )
                return created
        except IntegrityError:
            raise self._duplicate_model(model.name) from None

    @staticmethod
    def _duplicate_model(name: str) -> Conflict:
        return Conflict(
            f"A model named {name!r} already exists. Register a new version of it instead, "
            "or choose another name.",
            {"model": name},
        )

    def get_model(self, name: str) -> Model:
        with read_transaction(self._engine) as conn:
            return self._to_model(conn, self._model_row(conn, name))

    def update_model(
        self,
        name: str,
        changes: ModelChanges,
        actor: str,
        *,
        check_move: Callable[[str, Mapping[int, VersionStatus]], None] | None = None,
    ) -> Model:
        with write_transaction(self._engine) as conn:
            row = self._model_row(conn, name, lock=True)
            values: dict[str, Any] = {"updated_at": _now()}
            previous_team: str | None = None
            if changes.team is not None:
                values["team_id"] = self._team_id(conn, changes.team)
                if values["team_id"] != row.team_id:
                    previous_team = conn.execute(
                        select(teams.c.name).where(teams.c.id == row.team_id)
                    ).scalar_one()
                    if check_move is not None:
                        statuses = conn.execute(
                            select(model_versions.c.version, model_versions.c.status).where(
                                model_versions.c.model_id == row.id
                            )
                        ).all()
                        check_move(
                            previous_team, {v.version: VersionStatus(v.status) for v in statuses}
                        )
            for field in ("owner", "description", "use_case"):
                if getattr(changes, field) is not None:
                    values[field] = getattr(changes, field)
            conn.execute(update(models).where(models.c.id == row.id).values(**values))
            if changes.tags is not None:
                self._write_tags(conn, row.id, changes.tags)
            changed = {k: v for k, v in vars(changes).items() if v is not None}
            if previous_team is not None:
                changed["previous_team"] = previous_team
            audit.append(
                conn,
                actor=actor,
                action="model.update",
                subject_type="model",
                subject_id=name,
                details={k: list(v) if isinstance(v, tuple) else v for k, v in changed.items()},
            )
            return self._to_model(conn, self._model_row(conn, name))

    def list_models(self, query: ModelQuery, *, cursor: str | None, limit: int) -> Page[Model]:
        stmt: Select[Any] = select(models).order_by(models.c.name).limit(limit + 1)
        if cursor:
            stmt = stmt.where(models.c.name > str(codec.decode_cursor(cursor)))
        if query.team:
            stmt = stmt.join(teams, teams.c.id == models.c.team_id).where(
                teams.c.name == query.team
            )
        if query.tag:
            stmt = stmt.where(
                exists().where(
                    and_(model_tags.c.model_id == models.c.id, model_tags.c.tag == query.tag)
                )
            )
        if query.status:
            stmt = stmt.where(
                exists().where(
                    and_(
                        model_versions.c.model_id == models.c.id,
                        model_versions.c.status == str(query.status),
                    )
                )
            )
        if query.text:
            pattern = _like(query.text)
            stmt = stmt.where(
                models.c.name.ilike(pattern, escape="\\")
                | models.c.description.ilike(pattern, escape="\\")
                | models.c.use_case.ilike(pattern, escape="\\")
            )
        with read_transaction(self._engine) as conn:
            rows = conn.execute(stmt).all()
            items = [self._to_model(conn, r) for r in rows[:limit]]
        return Page(
            tuple(items), codec.encode_cursor(items[-1].name) if len(rows) > limit else None
        )

    # -- versions ------------------------------------------------------------------------------

    def create_version(
        self,
        model: str,
        artifact: Artifact,
        draft: VersionDraft,
        actor: str,
        *,
        number: int | None = None,
    ) -> ModelVersion:
        lineage = draft.lineage
        with write_transaction(self._engine) as conn:
            row = self._model_row(conn, model, lock=True)
            now = _now()  # under the model's lock, so times follow the order of commits
            if number is None:
                number = row.latest_version + 1
            elif conn.execute(
                select(model_versions.c.id).where(
                    model_versions.c.model_id == row.id, model_versions.c.version == number
                )
            ).first():
                raise Conflict(
                    f"Model {model!r} already has a version {number}.",
                    {"model": model, "version": number},
                )
            if lineage.parent_version is not None and lineage.parent_version >= number:
                raise InvalidInput(
                    f"lineage.parent_version is {lineage.parent_version}, but model {model!r} "
                    f"only has versions up to {number - 1}.",
                    {"field": "lineage.parent_version"},
                )
            conn.execute(
                update(models)
                .where(models.c.id == row.id)
                .values(latest_version=max(number, row.latest_version))
            )
            version_id = conn.execute(
                model_versions.insert()
                .values(
                    model_id=row.id,
                    version=number,
                    status=str(VersionStatus.REGISTERED),
                    description=draft.description,
                    artifact_sha256=artifact.sha256,
                    artifact_size=artifact.size,
                    artifact_flavor=str(artifact.flavor),
                    artifact_filename=artifact.filename,
                    signature=codec.signature_to_json(draft.signature),
                    params=draft.params,
                    metrics=draft.metrics,
                    lineage=codec.lineage_to_json(lineage),
                    environment={
                        "python_version": draft.environment.python_version,
                        "packages": draft.environment.packages,
                    },
                    card=dataclasses.asdict(draft.card),
                    training_data_sha256=lineage.training_data.sha256
                    if lineage.training_data
                    else None,
                    git_commit=lineage.git_commit,
                    git_dirty=lineage.git_dirty,
                    parent_version=lineage.parent_version,
                    created_by=actor,
                    created_at=now,
                    updated_at=now,
                )
                .returning(model_versions.c.id)
            ).scalar_one()
            conn.execute(
                version_status_changes.insert().values(
                    version_id=version_id,
                    from_status=None,
                    to_status=str(VersionStatus.REGISTERED),
                    actor=actor,
                    reason="registered",
                    changed_at=now,
                )
            )
            audit.append(
                conn,
                actor=actor,
                action="version.register",
                subject_type="model_version",
                subject_id=f"{model}/{number}",
                details={
                    "artifact_sha256": artifact.sha256,
                    "size": artifact.size,
                    "flavor": str(artifact.flavor),
                    "training_data_sha256": lineage.training_data.sha256
                    if lineage.training_data
                    else None,
                    "git_commit": lineage.git_commit,
                },
            )
            return self._version(conn, model, number)

    def _version_row(self, conn: Connection, model: str, version: int) -> Any:
        row = conn.execute(
            select(model_versions, models.c.name.label("model_name"))
            .join(models, models.c.id == model_versions.c.model_id)
            .where(models.c.name == model, model_versions.c.version == version)
        ).first()
        if row is None:
            self._model_row(conn, model)  # a missing model says so, not "no version"
            raise NotFound(
                f"Model {model!r} has no version {version}.", {"model": model, "version": version}
            )
        return row

    def _version(self, conn: Connection, model: str, version: int) -> ModelVersion:
        return self._to_version(conn, self._version_row(conn, model, version))

    @staticmethod
    def _open_aliases(conn: Connection, version_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
        """The aliases pointing at each version now, for many versions in one statement."""
        found: dict[int, list[str]] = {}
        for r in conn.execute(
            select(alias_assignments.c.version_id, alias_assignments.c.alias)
            .where(
                alias_assignments.c.version_id.in_(list(version_ids)),
                alias_assignments.c.cleared_at.is_(None),
            )
            .order_by(alias_assignments.c.alias)
        ):
            found.setdefault(int(r.version_id), []).append(r.alias)
        return {k: tuple(v) for k, v in found.items()}

    def _to_version(
        self, conn: Connection, row: Any, aliases: tuple[str, ...] | None = None
    ) -> ModelVersion:
        if aliases is None:
            aliases = self._open_aliases(conn, [row.id]).get(row.id, ())
        return ModelVersion(
            model=row.model_name,
            version=row.version,
            status=VersionStatus(row.status),
            artifact=codec.artifact_from_row(row),
            signature=codec.signature_from_json(row.signature),
            created_by=row.created_by,
            created_at=codec.utc(row.created_at),
            description=row.description,
            params=dict(row.params),
            metrics={k: float(v) for k, v in row.metrics.items()},
            lineage=codec.lineage_from_json(row.lineage),
            environment=codec.environment_from_json(row.environment),
            card=codec.card_from_json(row.card),
            aliases=tuple(aliases),
        )

    def get_version(self, model: str, version: int) -> ModelVersion:
        with read_transaction(self._engine) as conn:
            return self._version(conn, model, version)

    def list_versions(
        self, model: str, *, status: VersionStatus | None, cursor: str | None, limit: int
    ) -> Page[ModelVersion]:
        stmt = (
            select(model_versions, models.c.name.label("model_name"))
            .join(models, models.c.id == model_versions.c.model_id)
            .where(models.c.name == model)
            .order_by(model_versions.c.version.desc())
            .limit(limit + 1)
        )
        if status:
            stmt = stmt.where(model_versions.c.status == str(status))
        if cursor:
            after = codec.decode_cursor(cursor)
            if not isinstance(after, int):
                raise InvalidInput("The 'cursor' parameter is malformed.", {"field": "cursor"})
            stmt = stmt.where(model_versions.c.version < after)
        with read_transaction(self._engine) as conn:
            self._model_row(conn, model)
            rows = conn.execute(stmt).all()
            aliases = self._open_aliases(conn, [r.id for r in rows[:limit]])
            items = [self._to_version(conn, r, aliases.get(r.id, ())) for r in rows[:limit]]
        return Page(
            tuple(items), codec.encode_cursor(items[-1].version) if len(rows) > limit else None
        )

    def set_status(
        self,
        model: str,
        version: int,
        status: VersionStatus,
        actor: str,
        reason: str,
        *,
        guarded_aliases: frozenset[str] = frozenset(),
    ) -> ModelVersion:
        with write_transaction(self._engine) as conn:
            self._model_row(conn, model, lock=True)
            now = _now()
            row = self._version_row(conn, model, version)
            held = conn.execute(
                select(alias_assignments.c.alias).where(
                    alias_assignments.c.version_id == row.id,
                    alias_assignments.c.cleared_at.is_(None),
                    alias_assignments.c.alias.in_(sorted(guarded_aliases)),
                )
            ).scalar()
            if held is not None:
                raise Conflict(
                    f"{model} version {version} holds the {held!r} alias, so its status moves "
                    f"only through governance: promote another version (keel promote {model} "
                    f"VERSION) or roll back (keel rollback {model} --reason ...); either one "
                    "retires this version.",
                    {"model": model, "version": version, "alias": held, "status": str(status)},
                )
            move_version_status(conn, row, model, status, actor, reason, now)
            return self._version(conn, model, version)

    # -- aliases -------------------------------------------------------------------------------

    def _assignments(self, conn: Connection, where: Any) -> list[AliasAssignment]:
        rows = conn.execute(
            select(
                alias_assignments,
                models.c.name.label("model_name"),
                model_versions.c.version.label("version"),
            )
            .join(models, models.c.id == alias_assignments.c.model_id)
            .join(model_versions, model_versions.c.id == alias_assignments.c.version_id)
            .where(where)
            .order_by(alias_assignments.c.set_at.desc(), alias_assignments.c.id.desc())
        ).all()
        return [
            AliasAssignment(
                model=r.model_name,
                alias=r.alias,
                version=r.version,
                set_by=r.set_by,
                set_at=codec.utc(r.set_at),
                cleared_by=r.cleared_by,
                cleared_at=codec.utc(r.cleared_at) if r.cleared_at else None,
            )
            for r in rows
        ]

    def _open(self, model_id: int, alias: str) -> Any:
        return and_(
            alias_assignments.c.model_id == model_id,
            alias_assignments.c.alias == alias,
            alias_assignments.c.cleared_at.is_(None),
        )

    def set_alias(self, model: str, alias: str, version: int, actor: str) -> AliasAssignment:
        with write_transaction(self._engine) as conn:
            model_row = self._model_row(conn, model, lock=True)
            # Taken under the model's lock: alias periods then follow the order of commits.
            now = _now()
            version_row = self._version_row(conn, model, version)
            current = self._assignments(conn, self._open(model_row.id, alias))
            if current and current[0].version == version:
                return current[0]
            conn.execute(
                update(alias_assignments)
                .where(self._open(model_row.id, alias))
                .values(cleared_at=now, cleared_by=actor)
            )
            conn.execute(
                alias_assignments.insert().values(
                    model_id=model_row.id,
                    alias=alias,
                    version_id=version_row.id,
                    set_by=actor,
                    set_at=now,
                )
            )
            audit.append(
                conn,
                actor=actor,
                action="alias.set",
                subject_type="model",
                subject_id=model,
                details={
                    "alias": alias,
                    "version": version,
                    "previous_version": current[0].version if current else None,
                },
            )
            return self._assignments(conn, self._open(model_row.id, alias))[0]

    def delete_alias(self, model: str, alias: str, actor: str) -> AliasAssignment:
        with write_transaction(self._engine) as conn:
            model_row = self._model_row(conn, model, lock=True)
            current = self._assignments(conn, self._open(model_row.id, alias))
            if not current:
                raise NotFound(
                    f"Model {model!r} has no alias {alias!r}.", {"model": model, "alias": alias}
                )
            conn.execute(
                update(alias_assignments)
                .where(self._open(model_row.id, alias))
                .values(cleared_at=_now(), cleared_by=actor)
            )
            audit.append(
                conn,
                actor=actor,
                action="alias.delete",
                subject_type="model",
                subject_id=model,
                details={"alias": alias, "version": current[0].version},
            )
            closed = self._assignments(
                conn,
                and_(
                    alias_assignments.c.model_id == model_row.id,
                    alias_assignments.c.alias == alias,
                ),
            )
            return closed[0]

    def current_aliases(self, model: str) -> list[AliasAssignment]:
        with read_transaction(self._engine) as conn:
            model_row = self._model_row(conn, model)
            rows = self._assignments(
                conn,
                and_(
                    alias_assignments.c.model_id == model_row.id,
                    alias_assignments.c.cleared_at.is_(None),
                ),
            )
        return sorted(rows, key=lambda a: a.alias)

    def alias_history(self, model: str, alias: str | None) -> list[AliasAssignment]:
        with read_transaction(self._engine) as conn:
            model_row = self._model_row(conn, model)
            where = alias_assignments.c.model_id == model_row.id
            if alias is not None:
                where = and_(where, alias_assignments.c.alias == alias)
            return self._assignments(conn, where)
