"""The registry's metadata store: the interface every backend implements.

The services talk to this interface only. `keel.store.sql.SqlRegistryStore` implements it for
SQLite and PostgreSQL; one contract suite (``tests/store/test_registry_contract.py``) runs every
implementation through the same checks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

from keel.domain.lifecycle import VersionStatus
from keel.domain.registry import (
    AliasAssignment,
    Artifact,
    Model,
    ModelChanges,
    ModelQuery,
    ModelVersion,
    Page,
    Team,
    VersionDraft,
)


class RegistryStore(ABC):
    """Teams, models, versions and alias history; raises keel.errors `NotFound` / `Conflict`.

    Every write appends its audit event in the same transaction as the change.
    """

    @abstractmethod
    def ping(self) -> None:
        """Raise `NotReady` when the database cannot answer or is not migrated."""

    @abstractmethod
    def create_team(self, name: str, description: str, actor: str) -> Team: ...

    @abstractmethod
    def get_team(self, name: str) -> Team: ...

    @abstractmethod
    def list_teams(self, *, cursor: str | None, limit: int) -> Page[Team]: ...

    @abstractmethod
    def create_model(self, model: Model, actor: str) -> Model: ...

    @abstractmethod
    def get_model(self, name: str) -> Model: ...

    @abstractmethod
    def update_model(
        self,
        name: str,
        changes: ModelChanges,
        actor: str,
        *,
        check_move: Callable[[str, Mapping[int, VersionStatus]], None] | None = None,
    ) -> Model:
        """Apply ``changes``. When they move the model to another team, ``check_move`` sees the
        current team and every version's status under the model's lock, and raises to refuse
        (so a version registered meanwhile cannot slip past it)."""

    @abstractmethod
    def list_models(self, query: ModelQuery, *, cursor: str | None, limit: int) -> Page[Model]: ...

    @abstractmethod
    def create_version(
        self,
        model: str,
        artifact: Artifact,
        draft: VersionDraft,
        actor: str,
        *,
        number: int | None = None,
    ) -> ModelVersion:
        """Store a new version numbered one past the model's newest, atomically; or numbered
        ``number`` (an import keeping another registry's numbers), `Conflict` if it is taken."""

    @abstractmethod
    def get_version(self, model: str, version: int) -> ModelVersion: ...

    @abstractmethod
    def list_versions(
        self, model: str, *, status: VersionStatus | None, cursor: str | None, limit: int
    ) -> Page[ModelVersion]: ...

    @abstractmethod
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
        """Move a version to ``status`` if the lifecycle allows it (checked inside the write).

        `Conflict` when the version holds one of ``guarded_aliases``: those move only through
        governance, and so does the status of the version holding them."""

    @abstractmethod
    def set_alias(self, model: str, alias: str, version: int, actor: str) -> AliasAssignment:
        """Point ``alias`` at ``version``, closing the period of the version it held before."""

    @abstractmethod
    def delete_alias(self, model: str, alias: str, actor: str) -> AliasAssignment: ...

    @abstractmethod
    def current_aliases(self, model: str) -> list[AliasAssignment]: ...

    @abstractmethod
    def alias_history(self, model: str, alias: str | None) -> list[AliasAssignment]:
        """Every period of every alias (or of one), newest first."""
